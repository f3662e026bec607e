"""``LeaseLockStore``: Rasa's lock store on leases: one server at a time handles a conversation's message.

Rasa takes ``lock_store.lock(sender_id)`` around every message (``Agent.handle_message``) and around the HTTP
API's tracker changes. The stock ``RedisLockStore`` issues tickets by reading, changing and writing back a
JSON document in three Redis commands, so two servers can both take the same conversation (RasaHQ/rasa #9213).
Here a lock is a lease (:mod:`stores.leases`): taken atomically with a random token, renewed by a heartbeat
while the message is handled (so a slow turn keeps it and a killed server's lock lapses within one lifetime),
and released only by its owner. Inside one server, messages of one conversation queue in arrival order on an
``asyncio.Lock`` before they contend for the lease.

endpoints.yml::

    lock_store:
      type: stores.lock.LeaseLockStore
      lifetime_s: 10     # lease lifetime; renewed every lifetime/3 while the message is handled
      wait_s: 30         # longest wait for a busy conversation, then Rasa's LockError (customer: 503)

Redis when ``REDIS_URL`` is set (every server shares it), else process memory (one server).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any, AsyncGenerator, Dict, Optional, Text

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LockError, LockStore
from rasa.utils.endpoints import EndpointConfig

from stores import settings
from stores.leases import Leases, RedisLeases, leases_from_url

logger = logging.getLogger(__name__)

#: Defaults of the two settings (seconds).
DEFAULT_LIFETIME_S = 10.0
DEFAULT_WAIT_S = 30.0


class LeaseLockStore(LockStore):
    """A race-free conversation lock store (Redis leases, or process memory without ``REDIS_URL``).

    Args:
        endpoint_config: endpoints.yml's ``lock_store`` section (Rasa passes it); its keys ``lifetime_s``,
            ``wait_s`` and ``url`` (a Redis URL that wins over ``REDIS_URL``) are read.
        leases: The backend, for tests; default from the URL.
        lifetime_s: Lease lifetime in seconds (> 0), renewed every third of it while held.
        wait_s: Longest wait in seconds (>= 0) for a conversation another message holds.

    Raises:
        ValueError: for a lifetime <= 0 or a negative wait.
        StoreUnavailable: when Redis does not answer at start-up (the server exits with the message).
    """

    def __init__(
        self,
        endpoint_config: Optional[EndpointConfig] = None,
        leases: Optional[Leases] = None,
        lifetime_s: Optional[float] = None,
        wait_s: Optional[float] = None,
    ) -> None:
        config: Dict[str, Any] = dict(endpoint_config.kwargs) if endpoint_config is not None else {}
        url = (endpoint_config.url if endpoint_config is not None else None) or config.get("url")
        self.lifetime_s = float(lifetime_s if lifetime_s is not None else config.get("lifetime_s", DEFAULT_LIFETIME_S))
        self.wait_s = float(wait_s if wait_s is not None else config.get("wait_s", DEFAULT_WAIT_S))
        if self.lifetime_s <= 0:
            raise ValueError(f"LeaseLockStore: lifetime_s must be > 0 seconds, got {self.lifetime_s}")
        if self.wait_s < 0:
            raise ValueError(f"LeaseLockStore: wait_s must be >= 0 seconds, got {self.wait_s}")
        if leases is None:
            leases = leases_from_url(url or settings.redis_url())
            leases.check()
        self.leases = leases
        self._local: Dict[str, "_LocalQueue"] = {}
        super().__init__()
        logger.info(
            "Lock store: %s leases, lifetime %.1f s, wait up to %.1f s",
            type(leases).__name__.replace("Leases", "").lower(), self.lifetime_s, self.wait_s,
        )

    @property
    def shared(self) -> bool:
        """Whether the locks are shared by several servers (Redis)."""
        return isinstance(self.leases, RedisLeases)

    @contextlib.asynccontextmanager
    async def lock(
        self,
        conversation_id: Text,
        lock_lifetime: float = 0,
        wait_time_in_seconds: float = 0,
    ) -> AsyncGenerator[TicketLock, None]:
        """Holds ``conversation_id``'s lock for the body of the ``async with``.

        Rasa's ``lock_lifetime`` and ``wait_time_in_seconds`` arguments are ignored: the lease is renewed while
        held, and the wait is bounded by ``wait_s``.

        Yields:
            A ``TicketLock`` naming the conversation (Rasa's callers do not use it).

        Raises:
            LockError: when the lock is not free within ``wait_s`` seconds.
            StoreUnavailable, redis.exceptions.RedisError: when the backend cannot be reached.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        queue = self._local.setdefault(conversation_id, _LocalQueue())
        queue.users += 1
        try:
            try:
                await asyncio.wait_for(queue.lock.acquire(), timeout=max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.") from None
            try:
                async with self._lease(conversation_id, deadline):
                    yield TicketLock(conversation_id)
            finally:
                queue.lock.release()
        finally:
            queue.users -= 1
            if queue.users == 0:
                self._local.pop(conversation_id, None)

    @contextlib.asynccontextmanager
    async def _lease(self, conversation_id: str, deadline: float) -> AsyncGenerator[None, None]:
        loop = asyncio.get_running_loop()
        key = settings.LOCK_KEY_PREFIX + conversation_id
        token = secrets.token_hex(16)
        lifetime_ms = int(self.lifetime_s * 1000)
        pause = 0.005
        while not await self.leases.acquire(key, token, lifetime_ms):
            if loop.time() >= deadline:
                raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
            await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
            pause = min(pause * 2, 0.1)
        heartbeat = asyncio.ensure_future(self._renew(key, token, lifetime_ms, conversation_id))
        try:
            yield
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            try:
                if not await self.leases.release(key, token):
                    logger.warning("Lock of conversation %.40s had lapsed before it was released", conversation_id)
            except Exception as error:  # the lease lapses on its own within one lifetime
                logger.warning("Lock of conversation %.40s not released (%s); it lapses in %.0f s",
                               conversation_id, error, self.lifetime_s)

    async def _renew(self, key: str, token: str, lifetime_ms: int, conversation_id: str) -> None:
        while True:
            await asyncio.sleep(self.lifetime_s / 3.0)
            try:
                if not await self.leases.renew(key, token, lifetime_ms):
                    logger.error("Lock of conversation %.40s was lost while its message was handled",
                                 conversation_id)
                    return
            except Exception as error:
                logger.warning("Lock of conversation %.40s not renewed: %s", conversation_id, error)

    async def ping(self) -> None:
        """Raises :class:`~stores.errors.StoreUnavailable` when the backend does not answer."""
        await self.leases.ping()

    # Rasa's ticket interface, unused by lock() above; is_someone_waiting is asked by nobody in Rasa 3.6.
    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:  # noqa: D102
        return None

    def delete_lock(self, conversation_id: Text) -> None:  # noqa: D102
        return None

    def save_lock(self, lock: TicketLock) -> None:  # noqa: D102
        return None


class _LocalQueue:
    """Messages of one conversation waiting in this server, in arrival order."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0
