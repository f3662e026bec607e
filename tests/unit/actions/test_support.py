"""Unit tests of `actions.support` on the real repository over the seeded in-memory database: support tickets
(complaints, hand-over to a person, also after the sentiment policy's offer), the offer itself, stopping a
flow and the fallback."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from rasa_sdk.events import UserUtteranceReverted

from actions.support import (
    ActionDefaultFallback,
    ActionFileComplaint,
    ActionHandOverToHuman,
    ActionOfferHuman,
    ActionStopFlow,
)
from actions.tracker_utils import last_bot_action
from tests.unit.actions.harness import (
    DOMAIN,
    buttons,
    entity,
    make_tracker,
    rendered,
    responses,
    run,
    slot_values,
)


def conversation() -> List[Dict[str, Any]]:
    """A short conversation with a negative turn, as tracker events."""
    return [
        {"event": "action", "name": "action_listen"},
        {
            "event": "user",
            "text": "where is order 10023?",
            "timestamp": 1_700_000_000.0,
            "parse_data": {"intent": {"name": "track_order"}, "sentiment": "neutral"},
        },
        {"event": "bot", "text": "Good news: order 10023 is on its way!", "timestamp": 1_700_000_001.0},
        {
            "event": "user",
            "text": "it's late again, I want a person",
            "timestamp": 1_700_000_002.0,
            "parse_data": {"intent": {"name": "contact_human_agent"}, "sentiment": {"name": "negative"}},
        },
    ]


def angry_conversation() -> List[Dict[str, Any]]:
    """Two negative messages, the offer, and a "yes" (what SentimentHandoffPolicy and the rules produce)."""
    return [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "where is my order, it's SO late", "timestamp": 1_700_000_000.0,
         "parse_data": {"intent": {"name": "track_order"}, "sentiment": {"label": "negative"}}},
        {"event": "action", "name": "track_order_form"},
        {"event": "bot", "text": "What's the order number?", "timestamp": 1_700_000_001.0},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "10023 and hurry up, this is ridiculous", "timestamp": 1_700_000_002.0,
         "parse_data": {"intent": {"name": "inform"}, "sentiment": {"label": "negative", "confidence": 0.8}}},
        {"event": "action", "name": "action_offer_human"},
        {"event": "bot", "text": "I'm really sorry ...", "timestamp": 1_700_000_003.0},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "yes", "timestamp": 1_700_000_004.0,
         "parse_data": {"intent": {"name": "affirm"}, "sentiment": {"label": "neutral", "confidence": 0.7}}},
    ]


# ------------------------------------------------------------------------------------------------- tickets


def test_handover_creates_a_ticket_with_the_transcript(repo, tickets) -> None:
    tracker = make_tracker(
        text="it's late again, I want a person",
        intent="contact_human_agent",
        events=conversation(),
        slots={"order_number": "10023"},
    )
    dispatcher, events = run(ActionHandOverToHuman(), tracker)
    (ticket,) = tickets()
    assert responses(dispatcher) == ["utter_handoff_ticket"]
    assert ticket["ticket_number"] in rendered(dispatcher)[0]
    assert ticket["sender_id"] == "customer-1"
    assert [(turn["role"], turn["text"]) for turn in ticket["transcript"]] == [
        ("user", "where is order 10023?"),
        ("bot", "Good news: order 10023 is on its way!"),
        ("user", "it's late again, I want a person"),
    ]
    assert ticket["transcript"][0]["intent"] == "track_order"
    assert ticket["sentiment_trail"] == ["neutral", "negative"]
    assert ticket["priority"] == "high"  # the customer sounded negative
    assert ticket["order_number"] == "10023"
    assert ticket["subject"] == "Customer asked for a person (order 10023)"
    assert repo.list_tickets("customer-1")[0].ticket_number == ticket["ticket_number"]
    assert events == []


def test_handover_of_a_calm_customer_is_normal_priority(repo, tickets) -> None:
    run(ActionHandOverToHuman(), make_tracker(text="can I talk to someone?", intent="contact_human_agent"))
    (ticket,) = tickets()
    assert ticket["priority"] == "normal" and ticket["order_number"] is None


@pytest.mark.parametrize(
    "value, expected",
    [("#10023", "10023"), ("order 10024 please", "10024"), (" 10021 ", "10021"), ("-5", None),
     ("123456789012", None), ("abc", None)],
)
def test_the_ticket_names_the_order_only_for_a_real_order_number(repo, tickets, value: str, expected) -> None:
    tracker = make_tracker(text="a person please", intent="contact_human_agent",
                           entities=[entity("order_number", value)])
    run(ActionHandOverToHuman(), tracker)
    assert tickets()[0]["order_number"] == expected


def test_complaint_creates_an_urgent_ticket(repo, tickets) -> None:
    text = "half the eggs were broken"
    dispatcher, _ = run(
        ActionFileComplaint(), make_tracker(text=text, intent="complaint", events=conversation())
    )
    assert responses(dispatcher) == ["utter_complaint_ticket"]
    rendered(dispatcher)
    (ticket,) = tickets()
    assert ticket["subject"] == f"Complaint: {text}" and ticket["priority"] == "high"
    assert len(ticket["transcript"]) == 3


@pytest.mark.parametrize("text", ["x" * 10_000, "'; DROP TABLE support_tickets;--", "🤬🤬🤬", ""])
def test_complaint_with_odd_text(repo, tickets, text: str) -> None:
    dispatcher, _ = run(ActionFileComplaint(), make_tracker(text=text, intent="complaint"))
    assert responses(dispatcher) == ["utter_complaint_ticket"]
    (ticket,) = tickets()
    assert len(ticket["subject"]) <= 140 and ticket["subject"].startswith("Complaint")
    assert len(repo.list_products()) >= 85  # the catalog is still there


def test_ticket_failure_does_not_send_the_customer_in_circles(fail_repository) -> None:
    fail_repository(RuntimeError("disk full"))
    dispatcher, _ = run(ActionHandOverToHuman(), make_tracker(intent="contact_human_agent"))
    assert responses(dispatcher) == ["utter_handoff_failed"]
    rendered(dispatcher)


# ------------------------------------------------------------------------------ the sentiment policy's offer


def test_offer_apologises_with_yes_and_no_buttons() -> None:
    dispatcher, events = run(ActionOfferHuman(), make_tracker(text="this is ridiculous", intent="complaint"))
    assert responses(dispatcher) == ["utter_offer_human"]
    assert "sorry" in rendered(dispatcher)[0].lower()
    payloads = [b["payload"] for b in DOMAIN["responses"]["utter_offer_human"][0]["buttons"]]
    assert payloads == ["/affirm", "/deny"]
    assert events == []


def test_offer_ends_an_active_form() -> None:
    tracker = make_tracker(text="hurry up!!", intent="inform", active_loop="cancel_order_form",
                           slots={"requested_slot": "cancel_confirmed"})
    _, events = run(ActionOfferHuman(), tracker)
    assert [(e["event"], e["name"], e.get("value")) for e in events] == [
        ("active_loop", None, None), ("slot", "requested_slot", None)
    ]


def test_deny_response_exists_with_next_steps() -> None:
    response = DOMAIN["responses"]["utter_sort_it_out_together"][0]
    assert "sort it out together" in response["text"].lower()
    assert response["buttons"]


def test_yes_to_the_offer_creates_a_ticket_with_transcript_and_sentiment_trail(repo, tickets) -> None:
    tracker = make_tracker(text="yes", intent="affirm", events=angry_conversation(),
                           slots={"order_number": "10023"})
    assert last_bot_action(tracker) == "action_offer_human"
    dispatcher, _ = run(ActionHandOverToHuman(), tracker)
    (ticket,) = tickets()
    assert responses(dispatcher) == ["utter_handoff_ticket"]
    assert ticket["sentiment_trail"] == ["negative", "negative", "neutral"]
    assert ticket["priority"] == "high"
    assert [turn["text"] for turn in ticket["transcript"] if turn["role"] == "user"] == [
        "where is my order, it's SO late", "10023 and hurry up, this is ridiculous", "yes"
    ]
    assert ticket["subject"] == "Unhappy customer accepted a person (order 10023)"


def test_a_plain_request_for_a_person_keeps_its_subject(repo, tickets) -> None:
    run(ActionHandOverToHuman(), make_tracker(text="a person please", intent="contact_human_agent"))
    assert tickets()[0]["subject"] == "Customer asked for a person"


# --------------------------------------------------------------------------------------- flows and fallback


def test_fallback_asks_to_rephrase_then_offers_a_person() -> None:
    dispatcher, events = run(ActionDefaultFallback(), make_tracker(intent="nlu_fallback"))
    assert responses(dispatcher) == ["utter_default"]
    assert events == [UserUtteranceReverted()]
    earlier = [
        {"event": "action", "name": "utter_greet"},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "blorf"},
        {"event": "action", "name": "action_default_fallback"},
        {"event": "bot", "text": "Sorry, I didn't quite get that."},
        {"event": "rewind"},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "snargle"},
    ]
    dispatcher, _ = run(ActionDefaultFallback(), make_tracker(intent="nlu_fallback", events=earlier))
    assert responses(dispatcher) == ["utter_default_handoff"]
    assert "/contact_human_agent" in [button["payload"] for button in buttons(dispatcher)]


@pytest.mark.parametrize("intent, response", [("deny", "utter_flow_stopped"), ("goodbye", "utter_goodbye")])
def test_stop_flow_forgets_the_flow(intent: str, response: str) -> None:
    tracker = make_tracker(intent=intent, slots={"order_number": "10021", "cancel_confirmed": True})
    dispatcher, events = run(ActionStopFlow(), tracker)
    assert responses(dispatcher) == [response]
    values = slot_values(events)
    assert values["order_number"] is None and values["cancel_confirmed"] is None
    assert values["refund_reason"] is None and values["product_miss"] is None
