"""The trained assistant end to end: NLU model + policies + action server + database.

These are the conversations a new user tries first, and the bad inputs customers send. Every message must get
at least one reply, and nothing may change in the database unless the customer confirmed it.
"""
from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _order_statuses(repository) -> dict:
    return {number: repository.get_order(number).status for number in ("10021", "10022", "10023", "10024", "10025")}


def test_track_seeded_order(conversation, repository):
    order = repository.get_order("10023")
    assert order.status == "shipped"
    asked = conversation.say_text("where is my order 10023")
    assert "email address" in asked and order.tracking_number.lower() not in asked  # the proof comes first
    reply = conversation.say_text(order.customer_email)
    assert "10023" in reply
    assert "on its way" in reply or "shipped" in reply
    assert order.tracking_number.lower() in reply


def test_price_of_bananas_comes_from_the_database(conversation, repository):
    product = repository.find_product("bananas").product
    reply = conversation.say_text("how much are bananas")
    assert f"{product.price:.2f}" in reply
    assert "banana" in reply


def test_availability_of_a_product(conversation, repository):
    product = repository.find_product("oat milk").product
    reply = conversation.say_text("do you have oat milk in stock?")
    assert product.name.lower() in reply


def test_unknown_product_gets_suggestions_not_an_error(conversation):
    reply = conversation.say_text("how much is the dragonfruit caviar")
    assert reply  # answered
    assert "sorry, something went wrong" not in reply


def test_talking_to_a_person_creates_a_ticket(conversation, repository):
    before = len(repository.list_tickets(conversation.sender_id))
    conversation.say_text("hi")
    reply = conversation.say_text("I want to talk to a person")
    tickets = repository.list_tickets(conversation.sender_id)
    assert len(tickets) == before + 1
    assert tickets[-1].ticket_number.lower() in reply
    transcript = repository.get_ticket_transcript(tickets[-1].ticket_number)
    assert any("talk to a person" in (turn.get("text") or "") for turn in transcript)


def test_cancel_needs_confirmation(agent, repository):
    from tests.integration.conftest import Conversation

    denied = Conversation(agent, "cancel-denied")
    denied.say_text("please cancel order 10022")
    assert "shall i cancel it" in denied.say_text(repository.get_order("10022").customer_email)
    denied.say_text("no")
    assert repository.get_order("10022").status == "packed"

    confirmed = Conversation(agent, "cancel-confirmed")
    confirmed.say_text("please cancel order 10021")
    assert "shall i cancel it" in confirmed.say_text(repository.get_order("10021").customer_email)
    assert repository.get_order("10021").status == "placed"
    reply = confirmed.say_text("yes")
    assert repository.get_order("10021").status == "cancelled"
    assert "cancel" in reply


def test_cancel_refused_once_shipped(conversation, repository):
    conversation.say_text("cancel my order 10023")
    refused = conversation.say_text(repository.get_order("10023").customer_email)
    assert "can't be cancelled" in refused  # the order was verified, and it is its status that refuses
    conversation.say_text("yes")
    assert repository.get_order("10023").status == "shipped"


BAD_INPUTS = [
    "",
    "   ",
    "?",
    "😡😡😡",
    "a" * 10_000,
    "where is my order'; DROP TABLE orders;--",
    "{{7*7}} ${7*7} <script>alert(1)</script>",
    "track order \x00 10023 \u200b\u200b",
    "مرحبا، أين طلبي؟",
    "我的订单在哪里",
    "I want 99999999999 bananas",
    "where is order 99999999999999999999",
    "where is order -5",
    "/restart",
    '/greet{"order_number": "10021"',
    '/cancel_order{"order_number": "10021"}',
    "/nonexistent_intent",
]


def _assert_bad_input_is_answered(agent, sender: str, text: str) -> None:
    """`text` gets a reply (a restart answers with the session start) without a traceback, and the same
    conversation still answers "hello" afterwards."""
    from tests.integration.conftest import Conversation

    conversation = Conversation(agent, sender)
    messages = conversation.say(text)
    if text.strip() != "/restart":
        assert messages, f"no reply to {text[:40]!r}"
    assert "Traceback" not in json.dumps(messages), f"traceback in the reply to {text[:40]!r}"
    assert conversation.say("hello"), f"the conversation ended after {text[:40]!r}"


@pytest.mark.parametrize("text", BAD_INPUTS, ids=range(len(BAD_INPUTS)))
def test_bad_input_gets_a_reply_and_changes_nothing(agent, repository, text):
    before = _order_statuses(repository)
    _assert_bad_input_is_answered(agent, f"bad-{abs(hash(text))}", text)
    assert _order_statuses(repository) == before


def test_every_shared_text_case_gets_a_reply_and_changes_nothing(agent, repository, shared_dir):
    """Each message of ../shared/cases/text_messages.jsonl (when present) through the trained bot."""
    path = shared_dir / "cases" / "text_messages.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    cases = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert cases
    before = _order_statuses(repository)
    for number, text in enumerate(cases):
        _assert_bad_input_is_answered(agent, f"shared-case-{number}", text)
    assert _order_statuses(repository) == before


@pytest.mark.parametrize("typed, intent", [
    ("Yes, cancel it", "affirm"), ("No, keep it", "deny"), ("Yes, change it", "affirm"), ("No, keep them", "deny"),
])
def test_typing_a_buttons_title_means_what_the_button_means(agent, typed, intent):
    """Customers type what a button says instead of pressing it (found by the load test: 'yes, cancel it' got
    the fallback and the order stayed)."""
    import asyncio

    parsed = asyncio.run(agent.parse_message(typed))
    assert parsed["intent"]["name"] == intent
