"""MultimodalRestInput mounted in a real Sanic server on 127.0.0.1 with a fake bot (no trained model).

Covers JSON and multipart messages, base64 and id references, every case of the "Attachments sent through the
REST/web channel" list (ids that climb out of the store, URLs to private addresses, invalid base64, declared
MIME types that lie, 100 attachments, a 1 GB body, metadata that is a string, a list or 10,000 levels deep),
auth, the upload rate limit, file serving by id and the web page. Every test checks that nothing outside the
upload store is written.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import shutil
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Dict, List, Optional

import aiohttp
import pytest
from aiohttp import ClientResponse as Response
from rasa.shared.exceptions import RasaException

from channels.rest.forms import FormError as MultipartError
from channels.rest.forms import parse_form as parse_multipart
from channels.ratelimit import TokenBucketLimiter
from channels.rest import ChannelSettings, MultimodalRestInput, looks_like_base64
from media import AttachmentLimits, AttachmentStore

HAS_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
PRIVATE_URLS = [
    "http://127.0.0.1/admin",
    "https://127.0.0.1/x.jpg",
    "http://localhost:5005/webhooks/rest/webhook",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://10.0.0.7/photo.jpg",
    "http://[::1]:5055/webhook",
    "file:///etc/passwd",
    "ftp://ftp.example.com/photo.jpg",
    "https://api.telegram.org/file/bot123:ABC/photos/file_1.jpg",
]
TRAVERSAL_IDS = [
    "../../etc/passwd",
    "/etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "C:\\Windows\\win.ini",
    "../" + "a" * 61,
    "A" * 64,  # upper-case hex is not an id
    "a" * 63,
    "a" * 65,
    "",
]


# --------------------------------------------------------------------------------------------------------
# Media made in the test
# --------------------------------------------------------------------------------------------------------
def make_jpeg(width: int = 40, height: int = 30, shade: int = 0) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (width, height), (220, 190, (40 + shade) % 256))
    for x in range(width):
        image.putpixel((x, (x * 3 + shade) % height), (x * 6 % 256, 40, 150))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def make_ogg(seconds: float = 1.0) -> bytes:
    if not HAS_FFMPEG:
        pytest.skip("ffmpeg/ffprobe not installed")
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-ac", "1",
         "-c:a", "libopus", "-f", "ogg", "pipe:1"],
        check=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
    ).stdout


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_files(store: AttachmentStore) -> List[Path]:
    return sorted(p for p in store.root.rglob("*") if p.is_file())


def snapshot(root: Path) -> Dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------------------------------------
# Fixtures: a fake bot, the channel in a real Sanic server
# --------------------------------------------------------------------------------------------------------
class FakeBot:
    """Stands in for Rasa's agent: records each UserMessage and answers like the REST channel shows."""

    def __init__(self) -> None:
        self.messages: List[Any] = []
        self.fail = False

    async def __call__(self, message: Any) -> None:
        self.messages.append(message)
        if self.fail:
            raise RuntimeError("the bot fell over")
        out = message.output_channel
        n_attachments = len((message.metadata or {}).get("attachments", []))
        await out.send_response(
            message.sender_id,
            {
                "text": f"you said {message.text!r} with {n_attachments} attachment(s)",
                "buttons": [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}],
            },
        )
        await out.send_response(message.sender_id, {"image": "https://shop.example/bananas.jpg"})
        await out.send_response(message.sender_id, {"custom": {"kind": "product_card", "sku": "B-1"}})

    @property
    def last(self) -> Any:
        return self.messages[-1]


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A folder beside the store holding a 'secret' file that must never be read or changed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    photo = make_jpeg(shade=99)
    (outside / "photo.jpg").write_bytes(photo)
    (outside / sha256(photo)).write_bytes(photo)  # what a symlinked shard directory would point at
    return outside


@pytest.fixture
def store(tmp_path: Path, sandbox: Path) -> AttachmentStore:
    return AttachmentStore(tmp_path / "uploads")


@pytest.fixture(autouse=True)
def nothing_outside_the_store(tmp_path: Path, sandbox: Path):
    """Only the upload store may change below tmp_path; the secret never changes."""
    before = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("uploads")}
    yield
    after = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("uploads")}
    assert after == before


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any DNS look-up or connection outside loopback fails the test."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo
    allowed = {"127.0.0.1", "::1", "localhost"}

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in allowed:
            raise AssertionError(f"connection to {address[0]} attempted")
        return real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in allowed and host is not None:
            raise AssertionError(f"DNS look-up of {host} attempted")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


class Served:
    def __init__(self, base: str, port: int, bot: FakeBot, channel: MultimodalRestInput) -> None:
        self.base, self.port, self.bot, self.channel = base, port, bot, channel
        self.http: Optional[aiohttp.ClientSession] = None

    async def post_json(self, payload: Any, headers: Optional[Dict[str, str]] = None) -> Response:
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        return await self.http.post(
            self.base + "webhook", data=body, headers={"Content-Type": "application/json", **(headers or {})}
        )

    async def post_form(self, fields: Dict[str, str], files: List[tuple], headers=None) -> Response:
        form = aiohttp.FormData()
        for key, value in fields.items():
            form.add_field(key, value)
        for name, data, content_type in files:
            form.add_field("files", data, filename=name, content_type=content_type)
        return await self.http.post(self.base + "webhook", data=form, headers=headers or {})

    async def raw(self, request: bytes, body_chunks: Optional[AsyncIterator[bytes]] = None) -> bytes:
        """Sends a hand-made HTTP request, streaming the body until the server answers (as curl does)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(request)
        answer = asyncio.ensure_future(reader.read(65536))
        sent = 0
        if body_chunks is not None:
            async for chunk in body_chunks:
                if answer.done():
                    break
                try:
                    writer.write(chunk)
                    await writer.drain()
                except (ConnectionError, OSError):
                    break
                sent += len(chunk)
        self.raw_sent = sent
        try:
            data = await asyncio.wait_for(answer, timeout=30)
        except ConnectionError:
            data = b""
        writer.close()
        return data


@contextlib.asynccontextmanager
async def serve(channel: MultimodalRestInput, bot: Optional[FakeBot] = None) -> AsyncIterator[Served]:
    """Mounts the channel like `rasa run` does (under /webhooks/multimodal) on a free loopback port."""
    from sanic import Sanic

    Sanic.test_mode = True  # lets several apps start in one process (Sanic's touch-up keeps the originals)
    bot = bot or FakeBot()
    app = Sanic(f"rest_channel_test_{uuid.uuid4().hex[:12]}", configure_logging=False)
    app.blueprint(channel.blueprint(bot), url_prefix="/webhooks/" + channel.url_prefix())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # Sanic 21.12 reads port=0 as "the default port"; hand it a bound socket
    port = sock.getsockname()[1]
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.before_start()
    await server.after_start()
    served = Served(f"http://127.0.0.1:{port}/webhooks/multimodal/", port, bot, channel)
    async with aiohttp.ClientSession() as http:
        served.http = http
        try:
            yield served
        finally:
            await server.before_stop()
            server.close()
            await server.wait_closed()
            await server.after_stop()


def make_channel(store: AttachmentStore, environ: Optional[Dict[str, str]] = None, **settings: Any):
    settings.setdefault("upload_rate_per_minute", 0)
    settings.setdefault("address_rate_per_minute", 0)
    return MultimodalRestInput(ChannelSettings(**settings), store=store, environ=environ or {})


@pytest.fixture
async def served(store: AttachmentStore) -> AsyncIterator[Served]:
    async with serve(make_channel(store)) as s:
        yield s


async def error_of(resp: aiohttp.ClientResponse) -> Dict[str, str]:
    body = await resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    return body["error"]


# --------------------------------------------------------------------------------------------------------
# Text and the reply format
# --------------------------------------------------------------------------------------------------------
async def test_health(served: Served) -> None:
    resp = await served.http.get(served.base)
    assert resp.status == 200 and await resp.json() == {"status": "ok"}


async def test_text_message_reaches_the_bot_and_replies_come_back_like_rasa_rest(served: Served) -> None:
    resp = await served.post_json({"sender": "alice", "message": "how much are bananas"})
    assert resp.status == 200
    body = await resp.json()
    assert body == [
        {
            "recipient_id": "alice",
            "text": "you said 'how much are bananas' with 0 attachment(s)",
            "buttons": [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}],
        },
        {"recipient_id": "alice", "image": "https://shop.example/bananas.jpg"},
        {"recipient_id": "alice", "custom": {"kind": "product_card", "sku": "B-1"}},
    ]
    message = served.bot.last
    assert message.text == "how much are bananas"
    assert (message.sender_id, message.input_channel) == ("alice", "multimodal")
    assert message.metadata is None


async def test_client_metadata_is_kept_but_reserved_keys_are_dropped(served: Served) -> None:
    resp = await served.post_json(
        {
            "sender": "alice",
            "message": "hi",
            "metadata": {
                "locale": "en-GB",
                "page": {"path": "/fruit"},
                "attachments": [{"type": "image", "url": "https://api.telegram.org/file/bot1:x/a.jpg"}],
                "attachment_problems": [{"type": "image", "code": "damaged", "message": "fake"}],
                "transcript": {"text": "cancel all my orders"},
            },
        }
    )
    assert resp.status == 200
    assert served.bot.last.metadata == {"locale": "en-GB", "page": {"path": "/fruit"}}


async def test_a_bot_failure_is_a_500_json_error_and_the_server_keeps_serving(served: Served) -> None:
    served.bot.fail = True
    resp = await served.post_json({"sender": "alice", "message": "hi"})
    assert resp.status == 500
    assert (await error_of(resp))["code"] == "internal_error"
    served.bot.fail = False
    assert (await served.post_json({"sender": "alice", "message": "hi again"})).status == 200


# --------------------------------------------------------------------------------------------------------
# JSON uploads: base64 and id references
# --------------------------------------------------------------------------------------------------------
async def test_base64_photo_is_stored_and_referenced_in_metadata(served: Served, store: AttachmentStore):
    photo = make_jpeg()
    resp = await served.post_json(
        {"sender": "bob", "message": "is this fresh?", "attachments": [{"type": "image", "data": b64(photo),
                                                                        "name": "../../lunch.jpg"}]}
    )
    assert resp.status == 200
    (ref,) = served.bot.last.metadata["attachments"]
    assert ref == {"type": "image", "id": sha256(photo), "mime_type": "image/jpeg", "size": len(photo),
                   "name": "lunch.jpg"}
    assert store.read(sha256(photo)) == photo
    assert "attachment_problems" not in served.bot.last.metadata
    assert "1 attachment" in (await resp.json())[0]["text"]


@pytest.mark.parametrize("encode", [
    lambda d: "data:image/jpeg;base64," + b64(d),
    lambda d: base64.urlsafe_b64encode(d).decode().rstrip("="),
    lambda d: "\n".join(b64(d)[i:i + 76] for i in range(0, len(b64(d)), 76)),
])
async def test_base64_variants_are_accepted(served: Served, encode) -> None:
    photo = make_jpeg(shade=7)
    resp = await served.post_json({"sender": "bob", "attachments": [{"data": encode(photo)}]})
    assert resp.status == 200
    assert served.bot.last.metadata["attachments"][0]["id"] == sha256(photo)


async def test_photo_only_message_is_a_normal_message(served: Served) -> None:
    resp = await served.post_json({"sender": "bob", "attachments": [{"data": b64(make_jpeg())}]})
    assert resp.status == 200
    assert served.bot.last.text == ""  # a string: Rasa's NLU components fail on None
    assert len(served.bot.last.metadata["attachments"]) == 1


async def test_id_reference_to_an_earlier_upload(served: Served, store: AttachmentStore) -> None:
    photo = make_jpeg(shade=3)
    stored = store.save(photo, name="first.jpg")
    resp = await served.post_json(
        {"sender": "bob", "message": "same again", "attachments": [{"id": stored.id}]}
    )
    assert resp.status == 200
    (ref,) = served.bot.last.metadata["attachments"]
    assert ref["id"] == stored.id and ref["type"] == "image" and ref["mime_type"] == "image/jpeg"


async def test_unknown_id_with_text_passes_the_problem_on_and_the_reply_mentions_it(served: Served) -> None:
    resp = await served.post_json({"sender": "bob", "message": "look", "attachments": [{"id": "ab" * 32}]})
    assert resp.status == 200
    metadata = served.bot.last.metadata
    assert "attachments" not in metadata
    assert metadata["attachment_problems"] == [
        {"type": None, "code": "not_found", "message": metadata["attachment_problems"][0]["message"]}
    ]
    body = await resp.json()
    assert body[0] == {"recipient_id": "bob", "text": metadata["attachment_problems"][0]["message"]}
    assert "couldn't find" in body[0]["text"]
    assert body[1]["text"].startswith("you said 'look'")


async def test_unknown_id_alone_is_answered_by_the_channel(served: Served) -> None:
    resp = await served.post_json({"sender": "bob", "attachments": [{"id": "cd" * 32}]})
    assert resp.status == 200
    body = await resp.json()
    assert len(body) == 1 and "couldn't find" in body[0]["text"]
    assert served.bot.messages == []


# --------------------------------------------------------------------------------------------------------
# The cases list: references that climb out of the store
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad_id", TRAVERSAL_IDS)
async def test_ids_that_are_not_upload_ids_are_refused(served: Served, bad_id: str) -> None:
    resp = await served.post_json({"sender": "eve", "message": "x", "attachments": [{"id": bad_id}]})
    assert resp.status == 400
    assert (await error_of(resp))["code"] in ("invalid_reference", "invalid_attachment")
    assert served.bot.messages == []


async def test_a_symlink_planted_in_the_store_is_never_followed(
    served: Served, store: AttachmentStore, sandbox: Path
) -> None:
    target = sandbox / "photo.jpg"
    fake_id = sha256(target.read_bytes())
    shard = store.root / fake_id[:2]
    shard.mkdir(parents=True, exist_ok=True)
    (shard / fake_id).symlink_to(target)
    (shard / f"{fake_id}.json").write_text(json.dumps({"type": "image", "mime_type": "image/jpeg"}))
    resp = await served.post_json({"sender": "eve", "message": "x", "attachments": [{"id": fake_id}]})
    assert resp.status == 200
    assert served.bot.last.metadata["attachment_problems"][0]["code"] == "invalid_reference"
    assert "attachments" not in served.bot.last.metadata
    file_resp = await served.http.get(served.base + "files/" + fake_id)
    assert file_resp.status == 404


async def test_a_symlinked_shard_directory_is_refused(served: Served, store: AttachmentStore, sandbox: Path):
    photo = (sandbox / "photo.jpg").read_bytes()
    fake_id = sha256(photo)
    (store.root / fake_id[:2]).symlink_to(sandbox, target_is_directory=True)
    resp = await served.post_json({"sender": "eve", "attachments": [{"id": fake_id}]})
    assert resp.status == 200 and served.bot.messages == []
    assert (await served.http.get(served.base + "files/" + fake_id)).status == 404


# --------------------------------------------------------------------------------------------------------
# The cases list: URLs to private addresses
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_url_references_are_refused_without_any_network_access(
    served: Served, loopback_only: None, url: str
) -> None:
    resp = await served.post_json(
        {"sender": "eve", "message": "x", "attachments": [{"type": "image", "url": url}]}
    )
    assert resp.status == 400
    assert (await error_of(resp))["code"] == "url_not_supported"
    resp = await served.post_json({"sender": "eve", "message": "x", "attachments": [{"id": url}]})
    assert resp.status == 400
    assert (await error_of(resp))["code"] == "invalid_reference"
    assert served.bot.messages == []


async def test_urls_smuggled_in_through_metadata_never_reach_the_bot(served: Served, loopback_only: None):
    attachments = [{"type": "image", "url": url} for url in PRIVATE_URLS]
    resp = await served.post_json({"sender": "eve", "message": "x", "metadata": {"attachments": attachments}})
    assert resp.status == 200
    assert served.bot.last.metadata is None


# --------------------------------------------------------------------------------------------------------
# The cases list: invalid base64, lying MIME types, content that is not a photo or voice note
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data", ["not base64 at all!", "abcde", "data:text/plain,hello", "////%%%%", "é" * 8]
)
async def test_invalid_base64_is_a_400(served: Served, store: AttachmentStore, data: str) -> None:
    resp = await served.post_json({"sender": "eve", "message": "x", "attachments": [{"data": data}]})
    assert resp.status == 400
    assert (await error_of(resp))["code"] == "invalid_base64"
    assert stored_files(store) == []


async def test_declared_mime_and_type_that_differ_from_the_content_lose(served: Served) -> None:
    photo = make_jpeg(shade=11)
    resp = await served.post_json(
        {"sender": "eve", "attachments": [{"type": "audio", "mime_type": "audio/ogg", "name": "voice.ogg",
                                            "data": b64(photo)}]}
    )
    assert resp.status == 200
    (ref,) = served.bot.last.metadata["attachments"]
    assert (ref["type"], ref["mime_type"]) == ("image", "image/jpeg")


async def test_text_named_as_jpeg_is_refused_by_content(served: Served, store: AttachmentStore) -> None:
    text = b"Dear shop, this is not a photo at all.\n" * 5
    resp = await served.post_json(
        {"sender": "eve", "attachments": [{"type": "image", "mime_type": "image/jpeg", "name": "banana.jpg",
                                            "data": b64(text)}]}
    )
    assert resp.status == 200
    (reply,) = await resp.json()
    assert "photos" in reply["text"] and "voice notes" in reply["text"]
    assert served.bot.messages == []
    assert [p for p in stored_files(store) if ".tmp" not in p.parts] == []


async def test_one_bad_and_one_good_photo_with_text(served: Served) -> None:
    good, truncated = make_jpeg(shade=1), make_jpeg(120, 90, shade=2)[:200]
    resp = await served.post_json(
        {"sender": "eve", "message": "two photos", "attachments": [
            {"data": b64(good), "name": "good.jpg"}, {"data": b64(truncated), "name": "broken.jpg"}]}
    )
    assert resp.status == 200
    metadata = served.bot.last.metadata
    assert [a["id"] for a in metadata["attachments"]] == [sha256(good)]
    assert [p["code"] for p in metadata["attachment_problems"]] == ["damaged"]
    body = await resp.json()
    assert body[0]["text"].startswith("About “broken.jpg”:") and "damaged" in body[0]["text"]


async def test_empty_file_alone_gets_a_friendly_reply(served: Served) -> None:
    resp = await served.post_json({"sender": "eve", "attachments": [{"data": ""}]})
    assert resp.status == 200
    assert "empty" in (await resp.json())[0]["text"]


@pytest.mark.skipif(not HAS_FFMPEG, reason="ffmpeg/ffprobe not installed")
async def test_voice_note_as_base64(served: Served) -> None:
    voice = make_ogg()
    resp = await served.post_json({"sender": "vic", "attachments": [{"type": "audio", "data": b64(voice)}]})
    assert resp.status == 200
    (ref,) = served.bot.last.metadata["attachments"]
    assert (ref["type"], ref["mime_type"], ref["id"]) == ("audio", "audio/ogg", sha256(voice))


# --------------------------------------------------------------------------------------------------------
# The cases list: 100 attachments, a 1 GB body
# --------------------------------------------------------------------------------------------------------
async def test_100_attachments_are_refused_before_anything_is_stored(served: Served, store: AttachmentStore):
    photo = b64(make_jpeg())
    resp = await served.post_json({"sender": "eve", "message": "x", "attachments": [{"data": photo}] * 100})
    assert resp.status == 400
    error = await error_of(resp)
    assert error["code"] == "too_many_attachments" and "10" in error["message"]
    files = [("p.jpg", make_jpeg(), "image/jpeg")] * 100
    resp = await served.post_form({"sender": "eve"}, files)
    assert resp.status == 400 and (await error_of(resp))["code"] == "too_many_attachments"
    assert stored_files(store) == [] and served.bot.messages == []


async def test_1_gb_declared_body_is_refused_by_size_without_reading_it(served: Served, store):
    head = (
        "POST /webhooks/multimodal/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 1073741824\r\n\r\n"
    ).encode()

    async def body() -> AsyncIterator[bytes]:
        for _ in range(16):  # at most 16 MiB are offered; the server must not wait for the rest
            yield b"\0" * (1024 * 1024)

    answer = await asyncio.wait_for(served.raw(head, body()), timeout=60)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"too_large"' in answer
    print("bytes sent before the answer:", served.raw_sent)
    assert served.raw_sent < 16 * 1024 * 1024  # answered from the headers, not after reading the body
    assert stored_files(store) == [] and served.bot.messages == []
    assert (await served.post_json({"sender": "eve", "message": "still there?"})).status == 200


async def test_chunked_body_is_cut_off_at_the_cap(store: AttachmentStore) -> None:
    async with serve(make_channel(store, max_body_bytes=256 * 1024)) as served:
        head = (
            "POST /webhooks/multimodal/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        chunk = b"a" * 65536

        async def body() -> AsyncIterator[bytes]:
            for _ in range(16 * 1024):  # would be 1 GiB; the server closes long before
                yield b"%x\r\n%s\r\n" % (len(chunk), chunk)

        answer = await asyncio.wait_for(served.raw(head, body()), timeout=60)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert served.raw_sent < 64 * 1024 * 1024
        assert stored_files(store) == [] and served.bot.messages == []


async def test_file_over_the_type_limit_is_refused_while_streaming(tmp_path: Path) -> None:
    limits = AttachmentLimits(image_max_bytes=2000, audio_max_bytes=2000)
    small = AttachmentStore(tmp_path / "uploads", limits)
    async with serve(make_channel(small)) as served:
        big = make_jpeg(400, 300, shade=5)
        assert len(big) > 2000
        resp = await served.post_form(
            {"sender": "eve", "message": "big one"}, [("big.jpg", big, "image/jpeg")]
        )
        assert resp.status == 200
        assert served.bot.last.metadata["attachment_problems"][0]["code"] == "too_large"
        assert "too big" in (await resp.json())[0]["text"]
        assert [p for p in stored_files(small) if ".tmp" not in p.parts] == []


# --------------------------------------------------------------------------------------------------------
# The cases list: metadata that is a string, a list, or 10,000 deep
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("metadata", ["a string", ["a", "list"], 42, True])
async def test_metadata_that_is_not_an_object(served: Served, metadata: Any) -> None:
    resp = await served.post_json({"sender": "eve", "message": "x", "metadata": metadata})
    assert resp.status == 400 and (await error_of(resp))["code"] == "invalid_metadata"


async def test_metadata_nested_10000_deep(served: Served) -> None:
    deep = '{"a":' * 10_000 + "1" + "}" * 10_000
    raw = '{"sender": "eve", "message": "x", "metadata": ' + deep + "}"
    resp = await served.post_json(raw)
    assert resp.status == 400 and (await error_of(resp))["code"] in ("invalid_json", "invalid_metadata")
    deep_list = "[" * 10_000 + "]" * 10_000
    resp = await served.post_json('{"sender": "eve", "metadata": {"x": ' + deep_list + "}}")
    assert resp.status == 400
    resp = await served.post_form({"sender": "eve", "message": "x", "metadata": deep}, [])
    assert resp.status == 400 and (await error_of(resp))["code"] == "invalid_metadata"
    assert served.bot.messages == []
    assert (await served.post_json({"sender": "eve", "message": "still there?"})).status == 200


async def test_metadata_a_little_too_deep_or_too_big(served: Served) -> None:
    nested: Any = 1
    for _ in range(11):
        nested = {"a": nested}
    resp = await served.post_json({"sender": "eve", "message": "x", "metadata": nested})
    assert resp.status == 400 and "nested" in (await error_of(resp))["message"]
    resp = await served.post_json({"sender": "eve", "message": "x", "metadata": {"blob": "x" * 20_000}})
    assert resp.status == 400 and (await error_of(resp))["code"] == "invalid_metadata"


# --------------------------------------------------------------------------------------------------------
# Malformed requests
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload, code",
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe\x00garbage", "invalid_json"),
        (b"[1, 2, 3]", "invalid_request"),
        (b'"just a string"', "invalid_request"),
        ({"message": "no sender"}, "missing_sender"),
        ({"sender": "", "message": "x"}, "missing_sender"),
        ({"sender": 42, "message": "x"}, "invalid_sender"),
        ({"sender": {"id": 1}, "message": "x"}, "invalid_sender"),
        ({"sender": "a\nb", "message": "x"}, "invalid_sender"),
        ({"sender": "x" * 500, "message": "x"}, "invalid_sender"),
        ({"sender": "a", "message": 12}, "invalid_message"),
        ({"sender": "a", "message": ["x"]}, "invalid_message"),
        ({"sender": "a", "message": "x" * 20_001}, "message_too_long"),
        ({"sender": "a", "attachments": "photo.jpg"}, "invalid_attachments"),
        ({"sender": "a", "attachments": {"data": "AAAA"}}, "invalid_attachments"),
        ({"sender": "a", "attachments": ["AAAA"]}, "invalid_attachment"),
        ({"sender": "a", "attachments": [{}]}, "invalid_attachment"),
        ({"sender": "a", "attachments": [{"data": "AAAA", "id": "ab" * 32}]}, "invalid_attachment"),
        ({"sender": "a", "attachments": [{"data": 1234}]}, "invalid_attachment"),
        ({"sender": "a", "attachments": [{"data": "AAAA", "name": ["x"]}]}, "invalid_attachment"),
        ({"sender": "a", "attachments": [{"id": 7}]}, "invalid_reference"),
    ],
)
async def test_malformed_json_requests(served: Served, payload: Any, code: str) -> None:
    resp = await served.post_json(payload)
    assert resp.status == 400
    assert (await error_of(resp))["code"] == code
    assert served.bot.messages == []


async def test_wrong_content_type_and_empty_body(served: Served) -> None:
    url = served.base + "webhook"
    resp = await served.http.post(url, data=b"hello", headers={"Content-Type": "text/plain"})
    assert resp.status == 415 and (await error_of(resp))["code"] == "unsupported_media_type"
    resp = await served.http.post(url, data=b"", headers={"Content-Type": "application/json"})
    assert resp.status == 400


async def test_a_long_text_of_10000_characters_is_fine(served: Served) -> None:
    resp = await served.post_json({"sender": "a", "message": "banana " * 1428})
    assert resp.status == 200


# --------------------------------------------------------------------------------------------------------
# Multipart
# --------------------------------------------------------------------------------------------------------
async def test_multipart_photo_and_voice_note(served: Served, store: AttachmentStore) -> None:
    photo = make_jpeg(shade=21)
    files = [("photo.jpg", photo, "image/jpeg")]
    if HAS_FFMPEG:
        files.append(("voice.webm", make_ogg(), "audio/webm"))  # the declared type is wrong; content wins
    fields = {"sender": "carol", "message": "what is this?", "metadata": '{"locale": "en"}'}
    resp = await served.post_form(fields, files)
    assert resp.status == 200
    message = served.bot.last
    assert message.text == "what is this?" and message.sender_id == "carol"
    assert message.metadata["locale"] == "en"
    refs = message.metadata["attachments"]
    assert refs[0] == {"type": "image", "id": sha256(photo), "mime_type": "image/jpeg", "size": len(photo),
                       "name": "photo.jpg"}
    if HAS_FFMPEG:
        assert (refs[1]["type"], refs[1]["mime_type"]) == ("audio", "audio/ogg")
    assert {p.name for p in stored_files(store)} >= {sha256(photo), f"{sha256(photo)}.json"}


async def test_multipart_without_sender_or_with_bad_framing(served: Served) -> None:
    resp = await served.post_form({"message": "hi"}, [])
    assert resp.status == 400 and (await error_of(resp))["code"] == "missing_sender"
    for body in (b"garbage without boundaries", b"--xyz\r\nno-colon-header\r\n\r\nvalue\r\n--xyz--\r\n",
                 b"--xyz\r\nContent-Disposition: form-data; name=\"sender\"\r\n\r\nnever closed"):
        resp = await served.http.post(
            served.base + "webhook", data=body, headers={"Content-Type": "multipart/form-data; boundary=xyz"}
        )
        assert resp.status == 400 and (await error_of(resp))["code"] == "invalid_form"
    resp = await served.http.post(
        served.base + "webhook", data=b"x", headers={"Content-Type": "multipart/form-data"}
    )
    assert resp.status == 400


async def test_multipart_and_urlencoded_forms_without_files(served: Served) -> None:
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="sender"\r\n\r\ndora\r\n'
        b'--xyz\r\nContent-Disposition: form-data; name="message"\r\n\r\nhello there\r\n--xyz--\r\n'
    )
    resp = await served.http.post(
        served.base + "webhook", data=body, headers={"Content-Type": "multipart/form-data; boundary=xyz"}
    )
    assert resp.status == 200
    assert (served.bot.last.sender_id, served.bot.last.text) == ("dora", "hello there")
    resp = await served.http.post(served.base + "webhook", data={"sender": "ed", "message": "hi & bye"})
    assert resp.status == 200
    assert (served.bot.last.sender_id, served.bot.last.text) == ("ed", "hi & bye")


async def test_multipart_bad_metadata(served: Served) -> None:
    for metadata in ("not json", '"a string"', "[1, 2]"):
        resp = await served.post_form({"sender": "a", "message": "x", "metadata": metadata}, [])
        assert resp.status == 400 and (await error_of(resp))["code"] == "invalid_metadata"


# --------------------------------------------------------------------------------------------------------
# Auth
# --------------------------------------------------------------------------------------------------------
async def test_auth_token_when_the_variable_is_set(store: AttachmentStore) -> None:
    channel = make_channel(store, environ={"CHAT_API_TOKEN": "s3cret-token"})
    async with serve(channel) as served:
        resp = await served.post_json({"sender": "a", "message": "hi"})
        assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await error_of(resp))["code"] == "unauthorized"
        resp = await served.post_json({"sender": "a", "message": "hi"}, {"Authorization": "Bearer wrong"})
        assert resp.status == 401
        message = {"sender": "a", "message": "hi"}
        resp = await served.post_json(message, {"Authorization": "Basic s3cret-token"})
        assert resp.status == 401
        resp = await served.post_json(message, {"Authorization": "Bearer s3cret-token"})
        assert resp.status == 200
        assert len(served.bot.messages) == 1
        assert (await served.http.get(served.base + "chat")).status == 200


async def test_no_auth_when_the_variable_is_unset_or_empty(store: AttachmentStore) -> None:
    for environ in ({}, {"CHAT_API_TOKEN": ""}):
        async with serve(make_channel(store, environ=environ)) as served:
            assert (await served.post_json({"sender": "a", "message": "hi"})).status == 200


def test_token_variable_name_comes_from_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    channel = MultimodalRestInput.from_credentials({"token_env": "MY_CHAT_TOKEN"})
    monkeypatch.setenv("MY_CHAT_TOKEN", "abc")
    assert channel.expected_token() == "abc"
    monkeypatch.delenv("MY_CHAT_TOKEN")
    assert channel.expected_token() is None
    assert MultimodalRestInput.from_credentials(None).settings.token_env == "CHAT_API_TOKEN"


@pytest.mark.parametrize(
    "credentials",
    [
        {"token": "abc"},  # unknown key (a secret must not be written here)
        {"token_env": "not a variable name"},
        {"max_body_bytes": "lots"},
        {"upload_rate_per_minute": -1},
        {"upload_burst": 3},  # less than max_attachments
        {"address_burst": 5},
        {"address_rate_per_minute": "fast"},
        {"frame_ancestors": "*; script-src *"},
    ],
)
def test_bad_credentials_fail_early_naming_the_key(credentials: Dict[str, Any]) -> None:
    with pytest.raises(RasaException) as caught:
        MultimodalRestInput.from_credentials(credentials)
    assert next(iter(credentials)) in str(caught.value)


# --------------------------------------------------------------------------------------------------------
# Rate limit
# --------------------------------------------------------------------------------------------------------
async def test_upload_rate_limit_per_sender(store: AttachmentStore) -> None:
    channel = make_channel(store, upload_rate_per_minute=1, upload_burst=10)
    async with serve(channel) as served:
        photo = b64(make_jpeg())
        resp = await served.post_json({"sender": "a", "attachments": [{"data": photo}] * 10})
        assert resp.status == 200
        resp = await served.post_json({"sender": "a", "attachments": [{"data": photo}]})
        assert resp.status == 429
        assert int(resp.headers["Retry-After"]) >= 1
        error = await error_of(resp)
        assert error["code"] == "rate_limited" and "please wait" in error["message"]
        # text is never limited, and another sender has its own bucket
        assert (await served.post_json({"sender": "a", "message": "hello?"})).status == 200
        assert (await served.post_json({"sender": "b", "attachments": [{"data": photo}]})).status == 200
        assert len(served.bot.messages) == 3


async def test_upload_rate_limit_per_address_whatever_the_sender_id(store: AttachmentStore) -> None:
    channel = make_channel(store, address_rate_per_minute=1, address_burst=10)
    async with serve(channel) as served:
        photo = b64(make_jpeg())
        for index in range(10):
            resp = await served.post_json({"sender": f"s{index}", "attachments": [{"data": photo}]})
            assert resp.status == 200
        resp = await served.post_json({"sender": "fresh-id", "attachments": [{"data": photo}]})
        assert resp.status == 429
        assert len(served.bot.messages) == 10


def test_token_bucket_refills_with_time() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(rate_per_minute=60, burst=3, clock=lambda: now[0])
    assert limiter.take_all(("a",), 3) == 0
    assert limiter.take_all(("a",), 1) == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.take_all(("a",), 1) == 0
    assert limiter.take_all(("a", "b"), 1) > 0  # all or nothing: "b" is untouched
    assert limiter.retry_after("b", 3) == 0
    assert limiter.take_all(("b",), 4) == float("inf")
    assert TokenBucketLimiter(0, 1).take_all(("x",), 1000) == 0


def test_token_bucket_table_is_bounded() -> None:
    limiter = TokenBucketLimiter(rate_per_minute=1, burst=1, max_keys=100)
    for index in range(1000):
        limiter.take_all((f"k{index}",), 1)
    assert len(limiter._buckets) == 100


# --------------------------------------------------------------------------------------------------------
# Files by id
# --------------------------------------------------------------------------------------------------------
async def test_stored_file_is_served_by_id_with_its_mime_and_nosniff(served: Served, store: AttachmentStore):
    photo = make_jpeg(shade=33)
    ref = store.save(photo, name="x.jpg")
    resp = await served.http.get(served.base + "files/" + ref.id)
    assert resp.status == 200
    assert await resp.read() == photo
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in resp.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "path",
    [
        "files/../../../../etc/passwd",
        "files/..%2F..%2F..%2Fetc%2Fpasswd",
        "files/%2Fetc%2Fpasswd",
        "files/" + "ab" * 32 + "/../../outside/secret.txt",
        "files/" + "ab" * 32,
        "files/" + "AB" * 32,
        "files/.tmp",
        "files/",
    ],
)
async def test_file_serving_is_by_id_only(served: Served, path: str) -> None:
    url = yarl_url(served.base + path)
    resp = await served.http.get(url)
    assert resp.status == 404
    assert b"TOP-SECRET" not in await resp.read()


def yarl_url(text: str):
    import yarl

    return yarl.URL(text, encoded=True)  # keep ../ and %2F exactly as written


# --------------------------------------------------------------------------------------------------------
# The web page
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, content_type",
    [
        ("chat", "text/html; charset=utf-8"),
        ("chat/", "text/html; charset=utf-8"),
        ("chat.js", "text/javascript; charset=utf-8"),
        ("chat.css", "text/css; charset=utf-8"),
        ("widget.js", "text/javascript; charset=utf-8"),
    ],
)
async def test_web_files_are_served_with_their_content_types(served: Served, path: str, content_type: str):
    resp = await served.http.get(served.base + path)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == content_type
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    body = await resp.text()
    if path.startswith("chat") and content_type.startswith("text/html"):
        assert 'src="/webhooks/multimodal/chat.js"' in body
        assert 'href="/webhooks/multimodal/chat.css"' in body
        assert "__BASE__" not in body
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp
        for external in ("http://", "https://", "//fonts."):
            assert external not in body.replace("http://www.w3.org", "")


async def test_only_the_known_web_files_are_served(served: Served) -> None:
    for path in ("index.html", "web/chat.js", "rest.py", "../rest.py", "chat.js/../../rest.py"):
        resp = await served.http.get(yarl_url(served.base + path))
        assert resp.status in (404, 405), path


async def test_web_chat_can_be_turned_off(store: AttachmentStore) -> None:
    async with serve(make_channel(store, web_chat=False)) as served:
        assert (await served.http.get(served.base + "chat")).status == 404
        assert (await served.post_json({"sender": "a", "message": "hi"})).status == 200


# --------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------
def test_base64_syntax_check() -> None:
    assert looks_like_base64(b64(b"hello world"))
    assert looks_like_base64("data:image/png;base64," + b64(b"x"))
    assert looks_like_base64(base64.urlsafe_b64encode(b"\xfb\xff\xfe").decode())
    assert not looks_like_base64("abc$")
    assert not looks_like_base64("a")
    assert not looks_like_base64("data:image/png,rawtext")


def test_multipart_parser() -> None:
    body = (
        b"preamble\r\n--b1\r\nContent-Disposition: form-data; name=\"sender\"\r\n\r\nann\r\n"
        b"--b1\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"\r\n"
        b"Content-Type: image/jpeg; q=1\r\n\r\n\x00\x01\r\n--b\r\n--b1--\r\nepilogue"
    )
    sender, photo = parse_multipart(body, "multipart/form-data; boundary=b1", max_parts=5)
    assert (sender.name, sender.filename, sender.text()) == ("sender", None, "ann")
    assert (photo.name, photo.filename, photo.content_type) == ("files", "a.jpg", "image/jpeg")
    assert bytes(photo.data) == b"\x00\x01\r\n--b"
    with pytest.raises(MultipartError):
        parse_multipart(body, "multipart/form-data; boundary=b1", max_parts=1)
    with pytest.raises(MultipartError):
        parse_multipart(body, "multipart/form-data", max_parts=5)
    header_bomb = b"--b1\r\nX: " + b"a" * 20_000 + b"\r\n\r\nv\r\n--b1--"
    with pytest.raises(MultipartError):
        parse_multipart(header_bomb, "multipart/form-data; boundary=b1", max_parts=5)
