"""Tests for `channels.messenger.MultimodalMessengerInput`: Messenger's CDN and Send API served from memory.

The channel runs in a real Sanic app on 127.0.0.1, mounted like `rasa run` mounts it; deliveries are signed
here with the app secret. Attachment URLs are fetched by `AttachmentStore.fetch_url` with all its checks on:
the store's requests session gets an in-memory transport for the CDN, and DNS answers for the CDN hosts are
faked (public addresses, or private ones where a test needs that) while any real connection outside
loopback fails the test. Replies go to an in-memory Send API that records them. Every event is written here
(the shapes of Messenger's webhook events); the last tests replay the team's shared payload files when
../shared is present. Each test checks that nothing was written outside its upload store.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import requests
from rasa.core.channels.channel import UserMessage
from rasa.shared.exceptions import RasaException

from assistant.paths import PROJECT_ROOT
from channels import UNSUPPORTED_CONTENT_REPLY
from channels import messenger as ms
from channels.messenger import MultimodalMessengerInput, signature_is_valid
from channels.worker_pool import installed_pools
from media import AttachmentError, AttachmentLimits, AttachmentStore, log_rejection
from tests.unit.http_responses import Route, answer
from tests.unit.channels import (
    Recorder,
    check_every_shared_payload_is_expected,
    check_payloads_match_the_shared_ones,
    files_under,
    guard_network,
    isolate_files,
    make_audio,
    make_jpeg,
    requires_ffmpeg,
    serve_channel,
    shared_payload,
)

PAGE_TOKEN = "EAAG-test-page-token-0123456789"
APP_SECRET = "0123456789abcdef0123456789abcdef"
VERIFY = "verify-token-for-tests"
PSID = "PSID_1"
CDN = "cdn.messenger.example"
ALLOWED_HOSTS = ("*.fbcdn.net", "*.fbsbx.com", CDN)
FAKE_DNS = {
    CDN: ["157.240.1.35"],
    "scontent.xx.fbcdn.net": ["157.240.1.35"],
    "cdn.fbsbx.com": ["2a03:2880:f12d:83:face:b00c:0:25de"],
    "inside.fbcdn.net": ["10.0.0.7"],
}
GRAPH_MESSAGES = "https://graph.facebook.com/v2.12/me/messages"

IMAGE_URL = f"https://{CDN}/photo/banana.jpg"
BOX_URL = f"https://{CDN}/photo/box.jpg"
AUDIO_URL = f"https://{CDN}/audio/clip.mp4"


# ------------------------------------------------------------------------------------------------------------
# Webhook deliveries, as Messenger sends them (the same shapes as ../shared/cases/payloads/messenger_*.json)
# ------------------------------------------------------------------------------------------------------------
def event(mid: str, text: Optional[str] = None, attachments: Optional[List[Dict[str, Any]]] = None,
          sender: str = PSID, **message: Any) -> Dict[str, Any]:
    body: Dict[str, Any] = {"mid": mid, **message}
    if text is not None:
        body["text"] = text
    if attachments is not None:
        body["attachments"] = attachments
    return {"sender": {"id": sender}, "recipient": {"id": "PAGE_ID"}, "timestamp": 1764500000000,
            "message": body}


def delivery(*events: Dict[str, Any]) -> Dict[str, Any]:
    return {"object": "page", "entry": [{"id": "PAGE_ID", "time": 1764500000000, "messaging": list(events)}]}


def attachment(kind: str, url: Optional[str] = None, **payload: Any) -> Dict[str, Any]:
    return {"type": kind, "payload": {**({"url": url} if url else {}), **payload}}


PAYLOADS: Dict[str, Dict[str, Any]] = {
    "messenger_image.json": delivery(event("m_img_1", attachments=[attachment("image", IMAGE_URL)])),
    "messenger_audio.json": delivery(event("m_aud_1", attachments=[attachment("audio", AUDIO_URL)])),
    "messenger_text_and_image.json": delivery(
        event("m_mix_1", text="this arrived squashed", attachments=[attachment("image", BOX_URL)])
    ),
}


@dataclass(frozen=True)
class Expected:
    text: str
    attachment: Tuple[str, str]  # (type, mime_type)
    url: str
    needs_ffmpeg: bool = False


EXPECTED: Dict[str, Expected] = {
    "messenger_image.json": Expected("", ("image", "image/jpeg"), IMAGE_URL),
    "messenger_audio.json": Expected("", ("audio", "audio/mp4"), AUDIO_URL, needs_ffmpeg=True),
    "messenger_text_and_image.json": Expected("this arrived squashed", ("image", "image/jpeg"), BOX_URL),
}


# ------------------------------------------------------------------------------------------------------------
# In-memory CDN and Send API (requests transport adapters)
# ------------------------------------------------------------------------------------------------------------


class MemoryTransport(requests.adapters.BaseAdapter):
    """Answers requests from `routes` (URL without query → (status, headers, body) or an exception to raise)
    and records each request as (method, url, json body or None)."""

    def __init__(self, routes: Optional[Dict[str, Route]] = None,
                 default: Optional[Callable[[requests.PreparedRequest], Route]] = None) -> None:
        super().__init__()
        self.routes: Dict[str, Route] = routes or {}
        self.default = default
        self.requests: List[Tuple[str, str, Any]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        body = json.loads(request.body) if request.body else None
        self.requests.append((request.method, request.url, body))
        key = request.url.split("?", 1)[0]
        route = self.routes.get(key) or (self.default(request) if self.default else None)
        if route is None:
            route = (404, {}, b"not found")
        return answer(request, route)

    def close(self) -> None:
        pass

    @property
    def urls(self) -> List[str]:
        return [url for _method, url, _body in self.requests]


class SendApi(MemoryTransport):
    """Messenger's Send API: records what the page sends."""

    def __init__(self) -> None:
        super().__init__(default=self._answer)
        self.failure: Optional[Route] = None

    def _answer(self, request: requests.PreparedRequest) -> Route:
        if self.failure is not None:
            return self.failure
        if request.url.split("?", 1)[0] != GRAPH_MESSAGES:
            return (404, {}, b"{}")
        return (200, {"Content-Type": "application/json"}, b'{"recipient_id": "PSID_1", "message_id": "m1"}')

    @property
    def bodies(self) -> List[Dict[str, Any]]:
        return [body for _method, _url, body in self.requests if body is not None]

    @property
    def texts(self) -> List[str]:
        return [b["message"]["text"] for b in self.bodies if "text" in b.get("message", {})]

    @property
    def actions(self) -> List[str]:
        return [b["sender_action"] for b in self.bodies if "sender_action" in b]


# ------------------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Fake DNS for the CDN hosts, loopback-only connections, private working and temp directories; afterwards
    nothing may have been written outside the upload store."""
    guard_network(monkeypatch, dns=FAKE_DNS)
    check_nothing_written_outside_the_store = isolate_files(tmp_path, monkeypatch)
    for variable in ms.ENV_VARS.values():
        monkeypatch.delenv(variable, raising=False)
    yield
    check_nothing_written_outside_the_store()


@pytest.fixture
def cdn() -> MemoryTransport:
    return MemoryTransport()


@pytest.fixture
def store(tmp_path: Path, cdn: MemoryTransport) -> AttachmentStore:
    session = requests.Session()
    session.trust_env = False
    session.mount("https://", cdn)
    session.mount("http://", cdn)
    limits = AttachmentLimits(url_allowed_hosts=ALLOWED_HOSTS)
    return AttachmentStore(tmp_path / "uploads", limits, session=session)


@pytest.fixture
def send_api() -> SendApi:
    return SendApi()


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Harness:
    channel: MultimodalMessengerInput
    rasa: Recorder
    cdn: MemoryTransport
    send_api: SendApi
    url: str
    session: aiohttp.ClientSession
    store: AttachmentStore

    async def post(self, body: Any, signature: Optional[str] = "sign", raw: Optional[bytes] = None,
                   extra_headers: Optional[Dict[str, str]] = None) -> Tuple[int, str]:
        data = raw if raw is not None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", **(extra_headers or {})}
        if signature == "sign":
            headers[ms.SIGNATURE_HEADER] = sign(data)
        elif signature is not None:
            headers[ms.SIGNATURE_HEADER] = signature
        async with self.session.post(f"{self.url}/webhook", data=data, headers=headers) as response:
            return response.status, await response.text()

    async def get(self, path: str, **params: str) -> Tuple[int, str]:
        async with self.session.get(f"{self.url}{path}", params=params) as response:
            return response.status, await response.text()


@pytest.fixture
async def harness(store: AttachmentStore, cdn: MemoryTransport, send_api: SendApi):
    graph = requests.Session()
    graph.mount("https://", send_api)
    graph.mount("http://", send_api)
    channel = MultimodalMessengerInput(VERIFY, APP_SECRET, PAGE_TOKEN, store=store, graph_session=graph)
    recorder = Recorder()
    app = await serve_channel(channel, recorder)
    session = aiohttp.ClientSession()
    yield Harness(channel, recorder, cdn, send_api, app.url, session, store)
    await session.close()
    await app.stop()


def serve_cdn(cdn: MemoryTransport, with_audio: bool = False) -> Dict[str, bytes]:
    """The files behind the payloads' URLs; returns URL -> bytes."""
    contents = {IMAGE_URL: make_jpeg(60, 40, shade=1), BOX_URL: make_jpeg(50, 50, shade=2)}
    if with_audio:
        contents[AUDIO_URL] = make_audio("mp4")
    for url, data in contents.items():
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
        cdn.routes[url] = (200, headers, data)
    return contents


def only_message(harness: Harness) -> UserMessage:
    assert len(harness.rasa.messages) == 1, [m.text for m in harness.rasa.messages]
    return harness.rasa.messages[0]


async def check_expected(harness: Harness, name: str, body: Dict[str, Any]) -> None:
    expected = EXPECTED[name]
    contents = serve_cdn(harness.cdn, with_audio=expected.needs_ffmpeg)
    status, _ = await harness.post(body)
    assert status == 200
    message = only_message(harness)
    assert (message.text, message.sender_id, message.input_channel) == (
        expected.text, f"messenger:{PSID}", "facebook")
    [stored] = message.metadata["attachments"]
    assert (stored["type"], stored["mime_type"]) == expected.attachment
    assert "url" not in stored and expected.url not in message.text
    assert stored["id"] == hashlib.sha256(contents[expected.url]).hexdigest()
    assert harness.store.read(stored["id"]) == contents[expected.url]
    assert harness.cdn.urls == [expected.url]
    assert harness.send_api.texts == []
    assert harness.send_api.actions == ["mark_seen", "typing_on", "typing_off"]


# ------------------------------------------------------------------------------------------------------------
# Every payload kind of cases/README.md, written here
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PAYLOADS))
async def test_payload_kinds(harness: Harness, name: str):
    if EXPECTED[name].needs_ffmpeg:
        make_audio("mp4")  # skips without ffmpeg
    await check_expected(harness, name, copy.deepcopy(PAYLOADS[name]))


async def test_text_and_image_stay_one_user_message(harness: Harness):
    serve_cdn(harness.cdn)
    await harness.post(PAYLOADS["messenger_text_and_image.json"])
    message = only_message(harness)
    assert message.text == "this arrived squashed"
    assert message.metadata == {"attachments": [harness.store.ref_for(
        message.metadata["attachments"][0]["id"]).to_metadata()]}
    assert message.metadata["attachments"][0]["name"] == "box.jpg"


async def test_several_images_in_one_message(harness: Harness):
    contents = serve_cdn(harness.cdn)
    body = delivery(event("m2", text="both of these", attachments=[
        attachment("image", IMAGE_URL), attachment("image", BOX_URL)]))
    await harness.post(body)
    message = only_message(harness)
    ids = [a["id"] for a in message.metadata["attachments"]]
    assert ids == [hashlib.sha256(contents[u]).hexdigest() for u in (IMAGE_URL, BOX_URL)]


@requires_ffmpeg
async def test_voice_clip_reaches_rasa_as_audio(harness: Harness):
    serve_cdn(harness.cdn, with_audio=True)
    await harness.post(PAYLOADS["messenger_audio.json"])
    [stored] = only_message(harness).metadata["attachments"]
    assert (stored["type"], stored["mime_type"]) == ("audio", "audio/mp4")
    assert harness.store.info(stored["id"])["duration_s"] == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize(
    "unsupported",
    [
        attachment("file", f"https://{CDN}/files/invoice.pdf"),
        attachment("video", f"https://{CDN}/video/clip.mp4"),
        attachment("location", coordinates={"lat": 52.52, "long": 13.40}),
        attachment("fallback", "https://shop.example/some-page", title="a link"),
        attachment("template", generic={"elements": []}),
        attachment("image", "https://scontent.xx.fbcdn.net/v/t39.1997-6/like.png",
                   sticker_id=369239263222822),
        {"type": "ig_reel"},
        "not an object",
    ],
)
async def test_unsupported_attachments_get_the_polite_reply(harness: Harness, unsupported: Any):
    status, _ = await harness.post(delivery(event("m3", attachments=[unsupported])))
    assert status == 200 and harness.rasa.messages == []
    assert harness.send_api.texts == [UNSUPPORTED_CONTENT_REPLY]
    assert "I can read text, photos and voice notes" in UNSUPPORTED_CONTENT_REPLY
    assert harness.cdn.requests == [] and files_under(harness.store.root) == []


async def test_supported_and_unsupported_together(harness: Harness):
    serve_cdn(harness.cdn)
    body = delivery(event("m4", attachments=[attachment("file", f"https://{CDN}/files/a.pdf"),
                                             attachment("image", IMAGE_URL)]))
    await harness.post(body)
    assert len(only_message(harness).metadata["attachments"]) == 1
    assert harness.send_api.texts == [UNSUPPORTED_CONTENT_REPLY]
    assert harness.cdn.urls == [IMAGE_URL]


@pytest.mark.parametrize(
    "url, phrase",
    [
        ("https://evil.example/photo.jpg", "I can't open files from that link"),
        ("http://cdn.messenger.example/photo/banana.jpg", "I can't open files from that link"),
        ("https://127.0.0.1/photo.jpg", "I can't open files from that link"),
        ("https://169.254.169.254/latest/meta-data/", "I can't open files from that link"),
        ("https://inside.fbcdn.net/photo.jpg", "I can't open files from that link"),  # resolves to 10.0.0.7
        ("https://cdn.messenger.example:8443/photo.jpg", "I can't open files from that link"),
        ("file:///etc/passwd", "I can't open files from that link"),
        ("https://unknown.fbcdn.net/photo.jpg", "I couldn't download that photo"),  # does not resolve
    ],
)
async def test_urls_outside_the_rules_are_never_fetched(harness: Harness, url: str, phrase: str, caplog):
    caplog.set_level(logging.INFO)
    serve_cdn(harness.cdn)
    status, _ = await harness.post(delivery(event("m5", text="look", attachments=[attachment("image", url)])))
    assert status == 200 and harness.rasa.messages == []
    assert harness.cdn.requests == []
    assert len(harness.send_api.texts) == 1 and phrase in harness.send_api.texts[0]
    rejections = [r for r in caplog.records if "Attachment rejected" in r.getMessage()]
    assert len(rejections) == 1


async def test_redirect_to_a_private_address_is_refused(harness: Harness):
    harness.cdn.routes[IMAGE_URL] = (302, {"Location": "https://inside.fbcdn.net/x.jpg"}, b"")
    await harness.post(PAYLOADS["messenger_image.json"])
    assert harness.rasa.messages == [] and harness.cdn.urls == [IMAGE_URL]
    assert "I can't open files from that link" in harness.send_api.texts[0]


@pytest.mark.parametrize(
    "route, phrase",
    [
        ((200, {}, b"<html>not an image</html>"), "I can read photos (JPEG, PNG, WebP, GIF)"),
        ((200, {}, b""), "arrived empty"),
        ((200, {}, make_jpeg()[:200]), "looks damaged"),
        ((200, {"Content-Length": str(30 * 1024 * 1024)}, b"x"), "too big for me"),
        ((404, {}, b""), "I couldn't download that photo"),
        (requests.ConnectionError("connection reset"), "I couldn't download that photo"),
    ],
)
async def test_bad_files_get_a_friendly_reply_and_nothing_is_stored(harness, route: Any, phrase: str):
    harness.cdn.routes[IMAGE_URL] = route
    status, _ = await harness.post(PAYLOADS["messenger_image.json"])
    assert status == 200 and harness.rasa.messages == []
    assert len(harness.send_api.texts) == 1 and phrase in harness.send_api.texts[0]
    assert files_under(harness.store.root) == []


async def test_one_bad_image_among_good_ones(harness: Harness):
    serve_cdn(harness.cdn)
    harness.cdn.routes[BOX_URL] = (200, {}, b"broken")
    body = delivery(event("m6", text="two photos", attachments=[
        attachment("image", IMAGE_URL), attachment("image", BOX_URL)]))
    await harness.post(body)
    message = only_message(harness)
    assert message.text == "two photos" and len(message.metadata["attachments"]) == 1
    assert len(harness.send_api.texts) == 1 and "JPEG, PNG" in harness.send_api.texts[0]


async def test_too_many_attachments(harness: Harness):
    serve_cdn(harness.cdn)
    harness.store.limits = AttachmentLimits(url_allowed_hosts=ALLOWED_HOSTS, max_attachments=2)
    body = delivery(event("m7", attachments=[attachment("image", IMAGE_URL)] * 3))
    await harness.post(body)
    assert len(only_message(harness).metadata["attachments"]) == 2
    assert "up to 2 attachments" in harness.send_api.texts[0]


async def test_refusals_are_logged_once_each_under_the_channels_logger_and_answered_once(harness, caplog):
    caplog.set_level(logging.INFO)
    serve_cdn(harness.cdn)
    harness.store.limits = AttachmentLimits(url_allowed_hosts=ALLOWED_HOSTS, max_attachments=3)
    body = delivery(event("m8", attachments=[attachment("image"), attachment("audio"), attachment("image"),
                                             attachment("image", IMAGE_URL)]))
    await harness.post(body)
    assert harness.rasa.messages == []  # the fourth attachment was dropped: nothing was stored
    rejections = [(r.name, r.getMessage()) for r in caplog.records if "Attachment rejected" in r.getMessage()]
    no_url = "Attachment rejected (invalid_reference {0}: {0} attachment without a URL)"
    assert rejections == [
        ("channels.messenger", "Attachment rejected (too_many: 4 attachments)"),
        ("channels.messenger", no_url.format("image")),
        ("channels.messenger", no_url.format("audio")),
        ("channels.messenger", no_url.format("image")),
    ]
    invalid = "Something went wrong with that attachment on the way to me — could you send it again?"
    assert harness.send_api.texts == [
        "I can look at up to 3 attachments in one message — could you send the rest in another message?",
        invalid,
    ]


async def test_a_file_the_store_cannot_type_is_worded_for_the_kind_expected(harness, monkeypatch, caplog):
    caplog.set_level(logging.INFO)

    def untyped_failure(url: str) -> None:
        raise log_rejection(AttachmentError("not_found", "gone"))

    monkeypatch.setattr(harness.store, "fetch_url", untyped_failure)
    await harness.post(PAYLOADS["messenger_audio.json"])
    assert harness.send_api.texts == ["I couldn't find that voice note any more — could you send it again?"]
    assert sum("Attachment rejected" in r.getMessage() for r in caplog.records) == 1  # not logged again


async def test_text_quick_reply_and_postback(harness: Harness):
    body = delivery(
        event("m8", text="where is my order 45172"),
        event("m9", text="Track it", quick_reply={"payload": "/track_order"}),
        {"sender": {"id": PSID}, "recipient": {"id": "PAGE_ID"}, "timestamp": 1,
         "postback": {"title": "Get started", "payload": "/greet"}},
    )
    await harness.post(body)
    assert [(m.text, m.metadata) for m in harness.rasa.messages] == [
        ("where is my order 45172", None), ("/track_order", None), ("/greet", None)]


async def test_every_event_of_a_delivery_is_handled_and_the_rest_ignored(harness: Harness):
    serve_cdn(harness.cdn)
    body = delivery(
        event("m10", text="echo of the page", is_echo=True),
        {"sender": {"id": PSID}, "recipient": {"id": "PAGE_ID"},
         "delivery": {"mids": ["m1"], "watermark": 1}},
        {"sender": {"id": PSID}, "recipient": {"id": "PAGE_ID"}, "read": {"watermark": 1}},
        {"recipient": {"id": "PAGE_ID"}, "message": {"mid": "x", "text": "no sender"}},
        {"sender": {"id": 12345}, "message": {"mid": "y", "text": "sender id is not a string"}},
        "garbage",
        event("m11", text="first customer"),
        event("m12", attachments=[attachment("image", IMAGE_URL)], sender="PSID_2"),
    )
    body["entry"].append({"id": "PAGE_ID", "time": 1, "messaging": [event("m13", text="second entry")]})
    body["entry"].append({"id": "PAGE_ID", "time": 1, "messaging": "not a list"})
    status, _ = await harness.post(body)
    assert status == 200
    assert [(m.text, m.sender_id) for m in harness.rasa.messages] == [
        ("first customer", f"messenger:{PSID}"), ("", "messenger:PSID_2"),
        ("second entry", f"messenger:{PSID}")]


@pytest.mark.parametrize(
    "body",
    [{"object": "instagram", "entry": []}, {"object": "page"}, {"object": "page", "entry": "x"},
     {"object": "page", "entry": [{"messaging": [{"sender": {"id": PSID}, "message": "text"}]}]}],
)
async def test_odd_deliveries_are_acknowledged_without_a_crash(harness: Harness, body: Dict[str, Any]):
    status, _ = await harness.post(body)
    assert status == 200 and harness.rasa.messages == []


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe"])
async def test_a_signed_body_that_is_not_a_json_object_is_a_bad_request(harness: Harness, raw: bytes):
    status, _ = await harness.post(None, raw=raw)
    assert status == 400 and harness.rasa.messages == []


# ------------------------------------------------------------------------------------------------------------
# Signatures and the verification handshake
# ------------------------------------------------------------------------------------------------------------
def _body_bytes() -> bytes:
    return json.dumps(delivery(event("m20", text="hello"))).encode()


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha256=",
        "sha256=" + "0" * 64,
        sign(_body_bytes(), secret="another-app-secret"),
        sign(b"a different body"),
        sign(_body_bytes()).replace("sha256=", "sha1="),
        sign(_body_bytes())[:-2],
        "sha256=é" + "0" * 63,
        sign(_body_bytes()).replace("sha256=", ""),
    ],
)
async def test_missing_or_bad_signature_is_forbidden(harness: Harness, signature: Optional[str]):
    status, _ = await harness.post(None, raw=_body_bytes(), signature=signature)
    assert status == 403 and harness.rasa.messages == [] and harness.send_api.requests == []


async def test_legacy_sha1_signature_alone_is_not_enough(harness: Harness):
    raw = _body_bytes()
    sha1 = "sha1=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha1).hexdigest()
    status, _ = await harness.post(None, raw=raw, signature=None, extra_headers={"X-Hub-Signature": sha1})
    assert status == 403 and harness.rasa.messages == []


async def test_good_signature_is_accepted(harness: Harness):
    status, text = await harness.post(None, raw=_body_bytes())
    assert (status, text) == (200, "EVENT_RECEIVED") and [m.text for m in harness.rasa.messages] == ["hello"]


def test_signature_check_directly():
    body = b'{"object": "page"}'
    assert signature_is_valid(APP_SECRET, body, sign(body))
    assert signature_is_valid(APP_SECRET, body, sign(body).upper().replace("SHA256=", "sha256="))
    assert not signature_is_valid("", body, sign(body, secret=""))
    assert not signature_is_valid(APP_SECRET, body, None)
    assert MultimodalMessengerInput.validate_hub_signature(APP_SECRET, body, sign(body))


async def test_verification_handshake(harness: Harness):
    status, text = await harness.get("/webhook", **{"hub.mode": "subscribe", "hub.verify_token": VERIFY,
                                                    "hub.challenge": "1158201444"})
    assert (status, text) == (200, "1158201444")


@pytest.mark.parametrize(
    "params, expected_status",
    [
        ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"}, 403),
        ({"hub.mode": "subscribe", "hub.challenge": "1"}, 403),
        ({"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"}, 403),
        ({"hub.mode": "subscribe", "hub.verify_token": VERIFY}, 400),
        ({"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "<script>x</script>"}, 400),
    ],
)
async def test_verification_handshake_refusals(harness, params: Dict[str, str], expected_status: int):
    status, text = await harness.get("/webhook", **params)
    assert status == expected_status and "script" not in text


async def test_health_route(harness: Harness):
    status, text = await harness.get("/")
    assert status == 200 and json.loads(text) == {"status": "ok"}


# ------------------------------------------------------------------------------------------------------------
# Replies and failures on the way
# ------------------------------------------------------------------------------------------------------------
async def test_bot_replies_go_to_the_send_api_with_appsecret_proof(harness: Harness):
    async def reply(message: UserMessage) -> None:
        out = message.output_channel
        await out.send_response(message.sender_id, {"text": "Which order?", "buttons": [
            {"title": "45172", "payload": '/inform{"order_number": "45172"}'}]})
        await out.send_response(message.sender_id, {"image": "https://shop.example/img/banana.jpg"})

    harness.rasa.action = reply
    await harness.post(delivery(event("m30", text="where is my order")))
    messages = [b["message"] for b in harness.send_api.bodies if "message" in b]
    assert messages[0]["attachment"]["payload"]["template_type"] == "button"
    assert messages[0]["attachment"]["payload"]["buttons"][0]["payload"] == '/inform{"order_number": "45172"}'
    assert messages[1]["attachment"] == {"type": "image",
                                         "payload": {"url": "https://shop.example/img/banana.jpg"}}
    # Rasa answers the conversation "messenger:<PSID>"; the Send API gets the PSID itself.
    assert {b["recipient"]["id"] for b in harness.send_api.bodies} == {PSID}
    proof = hmac.new(APP_SECRET.encode(), PAGE_TOKEN.encode(), hashlib.sha256).hexdigest()
    for _method, url, _body in harness.send_api.requests:
        query = parse_qs(urlsplit(url).query)
        assert query["access_token"] == [PAGE_TOKEN] and query["appsecret_proof"] == [proof]


@pytest.mark.parametrize("recipient", ["web:" + "a" * 32, f"telegram:{PSID}", "api:42"])
async def test_a_reply_to_another_channels_conversation_is_never_sent(harness: Harness, recipient: str):
    out = harness.channel.get_output_channel()
    with pytest.raises(ValueError):
        await out.send_text_message(recipient, "not for you")
    assert harness.send_api.requests == []


async def test_rasa_failing_on_a_message_does_not_stop_the_channel(harness: Harness, caplog):
    async def crash(message: UserMessage) -> None:
        raise RuntimeError("policy exploded")

    harness.rasa.action = crash
    status, _ = await harness.post(delivery(event("m31", text="first"), event("m32", text="second")))
    assert status == 200 and [m.text for m in harness.rasa.messages] == ["first", "second"]
    assert sum("Rasa failed on a Messenger message" in r.getMessage() for r in caplog.records) == 2
    assert harness.send_api.actions.count("typing_off") == 2


@pytest.mark.parametrize(
    "failure", [requests.ConnectionError("down"), requests.Timeout("slow"), (500, {}, b"<html>oops</html>")]
)
async def test_send_api_failures_do_not_crash_the_webhook(harness: Harness, failure: Any):
    harness.send_api.failure = failure
    status, _ = await harness.post(delivery(event("m33", attachments=[attachment("file", "https://x/y.pdf")]),
                                            event("m34", text="still there?")))
    assert status == 200 and [m.text for m in harness.rasa.messages] == ["still there?"]


def test_graph_calls_get_a_default_timeout(monkeypatch: pytest.MonkeyPatch):
    seen: List[Any] = []

    def fake_request(self, method, url, *args, **kwargs):
        seen.append(kwargs.get("timeout"))
        raise requests.ConnectionError("offline")

    monkeypatch.setattr(requests.Session, "request", fake_request)
    channel = MultimodalMessengerInput(VERIFY, APP_SECRET, PAGE_TOKEN)
    with pytest.raises(requests.ConnectionError):
        channel.client().send({"text": "hi"}, PSID)
    assert seen == [ms.GRAPH_TIMEOUT_S]


# ------------------------------------------------------------------------------------------------------------
# Settings
# ------------------------------------------------------------------------------------------------------------
def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MESSENGER_VERIFY_TOKEN", VERIFY)
    monkeypatch.setenv("MESSENGER_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("MESSENGER_PAGE_ACCESS_TOKEN", PAGE_TOKEN)
    channel = MultimodalMessengerInput.from_credentials(None)
    assert (channel.fb_verify, channel.fb_secret, channel.fb_access_token) == (VERIFY, APP_SECRET, PAGE_TOKEN)
    assert channel.name() == "facebook" and channel.url_prefix() == "facebook"
    assert channel.get_output_channel().name() == "facebook"


def test_credentials_win_over_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MESSENGER_VERIFY_TOKEN", "from-env")
    monkeypatch.setenv("MESSENGER_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("MESSENGER_PAGE_ACCESS_TOKEN", PAGE_TOKEN)
    channel = MultimodalMessengerInput.from_credentials({"verify": "from-yaml", "secret": "  "})
    assert (channel.fb_verify, channel.fb_secret) == ("from-yaml", APP_SECRET)


def test_rasa_builds_the_channel_from_an_empty_credentials_entry(monkeypatch: pytest.MonkeyPatch):
    from rasa.core.run import _create_single_channel
    from rasa.shared.utils.io import read_yaml

    monkeypatch.setenv("MESSENGER_VERIFY_TOKEN", VERIFY)
    monkeypatch.setenv("MESSENGER_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("MESSENGER_PAGE_ACCESS_TOKEN", PAGE_TOKEN)
    [(name, entry)] = read_yaml("channels.messenger.MultimodalMessengerInput:\n").items()
    channel = _create_single_channel(name, entry)
    assert isinstance(channel, MultimodalMessengerInput) and channel.fb_secret == APP_SECRET


def test_the_repository_credentials_file_names_this_channel():
    text = (PROJECT_ROOT / "credentials.yml").read_text(encoding="utf-8")
    assert "channels.messenger.MultimodalMessengerInput:" in text


def test_constructing_the_channel_installs_the_worker_pool(no_worker_pool):
    MultimodalMessengerInput(VERIFY, APP_SECRET, PAGE_TOKEN)
    assert installed_pools() is not None


def test_a_malformed_worker_pool_setting_stops_the_channel(no_worker_pool, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("NLU_DEADLINE_S", "soon")
    with pytest.raises(RasaException, match="MultimodalMessengerInput: .*NLU_DEADLINE_S='soon'"):
        MultimodalMessengerInput(VERIFY, APP_SECRET, PAGE_TOKEN)
    assert installed_pools() is None


@pytest.mark.parametrize("missing", sorted(ms.ENV_VARS.values()))
def test_each_setting_is_required(monkeypatch: pytest.MonkeyPatch, missing: str):
    for variable in ms.ENV_VARS.values():
        if variable != missing:
            monkeypatch.setenv(variable, "value")
    with pytest.raises(RasaException, match=missing):
        MultimodalMessengerInput.from_credentials({})


# ------------------------------------------------------------------------------------------------------------
# The team's shared payload files (skipped when ../shared is absent)
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_shared_payload_files(shared_dir: Path, harness: Harness, name: str):
    body = shared_payload(shared_dir, name)
    if EXPECTED[name].needs_ffmpeg:
        make_audio("mp4")
    await check_expected(harness, name, body)


def test_every_shared_messenger_payload_has_an_expectation(shared_dir: Path):
    check_every_shared_payload_is_expected(shared_dir, "messenger_", EXPECTED)


def test_payloads_written_here_match_the_shared_ones(shared_dir: Path):
    check_payloads_match_the_shared_ones(shared_dir, PAYLOADS)


async def test_an_event_delivered_twice_is_handled_once(harness: Harness):
    await harness.post(delivery(event("m-dup", text="where is my order")))
    await harness.post(delivery(event("m-dup", text="where is my order")))  # Meta's retry of a slow webhook
    await harness.post(delivery(event("m-new", text="where is my order")))
    assert [m.message_id for m in harness.rasa.messages] == ["messenger-m-dup", "messenger-m-new"]
