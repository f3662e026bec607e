"""Token buckets keyed by a string (sender id, client address), kept in a bounded LRU table."""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Callable, Dict, Mapping, Optional, Tuple

if TYPE_CHECKING:
    from stores.buckets import RedisTokenBuckets


class TokenBucketLimiter:
    """Per-key token buckets: each key holds up to ``burst`` tokens, refilled at ``rate_per_minute``.

    The table keeps at most ``max_keys`` keys; the least recently used one is dropped when it is full (a
    dropped key starts again with a full bucket, which only ever errs towards letting a request through).

    Args:
        rate_per_minute: Tokens added per minute (float, > 0). ``0`` disables limiting.
        burst: Bucket size in tokens: the most a key may spend at once after being idle.
        max_keys: Most keys remembered.
        clock: Monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_minute < 0:
            raise ValueError(f"rate_per_minute must be >= 0, got {rate_per_minute}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1 token, got {burst}")
        self.rate_per_s = rate_per_minute / 60.0
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: "OrderedDict[str, Tuple[float, float]]" = OrderedDict()  # key -> (tokens, stamp)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether any limiting happens (a rate of 0 turns the limiter off)."""
        return self.rate_per_s > 0

    def _level(self, key: str, now: float) -> float:
        tokens, stamp = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - stamp) * self.rate_per_s)

    def retry_after(self, key: str, tokens: int = 1) -> float:
        """Seconds until ``key`` has ``tokens`` tokens (0.0 when it has them now); spends nothing."""
        if not self.enabled:
            return 0.0
        with self._lock:
            level = self._level(key, self._clock())
        missing = min(tokens, self.burst) - level
        return 0.0 if missing <= 0 else missing / self.rate_per_s

    def take_all(self, keys: Tuple[str, ...], tokens: int = 1) -> float:
        """Spend ``tokens`` from every bucket in ``keys``, or from none of them.

        Returns:
            0.0 when the tokens were spent; otherwise the seconds to wait before the same request would
            pass (nothing is spent then). A request for more tokens than ``burst`` is never granted.
        """
        if not self.enabled or tokens <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            levels: Dict[str, float] = {key: self._level(key, now) for key in keys}
            if tokens > self.burst:
                return math.inf
            wait = max((tokens - level) / self.rate_per_s for level in levels.values())
            if wait > 0:
                return wait
            for key, level in levels.items():
                self._buckets[key] = (level - tokens, now)
                self._buckets.move_to_end(key)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return 0.0


def token_buckets(
    name: str,
    rate_per_minute: float,
    burst: int,
    max_keys: int = 10_000,
    environ: Optional[Mapping[str, str]] = None,
) -> "TokenBucketLimiter | RedisTokenBuckets":
    """The limiter for one rate limit: shared in Redis when ``REDIS_URL`` is set (every server counts against
    the same buckets), else :class:`TokenBucketLimiter` in this process. A rate of 0 (off) is always local.

    Args:
        name: The limit's name in the Redis keys, e.g. ``rest-address-messages``.
        rate_per_minute, burst, max_keys: As :class:`TokenBucketLimiter`.
        environ: Where ``REDIS_URL`` is looked up (default ``os.environ``).
    """
    from stores.buckets import RedisTokenBuckets
    from stores.settings import redis_url

    url = redis_url(environ)
    if url and rate_per_minute > 0:
        return RedisTokenBuckets(url, name, rate_per_minute, burst)
    return TokenBucketLimiter(rate_per_minute, burst, max_keys=max_keys)
