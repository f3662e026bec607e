"""ReplyLedger and channels.dedupe.handle_once: a message id is handled once; repeats get the first reply."""
from __future__ import annotations

import asyncio

import pytest
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from channels.dedupe import StillHandling, handle_once, ledger_key, replies_in_tracker
from stores.leases import MemoryLeases
from stores.replies import ClaimState, ReplyLedger


class Handler:
    """Counts calls; each call answers with its number."""

    def __init__(self, delay: float = 0.0, fail_first: bool = False) -> None:
        self.calls = 0
        self.delay = delay
        self.fail_first = fail_first

    async def __call__(self):
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail_first and self.calls == 1:
            raise RuntimeError("bot failed")
        return [{"recipient_id": "s", "text": f"answer {self.calls}"}]


async def test_a_repeat_gets_the_stored_reply_without_being_handled():
    ledger, handler = ReplyLedger(MemoryLeases()), Handler()
    first = await handle_once(ledger, None, "s", "m1", handler)
    again = await handle_once(ledger, None, "s", "m1", handler)
    assert first == again == [{"recipient_id": "s", "text": "answer 1"}]
    assert handler.calls == 1
    other = await handle_once(ledger, None, "s", "m2", handler)
    assert other[0]["text"] == "answer 2"


async def test_concurrent_copies_are_handled_once_and_all_get_the_answer():
    ledger, handler = ReplyLedger(MemoryLeases()), Handler(delay=0.2)
    results = await asyncio.gather(*(handle_once(ledger, None, "s", "m1", handler) for _ in range(5)))
    assert handler.calls == 1
    assert all(result == results[0] for result in results)


async def test_a_failed_attempt_frees_the_id_for_the_retry():
    ledger, handler = ReplyLedger(MemoryLeases()), Handler(fail_first=True)
    with pytest.raises(RuntimeError):
        await handle_once(ledger, None, "s", "m1", handler)
    assert (await handle_once(ledger, None, "s", "m1", handler))[0]["text"] == "answer 2"


async def test_a_copy_held_elsewhere_too_long_is_told_to_try_again():
    leases = MemoryLeases()
    ledger = ReplyLedger(leases)
    other_server = await ledger.claim(ledger_key("s", "m1"))
    assert other_server.state is ClaimState.NEW
    with pytest.raises(StillHandling):
        await handle_once(ledger, None, "s", "m1", Handler(), wait_s=0.3)


async def test_a_dead_servers_claim_lapses_and_the_retry_is_handled():
    ledger = ReplyLedger(MemoryLeases(), lease_s=0.2)
    await ledger.claim(ledger_key("s", "m1"))  # claimed by a server that then died (no heartbeat)
    handler = Handler()
    assert (await handle_once(ledger, None, "s", "m1", handler, wait_s=2))[0]["text"] == "answer 1"
    assert handler.calls == 1


def _tracker(sender: str, domain: Domain) -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, domain.slots)
    for event in [
        ActionExecuted("action_listen"),
        UserUttered("hi", {"name": "greet", "confidence": 1.0}, message_id="m1"),
        BotUttered("Hello!", {"buttons": [{"title": "Track", "payload": "/track"}]}),
        BotUttered("How can I help?"),
        ActionExecuted("action_listen"),
        UserUttered("bye", {"name": "goodbye", "confidence": 1.0}, message_id="m2"),
        BotUttered("Bye"),
    ]:
        tracker.update(event)
    return tracker


async def test_a_turn_saved_by_a_killed_server_is_rebuilt_from_the_tracker():
    domain = Domain.empty()
    store = InMemoryTrackerStore(domain)
    await store.save(_tracker("s", domain))
    assert await replies_in_tracker(store, "s", "m1") == [
        {"recipient_id": "s", "text": "Hello!", "buttons": [{"title": "Track", "payload": "/track"}]},
        {"recipient_id": "s", "text": "How can I help?"},
    ]
    assert await replies_in_tracker(store, "s", "m9") is None
    assert await replies_in_tracker(store, "nobody", "m1") is None
    handler = Handler()
    replies = await handle_once(ReplyLedger(MemoryLeases()), store, "s", "m2", handler)
    assert replies == [{"recipient_id": "s", "text": "Bye"}]
    assert handler.calls == 0


async def test_keys_of_api_senders_cannot_collide_through_colons():
    """``api:a`` + ``b:c`` and ``api:a:b`` + ``c`` are two messages (found by the attacker trial)."""
    ledger, handler = ReplyLedger(MemoryLeases()), Handler()
    await handle_once(ledger, None, "api:shop:alice", "def", handler)
    other = await handle_once(ledger, None, "api:shop", "alice:def", handler)
    assert handler.calls == 2 and other[0]["text"] == "answer 2"


async def test_a_retry_from_an_earlier_session_is_found_in_the_whole_history():
    from rasa.shared.core.events import SessionStarted

    domain = Domain.empty()
    store = InMemoryTrackerStore(domain)
    tracker = _tracker("s", domain)
    tracker.update(SessionStarted())  # the conversation moved on to a new session
    tracker.update(ActionExecuted("action_listen"))
    await store.save(tracker)
    handler = Handler()
    replies = await handle_once(ReplyLedger(MemoryLeases()), store, "s", "m2", handler)
    assert replies == [{"recipient_id": "s", "text": "Bye"}] and handler.calls == 0
