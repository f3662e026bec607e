"""Leases: a key held by one owner (a random token) for a lifetime, renewed while the work lasts.

Two backends with the same coroutine interface:

- :class:`RedisLeases`: ``SET key token NX PX lifetime`` takes the lease atomically; renewing and releasing
  run a Lua script that first checks the token, so an owner whose lease expired can never extend or delete the
  lease of the next owner (the failure of Rasa's stock ``RedisLockStore``, RasaHQ/rasa #9213, whose tickets are
  read, changed and written back in three separate commands).
- :class:`MemoryLeases`: the same semantics in one process (the single-server default).

Values are small JSON-free strings; Redis keys are the caller's (prefixes in :mod:`stores.settings`).
"""
from __future__ import annotations

import threading
import time
from typing import Dict, Optional, Protocol, Tuple

from stores.errors import StoreUnavailable, wait_until_answering
from stores.settings import CONNECT_TIMEOUT_S, REDIS_SOCKET_TIMEOUT_S

# KEYS[1] = lease key, ARGV[1] = owner token, ARGV[2] = lifetime in ms
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# KEYS[1] = lease key, ARGV[1] = owner token
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Leases(Protocol):
    """What the lock store and the reply ledger need from a backend (all coroutines)."""

    async def acquire(self, key: str, token: str, lifetime_ms: int) -> bool:
        """Takes ``key`` for ``token`` for ``lifetime_ms`` ms if nobody holds it; ``True`` when taken."""

    async def renew(self, key: str, token: str, lifetime_ms: int) -> bool:
        """Extends the lease to ``lifetime_ms`` from now if ``token`` still holds it; ``True`` when renewed."""

    async def release(self, key: str, token: str) -> bool:
        """Deletes the lease if ``token`` holds it; ``True`` when deleted."""

    async def get(self, key: str) -> Optional[str]:
        """The value stored under ``key`` (a token or a record), ``None`` when absent or expired."""

    async def put(self, key: str, value: str, lifetime_ms: int) -> None:
        """Stores ``value`` under ``key`` for ``lifetime_ms`` ms, whoever held it."""

    async def ping(self) -> None:
        """Raises :class:`StoreUnavailable` when the backend does not answer."""


class RedisLeases:
    """Leases in Redis (redis-py's asyncio client, one connection pool per instance).

    Args:
        url: ``redis://[user:password@]host:port/db`` (``rediss://`` for TLS).
        socket_timeout_s: Seconds a command may take before it raises (an outage for the callers).

    Raises:
        StoreUnavailable: from :meth:`check` when the server does not answer within the connect timeout.
    """

    def __init__(self, url: str, socket_timeout_s: float = REDIS_SOCKET_TIMEOUT_S) -> None:
        import redis.asyncio

        self.url = url
        self._socket_timeout_s = socket_timeout_s
        self._client = redis.asyncio.Redis.from_url(
            url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s, decode_responses=True
        )
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)

    def check(self, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Blocking start-up check: PING until it answers or ``timeout_s`` s have passed.

        Raises:
            StoreUnavailable: naming the URL (without its password) and the last error.
        """
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=2.0, socket_connect_timeout=2.0)
        try:
            wait_until_answering(
                client.ping, timeout_s, (redis.exceptions.RedisError,), f"Redis at {_redacted(self.url)}"
            )
        finally:
            client.close()

    async def acquire(self, key: str, token: str, lifetime_ms: int) -> bool:  # noqa: D102
        return bool(await self._client.set(key, token, nx=True, px=int(lifetime_ms)))

    async def renew(self, key: str, token: str, lifetime_ms: int) -> bool:  # noqa: D102
        return bool(await self._renew(keys=[key], args=[token, int(lifetime_ms)]))

    async def release(self, key: str, token: str) -> bool:  # noqa: D102
        return bool(await self._release(keys=[key], args=[token]))

    async def get(self, key: str) -> Optional[str]:  # noqa: D102
        return await self._client.get(key)

    async def put(self, key: str, value: str, lifetime_ms: int) -> None:  # noqa: D102
        await self._client.set(key, value, px=int(lifetime_ms))

    async def ping(self) -> None:  # noqa: D102
        import redis

        try:
            await self._client.ping()
        except redis.exceptions.RedisError as error:
            raise StoreUnavailable(f"Redis at {_redacted(self.url)} does not answer: {error}") from error

    async def close(self) -> None:
        """Closes the client and its connection pool."""
        await self._client.close()
        await self._client.connection_pool.disconnect()


class MemoryLeases:
    """Leases in this process: the same semantics as :class:`RedisLeases` for one server.

    Args:
        max_keys: Most live keys kept; expired ones are dropped first, then the oldest (a dropped reply record
            only means a retry is processed from the tracker again, never twice: see :mod:`stores.replies`).
        clock: Monotonic clock in seconds (injectable for tests).
    """

    def __init__(self, max_keys: int = 100_000, clock=time.monotonic) -> None:
        self._entries: Dict[str, Tuple[str, float]] = {}
        self._max_keys = max_keys
        self._clock = clock
        self._mutex = threading.Lock()

    def _live(self, key: str, now: float) -> Optional[str]:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._entries[key]
            return None
        return entry[0]

    def _store(self, key: str, value: str, lifetime_ms: int, now: float) -> None:
        if key not in self._entries and len(self._entries) >= self._max_keys:
            for stale in [k for k, (_, expiry) in self._entries.items() if expiry <= now]:
                del self._entries[stale]
            while len(self._entries) >= self._max_keys:
                del self._entries[next(iter(self._entries))]
        self._entries[key] = (value, now + lifetime_ms / 1000.0)

    async def acquire(self, key: str, token: str, lifetime_ms: int) -> bool:  # noqa: D102
        with self._mutex:
            now = self._clock()
            if self._live(key, now) is not None:
                return False
            self._store(key, token, lifetime_ms, now)
            return True

    async def renew(self, key: str, token: str, lifetime_ms: int) -> bool:  # noqa: D102
        with self._mutex:
            now = self._clock()
            if self._live(key, now) != token:
                return False
            self._store(key, token, lifetime_ms, now)
            return True

    async def release(self, key: str, token: str) -> bool:  # noqa: D102
        with self._mutex:
            if self._live(key, self._clock()) != token:
                return False
            del self._entries[key]
            return True

    async def get(self, key: str) -> Optional[str]:  # noqa: D102
        with self._mutex:
            return self._live(key, self._clock())

    async def put(self, key: str, value: str, lifetime_ms: int) -> None:  # noqa: D102
        with self._mutex:
            self._store(key, value, lifetime_ms, self._clock())

    async def ping(self) -> None:  # noqa: D102
        return None

    def check(self, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Nothing to reach: always succeeds."""

    async def close(self) -> None:
        """Nothing to close."""


def _redacted(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for error messages and logs)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def leases_from_url(url: Optional[str]) -> "RedisLeases | MemoryLeases":
    """:class:`RedisLeases` for a Redis URL, :class:`MemoryLeases` for ``None``."""
    return RedisLeases(url) if url else MemoryLeases()
