"""MemoryLeases: the one-server lease backend keeps the same promises as the Redis one."""
from __future__ import annotations

from stores.leases import MemoryLeases, _redacted


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_one_owner_at_a_time_until_the_lease_lapses():
    clock = Clock()
    leases = MemoryLeases(clock=clock)
    assert await leases.acquire("k", "a", 1000)
    assert not await leases.acquire("k", "b", 1000)
    clock.now += 0.999
    assert not await leases.acquire("k", "b", 1000)
    clock.now += 0.002
    assert await leases.acquire("k", "b", 1000)  # a's lease lapsed
    assert await leases.get("k") == "b"


async def test_only_the_owner_renews_or_releases():
    clock = Clock()
    leases = MemoryLeases(clock=clock)
    assert await leases.acquire("k", "a", 1000)
    assert not await leases.renew("k", "b", 5000)
    assert not await leases.release("k", "b")
    assert await leases.get("k") == "a"
    assert await leases.renew("k", "a", 5000)
    clock.now += 4.0
    assert await leases.get("k") == "a"  # renewed to 5 s
    assert await leases.release("k", "a")
    assert await leases.get("k") is None


async def test_a_lapsed_owner_cannot_release_the_next_owners_lease():
    clock = Clock()
    leases = MemoryLeases(clock=clock)
    await leases.acquire("k", "a", 1000)
    clock.now += 2.0
    await leases.acquire("k", "b", 1000)
    assert not await leases.release("k", "a")
    assert not await leases.renew("k", "a", 1000)
    assert await leases.get("k") == "b"


async def test_the_table_is_bounded_expired_keys_first():
    clock = Clock()
    leases = MemoryLeases(max_keys=3, clock=clock)
    await leases.put("old", "x", 10)
    await leases.put("k1", "x", 10_000)
    await leases.put("k2", "x", 10_000)
    clock.now += 1.0  # "old" expired
    await leases.put("k3", "x", 10_000)
    assert await leases.get("k1") == "x" and await leases.get("k3") == "x"
    await leases.put("k4", "x", 10_000)  # full of live keys: the oldest goes
    assert await leases.get("k1") is None and await leases.get("k4") == "x"


def test_passwords_never_reach_error_messages():
    assert _redacted("redis://user:s3cret@cache:6379/0") == "redis://user:***@cache:6379/0"
    assert _redacted("redis://cache:6379/0") == "redis://cache:6379/0"
