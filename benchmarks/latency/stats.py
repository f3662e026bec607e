"""Latency statistics of the latency bench: percentiles, summaries and the p50 ratio (pure, no numpy)."""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

#: p50 of ours / p50 of the stock bot, at most (the issue's target).
TARGET_RATIO = 1.3


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between the closest ranks (numpy's default,
    ``method="linear"``).

    Raises:
        ValueError: no values, or ``q`` outside 0-100.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0-100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(latencies_ms: Sequence[float], percentiles: Iterable[int] = (50, 95)) -> Dict[str, Any]:
    """``{"n", "p50_ms", "p95_ms", ..., "mean_ms", "min_ms", "max_ms"}`` of latencies in ms, 1 decimal; the
    figures are ``None`` for no latencies."""
    keys = [f"p{q}_ms" for q in percentiles]
    if not latencies_ms:
        return {"n": 0, **{key: None for key in keys}, "mean_ms": None, "min_ms": None, "max_ms": None}
    summary: Dict[str, Any] = {"n": len(latencies_ms)}
    for q, key in zip(percentiles, keys):
        summary[key] = round(percentile(latencies_ms, q), 1)
    summary["mean_ms"] = round(sum(latencies_ms) / len(latencies_ms), 1)
    summary["min_ms"] = round(min(latencies_ms), 1)
    summary["max_ms"] = round(max(latencies_ms), 1)
    return summary


def p50_ratio(ours: Mapping[str, Any], stock: Mapping[str, Any]) -> Optional[float]:
    """p50 of ours / p50 of the stock bot (2 decimals); ``None`` when either is missing or the stock one is 0."""
    if not stock.get("p50_ms") or ours.get("p50_ms") is None:
        return None
    return round(ours["p50_ms"] / stock["p50_ms"], 2)


def target_met(ratio: Optional[float], target: float = TARGET_RATIO) -> bool:
    """Whether a measured ratio is at most the target (no ratio: not met)."""
    return ratio is not None and ratio <= target


def count_errors(errors: Iterable[Optional[str]]) -> Dict[str, int]:
    """How many turns failed for each reason (``None`` = no failure, not counted), most frequent first."""
    return dict(Counter(error for error in errors if error is not None).most_common())


def per_text_summaries(samples: Sequence[Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """The latency summary of each text (answered turns only), in the order the texts were first sent.

    Args:
        samples: Turns as ``{"text", "latency_ms", "error"}``.
    """
    by_text: Dict[str, List[float]] = {}
    for sample in samples:
        bucket = by_text.setdefault(sample["text"], [])
        if sample.get("error") is None:
            bucket.append(sample["latency_ms"])
    return {text: latency_summary(values) for text, values in by_text.items()}
