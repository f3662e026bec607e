"""Tests for scripts/customer_token.py: the tokens it prints are the ones the REST channel accepts."""
from __future__ import annotations

import time

import pytest

import customer_token
from channels.rest.customer import CustomerTokens, issue_token

SECRET = "s" * 40


def test_an_issued_token_names_the_customer_for_the_channel() -> None:
    token = issue_token(3, SECRET)
    assert CustomerTokens(SECRET).customer_id(token) == 3


def test_an_issued_token_expires_after_its_lifetime() -> None:
    token = issue_token(3, SECRET, lifetime_s=60, now=time.time() - 3600)
    assert CustomerTokens(SECRET).customer_id(token) is None


def test_another_key_does_not_accept_it() -> None:
    assert CustomerTokens("t" * 40).customer_id(issue_token(3, SECRET)) is None


@pytest.mark.parametrize("customer_id,lifetime", [(0, 60), (-1, 60), (2, 0)])
def test_nonsense_ids_and_lifetimes_are_refused(customer_id: int, lifetime: int) -> None:
    with pytest.raises(ValueError):
        issue_token(customer_id, SECRET, lifetime)


def test_the_command_prints_a_token_and_refuses_a_short_secret(capsys: pytest.CaptureFixture) -> None:
    assert customer_token.main(["1"], environ={"CUSTOMER_TOKEN_SECRET": SECRET}) == 0
    assert CustomerTokens(SECRET).customer_id(capsys.readouterr().out.strip()) == 1
    assert customer_token.main(["1"], environ={"CUSTOMER_TOKEN_SECRET": "short"}) == 2
    assert "CUSTOMER_TOKEN_SECRET" in capsys.readouterr().err
