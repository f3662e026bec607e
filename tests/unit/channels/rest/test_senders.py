"""`channels.rest.senders`: web conversation ids issued and signed by the server, and the ids it refuses."""
from __future__ import annotations

import logging
import re

import pytest
from rasa.shared.exceptions import RasaException

from channels.rest import senders
from channels.rest.senders import SIGNED_RE, WebSenderIds
from tests.unit.channels.rest import SENDER_SECRET


@pytest.fixture
def ids() -> WebSenderIds:
    return WebSenderIds(SENDER_SECRET)


def test_an_issued_id_verifies_to_its_conversation(ids: WebSenderIds) -> None:
    signed = ids.issue()
    assert SIGNED_RE.fullmatch(signed) and len(signed) == 80
    conversation = ids.verify(signed)
    assert conversation == signed.split(".")[0] and re.fullmatch(r"web:[0-9a-f]{32}", conversation)
    assert WebSenderIds(SENDER_SECRET).verify(signed) == conversation  # same key: another instance agrees


def test_issued_ids_are_all_different(ids: WebSenderIds) -> None:
    issued = {ids.issue() for _ in range(1000)}
    assert len(issued) == 1000 and len({s.split(".")[0] for s in issued}) == 1000


def _flip(character: str) -> str:
    return "1" if character == "0" else "0"


def test_forged_and_foreign_ids_are_refused(ids: WebSenderIds) -> None:
    signed = ids.issue()
    conversation, signature = signed.split(".")
    refused = [
        conversation,  # no signature
        f"{conversation}.",
        conversation[:-1] + _flip(conversation[-1]) + "." + signature,  # another visitor's random part
        f"{conversation}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",  # a changed signature
        f"{conversation}.{signature} ",
        f"{conversation.upper()}.{signature}".replace("WEB:", "web:"),
        WebSenderIds("another-key-of-at-least-32-characters!").issue(),
        "telegram:123",
        "api:alice",
        "alice",
        "",
        signed + signed,
    ]
    for value in refused:
        assert ids.verify(value) is None, value


def test_a_short_secret_refuses_to_start() -> None:
    with pytest.raises(RasaException, match="SENDER_ID_SECRET must have at least 32 characters"):
        WebSenderIds("too-short")
    with pytest.raises(RasaException):
        WebSenderIds.from_environ({"SENDER_ID_SECRET": "x" * 31})


def test_without_a_secret_one_key_per_process_with_one_warning(monkeypatch, caplog) -> None:
    monkeypatch.setattr(senders, "_process_secret", None)
    with caplog.at_level(logging.WARNING, logger="channels.rest.senders"):
        first = WebSenderIds.from_environ({})
        second = WebSenderIds.from_environ({"SENDER_ID_SECRET": "  "})
    assert second.verify(first.issue()) is not None  # the same key within the process
    warnings = [r for r in caplog.records if r.name == "channels.rest.senders"]
    assert len(warnings) == 1 and "SENDER_ID_SECRET is not set" in warnings[0].getMessage()
    assert WebSenderIds(SENDER_SECRET).verify(first.issue()) is None
