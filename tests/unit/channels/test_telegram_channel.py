"""Tests for `channels.telegram.MultimodalTelegramInput` against a local stub of the Telegram Bot API.

The stub is an aiohttp server on 127.0.0.1 that answers `getMe`, `getFile`, `setWebhook` and
`answerCallbackQuery`, serves file bytes under `/file/bot<token>/<path>` and records every `sendMessage`
and `sendPhoto`. The channel runs in a real Sanic app on 127.0.0.1, mounted like `rasa run` mounts it, and
`on_new_message` is a recorder. Every update is written here (the shapes of the Bot API's `Update`); the
last tests replay the team's shared payload files when ../shared is present. Connections and name look-ups
outside loopback fail the test, and each test checks that nothing was written outside its upload store.
"""
from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import aiohttp
import pytest
from aiohttp import web
from rasa.core.channels.channel import UserMessage
from rasa.shared.exceptions import RasaException

from channels import telegram as tg
from channels.telegram import (
    START_COMMAND_TEXT,
    UNSUPPORTED_CONTENT_REPLY,
    MultimodalTelegramInput,
    command_text,
    plan_message,
    select_photo,
)
from media import AttachmentError, AttachmentLimits, AttachmentStore
from tests.unit.channels import (
    files_under,
    guard_network,
    isolate_files,
    make_audio,
    make_jpeg,
    requires_ffmpeg,
    serve_channel,
)

TOKEN = "123456789:AAE-test_token_not_real_0123456789abcdef"
TOKEN_SECRET_PART = TOKEN.split(":", 1)[1]
SECRET = "webhook-secret_0123456789"
BOT_USERNAME = "grocery_test_bot"
CHAT_ID = 700001


# ------------------------------------------------------------------------------------------------------------
# Updates, as the Bot API sends them (the same shapes as ../shared/cases/payloads/telegram_*.json)
# ------------------------------------------------------------------------------------------------------------
def _message(message_id: int, **content: Any) -> Dict[str, Any]:
    return {
        "message_id": message_id,
        "from": {"id": CHAT_ID, "is_bot": False, "first_name": "Customer", "language_code": "en"},
        "chat": {"id": CHAT_ID, "type": "private", "first_name": "Customer"},
        "date": 1764500000,
        **content,
    }


def update(update_id: int, **content: Any) -> Dict[str, Any]:
    return {"update_id": update_id, "message": _message(update_id % 1000, **content)}


PAYLOADS: Dict[str, Dict[str, Any]] = {
    "telegram_photo_with_caption.json": update(
        90001,
        photo=[
            {"file_id": "PHOTO_SMALL_ID", "file_unique_id": "u1s", "file_size": 1480, "width": 90,
             "height": 90},
            {"file_id": "PHOTO_MEDIUM_ID", "file_unique_id": "u1m", "file_size": 20240, "width": 320,
             "height": 320},
            {"file_id": "PHOTO_LARGE_ID", "file_unique_id": "u1l", "file_size": 28072, "width": 348,
             "height": 348},
        ],
        caption="is this in stock?",
    ),
    "telegram_photo_no_caption.json": update(
        90002,
        photo=[{"file_id": "PHOTO_LARGE_ID", "file_unique_id": "u2l", "file_size": 28072, "width": 348,
                "height": 348}],
    ),
    "telegram_voice.json": update(
        90003,
        voice={"file_id": "VOICE_ID", "file_unique_id": "v3", "duration": 4, "mime_type": "audio/ogg",
               "file_size": 16210},
    ),
    "telegram_audio_file.json": update(
        90004,
        audio={"file_id": "AUDIO_ID", "file_unique_id": "a4", "duration": 4, "mime_type": "audio/mpeg",
               "file_size": 42884, "file_name": "question.mp3"},
    ),
    "telegram_document_pdf.json": update(
        90005,
        document={"file_id": "DOC_ID", "file_unique_id": "d5", "file_name": "invoice.pdf",
                  "mime_type": "application/pdf", "file_size": 53122},
    ),
    "telegram_photo_as_document.json": update(
        90006,
        document={"file_id": "DOCIMG_ID", "file_unique_id": "d6", "file_name": "IMG_2041.JPG",
                  "mime_type": "image/jpeg", "file_size": 28072},
    ),
    "telegram_sticker.json": update(
        90007,
        sticker={"file_id": "STICKER_ID", "file_unique_id": "s7", "type": "regular", "width": 512,
                 "height": 512, "is_animated": False, "is_video": False, "emoji": "😡"},
    ),
    "telegram_voice_too_large.json": update(
        90008,
        voice={"file_id": "BIGVOICE_ID", "file_unique_id": "v8", "duration": 3600, "mime_type": "audio/ogg",
               "file_size": 58000000},
    ),
    "telegram_edited_text.json": {
        "update_id": 90009,
        "edited_message": {**_message(9, text="where is my order 45172"), "edit_date": 1764500060},
    },
}


@dataclass(frozen=True)
class Expected:
    """What one payload must lead to."""

    text: Optional[str] = None  # message text reaching Rasa; None: Rasa is not called
    attachment: Optional[Tuple[str, str]] = None  # (type, mime_type) of the one attachment
    file_id: Optional[str] = None  # the file fetched with getFile
    reply: Optional[str] = None  # a phrase of the reply sent instead of calling Rasa
    needs_ffmpeg: bool = False


EXPECTED: Dict[str, Expected] = {
    "telegram_photo_with_caption.json": Expected(
        "is this in stock?", ("image", "image/jpeg"), "PHOTO_LARGE_ID"
    ),
    "telegram_photo_no_caption.json": Expected("", ("image", "image/jpeg"), "PHOTO_LARGE_ID"),
    "telegram_voice.json": Expected("", ("audio", "audio/ogg"), "VOICE_ID", needs_ffmpeg=True),
    "telegram_audio_file.json": Expected("", ("audio", "audio/mpeg"), "AUDIO_ID", needs_ffmpeg=True),
    "telegram_photo_as_document.json": Expected("", ("image", "image/jpeg"), "DOCIMG_ID"),
    "telegram_document_pdf.json": Expected(reply="I can read text, photos and voice notes"),
    "telegram_sticker.json": Expected(reply="I can read text, photos and voice notes"),
    "telegram_voice_too_large.json": Expected(reply="That voice note is too big for me"),
    "telegram_edited_text.json": Expected("where is my order 45172"),
}


# ------------------------------------------------------------------------------------------------------------
# The Bot API stub
# ------------------------------------------------------------------------------------------------------------
@dataclass
class StubFile:
    path: str  # file_path returned by getFile
    data: bytes = b""
    reported_size: Optional[int] = None  # file_size in getFile's answer (default: len(data))
    status: int = 200  # HTTP status of the download
    chunked: bool = False  # send without Content-Length
    stall: bool = False  # send one chunk, then hang until the stub stops


@dataclass
class BotApiStub:
    """A local Telegram Bot API: records calls, answers from `files`."""

    token: str = TOKEN
    username: str = BOT_USERNAME
    files: Dict[str, StubFile] = field(default_factory=dict)
    calls: List[Tuple[str, Dict[str, str]]] = field(default_factory=list)
    downloads: List[str] = field(default_factory=list)
    url: str = ""
    _runner: Optional[web.AppRunner] = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def methods(self, name: str) -> List[Dict[str, str]]:
        return [params for method, params in self.calls if method == name]

    @property
    def sent_texts(self) -> List[str]:
        return [params["text"] for params in self.methods("sendMessage")]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, access_log=None)  # access logs would print the token
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        method = request.match_info["method"]
        params = {key: str(value) for key, value in (await request.post()).items()}
        self.calls.append((method, params))
        if method == "getMe":
            return self._ok({"id": 123456789, "is_bot": True, "first_name": "Shop",
                             "username": self.username})
        if method == "getFile":
            stub = self.files.get(params.get("file_id", ""))
            if stub is None:
                return self._error(400, "Bad Request: invalid file_id")
            size = stub.reported_size if stub.reported_size is not None else len(stub.data)
            return self._ok({"file_id": params["file_id"], "file_unique_id": "x", "file_size": size,
                             "file_path": stub.path})
        if method in ("sendMessage", "sendPhoto"):
            message = {"message_id": len(self.calls), "date": 1764500000,
                       "chat": {"id": int(params["chat_id"]), "type": "private"}}
            return self._ok({**message, "text": params.get("text", "")})
        if method in ("setWebhook", "answerCallbackQuery"):
            return self._ok(True)
        return self._error(404, "Not Found")

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=404)
        path = request.match_info["path"]
        self.downloads.append(path)
        stub = next((f for f in self.files.values() if f.path == path), None)
        if stub is None:
            return web.Response(status=404)
        if stub.status != 200:
            return web.Response(status=stub.status)
        if not (stub.chunked or stub.stall):
            return web.Response(body=stub.data, content_type="application/octet-stream")
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        half = max(1, len(stub.data) // 2)
        await response.write(stub.data[:half])
        if stub.stall:
            await self._released.wait()
            return response
        await response.write(stub.data[half:])
        await response.write_eof()
        return response

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(status: int, description: str) -> web.Response:
        body = {"ok": False, "error_code": status, "description": description}
        return web.json_response(body, status=status)


# ------------------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Loopback-only network, a private working directory and temp directory; afterwards nothing may have
    been written outside the upload store."""
    guard_network(monkeypatch)
    check_nothing_written_outside_the_store = isolate_files(tmp_path, monkeypatch)
    for variable in tg.ENV_VARS.values():
        monkeypatch.delenv(variable, raising=False)
    yield
    check_nothing_written_outside_the_store()


@pytest.fixture
def store(tmp_path: Path) -> AttachmentStore:
    return AttachmentStore(tmp_path / "uploads")


@pytest.fixture
async def bot_api():
    stub = BotApiStub()
    await stub.start()
    yield stub
    await stub.stop()


class Recorder:
    """Rasa's `on_new_message`: records messages, optionally runs an action (a bot reply, a crash)."""

    def __init__(self) -> None:
        self.messages: List[UserMessage] = []
        self.action: Optional[Callable[[UserMessage], Any]] = None

    async def __call__(self, message: UserMessage) -> None:
        self.messages.append(message)
        if self.action is not None:
            await self.action(message)


@dataclass
class Harness:
    stub: BotApiStub
    channel: MultimodalTelegramInput
    rasa: Recorder
    url: str
    session: aiohttp.ClientSession

    async def post(
        self, body: Any, secret: Optional[str] = SECRET, raw: Optional[bytes] = None
    ) -> Tuple[int, str]:
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[tg.SECRET_TOKEN_HEADER] = secret
        data = raw if raw is not None else json.dumps(body).encode("utf-8")
        async with self.session.post(f"{self.url}/webhook", data=data, headers=headers) as response:
            return response.status, await response.text()


@pytest.fixture
async def make_harness(bot_api: BotApiStub, store: AttachmentStore):
    """Start the channel (keyword arguments go to MultimodalTelegramInput) in a Sanic app."""
    started: List[Tuple[Any, aiohttp.ClientSession]] = []

    async def make(**kwargs: Any) -> Harness:
        settings = {"secret_token": SECRET, "api_url": bot_api.url, "store": store, **kwargs}
        verify = settings.pop("verify", None)
        webhook_url = settings.pop("webhook_url", None)
        channel = MultimodalTelegramInput(TOKEN, verify, webhook_url, **settings)
        recorder = Recorder()
        app = await serve_channel(channel, recorder)
        session = aiohttp.ClientSession()
        started.append((app, session))
        return Harness(bot_api, channel, recorder, app.url, session)

    yield make
    for app, session in started:
        await session.close()
        await app.stop()


@pytest.fixture
async def harness(make_harness) -> Harness:
    return await make_harness()


def serve_files(stub: BotApiStub) -> Dict[str, bytes]:
    """The files behind the payloads' file ids; returns file id -> bytes."""
    contents = {
        "PHOTO_LARGE_ID": ("photos/file_1.jpg", make_jpeg(348 // 4, 348 // 4, shade=1)),
        "PHOTO_MEDIUM_ID": ("photos/file_2.jpg", make_jpeg(80, 80, shade=2)),
        "PHOTO_SMALL_ID": ("photos/file_3.jpg", make_jpeg(22, 22, shade=3)),
        "DOCIMG_ID": ("documents/file_4.JPG", make_jpeg(70, 50, shade=4)),
    }
    for file_id, (path, data) in contents.items():
        stub.files[file_id] = StubFile(path, data)
    return {file_id: data for file_id, (_path, data) in contents.items()}


def serve_audio(stub: BotApiStub) -> Dict[str, bytes]:
    contents = {
        "VOICE_ID": ("voice/file_5.oga", make_audio("ogg")),
        "AUDIO_ID": ("music/file_6.mp3", make_audio("mp3")),
    }
    for file_id, (path, data) in contents.items():
        stub.files[file_id] = StubFile(path, data)
    return {file_id: data for file_id, (_path, data) in contents.items()}


def only_message(harness: Harness) -> UserMessage:
    assert len(harness.rasa.messages) == 1, [m.text for m in harness.rasa.messages]
    return harness.rasa.messages[0]


async def check_expected(harness: Harness, name: str, body: Dict[str, Any], store: AttachmentStore) -> None:
    """Post one payload and check it against EXPECTED[name]."""
    expected = EXPECTED[name]
    contents = serve_files(harness.stub)
    if expected.needs_ffmpeg:
        contents.update(serve_audio(harness.stub))
    status, _ = await harness.post(body)
    assert status == 200
    if expected.text is None:
        assert harness.rasa.messages == []
        assert harness.stub.methods("getFile") == [] and harness.stub.downloads == []
        assert files_under(store.root) == []
        assert len(harness.stub.sent_texts) == 1 and expected.reply in harness.stub.sent_texts[0]
        return
    message = only_message(harness)
    assert (message.text, message.sender_id) == (expected.text, str(CHAT_ID))
    assert message.input_channel == "telegram"
    assert harness.stub.sent_texts == []
    if expected.attachment is None:
        assert message.metadata is None
        assert harness.stub.methods("getFile") == []
        return
    [attachment] = message.metadata["attachments"]
    assert (attachment["type"], attachment["mime_type"]) == expected.attachment
    assert "url" not in attachment and TOKEN_SECRET_PART not in json.dumps(message.metadata)
    assert harness.stub.methods("getFile") == [{"file_id": expected.file_id}]
    data = contents[expected.file_id]
    assert attachment["id"] == hashlib.sha256(data).hexdigest() and attachment["size"] == len(data)
    assert store.read(attachment["id"]) == data
    assert len(harness.stub.downloads) == 1


# ------------------------------------------------------------------------------------------------------------
# Every payload kind of cases/README.md, written here
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PAYLOADS))
async def test_payload_kinds(make_harness, store: AttachmentStore, name: str):
    if EXPECTED[name].needs_ffmpeg:
        make_audio("ogg")  # skips without ffmpeg
    harness = await make_harness()
    await check_expected(harness, name, copy.deepcopy(PAYLOADS[name]), store)


async def test_photo_with_caption_is_one_message_with_the_largest_size(harness: Harness, store):
    contents = serve_files(harness.stub)
    await harness.post(PAYLOADS["telegram_photo_with_caption.json"])
    message = only_message(harness)
    assert message.text == "is this in stock?"
    stored = store.ref_for(message.metadata["attachments"][0]["id"])
    assert message.metadata == {"attachments": [stored.to_metadata()]}
    assert [f["file_id"] for f in harness.stub.methods("getFile")] == ["PHOTO_LARGE_ID"]
    assert harness.stub.downloads == ["photos/file_1.jpg"]  # from the configured Bot API server
    assert store.read(message.metadata["attachments"][0]["id"]) == contents["PHOTO_LARGE_ID"]
    assert message.metadata["attachments"][0]["name"] == "file_1.jpg"


async def test_largest_photo_size_that_fits_the_limit_is_chosen(make_harness, tmp_path: Path):
    store = AttachmentStore(tmp_path / "uploads", AttachmentLimits(image_max_bytes=25_000))
    harness = await make_harness(store=store)
    serve_files(harness.stub)
    await harness.post(PAYLOADS["telegram_photo_with_caption.json"])
    assert [f["file_id"] for f in harness.stub.methods("getFile")] == ["PHOTO_MEDIUM_ID"]
    assert only_message(harness).metadata["attachments"][0]["type"] == "image"


async def test_photo_without_a_size_that_fits_is_refused_before_any_request(make_harness, tmp_path: Path):
    store = AttachmentStore(tmp_path / "uploads", AttachmentLimits(image_max_bytes=1_000))
    harness = await make_harness(store=store)
    serve_files(harness.stub)
    await harness.post(PAYLOADS["telegram_photo_with_caption.json"])
    assert harness.rasa.messages == [] and harness.stub.methods("getFile") == []
    assert harness.stub.downloads == [] and "That photo is too big for me" in harness.stub.sent_texts[0]


@requires_ffmpeg
async def test_voice_note_reaches_rasa_as_audio(harness: Harness, store: AttachmentStore):
    contents = serve_audio(harness.stub)
    await harness.post(PAYLOADS["telegram_voice.json"])
    message = only_message(harness)
    [attachment] = message.metadata["attachments"]
    assert (message.text, attachment["type"], attachment["mime_type"]) == ("", "audio", "audio/ogg")
    assert store.info(attachment["id"])["duration_s"] == pytest.approx(1.0, abs=0.1)
    assert store.read(attachment["id"]) == contents["VOICE_ID"]


@requires_ffmpeg
async def test_audio_file_keeps_its_name_and_caption(harness: Harness):
    serve_audio(harness.stub)
    body = copy.deepcopy(PAYLOADS["telegram_audio_file.json"])
    body["message"]["caption"] = "can I order this?"
    await harness.post(body)
    message = only_message(harness)
    [attachment] = message.metadata["attachments"]
    assert (message.text, attachment["name"], attachment["mime_type"]) == (
        "can I order this?", "question.mp3", "audio/mpeg")


async def test_voice_too_large_is_refused_by_declared_size_before_downloading(harness, store, caplog):
    caplog.set_level(logging.INFO)
    harness.stub.files["BIGVOICE_ID"] = StubFile("voice/file_9.oga", b"never served")
    status, _ = await harness.post(PAYLOADS["telegram_voice_too_large.json"])
    assert status == 200
    assert harness.rasa.messages == []
    assert harness.stub.methods("getFile") == [] and harness.stub.downloads == []
    [reply] = harness.stub.methods("sendMessage")
    assert reply["chat_id"] == str(CHAT_ID)
    assert "That voice note is too big for me" in harness.stub.sent_texts[0]
    assert files_under(store.root) == []
    rejections = [r for r in caplog.records if "Attachment rejected" in r.getMessage()]
    assert len(rejections) == 1 and "too_large" in rejections[0].getMessage()


async def test_size_reported_by_getfile_is_checked_before_downloading(harness: Harness, store):
    harness.stub.files["VOICE_ID"] = StubFile("voice/file_5.oga", b"x", reported_size=30 * 1024 * 1024)
    await harness.post(PAYLOADS["telegram_voice.json"])
    assert harness.stub.methods("getFile") == [{"file_id": "VOICE_ID"}] and harness.stub.downloads == []
    assert harness.rasa.messages == [] and "too big" in harness.stub.sent_texts[0]
    assert files_under(store.root) == []


async def test_body_longer_than_the_limit_is_cut_off_while_streaming(make_harness, tmp_path: Path):
    store = AttachmentStore(tmp_path / "uploads", AttachmentLimits(image_max_bytes=5_000))
    harness = await make_harness(store=store)
    # the update and getFile both claim a small file; the server then streams 40 kB without Content-Length
    harness.stub.files["DOCIMG_ID"] = StubFile(
        "documents/file_4.jpg", os.urandom(40_000), reported_size=1_000, chunked=True
    )
    body = copy.deepcopy(PAYLOADS["telegram_photo_as_document.json"])
    body["message"]["document"]["file_size"] = 1_000
    await harness.post(body)
    assert harness.rasa.messages == [] and harness.stub.downloads == ["documents/file_4.jpg"]
    assert "That photo is too big for me" in harness.stub.sent_texts[0]
    assert files_under(store.root) == []


async def test_document_named_jpg_holding_text_is_refused_by_content(harness: Harness, store):
    harness.stub.files["DOCIMG_ID"] = StubFile("documents/file_4.JPG", b"just some text, not a photo\n" * 20)
    await harness.post(PAYLOADS["telegram_photo_as_document.json"])
    assert harness.rasa.messages == [] and len(harness.stub.downloads) == 1
    assert "I can read photos (JPEG, PNG, WebP, GIF)" in harness.stub.sent_texts[0]
    assert files_under(store.root) == []


async def test_image_document_in_an_unreadable_format_is_refused_before_download(harness: Harness):
    body = copy.deepcopy(PAYLOADS["telegram_photo_as_document.json"])
    body["message"]["document"].update(file_name="IMG_2041.HEIC", mime_type="image/heic")
    await harness.post(body)
    assert harness.rasa.messages == [] and harness.stub.methods("getFile") == []
    assert "I can read photos (JPEG, PNG, WebP, GIF)" in harness.stub.sent_texts[0]


@pytest.mark.parametrize(
    "content",
    [
        {"document": {"file_id": "ZIP", "file_unique_id": "z", "file_name": "list.zip",
                      "mime_type": "application/zip"}},
        {"video": {"file_id": "VID", "file_unique_id": "v", "width": 1, "height": 1, "duration": 1}},
        {"video_note": {"file_id": "VN", "file_unique_id": "v", "length": 1, "duration": 1}},
        {"animation": {"file_id": "GIF", "file_unique_id": "g", "width": 1, "height": 1, "duration": 1}},
        {"location": {"latitude": 52.52, "longitude": 13.40}},
        {"contact": {"phone_number": "+4930123456", "first_name": "Customer"}},
        {"poll": {"id": "1", "question": "?", "options": []}},
        {"dice": {"emoji": "🎲", "value": 3}},
        {"sticker": {"file_id": "STICKER_ID", "file_unique_id": "s", "type": "regular"}, "caption": "hi"},
    ],
)
async def test_unsupported_content_gets_the_polite_reply(harness: Harness, content: Dict[str, Any]):
    status, _ = await harness.post(update(1, **content))
    assert status == 200 and harness.rasa.messages == []
    assert harness.stub.sent_texts == [UNSUPPORTED_CONTENT_REPLY]
    assert "I can read text, photos and voice notes" in UNSUPPORTED_CONTENT_REPLY
    assert harness.stub.methods("getFile") == []


async def test_text_and_commands(harness: Harness):
    await harness.post(update(1, text="do you have oat milk?"))
    await harness.post(update(2, text="/start"))
    await harness.post(update(3, text="/start@grocery_test_bot ref42"))
    await harness.post(update(4, text="/restart@grocery_test_bot"))
    assert [m.text for m in harness.rasa.messages] == [
        "do you have oat milk?", START_COMMAND_TEXT, START_COMMAND_TEXT, "/restart"]
    assert all(m.metadata is None and m.sender_id == str(CHAT_ID) for m in harness.rasa.messages)


async def test_edited_text_is_handled_and_other_edits_are_ignored(harness: Harness):
    serve_files(harness.stub)
    await harness.post(PAYLOADS["telegram_edited_text.json"])
    edited_caption = {"update_id": 5, "edited_message": {
        **PAYLOADS["telegram_photo_with_caption.json"]["message"], "caption": "new caption", "edit_date": 1}}
    status, _ = await harness.post(edited_caption)
    assert status == 200
    assert [m.text for m in harness.rasa.messages] == ["where is my order 45172"]
    assert harness.stub.methods("getFile") == []


async def test_button_press_is_passed_on_and_answered(harness: Harness):
    body = {"update_id": 7, "callback_query": {
        "id": "cbq-1", "from": {"id": CHAT_ID, "is_bot": False, "first_name": "Customer"},
        "message": _message(70, text="Which order?"), "chat_instance": "1", "data": "/track_order"}}
    await harness.post(body)
    assert [(m.text, m.sender_id) for m in harness.rasa.messages] == [("/track_order", str(CHAT_ID))]
    assert harness.stub.methods("answerCallbackQuery") == [{"callback_query_id": "cbq-1"}]


@pytest.mark.parametrize(
    "body",
    [
        {"update_id": 8, "my_chat_member": {"chat": {"id": CHAT_ID}}},
        {"update_id": 9, "message": _message(9, new_chat_title="shop")},
        {"update_id": 10, "message": {"message_id": 10, "text": "no chat"}},
        {"update_id": 11, "message": "not an object"},
        {"update_id": 12, "message": _message(12, photo="not a list")},
        {"update_id": 13, "message": _message(13, voice={"duration": 3})},
        {},
    ],
)
async def test_odd_updates_are_acknowledged_without_a_crash(harness: Harness, body: Dict[str, Any]):
    status, _ = await harness.post(body)
    assert status == 200 and harness.rasa.messages == []
    status, _ = await harness.post(update(14, text="still there?"))
    assert status == 200 and [m.text for m in harness.rasa.messages] == ["still there?"]


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
async def test_a_body_that_is_not_a_json_object_is_a_bad_request(harness: Harness, raw: bytes):
    status, _ = await harness.post(None, raw=raw)
    assert status == 400 and harness.rasa.messages == []


# ------------------------------------------------------------------------------------------------------------
# The secret token
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET + "x", SECRET[:-1]])
async def test_missing_or_wrong_secret_token_is_forbidden(harness: Harness, secret: Optional[str], caplog):
    status, _ = await harness.post(update(1, text="hello"), secret=secret)
    assert status == 403 and harness.rasa.messages == [] and harness.stub.calls == []
    assert SECRET not in caplog.text


async def test_right_secret_token_is_accepted(harness: Harness):
    status, text = await harness.post(update(1, text="hello"), secret=SECRET)
    assert (status, text) == (200, "success") and len(harness.rasa.messages) == 1


async def test_without_a_configured_secret_every_request_is_accepted(make_harness):
    harness = await make_harness(secret_token=None)
    status, _ = await harness.post(update(1, text="hello"), secret=None)
    assert status == 200 and len(harness.rasa.messages) == 1


async def test_health_route(harness: Harness):
    async with harness.session.get(f"{harness.url}/") as response:
        assert response.status == 200 and await response.json() == {"status": "ok"}


# ------------------------------------------------------------------------------------------------------------
# Failures on the way: the customer gets a reply, the server keeps serving, the token never reaches the log
# ------------------------------------------------------------------------------------------------------------
async def test_unknown_file_id_is_a_fetch_failure(harness: Harness, caplog):
    caplog.set_level(logging.DEBUG)
    await harness.post(PAYLOADS["telegram_voice.json"])  # the stub serves no file for VOICE_ID
    assert harness.rasa.messages == [] and harness.stub.downloads == []
    assert "I couldn't download that voice note" in harness.stub.sent_texts[0]
    assert TOKEN_SECRET_PART not in caplog.text


@pytest.mark.parametrize("status", [404, 500])
async def test_download_error_status_is_a_fetch_failure(harness: Harness, store, status: int, caplog):
    caplog.set_level(logging.DEBUG)
    harness.stub.files["VOICE_ID"] = StubFile("voice/file_5.oga", b"data", status=status)
    await harness.post(PAYLOADS["telegram_voice.json"])
    assert harness.rasa.messages == [] and harness.stub.downloads == ["voice/file_5.oga"]
    assert "I couldn't download that voice note" in harness.stub.sent_texts[0]
    assert files_under(store.root) == [] and TOKEN_SECRET_PART not in caplog.text


@pytest.mark.parametrize(
    "file_path",
    ["/var/lib/telegram-bot-api/123456789:AAE/voice/file_5.oga", "../../etc/passwd", "voice/../../x", "a?b=c",
     "voice/file 5.oga", ""],
)
async def test_unusable_file_path_from_getfile_is_not_downloaded(harness: Harness, file_path: str):
    harness.stub.files["VOICE_ID"] = StubFile(file_path, b"data")
    await harness.post(PAYLOADS["telegram_voice.json"])
    assert harness.stub.methods("getFile") == [{"file_id": "VOICE_ID"}] and harness.stub.downloads == []
    assert harness.rasa.messages == [] and "I couldn't download" in harness.stub.sent_texts[0]


async def test_stalled_download_times_out(make_harness, tmp_path: Path):
    store = AttachmentStore(tmp_path / "uploads", AttachmentLimits(url_timeout_s=0.5))
    harness = await make_harness(store=store)
    harness.stub.files["PHOTO_LARGE_ID"] = StubFile("photos/file_1.jpg", make_jpeg(), stall=True)
    started = asyncio.get_running_loop().time()
    status, _ = await harness.post(PAYLOADS["telegram_photo_no_caption.json"])
    assert status == 200 and asyncio.get_running_loop().time() - started < 5
    assert harness.rasa.messages == [] and "I couldn't download that photo" in harness.stub.sent_texts[0]
    assert files_under(store.root) == []


async def test_rasa_failing_on_a_message_does_not_stop_the_channel(harness: Harness, caplog):
    async def crash(message: UserMessage) -> None:
        raise RuntimeError("policy exploded")

    harness.rasa.action = crash
    status, _ = await harness.post(update(1, text="first"))
    assert status == 200
    assert any("Rasa failed on a Telegram message" in r.getMessage() for r in caplog.records)
    harness.rasa.action = None
    status, _ = await harness.post(update(2, text="second"))
    assert status == 200 and [m.text for m in harness.rasa.messages] == ["first", "second"]


async def test_bot_api_down_while_replying_does_not_crash(make_harness, store):
    harness = await make_harness(api_url="http://127.0.0.1:9")  # nothing listens on the discard port
    status, _ = await harness.post(PAYLOADS["telegram_sticker.json"])
    assert status == 200 and harness.rasa.messages == []


# ------------------------------------------------------------------------------------------------------------
# Bot replies and set-up
# ------------------------------------------------------------------------------------------------------------
async def test_bot_replies_with_buttons_and_images_go_through_the_bot_api(harness: Harness):
    async def reply(message: UserMessage) -> None:
        out = message.output_channel
        await out.send_response(message.sender_id, {
            "text": "Which order do you mean?",
            "buttons": [{"title": "45172", "payload": '/inform{"order_number": "45172"}'}],
        })
        await out.send_response(message.sender_id, {"image": "https://shop.example/img/banana.jpg"})
        await out.send_text_message(message.sender_id, "first part\n\nsecond part")

    harness.rasa.action = reply
    await harness.post(update(1, text="where is my order"))
    messages = harness.stub.methods("sendMessage")
    assert [m["text"] for m in messages] == ["Which order do you mean?", "first part", "second part"]
    keyboard = json.loads(messages[0]["reply_markup"])
    button = {"text": "45172", "callback_data": '/inform{"order_number": "45172"}'}
    assert keyboard["inline_keyboard"] == [[button]]
    photo = {"chat_id": str(CHAT_ID), "photo": "https://shop.example/img/banana.jpg"}
    assert harness.stub.methods("sendPhoto") == [photo]


async def test_webhook_is_registered_with_the_secret_at_server_start(make_harness):
    url = "https://shop.example/webhooks/telegram/webhook"
    harness = await make_harness(webhook_url=url)
    [call] = harness.stub.methods("setWebhook")
    assert call["url"] == url and call["secret_token"] == SECRET
    assert json.loads(call["allowed_updates"]) == list(tg.ALLOWED_UPDATES)


async def test_verify_checks_the_bot_user_name_once(make_harness):
    harness = await make_harness(verify=BOT_USERNAME)
    await harness.post(update(1, text="one"))
    await harness.post(update(2, text="two"))
    assert [m.text for m in harness.rasa.messages] == ["one", "two"]
    assert len(harness.stub.methods("getMe")) == 1


async def test_updates_are_dropped_when_the_token_belongs_to_another_bot(make_harness, caplog):
    harness = await make_harness(verify="some_other_bot")
    status, text = await harness.post(update(1, text="hello"))
    assert (status, text) == (200, "failed") and harness.rasa.messages == []
    assert "not @some_other_bot" in caplog.text


async def test_unreachable_bot_api_during_the_verify_check_asks_telegram_to_retry(make_harness):
    harness = await make_harness(verify=BOT_USERNAME, api_url="http://127.0.0.1:9")  # nothing listens there
    status, _ = await harness.post(update(1, text="hello"))
    assert status == 503 and harness.rasa.messages == []


async def test_output_channel_is_reused_and_talks_to_the_configured_server(bot_api: BotApiStub, store):
    channel = MultimodalTelegramInput(TOKEN, None, None, api_url=bot_api.url, store=store)
    out = channel.get_output_channel()
    assert channel.get_output_channel() is out and out.name() == "telegram"
    try:
        await out.send_text_message(str(CHAT_ID), "hello")
    finally:
        await out.session.close()
    assert bot_api.sent_texts == ["hello"]


# ------------------------------------------------------------------------------------------------------------
# Settings
# ------------------------------------------------------------------------------------------------------------
def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TELEGRAM_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_VERIFY", BOT_USERNAME)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://shop.example/webhooks/telegram/webhook")
    monkeypatch.setenv("TELEGRAM_SECRET_TOKEN", SECRET)
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:8081/")
    channel = MultimodalTelegramInput.from_credentials(None)
    assert (channel.access_token, channel.verify, channel.secret_token) == (TOKEN, BOT_USERNAME, SECRET)
    assert channel.webhook_url == "https://shop.example/webhooks/telegram/webhook"
    file_url = channel.server.file_url(token="T", path="voice/a.oga")
    assert file_url == "http://127.0.0.1:8081/file/botT/voice/a.oga"
    assert channel.name() == "telegram" and channel.url_prefix() == "telegram"


def test_credentials_win_over_the_environment_and_empty_ones_fall_back(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TELEGRAM_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_VERIFY", "env_bot")
    channel = MultimodalTelegramInput.from_credentials({"verify": "yaml_bot", "access_token": ""})
    assert (channel.access_token, channel.verify, channel.secret_token) == (TOKEN, "yaml_bot", None)
    assert channel.server.api_url(token="T", method="getMe") == "https://api.telegram.org/botT/getMe"


def test_rasa_builds_the_channel_from_an_empty_credentials_entry(monkeypatch: pytest.MonkeyPatch):
    from rasa.core.run import _create_single_channel
    from rasa.shared.utils.io import read_yaml

    monkeypatch.setenv("TELEGRAM_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_SECRET_TOKEN", SECRET)
    credentials = read_yaml("channels.telegram.MultimodalTelegramInput:\n")
    [(name, entry)] = credentials.items()
    channel = _create_single_channel(name, entry)
    assert isinstance(channel, MultimodalTelegramInput) and channel.secret_token == SECRET


def test_the_repository_credentials_file_names_this_channel():
    text = (Path(__file__).resolve().parents[3] / "credentials.yml").read_text(encoding="utf-8")
    assert "channels.telegram.MultimodalTelegramInput:" in text


@pytest.mark.parametrize(
    "env, message",
    [
        ({}, "TELEGRAM_ACCESS_TOKEN"),
        ({"TELEGRAM_ACCESS_TOKEN": "not-a-token"}, "TELEGRAM_ACCESS_TOKEN"),
        ({"TELEGRAM_ACCESS_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_URL": "http://shop.example/hook"}, "https"),
        ({"TELEGRAM_ACCESS_TOKEN": TOKEN, "TELEGRAM_SECRET_TOKEN": "has spaces"}, "TELEGRAM_SECRET_TOKEN"),
        ({"TELEGRAM_ACCESS_TOKEN": TOKEN, "TELEGRAM_API_URL": "ftp://api.telegram.org"}, "TELEGRAM_API_URL"),
        ({"TELEGRAM_ACCESS_TOKEN": TOKEN, "TELEGRAM_API_URL": "https://u:p@api.example"}, "TELEGRAM_API_URL"),
        ({"TELEGRAM_ACCESS_TOKEN": TOKEN, "TELEGRAM_API_URL": "https://api.example/?x"}, "TELEGRAM_API_URL"),
    ],
)
def test_bad_settings_fail_at_start_naming_the_variable(monkeypatch, env: Dict[str, str], message: str):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(RasaException, match=message):
        MultimodalTelegramInput.from_credentials({})


# ------------------------------------------------------------------------------------------------------------
# Pure helpers
# ------------------------------------------------------------------------------------------------------------
def test_select_photo_prefers_pixels_then_bytes_and_skips_broken_entries():
    sizes = [
        "garbage",
        {"file_size": 10},
        {"file_id": "A", "file_size": 900, "width": 90, "height": 90},
        {"file_id": "B", "file_size": 5000, "width": 800, "height": 800},
        {"file_id": "C", "width": 320, "height": 320},
    ]
    assert select_photo(sizes, 10_000, 1_000_000).file_id == "B"
    assert select_photo(sizes, 1_000, 1_000_000).file_id == "C"  # B is too big; C declares no size
    assert select_photo(sizes, 10_000, 200_000).file_id == "C"  # B has too many pixels
    with pytest.raises(AttachmentError) as info:
        select_photo(sizes[2:4], 100, 1_000_000)
    assert info.value.code == "too_large"
    with pytest.raises(AttachmentError) as info:
        select_photo([], 100, 100)
    assert info.value.code == "invalid_reference"


@pytest.mark.parametrize(
    "document, kind",
    [
        ({"file_name": "a.png", "mime_type": "image/png"}, "image"),
        ({"file_name": "a.JPG"}, "image"),
        ({"file_name": "a.webp", "mime_type": "application/octet-stream"}, "image"),
        ({"file_name": "note.ogg", "mime_type": "audio/ogg"}, "audio"),
        ({"file_name": "note.opus"}, "audio"),
        ({"file_name": "x.bin", "mime_type": "audio/x-m4a"}, "audio"),
        ({"file_name": "invoice.pdf", "mime_type": "application/pdf"}, None),
        ({"file_name": "a.jpg", "mime_type": "application/pdf"}, None),
        ({"file_name": "script.js", "mime_type": "text/javascript"}, None),
    ],
)
def test_documents_worth_downloading(document: Dict[str, Any], kind: Optional[str]):
    plan = plan_message(_message(1, document={"file_id": "F", **document}), 10_000_000, 40_000_000)
    assert (plan.file.kind if plan.file else None) == kind
    assert (plan.unsupported is not None) == (kind is None)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("/start", START_COMMAND_TEXT),
        ("/start@grocery_test_bot", START_COMMAND_TEXT),
        ("/start deep-link", START_COMMAND_TEXT),
        ("/help@grocery_test_bot now", "/help now"),
        ("/restart", "/restart"),
        ('/inform{"order_number": "45172"}', '/inform{"order_number": "45172"}'),
        ("/starting soon", "/starting soon"),
        ("start", "start"),
        ("where is /start", "where is /start"),
    ],
)
def test_command_text(text: str, expected: str):
    assert command_text(text) == expected


# ------------------------------------------------------------------------------------------------------------
# The team's shared payload files (skipped when ../shared is absent)
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_shared_payload_files(shared_dir: Path, make_harness, store: AttachmentStore, name: str):
    path = shared_dir / "cases" / "payloads" / name
    if not path.is_file():
        pytest.skip(f"{name} is not in the shared folder")
    if EXPECTED[name].needs_ffmpeg:
        make_audio("ogg")
    harness = await make_harness()
    await check_expected(harness, name, json.loads(path.read_text(encoding="utf-8")), store)


def test_every_shared_telegram_payload_has_an_expectation(shared_dir: Path):
    names = {p.name for p in (shared_dir / "cases" / "payloads").glob("telegram_*.json")}
    assert names <= set(EXPECTED), f"payloads without an expectation here: {sorted(names - set(EXPECTED))}"


def test_payloads_written_here_match_the_shared_ones(shared_dir: Path):
    for name, body in PAYLOADS.items():
        path = shared_dir / "cases" / "payloads" / name
        if path.is_file():
            assert json.loads(path.read_text(encoding="utf-8")) == body, name
