"""The follow-up queue derived from a conversation's events (assistant.requests)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from assistant.requests import OFFER_ACTION, FollowUp, request_queue, tasks_of

TRACK_THEN_CANCEL = [
    {"intent": "track_order", "order_numbers": ["10023"], "text": "where is order 10023"},
    {"intent": "cancel_order", "order_numbers": ["10027"], "text": "can you also cancel 10027"},
]


def user(intent: str, requests: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    parse_data: Dict[str, Any] = {"intent": {"name": intent, "confidence": 0.9}}
    if requests is not None:
        parse_data["requests"] = requests
    return {"event": "user", "text": "...", "parse_data": parse_data}


def action(name: str) -> Dict[str, Any]:
    return {"event": "action", "name": name}


def test_tasks_are_one_per_order_in_order_without_repeats() -> None:
    requests = [
        {"intent": "cancel_order", "order_numbers": ["45172", "45173", "45172"], "text": "cancel ..."},
        {"intent": "track_order", "order_numbers": [], "text": "where is my other order"},
        "junk",
        {"order_numbers": ["1"]},
    ]
    assert tasks_of(requests) == (
        FollowUp("cancel_order", "45172", "cancel ..."),
        FollowUp("cancel_order", "45173", "cancel ..."),
        FollowUp("track_order", None, "where is my other order"),
    )
    assert tasks_of("not a list") == () and tasks_of(None) == ()


def test_the_second_request_waits_until_offered_then_until_answered() -> None:
    events = [action("action_listen"), user("track_order", TRACK_THEN_CANCEL), action("track_order_form")]
    queue = request_queue(events)
    assert queue.next_task() == FollowUp("cancel_order", "10027", "can you also cancel 10027")
    events.append(action(OFFER_ACTION))
    queue = request_queue(events)
    assert queue.awaiting_reply and queue.next_task() is None
    assert queue.last_offered().order_number == "10027"
    events.append(user("affirm"))
    queue = request_queue(events)
    assert queue.last_offered().order_number == "10027" and queue.next_task() is None and queue.open


def test_three_orders_are_offered_one_after_another_and_a_no_skips_one() -> None:
    requests = [{"intent": "cancel_order", "order_numbers": ["45172", "45173", "45174"], "text": "cancel"}]
    events = [
        user("cancel_order", requests), action("action_cancel_order"), action(OFFER_ACTION), user("deny")
    ]
    queue = request_queue(events)
    assert queue.last_offered().order_number == "45173"
    assert queue.next_task().order_number == "45174" and queue.remaining() == 0
    events += [action("action_skip_next_request"), action(OFFER_ACTION), user("affirm")]
    assert request_queue(events).last_offered().order_number == "45174"
    assert request_queue(events).next_task() is None


def test_any_other_reply_to_an_offer_closes_the_queue() -> None:
    requests = [{"intent": "cancel_order", "order_numbers": ["45172", "45173", "45174"], "text": "cancel"}]
    events = [user("cancel_order", requests), action(OFFER_ACTION), user("product_price")]
    queue = request_queue(events)
    assert not queue.open and queue.next_task() is None and queue.last_offered() is None


def test_a_new_session_or_message_with_requests_starts_over() -> None:
    events = [user("track_order", TRACK_THEN_CANCEL), {"event": "session_started"}]
    assert request_queue(events).next_task() is None
    other = [{"intent": "get_refund", "order_numbers": ["10024"], "text": "refund 10024"},
             {"intent": "track_refund", "order_numbers": ["10024"], "text": "and where is it"}]
    events = [user("track_order", TRACK_THEN_CANCEL), action(OFFER_ACTION), user("get_refund", other)]
    assert request_queue(events).next_task() == FollowUp("track_refund", "10024", "and where is it")


def test_messages_without_several_tasks_and_malformed_events_are_ignored() -> None:
    single = [{"intent": "track_order", "order_numbers": ["10023"], "text": "where is 10023"}]
    junk = {"event": "user", "parse_data": "junk"}
    events = [user("track_order", single), "junk", junk, action(OFFER_ACTION)]
    queue = request_queue(events)
    assert queue.next_task() is None and queue.last_offered() is None and not queue.open
