"""LeaseLockStore on process memory: mutual exclusion, arrival order, the wait limit, a lapsed holder."""
from __future__ import annotations

import asyncio

import pytest
from rasa.core.lock_store import LockError
from rasa.utils.endpoints import EndpointConfig

from stores.leases import MemoryLeases
from stores.lock import LeaseLockStore
from tests.unit.stores.exclusion import ExclusionProbe


async def test_messages_of_one_conversation_never_overlap_and_keep_their_order():
    store = LeaseLockStore(leases=MemoryLeases(), lifetime_s=5, wait_s=5)
    probe = ExclusionProbe()
    order = []

    async def turn(index: int) -> None:
        async with store.lock("c1"):
            order.append(index)
            await probe.critical_section()

    await asyncio.gather(*(turn(i) for i in range(20)))
    assert probe.max_inside == 1 and probe.entries == 20
    assert order == list(range(20))  # queued in arrival order inside one server


async def test_other_conversations_are_not_held_up():
    store = LeaseLockStore(leases=MemoryLeases(), lifetime_s=5, wait_s=0.2)
    async with store.lock("busy"):
        async with store.lock("other"):  # would raise LockError after 0.2 s if it waited for "busy"
            pass


async def test_the_wait_is_bounded():
    store = LeaseLockStore(leases=MemoryLeases(), lifetime_s=5, wait_s=0.1)
    rival = LeaseLockStore(leases=store.leases, lifetime_s=5, wait_s=0.1)  # "another server", same backend
    async with store.lock("c1"):
        with pytest.raises(LockError):
            async with rival.lock("c1"):
                pass


async def test_a_held_lock_is_renewed_while_a_slow_turn_runs():
    leases = MemoryLeases()
    store = LeaseLockStore(leases=leases, lifetime_s=0.15, wait_s=0.05)
    rival = LeaseLockStore(leases=leases, lifetime_s=0.15, wait_s=0.05)
    async with store.lock("c1"):
        await asyncio.sleep(0.4)  # more than two lifetimes: only the heartbeat keeps it
        with pytest.raises(LockError):
            async with rival.lock("c1"):
                pass
    async with rival.lock("c1"):  # released on exit
        pass


async def test_a_killed_servers_lock_lapses_within_one_lifetime():
    leases = MemoryLeases()
    await leases.acquire("shopbot:lock:c1", "token-of-a-dead-server", 150)
    store = LeaseLockStore(leases=leases, lifetime_s=1, wait_s=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with store.lock("c1"):
        waited = loop.time() - started
    assert 0.1 <= waited < 0.9


def test_settings_come_from_endpoints_yml_and_are_checked():
    store = LeaseLockStore(EndpointConfig(lifetime_s=7, wait_s=3))
    assert (store.lifetime_s, store.wait_s, store.shared) == (7.0, 3.0, False)
    with pytest.raises(ValueError, match="lifetime_s"):
        LeaseLockStore(EndpointConfig(lifetime_s=0))
    with pytest.raises(ValueError, match="wait_s"):
        LeaseLockStore(EndpointConfig(wait_s=-1))


async def test_the_probe_sees_an_overlap_when_there_is_no_lock():
    probe = ExclusionProbe()
    await asyncio.gather(*(probe.critical_section() for _ in range(5)))
    assert probe.max_inside > 1
