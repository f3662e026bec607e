"""`channels.common`: what the REST, Telegram and Messenger channels share."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
from rasa.core.processor import MessageProcessor
from rasa.shared.exceptions import RasaException
from sanic.response import HTTPResponse

from assistant.keys import ATTACHMENT_PROBLEMS, ATTACHMENTS
from channels import common
from channels.common import (
    UsesAttachmentStore,
    install_server_guards,
    json_object,
    problem_replies,
    secrets_match,
    settings_from,
    webhook_payload,
    with_attachments,
)
from channels.worker_pool import LaneSettings, installed_pools
from media import AttachmentError, AttachmentStore
from tests.unit.channels import make_jpeg

ENV_VARS = {"token": "TEST_TOKEN", "secret": "TEST_SECRET", "url": "TEST_URL"}


def test_settings_come_from_credentials_first_then_the_environment() -> None:
    environ = {"TEST_TOKEN": " from-env ", "TEST_SECRET": "env-secret", "TEST_URL": "   "}
    settings = settings_from({"token": " from-file ", "secret": "  ", "url": None}, ENV_VARS, environ)
    assert settings == {"token": "from-file", "secret": "env-secret", "url": None}
    assert settings_from(None, ENV_VARS, {}) == {"token": None, "secret": None, "url": None}
    assert settings_from({"token": 12345}, ENV_VARS, {})["token"] == "12345"


def test_secrets_are_compared_whole() -> None:
    assert secrets_match("s3cret", "s3cret")
    assert secrets_match("pässwörd", "pässwörd")
    for given in (None, "", "s3cre", "s3cret ", "S3CRET"):
        assert not secrets_match(given, "s3cret")


@pytest.mark.parametrize(
    "body, reason",
    [(b"", "not JSON"), (b"{nope", "not JSON"), (b"\xff\xfe", "not JSON"), (b"[1]", "a JSON list"),
     (b'"text"', "a JSON str"), (b"[" * 100_000 + b"]" * 100_000, "not JSON")],
)
def test_json_object_names_what_the_body_is_instead(body: bytes, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        json_object(body)
    assert str(caught.value) == reason


def test_json_object() -> None:
    assert json_object(b'{"a": [1, 2]}') == {"a": [1, 2]}
    with pytest.raises(ValueError, match="not JSON"):
        json_object(None)  # no body at all reads as an empty one


def test_problem_replies_are_distinct_and_name_the_file_when_there_were_several() -> None:
    problems = [("a.jpg", "Too big."), ("b.jpg", "Too big."), (None, "Damaged."), ("c.jpg", "Damaged.")]
    assert problem_replies(problems, name_files=False) == ["Too big.", "Damaged."]
    assert problem_replies(problems, name_files=True) == [
        "About “a.jpg”: Too big.",
        "About “b.jpg”: Too big.",
        "Damaged.",
        "About “c.jpg”: Damaged.",
    ]


def test_problem_replies_show_a_sanitised_short_name() -> None:
    long_name = "../../" + "x" * 200 + ".jpg"
    (reply,) = problem_replies([(long_name, "Too big.")], name_files=True)
    assert reply == f"About “{'x' * 60}”: Too big."
    assert problem_replies([("  \x00/\x01  ", "Damaged.")], name_files=True) == ["Damaged."]


def test_with_attachments_adds_the_references_and_the_problems(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path / "uploads")
    ref = store.save(make_jpeg(), name="photo.jpg")
    problem = AttachmentError("damaged", "truncated JPEG", attachment_type="image")
    metadata = with_attachments({"locale": "en"}, [ref], [problem])
    assert metadata == {
        "locale": "en",
        ATTACHMENTS: [ref.to_metadata()],
        ATTACHMENT_PROBLEMS: [problem.to_problem()],
    }
    assert with_attachments(None, []) is None
    assert with_attachments({}, []) is None
    given = {"locale": "en"}
    assert with_attachments(given, [ref]) is not given and given == {"locale": "en"}


def test_the_store_is_the_given_one_or_the_default_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = AttachmentStore(tmp_path / "given")
    default = AttachmentStore(tmp_path / "default")
    calls = []
    monkeypatch.setattr(common, "default_store", lambda: calls.append(1) or default)

    class Channel(UsesAttachmentStore):
        def __init__(self, store=None) -> None:
            self._store = store

    assert Channel(given).store is given and calls == []
    channel = Channel()
    assert calls == []  # nothing is created while the channel is built
    assert channel.store is default and channel.store is default and calls == [1]


def test_webhook_payload_is_the_object_or_the_400_answer(caplog: pytest.LogCaptureFixture) -> None:
    assert webhook_payload(b'{"a": 1}', "Test delivery") == {"a": 1}
    with caplog.at_level(logging.WARNING, logger="channels.common"):
        answer = webhook_payload(b"[1]", "Test delivery")
    assert isinstance(answer, HTTPResponse) and answer.status == 400
    assert answer.body == b"the body must be a JSON object"
    assert "Test delivery refused: the body is a JSON list" in caplog.text


# --------------------------------------------------------------------------------------------------------
# SenderThrottle
# --------------------------------------------------------------------------------------------------------
def test_sender_throttle_tells_a_flooding_sender_once(caplog) -> None:
    from channels.common import SLOW_DOWN_REPLY, SenderThrottle

    throttle = SenderThrottle(rate_per_minute=1, burst=2)
    assert [throttle.check("telegram:1") for _ in range(2)] == [None, None]
    assert throttle.check("telegram:1") == SLOW_DOWN_REPLY  # told once ...
    assert throttle.check("telegram:1") == ""  # ... then dropped quietly
    assert throttle.check("telegram:2") is None  # every sender has its own bucket
    assert caplog.text.count("over the per-sender message limit") == 2
    assert SenderThrottle(rate_per_minute=0).check("telegram:1") is None  # 0 = off


def test_server_guards_install_the_pool_from_the_environment_once(no_worker_pool, monkeypatch) -> None:
    original = MessageProcessor.parse_message
    monkeypatch.setenv("NLU_MEDIA_QUEUE", "7")
    install_server_guards("SomeInput")
    pools = installed_pools()
    assert pools is not None and MessageProcessor.parse_message is not original
    assert pools.settings.media == LaneSettings(1, 7, 45.0)
    install_server_guards("OtherInput")  # a second channel keeps the pool
    assert installed_pools() is pools


@pytest.mark.parametrize("name, value", [("NLU_WORKERS", "two"), ("NLU_MEDIA_DEADLINE_S", "-5")])
def test_server_guards_refuse_malformed_pool_settings_by_name(
    no_worker_pool, monkeypatch, name, value
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(RasaException, match=rf"SomeInput: malformed worker pool setting {name}='{value}'"):
        install_server_guards("SomeInput")
    assert installed_pools() is None


def test_server_guards_install_the_content_length_guard(no_worker_pool) -> None:
    from sanic.request import Request

    install_server_guards("SomeInput")
    assert getattr(Request.__init__, "_content_length_guarded", False)
