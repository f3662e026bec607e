"""A restart continues every conversation where it was: a cancel form started before the restart is confirmed
after it, with the SQL tracker store the servers use by default (endpoints.yml)."""
from __future__ import annotations

import asyncio

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _agent(test_model, action_endpoint, tracker_url):
    from rasa.core.agent import Agent
    from rasa.utils.endpoints import EndpointConfig

    from stores.lock import LeaseLockStore
    from stores.tracker import SQLConversationStore

    return Agent.load(
        str(test_model),
        action_endpoint=action_endpoint,
        tracker_store=SQLConversationStore(host=tracker_url),
        lock_store=LeaseLockStore(EndpointConfig(lifetime_s=10, wait_s=30)),
    )


def _say(agent, sender: str, text: str) -> str:
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

    output = CollectingOutputChannel()
    asyncio.run(agent.handle_message(UserMessage(text, output, sender)))
    return " ".join(m.get("text") or "" for m in output.messages).lower()


def test_a_cancel_form_started_before_a_restart_is_confirmed_after_it(
    test_model, action_endpoint, repository, tmp_path
):
    tracker_url = f"sqlite:///{tmp_path / 'tracker.db'}"
    order = repository.get_order("10027")
    assert order.status == "placed"
    sender = "web:restart-test"

    before = _agent(test_model, action_endpoint, tracker_url)
    assert "email" in _say(before, sender, "please cancel order 10027")
    assert "shall i cancel it" in _say(before, sender, order.customer_email)
    before.tracker_store.engine.dispose()
    del before  # the server stops

    after = _agent(test_model, action_endpoint, tracker_url)  # a new process would read the same file
    reply = _say(after, sender, "yes")
    assert repository.get_order("10027").status == "cancelled"
    assert "cancel" in reply
    history = asyncio.run(after.tracker_store.retrieve(sender))
    texts = [event.text for event in history.events if getattr(event, "text", None) and event.type_name == "user"]
    assert texts[-3:] == ["please cancel order 10027", order.customer_email, "yes"]
