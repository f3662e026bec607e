"""Unit tests of `actions.common`: the repository, finding the order number and the amount in a reply, and the
error boundary of every action."""

from __future__ import annotations

import logging
import sys
import types
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions import common
from actions.orders import ActionTrackOrder
from shop.errors import InvalidAmount, InvalidOrderNumber, OrderNotFound
from shop.repository import ShopRepository
from tests.unit.actions.harness import BAD_ORDER_NUMBERS, DOMAIN, make_tracker, verified

#: Replies that carry one order number, and that number.
REPLIES_WITH_A_NUMBER = [
    ("10023", "10023"),
    ("#10023", "10023"),
    (" 10023 ", "10023"),
    ("order 10023 please", "10023"),
    ("it's order 10023, thanks!", "10023"),
    ("(10021)", "10021"),
    ("Order no. 10026.", "10026"),
    ("#10 024", "10024"),
    ("\uff11\uff10\uff10\uff12\uff15", "10025"),  # full-width digits
]


# ------------------------------------------------------------------------------------------ repository access


def test_repository_is_created_lazily_once_and_can_be_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    created = []
    fake_db = types.ModuleType("shop.db")
    fake_db.make_engine = lambda: "engine"  # type: ignore[attr-defined]
    fake_db.make_session_factory = lambda engine: f"factory({engine})"  # type: ignore[attr-defined]
    fake_repository_module = types.ModuleType("shop.repository")

    class Repository:
        def __init__(self, factory: str) -> None:
            created.append(factory)

    fake_repository_module.ShopRepository = Repository  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "shop.db", fake_db)
    monkeypatch.setitem(sys.modules, "shop.repository", fake_repository_module)
    common.set_repository(None)
    try:
        first = common.get_repository()
        assert common.get_repository() is first
        assert created == ["factory(engine)"]
        replacement = mock.create_autospec(ShopRepository, instance=True)
        common.set_repository(replacement)
        assert common.get_repository() is replacement
    finally:
        common.set_repository(None)


def test_the_default_repository_is_the_real_one(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'shop.db'}")
    common.set_repository(None)
    try:
        assert isinstance(common.get_repository(), ShopRepository)
    finally:
        common.set_repository(None)


# ------------------------------------------------------------------------------------------- order numbers


@pytest.mark.parametrize("text, expected", REPLIES_WITH_A_NUMBER)
def test_find_order_number_in_a_reply(text: str, expected: str) -> None:
    assert common.find_order_number(text) == expected


@pytest.mark.parametrize(
    "text",
    BAD_ORDER_NUMBERS
    + [None, 10023, "abc", "123456789012", "-10023", "order -5", "#", "x" * 501 + " 10023"],
)
def test_find_order_number_refuses_anything_else(text: Any) -> None:
    with pytest.raises(InvalidOrderNumber) as info:
        common.find_order_number(text)
    assert "five digits" in info.value.user_message


def test_find_order_number_takes_the_first_number_of_the_reply() -> None:
    assert common.find_order_number("10023 or maybe 10024") == "10023"
    assert common.find_order_number("not 1234 but 10021!") == "10021"


# ------------------------------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    "text, expected",
    [
        ("4.50", Decimal("4.50")),
        ("4,50 €", Decimal("4.50")),
        ("5 euros", Decimal("5")),
        ("-5", Decimal("-5")),
        (3, Decimal("3")),
        (2.5, Decimal("2.5")),
        (None, None),
        ("  ", None),
    ],
)
def test_parse_amount(text: Any, expected: Any) -> None:
    assert common.parse_amount(text) == expected


def test_parse_amount_without_a_number() -> None:
    with pytest.raises(InvalidAmount):
        common.parse_amount("lots")


# -------------------------------------------------------------------------------------------- the boundary


def test_shop_errors_become_their_friendly_message(repo) -> None:
    dispatcher = CollectingDispatcher()
    events = ActionTrackOrder().run(dispatcher, make_tracker(slots=verified("12345")), DOMAIN)
    assert [message["text"] for message in dispatcher.messages] == [OrderNotFound("12345").user_message]
    assert {"event": "slot", "name": "order_number", "value": None, "timestamp": None} in events


def test_other_errors_are_logged_and_answered_with_the_problem_response(fail_repository, caplog) -> None:
    fail_repository(RuntimeError("disk on fire"))
    dispatcher = CollectingDispatcher()
    with caplog.at_level(logging.ERROR):
        ActionTrackOrder().run(dispatcher, make_tracker(slots=verified("10023")), DOMAIN)
    assert [message["response"] for message in dispatcher.messages] == [common.TECHNICAL_PROBLEM_RESPONSE]
    assert "disk on fire" in caplog.text and "Traceback" in caplog.text
