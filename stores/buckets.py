"""``RedisTokenBuckets``: the channels' token-bucket rate limits shared by every server through Redis.

The same interface and arithmetic as :class:`channels.ratelimit.TokenBucketLimiter` (``enabled``,
``take_all``, ``retry_after``): each key holds up to ``burst`` tokens, refilled at ``rate_per_minute``. A Lua
script reads and spends all buckets of one request atomically, on Redis's clock, so N servers behind a load
balancer grant one customer the configured rate, not N times it. Each bucket is a hash ``{tokens, ts}`` that
expires once it would be full again.

A rate limit must not take the shop down: when Redis does not answer within 0.1 s, the request is let
through, Redis is not asked again for 5 s, and one warning a minute is logged (the lock store, which does
need Redis, answers that customer with "I'm having trouble right now" anyway).
"""
from __future__ import annotations

import logging
import math
import time
from typing import Tuple

from stores.settings import RATE_KEY_PREFIX

logger = logging.getLogger(__name__)

#: Seconds one rate-limit call may wait for Redis before the request is let through (the call blocks the
#: event loop, so this is short).
RATE_LIMIT_TIMEOUT_S = 0.1

#: Seconds the limits are not asked of Redis after it failed to answer (requests let through meanwhile), so a
#: frozen Redis costs one timeout per this many seconds, not one per request.
RATE_LIMIT_BACKOFF_S = 5.0

# KEYS: the buckets. ARGV: rate (tokens/s), burst, tokens wanted, 1 = spend / 0 = only ask, expiry (ms).
# Returns the seconds to wait as a string ("0" when the tokens were there, and then spent if asked to).
_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local want, spend, expiry = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local levels, wait = {}, 0
for i, key in ipairs(KEYS) do
  local stored = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(stored[1]) or burst
  local stamp = tonumber(stored[2]) or now
  local level = math.min(burst, tokens + math.max(0, now - stamp) * rate)
  levels[i] = level
  wait = math.max(wait, (want - level) / rate)
end
if wait > 0 or spend == 0 then
  return tostring(math.max(wait, 0))
end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'tokens', tostring(levels[i] - want), 'ts', tostring(now))
  redis.call('PEXPIRE', key, expiry)
end
return '0'
"""


class RedisTokenBuckets:
    """Token buckets in Redis, named so that each limit has its own keys.

    Args:
        url: ``redis://host:port/db``.
        name: The limit's name in the keys (``shopbot:rate:<name>:<key>``), e.g. ``rest-address-messages``.
        rate_per_minute: Tokens added per minute (> 0; use the in-process limiter for "off").
        burst: Bucket size in tokens (>= 1).

    Raises:
        ValueError: for a rate <= 0 or a burst < 1.
    """

    def __init__(self, url: str, name: str, rate_per_minute: float, burst: int) -> None:
        import redis

        if not rate_per_minute > 0:
            raise ValueError(f"rate_per_minute must be > 0, got {rate_per_minute}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1 token, got {burst}")
        self.rate_per_s = rate_per_minute / 60.0
        self.burst = burst
        self.prefix = f"{RATE_KEY_PREFIX}{name}:"
        self._expiry_ms = int(math.ceil(burst / self.rate_per_s * 1000)) + 1000
        self._client = redis.Redis.from_url(
            url, socket_timeout=RATE_LIMIT_TIMEOUT_S, socket_connect_timeout=RATE_LIMIT_TIMEOUT_S
        )
        self._script = self._client.register_script(_TAKE)
        self._warned_at = -math.inf
        self._skip_until = -math.inf

    @property
    def enabled(self) -> bool:
        """Always ``True`` (a rate of 0 uses the in-process limiter, which is off)."""
        return True

    def _call(self, keys: Tuple[str, ...], tokens: int, spend: bool) -> float:
        import redis

        if tokens > self.burst:
            return math.inf
        if time.monotonic() < self._skip_until:
            return 0.0
        try:
            answer = self._script(
                keys=[self.prefix + key for key in keys],
                args=[self.rate_per_s, self.burst, tokens, 1 if spend else 0, self._expiry_ms],
            )
        except redis.exceptions.RedisError as error:
            now = time.monotonic()
            self._skip_until = now + RATE_LIMIT_BACKOFF_S
            if now - self._warned_at > 60:
                self._warned_at = now
                logger.warning("Rate limit %s not checked (Redis: %s); requests let through",
                               self.prefix.rstrip(":"), type(error).__name__)
            return 0.0
        return float(answer)

    def take_all(self, keys: Tuple[str, ...], tokens: int = 1) -> float:
        """Spends ``tokens`` from every bucket in ``keys`` or from none; 0.0, or the seconds to wait."""
        if tokens <= 0:
            return 0.0
        return self._call(tuple(keys), tokens, spend=True)

    def retry_after(self, key: str, tokens: int = 1) -> float:
        """Seconds until ``key`` has ``tokens`` tokens (0.0 when it has them now); spends nothing."""
        return self._call((key,), tokens, spend=False)
