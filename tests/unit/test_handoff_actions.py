"""The sentiment hand-off actions: the offer of a person, and the ticket after a "yes" to it."""

from __future__ import annotations

from typing import Any, Dict, List

from actions.support import ActionHandOverToHuman, ActionOfferHuman, last_bot_action
from tests.unit.fakes import FakeShopRepository
from tests.unit.test_actions import DOMAIN, make_tracker, rendered, repo, responses, run  # noqa: F401


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


def test_offer_apologises_with_yes_and_no_buttons():
    dispatcher, events = run(ActionOfferHuman(), make_tracker(text="this is ridiculous", intent="complaint"))
    assert responses(dispatcher) == ["utter_offer_human"]
    assert "sorry" in rendered(dispatcher)[0].lower()
    payloads = [b["payload"] for b in DOMAIN["responses"]["utter_offer_human"][0]["buttons"]]
    assert payloads == ["/affirm", "/deny"]
    assert events == []


def test_offer_ends_an_active_form():
    tracker = make_tracker(text="hurry up!!", intent="inform", active_loop="cancel_order_form",
                           slots={"requested_slot": "cancel_confirmed"})
    _, events = run(ActionOfferHuman(), tracker)
    assert [(e["event"], e["name"], e.get("value")) for e in events] == [
        ("active_loop", None, None), ("slot", "requested_slot", None)
    ]


def test_deny_response_exists_with_next_steps():
    response = DOMAIN["responses"]["utter_sort_it_out_together"][0]
    assert "sort it out together" in response["text"].lower()
    assert response["buttons"]


def test_yes_to_the_offer_creates_a_ticket_with_transcript_and_sentiment_trail(repo: FakeShopRepository):
    events = angry_conversation()
    tracker = make_tracker(text="yes", intent="affirm", events=events, slots={"order_number": "10023"})
    assert last_bot_action(tracker) == "action_offer_human"
    dispatcher, _ = run(ActionHandOverToHuman(), tracker)
    (ticket,) = repo.tickets
    assert responses(dispatcher) == ["utter_handoff_ticket"]
    assert ticket["sentiment_trail"] == ["negative", "negative", "neutral"]
    assert ticket["priority"] == "high"
    assert [turn["text"] for turn in ticket["transcript"] if turn["role"] == "user"] == [
        "where is my order, it's SO late", "10023 and hurry up, this is ridiculous", "yes"
    ]
    assert ticket["subject"] == "Unhappy customer accepted a person (order 10023)"


def test_a_plain_request_for_a_person_keeps_its_subject(repo: FakeShopRepository):
    run(ActionHandOverToHuman(), make_tracker(text="a person please", intent="contact_human_agent"))
    assert repo.tickets[0]["subject"] == "Customer asked for a person"
