"""Helpers of the Telegram channel tests: updates as the Bot API sends them, what each must lead to, and the
channel served in a real Sanic app on 127.0.0.1 (mounted like `rasa run` mounts it) with a recorder as
`on_new_message`.

The Bot API stand-in is `bot_api_stub.BotApiStub`; the fixtures are in conftest.py beside this file.
Every update is written here (the shapes of the Bot API's `Update`); `test_channel.py` also replays the
team's shared payload files when ../shared is present.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import aiohttp
from rasa.core.channels.channel import UserMessage

from channels.telegram import SECRET_TOKEN_HEADER, MultimodalTelegramInput
from media import AttachmentStore
from tests.unit.channels import Recorder, files_under, make_audio, make_jpeg
from tests.unit.channels.telegram.bot_api_stub import TOKEN, BotApiStub, StubFile


TOKEN_SECRET_PART = TOKEN.split(":", 1)[1]
SECRET = "webhook-secret_0123456789"
CHAT_ID = 700001


# ------------------------------------------------------------------------------------------------------------
# Updates, as the Bot API sends them (the same shapes as ../shared/cases/payloads/telegram_*.json)
# ------------------------------------------------------------------------------------------------------------
def telegram_message(message_id: int, **content: Any) -> Dict[str, Any]:
    return {
        "message_id": message_id,
        "from": {"id": CHAT_ID, "is_bot": False, "first_name": "Customer", "language_code": "en"},
        "chat": {"id": CHAT_ID, "type": "private", "first_name": "Customer"},
        "date": 1764500000,
        **content,
    }


def update(update_id: int, **content: Any) -> Dict[str, Any]:
    return {"update_id": update_id, "message": telegram_message(update_id % 1000, **content)}


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
        "edited_message": {**telegram_message(9, text="where is my order 45172"), "edit_date": 1764500060},
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
# The served channel
# ------------------------------------------------------------------------------------------------------------
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
            headers[SECRET_TOKEN_HEADER] = secret
        data = raw if raw is not None else json.dumps(body).encode("utf-8")
        async with self.session.post(f"{self.url}/webhook", data=data, headers=headers) as response:
            return response.status, await response.text()


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
    assert (message.text, message.sender_id) == (expected.text, f"telegram:{CHAT_ID}")
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

