"""Tests for `media.errors`: codes, friendly messages and log text of `AttachmentError`, re-wording an untyped
error (`with_type`), logging a rejection once (`log_rejection`) and merging problems (`merge_problems`)."""
from __future__ import annotations

import logging

import pytest

from media import ERROR_CODES, AttachmentError, AttachmentLimits, log_rejection, merge_problems
from media.limits import MiB


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


def test_a_rejection_is_logged_once_and_redacted(caplog: pytest.LogCaptureFixture):
    error = AttachmentError("fetch_failed", "GET https://api/bot123:SECRET/file failed")
    with caplog.at_level(logging.WARNING):
        assert log_rejection(error, lambda text: text.replace("123:SECRET", "<token>")) is error
        log_rejection(error)
    messages = [record.getMessage() for record in caplog.records if record.name == "media.errors"]
    assert len(messages) == 1 and "<token>" in messages[0] and "SECRET" not in messages[0]
    assert messages == ["Attachment rejected (fetch_failed: GET https://api/bot<token>/file failed)"]


def test_a_rejection_is_logged_under_the_callers_logger(caplog: pytest.LogCaptureFixture):
    error = AttachmentError("too_many", "3 attachments")
    with caplog.at_level(logging.WARNING):
        log_rejection(error, logger=logging.getLogger("channels.messenger"))
        log_rejection(error, logger=logging.getLogger("channels.messenger"))
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("channels.messenger", "Attachment rejected (too_many: 3 attachments)")
    ]


def test_with_type_rewords_an_untyped_error_and_keeps_whether_it_was_logged():
    limits = AttachmentLimits(image_max_bytes=2 * MiB)
    untyped = AttachmentError("not_found", "gone")
    untyped.logged = True
    photo = untyped.with_type("image", limits)
    assert photo is not untyped and untyped.attachment_type is None
    assert (photo.code, photo.detail, photo.attachment_type) == ("not_found", "gone", "image")
    assert photo.logged is True
    assert photo.user_message == "I couldn't find that photo any more — could you send it again?"
    too_large = AttachmentError("too_large", "big").with_type("image", limits)
    assert too_large.logged is False and "up to 2 MB" in too_large.user_message
    voice = AttachmentError("not_found", "gone").with_type("audio")
    assert voice.user_message == "I couldn't find that voice note any more — could you send it again?"


def test_with_type_leaves_a_typed_error_as_it_is():
    typed = AttachmentError("damaged", "truncated", attachment_type="audio", user_message="Custom.")
    assert typed.with_type("image") is typed
    assert (typed.attachment_type, typed.user_message) == ("audio", "Custom.")


def test_merge_problems_keeps_one_entry_per_distinct_problem_in_order():
    too_many = AttachmentError("too_many", "11 attachments")
    damaged = AttachmentError("damaged", "truncated", attachment_type="image")
    existing = [too_many.to_problem()]
    merged = merge_problems(existing, [damaged, AttachmentError("too_many", "other detail"), damaged])
    assert merged == [too_many.to_problem(), damaged.to_problem()]
    assert existing == [too_many.to_problem()] and merged is not existing  # the given list is not modified
    assert merge_problems(None, [damaged]) == [damaged.to_problem()]
    assert merge_problems([], []) == []
    typed_apart = AttachmentError("damaged", "truncated", attachment_type="audio")
    merged = merge_problems([damaged.to_problem()], [typed_apart])
    assert merged == [damaged.to_problem(), typed_apart.to_problem()]
