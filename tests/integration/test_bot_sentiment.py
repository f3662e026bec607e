"""Sentiment-aware hand-off with the trained assistant: NLU sentiment → SentimentHandoffPolicy → rules → ticket

An angry customer is offered a person after at most two clearly negative messages; "yes" opens a ticket whose
stored data holds the transcript and the sentiment trail, "no" keeps the bot helping. Calm conversations are
never interrupted, and an offer in the middle of a form ends the form, so "yes" cannot confirm the form's
question.
"""
from __future__ import annotations

import json
from typing import Dict, List

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OFFER = "action_offer_human"
ANGRY = [
    "where is my order?? I've been waiting ALL DAY, this is absolutely ridiculous 😡",
    "this is a joke, your service is terrible and nobody ever tells me anything",
]


def _actions(conversation) -> List[str]:
    return [e.action_name for e in conversation.tracker().events if getattr(e, "action_name", None)]


def _get_angry(conversation) -> List[Dict]:
    """Sends the angry messages until the bot offers a person; returns the offer's messages."""
    for text in ANGRY:
        messages = conversation.say(text)
        if OFFER in _actions(conversation):
            return messages
    pytest.fail(f"no offer after {len(ANGRY)} negative messages; actions: {_actions(conversation)}")


def _stored_sentiment_trail(database_url: str, ticket_number: str) -> List[str]:
    from sqlalchemy import select

    from shop.db import make_engine
    from shop.models import SupportTicket

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            raw = connection.execute(
                select(SupportTicket.sentiment_trail).where(SupportTicket.ticket_number == ticket_number)
            ).scalar_one()
    finally:
        engine.dispose()
    return json.loads(raw)


def test_negative_messages_carry_a_sentiment(conversation):
    conversation.say(ANGRY[0])
    parse_data = conversation.tracker().latest_message.parse_data
    assert parse_data["sentiment"]["label"] == "negative"
    assert 0.5 <= parse_data["sentiment"]["confidence"] <= 1.0


def test_angry_customer_is_offered_a_person_and_yes_opens_a_ticket(
    conversation, repository, bot_database_url
):
    before = len(repository.list_tickets(conversation.sender_id))
    offer = _get_angry(conversation)
    assert any("sorry" in (m.get("text") or "").lower() for m in offer)
    payloads = [b["payload"] for m in offer for b in (m.get("buttons") or [])]
    assert payloads == ["/affirm", "/deny"]

    reply = conversation.say_text("yes")
    tickets = repository.list_tickets(conversation.sender_id)
    assert len(tickets) == before + 1
    ticket = tickets[0]  # newest first
    assert ticket.ticket_number.lower() in reply
    assert ticket.priority == "high"
    transcript = repository.get_ticket_transcript(ticket.ticket_number)
    assert any(turn.get("text") == ANGRY[0] for turn in transcript)
    trail = _stored_sentiment_trail(bot_database_url, ticket.ticket_number)
    assert trail[0] == "negative" and trail.count("negative") >= 2, trail
    assert len(trail) == sum(1 for turn in transcript if turn["role"] == "user")


def test_no_to_the_offer_keeps_helping_without_a_ticket(conversation, repository):
    _get_angry(conversation)
    before = len(repository.list_tickets(conversation.sender_id))
    reply = conversation.say_text("no")
    assert "sort it out together" in reply
    assert len(repository.list_tickets(conversation.sender_id)) == before
    # a calm question afterwards is answered normally, without another offer
    conversation.say_text("how much are bananas?")
    assert _actions(conversation).count(OFFER) == 1


def test_calm_conversation_gets_no_offer(conversation):
    for text in ("hi", "where is my order 10023", "thanks, that's great"):
        conversation.say(text)
    assert OFFER not in _actions(conversation)


def test_offer_inside_a_form_ends_the_form(conversation, repository):
    before = repository.get_order("10022").status
    conversation.say("cancel my order, I'm fed up with your delays")
    assert _actions(conversation)[-2:] == ["cancel_order_form", "action_listen"]  # asks for the number
    conversation.say("10022, and hurry up, this is the worst service I've ever had 😡")
    assert _actions(conversation)[-2:] == [OFFER, "action_listen"]
    assert conversation.tracker().active_loop_name is None
    conversation.say("yes")
    assert repository.get_order("10022").status == before  # "yes" was not taken as "cancel it"
    assert _actions(conversation)[-2:] == ["action_hand_over_to_human", "action_listen"]
