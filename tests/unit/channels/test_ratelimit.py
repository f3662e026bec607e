"""`channels.ratelimit`: token buckets per key, refilled with time, in a bounded table."""
from __future__ import annotations

import pytest

from channels.ratelimit import TokenBucketLimiter


def test_token_bucket_refills_with_time() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(rate_per_minute=60, burst=3, clock=lambda: now[0])
    assert limiter.take_all(("a",), 3) == 0
    assert limiter.take_all(("a",), 1) == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.take_all(("a",), 1) == 0
    assert limiter.take_all(("a", "b"), 1) > 0  # all or nothing: "b" is untouched
    assert limiter.retry_after("b", 3) == 0
    assert limiter.take_all(("b",), 4) == float("inf")
    assert TokenBucketLimiter(0, 1).take_all(("x",), 1000) == 0


def test_token_bucket_table_is_bounded() -> None:
    limiter = TokenBucketLimiter(rate_per_minute=1, burst=1, max_keys=100)
    for index in range(1000):
        limiter.take_all((f"k{index}",), 1)
    assert len(limiter._buckets) == 100

