"""The shared stores against the real servers: Redis leases and lock store, the SQL tracker store on SQLite
and PostgreSQL.

Redis: ``TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``); PostgreSQL: ``DATABASE_URL`` when it names
one. Each is skipped only when its server cannot be reached.
"""
from __future__ import annotations

import asyncio
import os
import threading
import uuid

import pytest
import sqlalchemy as sa
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from stores.errors import StoreUnavailable
from stores.leases import RedisLeases
from stores.lock import LeaseLockStore
from stores.replies import ClaimState, ReplyLedger
from stores.tracker import SQLConversationStore
from tests.postgres import postgres_schema
from tests.unit.stores.exclusion import ExclusionProbe

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
DOMAIN = Domain.from_yaml("slots:\n  order_number:\n    type: text\n    mappings: [{type: custom}]\n")


@pytest.fixture
async def connect():
    """Opens Redis clients (each its own connection pool: "a server"); closes them afterwards."""
    opened = []

    def open_one() -> RedisLeases:
        leases = RedisLeases(REDIS_URL)
        opened.append(leases)
        return leases

    yield open_one
    for leases in opened:
        await leases.close()


@pytest.fixture
def redis_leases(connect):
    leases = connect()
    try:
        leases.check(timeout_s=1)
    except StoreUnavailable as error:
        pytest.skip(f"Redis not reachable: {error}")
    return leases


# ---- Redis ---------------------------------------------------------------------------------------------
async def test_two_lock_store_clients_racing_for_one_conversation_never_both_hold_it(redis_leases, connect):
    """Two servers (two Redis connection pools) take the same conversation's lock 200 times each."""
    servers = [LeaseLockStore(leases=connect(), lifetime_s=5, wait_s=30) for _ in range(2)]
    conversation = f"race-{uuid.uuid4().hex}"
    probe = ExclusionProbe()

    async def messages(store: LeaseLockStore) -> None:
        for _ in range(200):
            async with store.lock(conversation):
                await probe.critical_section()

    await asyncio.gather(*(messages(server) for server in servers), *(messages(server) for server in servers))
    assert probe.entries == 800
    assert probe.max_inside == 1


async def test_redis_lease_release_and_renew_check_the_owner(redis_leases):
    key = f"test:{uuid.uuid4().hex}"
    assert await redis_leases.acquire(key, "a", 200)
    assert not await redis_leases.acquire(key, "b", 200)
    assert not await redis_leases.release(key, "b")
    assert not await redis_leases.renew(key, "b", 5000)
    await asyncio.sleep(0.3)  # a lapses
    assert await redis_leases.acquire(key, "b", 5000)
    assert not await redis_leases.release(key, "a")  # the late owner cannot delete b's lease
    assert await redis_leases.get(key) == "b"
    assert await redis_leases.release(key, "b")


async def test_a_killed_servers_redis_lock_lapses_and_the_next_message_proceeds(redis_leases, connect):
    conversation = f"killed-{uuid.uuid4().hex}"
    await redis_leases.acquire(f"shopbot:lock:{conversation}", "dead-server", 300)
    store = LeaseLockStore(leases=connect(), lifetime_s=2, wait_s=3)
    async with store.lock(conversation):
        pass


async def test_reply_ledger_on_redis_is_shared_by_servers(redis_leases, connect):
    first, second = ReplyLedger(connect()), ReplyLedger(connect())
    key = f"web:x:{uuid.uuid4().hex}"
    claim = await first.claim(key)
    assert claim.state is ClaimState.NEW
    assert (await second.claim(key)).state is ClaimState.BUSY
    await first.complete(key, claim.token, [{"text": "hello"}])
    done = await second.claim(key)
    assert done.state is ClaimState.DONE and done.reply == [{"text": "hello"}]


def test_unreachable_redis_is_a_clear_error_at_start_up():
    with pytest.raises(StoreUnavailable, match="did not answer"):
        RedisLeases("redis://127.0.0.1:1/0").check(timeout_s=0.5)


# ---- SQL tracker store ---------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite file", "postgresql"])
def tracker_url(request, tmp_path):
    if request.param == "sqlite file":
        yield f"sqlite:///{tmp_path / 'tracker.db'}"
        return
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url.startswith("postgresql"):
        pytest.skip("DATABASE_URL does not point at PostgreSQL")
    with postgres_schema(url, "tracker_test") as options:
        search_path = options["connect_args"]["options"]
        yield f"{url}?options={search_path.replace('=', '%3D').replace(' ', '%20')}"


def _turn(tracker: DialogueStateTracker, text: str, reply: str, message_id: str) -> None:
    tracker.update(UserUttered(text, {"name": "greet", "confidence": 1.0}, message_id=message_id))
    tracker.update(SlotSet("order_number", "10027"))
    tracker.update(BotUttered(reply))
    tracker.update(ActionExecuted("action_listen"))


async def _saved_conversation(store, sender: str, text: str, reply: str) -> DialogueStateTracker:
    """A conversation of one turn (message id ``m1``), saved in ``store``."""
    tracker = DialogueStateTracker(sender, DOMAIN.slots)
    tracker.update(ActionExecuted("action_listen"))
    _turn(tracker, text, reply, "m1")
    await store.save(tracker)
    return tracker


async def test_a_new_store_on_the_same_database_continues_the_conversation(tracker_url):
    store = SQLConversationStore(DOMAIN, host=tracker_url)
    tracker = await _saved_conversation(store, "web:abc", "cancel 10027", "Which email?")
    store.engine.dispose()

    restarted = SQLConversationStore(DOMAIN, host=tracker_url)  # "after a restart"
    again = await restarted.retrieve("web:abc")
    assert [e.as_dict()["event"] for e in again.events] == [e.as_dict()["event"] for e in tracker.events]
    assert again.get_slot("order_number") == "10027"
    assert "web:abc" in await restarted.keys()
    await restarted.ping()


async def test_concurrent_saves_of_one_conversation_store_each_event_once(tracker_url):
    """Many saves of the same tracker at once (e.g. a lease that lapsed mid-turn): no event stored twice."""
    store = SQLConversationStore(DOMAIN, host=tracker_url)
    tracker = DialogueStateTracker("web:race", DOMAIN.slots)
    tracker.update(ActionExecuted("action_listen"))
    await store.save(tracker)
    for index in range(3):
        _turn(tracker, f"message {index}", f"reply {index}", f"m{index}")
    barrier = threading.Barrier(6)

    def save() -> None:
        barrier.wait()
        store._save_now(tracker)

    threads = [threading.Thread(target=save) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT count(*) FROM events WHERE sender_id = 'web:race'")
        ).scalar()
    if store.engine.dialect.name == "postgresql":
        assert rows == len(tracker.events)
    else:  # SQLite serialises writers itself; the count is right or a writer waited for the lock
        assert rows >= len(tracker.events)


def test_an_unreachable_tracker_store_is_an_error_at_start_up_not_memory():
    with pytest.raises(StoreUnavailable, match="did not answer within"):
        SQLConversationStore(DOMAIN, host="postgresql://postgres@127.0.0.1:1/nothing", connect_timeout_s=0.5)


async def test_rasa_uses_the_store_unwrapped_so_an_outage_is_an_error_not_an_empty_conversation(tmp_path):
    from rasa.core.agent import Agent

    store = SQLConversationStore(DOMAIN, host=f"sqlite:///{tmp_path / 't.db'}")
    agent = Agent(domain=DOMAIN, tracker_store=store)
    assert agent.tracker_store is store  # not FailSafeTrackerStore
    tracker = DialogueStateTracker("web:gone", DOMAIN.slots)
    _turn(tracker, "hi", "hello", "m1")
    await store.save(tracker)
    store.engine.dispose()
    (tmp_path / "t.db").unlink()
    (tmp_path / "t.db").mkdir()  # the database file is gone and cannot be created: every query fails
    with pytest.raises(sa.exc.OperationalError):
        await agent.tracker_store.retrieve("web:gone")


# ---- rate limits in Redis -------------------------------------------------------------------------------
def test_two_servers_share_one_customers_rate_limit(redis_leases):
    from channels.ratelimit import TokenBucketLimiter, token_buckets
    from stores.buckets import RedisTokenBuckets

    name = f"test-{uuid.uuid4().hex[:8]}"
    servers = [token_buckets(name, 6, 3, environ={"REDIS_URL": REDIS_URL}) for _ in range(2)]
    assert all(isinstance(server, RedisTokenBuckets) for server in servers)
    granted = [servers[i % 2].take_all(("203.0.113.7",)) for i in range(4)]
    assert granted[:3] == [0.0, 0.0, 0.0]
    assert 0 < granted[3] <= 10.5  # one token every 10 s at 6 a minute
    assert servers[1].retry_after("203.0.113.7") > 0
    assert servers[0].take_all(("198.51.100.1",)) == 0.0  # another customer has a bucket of their own
    assert servers[0].take_all(("x",), 4) == float("inf")  # more than a bucket holds
    assert isinstance(token_buckets(name, 0, 3, environ={"REDIS_URL": REDIS_URL}), TokenBucketLimiter)  # off
    assert isinstance(token_buckets(name, 6, 3, environ={}), TokenBucketLimiter)


def test_a_rate_limit_lets_requests_through_when_redis_is_down(caplog):
    from stores.buckets import RedisTokenBuckets

    down = RedisTokenBuckets("redis://127.0.0.1:1/0", "test-down", 1, 1)
    with caplog.at_level("WARNING"):
        assert [down.take_all(("a",)) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert sum("not checked" in record.getMessage() for record in caplog.records) == 1


async def test_a_message_id_is_found_by_one_query_and_wildcards_are_not_wildcards(tracker_url):
    from channels.dedupe import replies_in_tracker

    store = SQLConversationStore(DOMAIN, host=tracker_url)
    tracker = DialogueStateTracker("web:ids", DOMAIN.slots)
    tracker.update(ActionExecuted("action_listen"))
    _turn(tracker, "hi", "hello", "m_1")
    _turn(tracker, "price", "1.79", "messenger-m.ab%cd")
    await store.save(tracker)
    assert await store.has_user_message("web:ids", "m_1")
    assert await store.has_user_message("web:ids", "messenger-m.ab%cd")
    for absent in ("mX1", "m_", "m%", "messenger-m.abXcd", "1"):
        assert not await store.has_user_message("web:ids", absent), absent
    assert not await store.has_user_message("web:other", "m_1")
    assert await replies_in_tracker(store, "web:ids", "m_1") == [{"recipient_id": "web:ids", "text": "hello"}]
    assert await replies_in_tracker(store, "web:ids", "mX1") is None


async def test_delete_my_data_erases_the_stored_conversation_instead_of_saving_the_turn(tracker_url):
    store = SQLConversationStore(DOMAIN, host=tracker_url)
    tracker = await _saved_conversation(store, "web:erase", "where is 10027", "email?")
    assert await store.retrieve("web:erase") is not None
    tracker.update(UserUttered("yes delete my data", {"name": "affirm", "confidence": 1.0}, message_id="m2"))
    tracker.update(SlotSet("erase_conversation", True))
    tracker.update(BotUttered("Done: your data is deleted."))
    await store.save(tracker)
    assert await store.retrieve("web:erase") is None
    assert "web:erase" not in await store.keys()
    other = DialogueStateTracker("web:keep", DOMAIN.slots)  # a later turn without the slot is saved as usual
    _turn(other, "hi", "hello", "m1")
    other.update(SlotSet("erase_conversation", True))
    _turn(other, "thanks", "you're welcome", "m2")
    await store.save(other)
    assert await store.retrieve("web:keep") is not None
