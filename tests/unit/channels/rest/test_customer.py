"""`channels.rest.customer`: the shop's customer token (a JWT, HS256 only), and what the channel does with
it."""
from __future__ import annotations

import base64
import json
import logging
import time
import warnings
from typing import Any, Dict

import jwt
from jwt.warnings import InsecureKeyLengthWarning
import pytest
from rasa.shared.exceptions import RasaException

from channels.rest.customer import CustomerTokens, issue_token
from media import AttachmentStore
from tests.unit.channels.rest import CUSTOMER_SECRET, TEST_ENVIRON, make_channel, serve

NOW = int(time.time())
#: Offsets far from NOW: these tokens are made when the module is collected, and a whole test run can take longer
#: than minutes before they are checked (a "not yet valid" token must still be in the future then).
DAY = 24 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(claims: Dict[str, Any]) -> str:
    """A token with ``alg: none`` and no signature, as an attacker writes it."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


with warnings.catch_warnings():  # the right key, but HS512: refused whatever its length
    warnings.simplefilter("ignore", InsecureKeyLengthWarning)
    HS512 = jwt.encode({"sub": "42", "exp": NOW + 2 * DAY}, CUSTOMER_SECRET, algorithm="HS512")

FORGED = {
    "wrong key": jwt.encode({"sub": "42", "exp": NOW + 2 * DAY}, "x" * 40, algorithm="HS256"),
    "alg none": unsigned_token({"sub": "42", "exp": NOW + 2 * DAY}),
    "alg none, empty signature": jwt.encode({"sub": "42", "exp": NOW + 2 * DAY}, None, algorithm="none"),
    "HS512 with the right key": HS512,
    "expired": jwt.encode({"sub": "42", "exp": NOW - DAY}, CUSTOMER_SECRET, algorithm="HS256"),
    "not yet valid": jwt.encode({"sub": "42", "exp": NOW + 2 * DAY, "nbf": NOW + DAY}, CUSTOMER_SECRET),
    "no exp": jwt.encode({"sub": "42"}, CUSTOMER_SECRET, algorithm="HS256"),
    "no sub": jwt.encode({"exp": NOW + 2 * DAY}, CUSTOMER_SECRET, algorithm="HS256"),
    "sub not a number": jwt.encode({"sub": "alice", "exp": NOW + 2 * DAY}, CUSTOMER_SECRET, algorithm="HS256"),
    "sub zero": jwt.encode({"sub": "0", "exp": NOW + 2 * DAY}, CUSTOMER_SECRET, algorithm="HS256"),
    "sub negative": jwt.encode({"sub": "-5", "exp": NOW + 2 * DAY}, CUSTOMER_SECRET, algorithm="HS256"),
    "garbage": "not.a.token",
    "too long": issue_token(42, CUSTOMER_SECRET) + "A" * 5000,
}


@pytest.fixture
def tokens() -> CustomerTokens:
    return CustomerTokens(CUSTOMER_SECRET)


def test_a_valid_token_names_the_customer(tokens: CustomerTokens) -> None:
    token = issue_token(42, CUSTOMER_SECRET, lifetime_s=600)
    assert tokens.customer_id(token) == 42
    assert tokens.metadata(token) == {"customer": {"id": 42}}
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_a_small_clock_difference_is_allowed(tokens: CustomerTokens) -> None:
    just_expired = jwt.encode({"sub": "7", "exp": int(time.time()) - 10}, CUSTOMER_SECRET, algorithm="HS256")
    assert tokens.customer_id(just_expired) == 7
    assert CustomerTokens(CUSTOMER_SECRET, leeway_s=0).customer_id(just_expired) is None


@pytest.mark.parametrize("name", sorted(FORGED))
def test_forged_expired_and_malformed_tokens_are_anonymous_with_one_log_line(
    tokens: CustomerTokens, name: str, caplog
) -> None:
    with caplog.at_level(logging.INFO, logger="channels.rest.customer"):
        assert tokens.customer_id(FORGED[name]) is None
        assert tokens.metadata(FORGED[name]) == {}
    lines = [r for r in caplog.records if r.name == "channels.rest.customer"]
    assert len(lines) == 2 and "Customer token ignored" in lines[0].getMessage()  # one per check
    assert FORGED[name].split(".")[0][:20] not in caplog.text  # no token material in the log


def test_no_token_is_no_customer_and_no_log_line(tokens: CustomerTokens, caplog) -> None:
    with caplog.at_level(logging.INFO):
        assert tokens.customer_id(None) is None and tokens.customer_id("  ") is None
    assert caplog.records == []


def test_without_a_secret_tokens_are_ignored(caplog) -> None:
    tokens = CustomerTokens.from_environ({})
    assert not tokens.enabled
    with caplog.at_level(logging.INFO, logger="channels.rest.customer"):
        assert tokens.customer_id(issue_token(42, CUSTOMER_SECRET)) is None
    assert "CUSTOMER_TOKEN_SECRET is not set" in caplog.text


def test_a_short_secret_refuses_to_start() -> None:
    with pytest.raises(RasaException, match="CUSTOMER_TOKEN_SECRET must have at least 32 characters"):
        CustomerTokens.from_environ({"CUSTOMER_TOKEN_SECRET": "short"})


# --------------------------------------------------------------------------------------------------------
# Through the channel
# --------------------------------------------------------------------------------------------------------
async def test_the_channel_sets_metadata_customer_from_the_header_only(store: AttachmentStore) -> None:
    environ = {**TEST_ENVIRON, "CUSTOMER_TOKEN_SECRET": CUSTOMER_SECRET}
    async with serve(make_channel(store, environ=environ)) as served:
        sender = await served.new_sender()
        message = {"sender": sender, "message": "where is my order?", "metadata": {"customer": {"id": 1}}}
        token = issue_token(42, CUSTOMER_SECRET)
        resp = await served.post_json(message, {"X-Customer-Token": token}, auth=False)
        assert resp.status == 200
        assert served.bot.last.metadata == {"customer": {"id": 42}}  # the client's own value is dropped
        resp = await served.post_json(message, {"X-Customer-Token": FORGED["alg none"]}, auth=False)
        assert resp.status == 200 and served.bot.last.metadata is None  # anonymous, and still answered
        resp = await served.post_json({"sender": "backend-1", "message": "hi"}, {"X-Customer-Token": token})
        assert served.bot.last.sender_id == "api:backend-1"
        assert served.bot.last.metadata == {"customer": {"id": 42}}
