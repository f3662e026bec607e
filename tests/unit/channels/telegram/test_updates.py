"""`channels.telegram.updates`: what a message becomes (photo sizes, documents, commands)."""
from __future__ import annotations

import copy
from typing import Any, Dict, Optional

import pytest

from channels.telegram import START_COMMAND_TEXT, command_text, plan_message, select_photo
from media import AttachmentError
from tests.unit.channels.telegram import PAYLOADS, Harness, telegram_message


# ------------------------------------------------------------------------------------------------------------
# Documents in a format the store cannot read: refused from the declared MIME type
# ------------------------------------------------------------------------------------------------------------
async def test_image_document_in_an_unreadable_format_is_refused_before_download(harness: Harness):
    body = copy.deepcopy(PAYLOADS["telegram_photo_as_document.json"])
    body["message"]["document"].update(file_name="IMG_2041.HEIC", mime_type="image/heic")
    await harness.post(body)
    assert harness.rasa.messages == [] and harness.stub.methods("getFile") == []
    assert "I can read photos (JPEG, PNG, WebP, GIF)" in harness.stub.sent_texts[0]


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
    plan = plan_message(telegram_message(1, document={"file_id": "F", **document}), 10_000_000, 40_000_000)
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

