"""Tests for `media.errors`: codes, friendly messages and log text of `AttachmentError`."""
from __future__ import annotations

import pytest

from media import ERROR_CODES, AttachmentError


def test_error_carries_code_friendly_message_and_log_text():
    error = AttachmentError("damaged", "JPEG truncated", attachment_type="image")
    assert error.code == "damaged"
    assert error.user_message == "That file looks damaged — could you send the photo again?"
    assert str(error) == "damaged image: JPEG truncated"
    assert error.to_problem() == {"type": "image", "code": "damaged", "message": error.user_message}
    unsupported = AttachmentError("unsupported_type")
    assert "JPEG, PNG, WebP, GIF" in unsupported.user_message and "20 MB" in unsupported.user_message
    with pytest.raises(ValueError):
        AttachmentError("kaboom")


@pytest.mark.parametrize("code", ERROR_CODES)
def test_every_code_has_a_friendly_message(code: str):
    for kind in (None, "image", "audio"):
        message = AttachmentError(code, attachment_type=kind).user_message
        assert message and message[0].isupper() and "error" not in message.lower()
        assert "Traceback" not in message
