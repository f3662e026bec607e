"""``ReplyLedger``: idempotency keys, so a message delivered twice is answered once.

Clients retry: the web widget after a dropped connection, a load balancer after a server died, Telegram and
Messenger after a slow answer (they deliver webhooks at least once). Each message may carry an id (the REST
channel's ``message_id``, Telegram's ``update_id``, Messenger's ``mid``); the ledger keeps one record per
``<conversation>:<id>``:

- ``claim`` returns ``NEW`` with an owner token (this server handles the message, holding a lease that a
  heartbeat renews), ``DONE`` with the stored reply, or ``BUSY`` (another server is handling it right now).
- ``complete`` stores the reply for :data:`REPLY_TTL_S`; ``abandon`` frees the key after a failure, so the
  client's retry is handled again.

A server killed mid-message leaves a lease that lapses within :data:`LEASE_S`; the retry then claims ``NEW``
again. Whether the killed server had already saved the turn is for the caller to check in the tracker store
(the user event carries the message id): see :mod:`channels.dedupe`.

Redis when ``REDIS_URL`` is set (shared by every server), else process memory.
"""
from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any, AsyncIterator, List, Mapping, Optional

from stores import settings
from stores.leases import Leases, leases_from_url

logger = logging.getLogger(__name__)

#: Seconds a stored reply is kept (a retry later than this is handled as a new message, then found in the
#: tracker store by its id).
REPLY_TTL_S = 24 * 3600

#: Seconds a claim lives without a heartbeat; the owner renews it every third of that.
LEASE_S = 15.0


class ClaimState(enum.Enum):
    """What :meth:`ReplyLedger.claim` found."""

    NEW = "new"
    DONE = "done"
    BUSY = "busy"


@dataclass(frozen=True)
class Claim:
    """The answer of :meth:`ReplyLedger.claim`.

    Attributes:
        state: NEW (yours: handle it, then ``complete`` or ``abandon``), DONE or BUSY.
        token: The owner token (NEW only).
        reply: The stored reply (DONE only): the list of reply dicts the channel sent the first time.
    """

    state: ClaimState
    token: str = ""
    reply: Optional[List[Any]] = None


class ReplyLedger:
    """Idempotency records keyed by ``<conversation>:<message id>``.

    Args:
        leases: The backend (default: Redis from ``REDIS_URL``, else memory).
        lease_s: Claim lifetime in seconds without a heartbeat.
        reply_ttl_s: Seconds a completed reply is kept.
    """

    def __init__(
        self, leases: Optional[Leases] = None, lease_s: float = LEASE_S, reply_ttl_s: float = REPLY_TTL_S
    ) -> None:
        self.leases = leases if leases is not None else leases_from_url(settings.redis_url())
        self.lease_ms = int(lease_s * 1000)
        self.reply_ttl_ms = int(reply_ttl_s * 1000)

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None) -> "ReplyLedger":
        """The ledger the channels use: Redis when ``REDIS_URL`` is set (checked now), else memory.

        Args:
            environ: Where ``REDIS_URL`` is looked up (default ``os.environ``).

        Raises:
            StoreUnavailable: when Redis does not answer at start-up.
        """
        leases = leases_from_url(settings.redis_url(environ))
        leases.check()
        return cls(leases)

    @staticmethod
    def _key(key: str) -> str:
        return settings.REPLY_KEY_PREFIX + key

    async def claim(self, key: str) -> Claim:
        """Claims ``key`` for this server, or reports the stored reply or that another server holds it.

        Raises:
            StoreUnavailable, redis.exceptions.RedisError: when the backend cannot be reached.
        """
        token = "pending:" + secrets.token_hex(12)
        if await self.leases.acquire(self._key(key), token, self.lease_ms):
            return Claim(ClaimState.NEW, token=token)
        value = await self.leases.get(self._key(key))
        if value is None:  # lapsed between the two calls: try once more
            if await self.leases.acquire(self._key(key), token, self.lease_ms):
                return Claim(ClaimState.NEW, token=token)
            value = await self.leases.get(self._key(key))
        if value is not None and value.startswith("done:"):
            return Claim(ClaimState.DONE, reply=json.loads(value[len("done:"):]))
        return Claim(ClaimState.BUSY)

    async def complete(self, key: str, token: str, reply: List[Any]) -> None:
        """Stores ``reply`` (JSON-serialisable) as the answer to ``key`` for ``reply_ttl_s``."""
        del token  # the reply is stored even if the claim lapsed: it is the answer the client received
        await self.leases.put(self._key(key), "done:" + json.dumps(reply, separators=(",", ":")), self.reply_ttl_ms)

    async def abandon(self, key: str, token: str) -> None:
        """Frees ``key`` (if ``token`` still holds it) so a retry is handled again; errors are logged only."""
        try:
            await self.leases.release(self._key(key), token)
        except Exception as error:  # the claim lapses on its own
            logger.warning("Idempotency key not freed (%s); it lapses in %.0f s", error, self.lease_ms / 1000)

    @contextlib.asynccontextmanager
    async def heartbeat(self, key: str, token: str) -> AsyncIterator[None]:
        """Renews the claim on ``key`` every third of its lifetime while the body of the ``async with`` runs."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.lease_ms / 3000)
                try:
                    await self.leases.renew(self._key(key), token, self.lease_ms)
                except Exception as error:
                    logger.warning("Idempotency claim not renewed: %s", error)

        task = asyncio.ensure_future(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait(self, key: str, timeout_s: float, poll_s: float = 0.2) -> Claim:
        """Waits up to ``timeout_s`` s for another server's claim on ``key`` to end.

        Returns:
            DONE with the reply, NEW (the claim lapsed or was abandoned: now yours) or BUSY (still held).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            claim = await self.claim(key)
            if claim.state is not ClaimState.BUSY or loop.time() >= deadline:
                return claim
            await asyncio.sleep(poll_s)

    async def ping(self) -> None:
        """Raises :class:`~stores.errors.StoreUnavailable` when the backend does not answer."""
        await self.leases.ping()
