"""`channels.telegram.files`: which photo size is fetched, sizes checked before and while downloading, the
content deciding the type, and failures on the way (the customer gets a reply, the server keeps serving, the
token never reaches the log)."""
from __future__ import annotations

import asyncio
import copy
import logging
import os
from pathlib import Path

import pytest

from channels.telegram import channel as telegram_channel
from media import AttachmentError, AttachmentLimits, AttachmentStore
from tests.unit.channels import files_under, make_jpeg
from tests.unit.channels.telegram import (
    CHAT_ID,
    PAYLOADS,
    TOKEN_SECRET_PART,
    Harness,
    only_message,
    serve_files,
)
from tests.unit.channels.telegram.bot_api_stub import TOKEN, StubFile


# ------------------------------------------------------------------------------------------------------------
# Sizes: the photo size fetched, limits checked before and while downloading
# ------------------------------------------------------------------------------------------------------------
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
    assert rejections[0].name == "channels.telegram.channel"  # the channel's own logger, as before the move


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


# ------------------------------------------------------------------------------------------------------------
# Failures on the way: the customer gets a reply, the server keeps serving, the token never reaches the log
# ------------------------------------------------------------------------------------------------------------
async def test_unknown_file_id_is_a_fetch_failure(harness: Harness, caplog):
    caplog.set_level(logging.DEBUG)
    await harness.post(PAYLOADS["telegram_voice.json"])  # the stub serves no file for VOICE_ID
    assert harness.rasa.messages == [] and harness.stub.downloads == []
    assert "I couldn't download that voice note" in harness.stub.sent_texts[0]
    assert TOKEN_SECRET_PART not in caplog.text


async def test_a_refusal_is_logged_once_under_the_channels_logger_without_the_token(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog
):
    caplog.set_level(logging.DEBUG)

    async def failing_fetch(*args, **kwargs):
        detail = f"GET https://api.telegram.org/file/bot{TOKEN}/voice/file_5.oga failed"
        raise AttachmentError("fetch_failed", detail, attachment_type="audio")

    monkeypatch.setattr(telegram_channel, "fetch_file", failing_fetch)
    await harness.post(PAYLOADS["telegram_voice.json"])
    assert "I couldn't download that voice note" in harness.stub.sent_texts[0]
    rejections = [(r.name, r.getMessage()) for r in caplog.records if "Attachment rejected" in r.getMessage()]
    logged = (
        "Attachment rejected (fetch_failed audio: "
        "GET https://api.telegram.org/file/bot<token>/voice/file_5.oga failed)"
    )
    assert rejections == [("channels.telegram.channel", logged)]
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

