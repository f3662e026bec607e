"""Unit tests of `actions.tracker_utils`: reading the latest message and deciding whether a reply answers the
form's question."""

from __future__ import annotations

from typing import List, Optional

import pytest

from actions.tracker_utils import (
    free_text_answer,
    has_entity,
    last_bot_action,
    latest_entities,
    latest_intent,
    latest_text,
    parse_value,
    reset_slots,
)
from assistant.keys import PRODUCT_RECOGNITION, SIMILAR_PRODUCTS
from tests.unit.actions.harness import entity, form_tracker, make_tracker, with_parse


def test_latest_message_parts() -> None:
    tracker = make_tracker(text="  hello  ", intent="greet", entities=[entity("product", "mango"), "junk"])
    assert latest_intent(tracker) == "greet" and latest_text(tracker) == "hello"
    assert has_entity(tracker, "product") and not has_entity(tracker, "order_number")
    assert [e["value"] for e in latest_entities(tracker, "product")] == ["mango"]
    assert latest_intent(make_tracker()) is None and latest_text(make_tracker()) == ""


def test_parse_value_reads_only_values_of_the_expected_type() -> None:
    tracker = with_parse(make_tracker(), product_recognition={"status": "unknown"}, similar_products="junk")
    assert parse_value(tracker, PRODUCT_RECOGNITION, dict) == {"status": "unknown"}
    assert parse_value(tracker, SIMILAR_PRODUCTS, list) is None
    assert parse_value(make_tracker(), PRODUCT_RECOGNITION, dict) is None


@pytest.mark.parametrize(
    "text, intent, extra, requested, expected",
    [
        ("bananas", "inform", (), "product", "bananas"),
        ("👍", "nlu_fallback", (), "product", "👍"),
        ("how much are bananas", "product_price", ("product_price",), "product", "how much are bananas"),
        ("how much are bananas", "product_price", (), "product", None),  # no digit, not an answer intent
        ("my order is 10023", "track_order", (), "product", "my order is 10023"),
        ("no thanks", "deny", (), "product", None),
        ("no thanks", "deny", ("deny",), "product", "no thanks"),  # extra intents win over interrupting ones
        ("bananas", "inform", (), "order_number", None),  # the form asks for something else
        ("   ", "inform", (), "product", None),
        ("bananas", None, (), "product", "bananas"),
    ],
)
def test_free_text_answer(
    text: str, intent: Optional[str], extra: tuple, requested: str, expected: Optional[str]
) -> None:
    tracker = form_tracker("product_form", requested, text=text, intent=intent)
    assert free_text_answer(tracker, "product", extra_intents=extra) == expected


def test_an_entity_of_the_slot_fills_it_instead_of_the_text() -> None:
    tracker = form_tracker("product_form", "product", text="bananas", intent="inform",
                           entities=[entity("product", "bananas")])
    assert free_text_answer(tracker, "product") is None


def events(*names: str) -> List[dict]:
    """Tracker events: ``user`` for a user message, anything else an action."""
    return [{"event": "user", "text": "x"} if name == "user" else {"event": "action", "name": name}
            for name in names]


@pytest.mark.parametrize(
    "history, expected",
    [
        (events("user", "action_offer_human", "action_listen", "user"), "action_offer_human"),
        (events("action_offer_human", "action_listen", "user"), "action_offer_human"),
        (events("user", "action_listen", "user"), None),
        (events("user"), None),
        ([], None),
    ],
)
def test_last_bot_action(history: List[dict], expected: Optional[str]) -> None:
    assert last_bot_action(make_tracker(events=history)) == expected


def test_reset_slots() -> None:
    assert [(e["name"], e["value"]) for e in reset_slots("a", "b")] == [("a", None), ("b", None)]
