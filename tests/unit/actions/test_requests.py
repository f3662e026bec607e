"""Offering, starting and skipping the next request of a multi-request message (actions/requests.py), and
that a started request goes through the order form's verification like any other."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest

from actions.orders import ValidateCancelOrderForm
from actions.requests import (
    FORM_OF_INTENT,
    ActionOfferNextRequest,
    ActionSkipNextRequest,
    ActionStartNextRequest,
)
from assistant.keys import REQUESTS
from assistant.requests import OFFER_ACTION
from tests.unit.actions.harness import (
    DOMAIN,
    buttons,
    form_tracker,
    make_tracker,
    rendered,
    responses,
    run,
    run_validation,
    slot_values,
)

TRACK_THEN_CANCEL = [
    {"intent": "track_order", "order_numbers": ["10023"], "text": "where is order 10023"},
    {"intent": "cancel_order", "order_numbers": ["10021"], "text": "can you also cancel 10021"},
]


def user(intent: str, requests: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    parse_data: Dict[str, Any] = {"intent": {"name": intent, "confidence": 0.9}}
    if requests is not None:
        parse_data[REQUESTS] = requests
    return {"event": "user", "text": "...", "parse_data": parse_data}


def action(name: str) -> Dict[str, Any]:
    return {"event": "action", "name": name}


def conversation(*events: Dict[str, Any], intent: str = "affirm", verified: Optional[List[str]] = None):
    return make_tracker(slots={"verified_orders": verified or ["10023"]}, intent=intent, events=list(events))


AFTER_FIRST_FLOW = [
    action("action_listen"),
    user("track_order", TRACK_THEN_CANCEL),
    action("track_order_form"),
    action("action_track_order"),
]


def test_the_offer_names_the_second_request_with_yes_and_no_buttons() -> None:
    dispatcher, events = run(ActionOfferNextRequest(), conversation(*AFTER_FIRST_FLOW))
    assert responses(dispatcher) == ["utter_offer_cancel_order"]
    assert rendered(dispatcher) == ["You also asked to cancel order 10021 — shall I do that now?"]
    assert [b["payload"] for b in buttons(dispatcher)] == ["/affirm", "/deny"]
    assert events == []


def test_an_offer_without_a_waiting_request_says_nothing() -> None:
    single = conversation(action("action_listen"), user("track_order"))
    dispatcher, events = run(ActionOfferNextRequest(), single)
    assert dispatcher.messages == [] and events == []


def test_a_yes_starts_the_cancel_form_for_the_second_order_and_nothing_else() -> None:
    tracker = conversation(*AFTER_FIRST_FLOW, action(OFFER_ACTION), action("action_listen"), user("affirm"))
    dispatcher, events = run(ActionStartNextRequest(), tracker)
    assert dispatcher.messages == []
    assert events[-1] == {"event": "followup", "name": "cancel_order_form", "timestamp": None}
    slots = slot_values(events)
    assert slots["order_number"] == "10021"
    # no answer is given for the customer: the form asks for the proof and for the yes itself
    assert slots["cancel_confirmed"] is None and slots["order_email"] is None
    assert "verified_orders" not in slots


async def test_the_started_form_asks_for_the_email_of_an_order_not_yet_verified(repo, db) -> None:
    """The order number the start action set is validated like a typed one: 10021 is not verified yet (only
    10023 is), so the form asks for the email address on it before anything else."""
    tracker = form_tracker(
        "cancel_order_form", None, {"order_number": "10021"}, {"verified_orders": ["10023"]},
        text="yes", intent="affirm",
    )
    dispatcher, slots = await run_validation(ValidateCancelOrderForm(), tracker)
    # not verified: only the number is kept, and the form's next empty slot is the email address
    assert slots == {"order_number": "10021", "order_action_allowed": None, "order_email": None}
    assert dispatcher.messages == []
    assert db.unchanged()


def test_a_refund_request_takes_its_clause_as_the_reason() -> None:
    requests = [TRACK_THEN_CANCEL[0], {"intent": "get_refund", "order_numbers": ["10024"],
                                       "text": "I want a refund for 10024, the milk was sour"}]
    tracker = conversation(user("track_order", requests), action("action_track_order"), action(OFFER_ACTION),
                           user("affirm"))
    _, events = run(ActionStartNextRequest(), tracker)
    assert slot_values(events)["refund_reason"] == "I want a refund for 10024, the milk was sour"
    assert events[-1]["name"] == "refund_form"


def test_a_request_without_an_order_number_starts_its_form_without_one() -> None:
    refund = {"intent": "track_refund", "order_numbers": [], "text": "where is my refund"}
    requests = [TRACK_THEN_CANCEL[0], refund]
    tracker = conversation(user("track_order", requests), action(OFFER_ACTION), user("affirm"))
    _, events = run(ActionStartNextRequest(), tracker)
    assert "order_number" not in {k for k, v in slot_values(events).items() if v is not None}
    assert events[-1]["name"] == "track_refund_form"
    offer, _ = run(ActionOfferNextRequest(), conversation(user("track_order", requests)))
    assert rendered(offer) == ["You also asked about the refunds for another order — shall I check them now?"]


def test_a_yes_without_an_offer_starts_nothing() -> None:
    dispatcher, events = run(ActionStartNextRequest(), conversation(action("action_listen"), user("affirm")))
    assert responses(dispatcher) == ["utter_what_else"] and events == []


def test_a_no_leaves_the_order() -> None:
    tracker = conversation(*AFTER_FIRST_FLOW, action(OFFER_ACTION), user("deny"), intent="deny")
    dispatcher, events = run(ActionSkipNextRequest(), tracker)
    assert rendered(dispatcher) == ["Okay, I'll leave order 10021 as it is."]
    assert events == []


@pytest.mark.parametrize("intent", sorted(FORM_OF_INTENT))
def test_every_request_intent_has_its_form_and_offer_in_the_domain(intent: str) -> None:
    assert FORM_OF_INTENT[intent] in DOMAIN["forms"]
    assert f"utter_offer_{intent}" in DOMAIN["responses"]
    requests = [TRACK_THEN_CANCEL[0], {"intent": intent, "order_numbers": ["10022"], "text": "..."}]
    dispatcher, _ = run(ActionOfferNextRequest(), conversation(user("track_order", requests)))
    assert "order 10022" in rendered(dispatcher)[0]
