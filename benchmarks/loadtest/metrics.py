"""Figures of a load-test run from the client log: throughput, latency, errors, and the same over time.

A *turn* is one customer message: from the first try to the final answer, retries included (what the customer
waits). Its latency counts only for answered turns (HTTP 200). Throughput is answered turns per second of the
run (first turn sent to the end of the Locust run). An *attempt* is one HTTP try; errors are counted per
attempt, by HTTP status or exception name.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Mapping, Optional, Sequence

#: Percentiles reported.
PERCENTILES = (50, 95, 99)


def percentiles(values_ms: Sequence[float]) -> Dict[str, Optional[float]]:
    """``{"n", "p50_ms", "p95_ms", "p99_ms", "max_ms"}`` (numpy's linear percentiles; ``None`` when empty)."""
    import numpy as np

    if not len(values_ms):
        return {"n": 0, **{f"p{q}_ms": None for q in PERCENTILES}, "max_ms": None}
    values = np.asarray(values_ms, dtype=float)
    summary: Dict[str, Optional[float]] = {"n": int(values.size)}
    for q in PERCENTILES:
        summary[f"p{q}_ms"] = round(float(np.percentile(values, q)), 1)
    summary["max_ms"] = round(float(values.max()), 1)
    return summary


def _of(records: Sequence[Mapping[str, Any]], kind: str) -> List[Mapping[str, Any]]:
    return [record for record in records if record.get("kind") == kind]


def error_kind(attempt: Mapping[str, Any]) -> Optional[str]:
    """What went wrong with an attempt (``"HTTP 502"``, ``"ConnectionError"``, ...), ``None`` for a 200."""
    status = attempt.get("status")
    if status == 200:
        return None
    if status in (0, None):
        return attempt.get("error") or "no answer"
    return f"HTTP {status}"


def summary(records: Sequence[Mapping[str, Any]], start: float, end: float) -> Dict[str, Any]:
    """The run's figures (see the module docstring); ``start``/``end``: the Locust run, seconds since epoch."""
    turns = _of(records, "turn")
    sends = {record["message_id"] for record in _of(records, "send")}
    ended = {record["message_id"] for record in turns}
    answered = [turn for turn in turns if turn.get("ok")]
    attempts = _of(records, "attempt")
    sessions = _of(records, "session")
    visits = _of(records, "visit")
    cancels = _of(records, "cancel")
    duration = max(end - start, 1e-9)
    errors = Counter(kind for kind in map(error_kind, attempts) if kind)
    deviations = Counter(deviation for visit in visits for deviation in visit.get("deviations") or [])
    return {
        "duration_s": round(duration, 1),
        "turns": {
            "sent": len(sends),
            "answered": len(answered),
            "failed": sum(1 for turn in turns if not turn.get("ok")),
            "unfinished": len(sends - ended),
            "busy": sum(1 for turn in answered if turn.get("busy")),
            "retried": sum(1 for turn in turns if (turn.get("attempts") or 1) > 1),
            "answered_after_retry": sum(1 for turn in answered if (turn.get("attempts") or 1) > 1),
        },
        "throughput_turns_per_s": round(len(answered) / duration, 2),
        "turn_latency": percentiles([1000 * (t["t1"] - t["t0"]) for t in answered]),
        "attempt_latency": percentiles(
            [1000 * (a["t1"] - a["t0"]) for a in attempts if a.get("status") == 200]
        ),
        "attempts": {"total": len(attempts), "failed": sum(errors.values()), "by_error": dict(errors)},
        "sessions": {
            "ok": sum(1 for s in sessions if s.get("ok")),
            "failed": sum(1 for s in sessions if not s.get("ok")),
        },
        "visits": {
            "started": len(visits),
            "completed": sum(1 for visit in visits if visit.get("completed")),
            "deviations": dict(deviations),
        },
        "cancel": {
            "asked": sum(1 for c in cancels if c.get("asked")),
            "answered_yes": sum(1 for c in cancels if c.get("answer") == "yes"),
            "answered_no": sum(1 for c in cancels if c.get("answer") == "no"),
            "done_seen": sum(1 for c in cancels if c.get("done_seen")),
        },
    }


def timeline(records: Sequence[Mapping[str, Any]], start: float, end: float, bin_s: float = 5.0
             ) -> List[Dict[str, Any]]:
    """Per ``bin_s`` seconds from ``start``: answered turns per second (by the time they were answered),
    p50/p95 latency of those turns (ms), and failed attempts (by the time they ended)."""
    import numpy as np

    count = max(1, int(np.ceil((end - start) / bin_s)))
    latencies: List[List[float]] = [[] for _ in range(count)]
    failures = [0] * count

    def slot(moment: float) -> Optional[int]:
        index = int((moment - start) // bin_s)
        return index if 0 <= index < count else None

    for record in records:
        if record.get("kind") == "turn" and record.get("ok"):
            index = slot(record["t1"])
            if index is not None:
                latencies[index].append(1000 * (record["t1"] - record["t0"]))
        elif record.get("kind") == "attempt" and error_kind(record):
            index = slot(record["t1"])
            if index is not None:
                failures[index] += 1
    rows = []
    for index in range(count):
        values = latencies[index]
        rows.append({
            "t_s": round(index * bin_s, 1),
            "turns_per_s": round(len(values) / bin_s, 2),
            "p50_ms": round(float(np.percentile(values, 50)), 1) if values else None,
            "p95_ms": round(float(np.percentile(values, 95)), 1) if values else None,
            "failed_attempts": failures[index],
        })
    return rows


def window(records: Sequence[Mapping[str, Any]], begin: float, end: float) -> Dict[str, Any]:
    """Answered turns, their latency and the failed attempts between ``begin`` and ``end`` (by answer time)."""
    answered = [r for r in records if r.get("kind") == "turn" and r.get("ok") and begin <= r["t1"] < end]
    failed = Counter(
        kind for r in records if r.get("kind") == "attempt" and begin <= r["t1"] < end
        for kind in [error_kind(r)] if kind
    )
    return {
        "seconds": round(end - begin, 1),
        "answered_turns": len(answered),
        "turns_per_s": round(len(answered) / max(end - begin, 1e-9), 2),
        "turn_latency": percentiles([1000 * (r["t1"] - r["t0"]) for r in answered]),
        "failed_attempts": dict(failed),
    }
