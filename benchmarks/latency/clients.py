"""The clients of the latency bench: one timed REST turn, and the concurrent load of the throughput mode.

Each conversation of ours talks from its own loopback address (127.42.x.y; Linux routes all of 127/8 to the
loopback interface): the project's channel limits messages per client address (120/min, burst 60, as shipped
in credentials.yml) and per conversation (30/min, burst 10), and the bench measures the server as `make serve`
runs it, limits included, instead of switching them off. One address per conversation keeps every turn inside
both buckets (a conversation here is a handful of turns). The stock bot has no limits; it gets the same client.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

#: Seconds one request may take before the client gives up.
REQUEST_TIMEOUT_S = 60.0


def loopback_address(index: int) -> str:
    """The ``index``-th client address: 127.42.0.1, 127.42.0.2, ... 127.42.0.254, 127.42.1.1, ... (cycling
    after 254 × 256 addresses)."""
    index %= 254 * 256
    return f"127.42.{index // 254}.{index % 254 + 1}"


def request_body(text: str, sender: str, with_message_id: bool) -> Dict[str, str]:
    """The JSON body of one text turn (a fresh ``message_id`` when asked: ours' idempotency key)."""
    body = {"sender": sender, "message": text}
    if with_message_id:
        body["message_id"] = secrets.token_hex(16)
    return body


def reply_error(status: int, payload: Any) -> Optional[str]:
    """Why an answer does not count as an answered turn (``None`` when it does): not HTTP 200, not a list of
    replies, no reply at all (every scripted text has an answer). A ``server_busy`` answer is answered (the
    throughput mode counts it apart)."""
    if status != 200:
        code = payload.get("error") if isinstance(payload, dict) else None
        return f"HTTP {status}" + (f" {code}" if code else "")
    if not isinstance(payload, list):
        return "not a list of replies"
    if not payload:
        return "no reply"
    return None


def is_busy(payload: Any, busy_texts: Sequence[str]) -> bool:
    """Whether the replies are the worker pool's ``utter_server_busy``."""
    return isinstance(payload, list) and any(
        isinstance(reply, dict) and (reply.get("text") or "").strip() in busy_texts for reply in payload)


def first_text(payload: Any) -> str:
    if isinstance(payload, list):
        for reply in payload:
            if isinstance(reply, dict) and reply.get("text"):
                return str(reply["text"])
            if isinstance(reply, dict):
                return json.dumps(reply)[:120]
    return json.dumps(payload)[:120] if payload is not None else ""


@dataclass
class Sample:
    """One timed turn."""

    bot: str
    text: str
    conversation: int
    latency_ms: float
    error: Optional[str] = None
    busy: bool = False
    reply: str = ""

    def as_dict(self) -> Dict[str, Any]:
        return {"bot": self.bot, "text": self.text, "conversation": self.conversation,
                "latency_ms": round(self.latency_ms, 2), "error": self.error, "busy": self.busy}


def timed_turn(port: int, path: str, body: Dict[str, str], token: Optional[str], source: str,
               timeout_s: float = REQUEST_TIMEOUT_S) -> "tuple[int, Any, float]":
    """POSTs ``body`` as JSON to ``127.0.0.1:port/path`` from ``source`` on a new connection and reads the whole
    answer: ``(status, parsed JSON or None, ms)``, the time taken with ``perf_counter`` from before the
    connection is opened to the last byte. Status 0 and the error's name for a failed request."""
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s, source_address=(source, 0))
    started = time.perf_counter()
    try:
        connection.request("POST", path, body=data, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        return response.status, payload, elapsed
    except (OSError, http.client.HTTPException) as error:
        return 0, {"error": type(error).__name__}, (time.perf_counter() - started) * 1000
    finally:
        connection.close()


# --------------------------------------------------------------------------------------------------------
# Throughput: many senders at once (asyncio + aiohttp)
# --------------------------------------------------------------------------------------------------------
@dataclass
class LoadTally:
    """Every turn of the throughput mode: ``(sent at, answered at, ms, error, busy)``."""

    turns: List["tuple[float, float, float, Optional[str], bool]"] = field(default_factory=list)


async def load(url: str, token: Optional[str], script: Sequence[str], concurrency: int, duration_s: float,
               busy_texts: Sequence[str], with_message_id: bool = True, run_id: str = "",
               max_turns_per_sender: int = 0, progress: Any = None, think_s: float = 0.0
               ) -> "tuple[LoadTally, float]":
    """``concurrency`` senders, each from its own loopback address, each sending the turns of ``script`` in a
    conversation of its own as fast as it is answered (closed loop: one request open per sender), a new
    conversation after each pass of the script, ``think_s`` after each answer (default 0: at once), until
    ``duration_s`` has passed (no turn starts after it) or ``max_turns_per_sender`` (default ``duration_s`` × 20)
    turns. Returns the tally and the start time (``perf_counter``)."""
    import aiohttp

    cap = max_turns_per_sender or max(1, int(duration_s * 20))
    tally = LoadTally()
    started = time.perf_counter()
    deadline = started + duration_s
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)

    async def sender(index: int) -> None:
        connector = aiohttp.TCPConnector(local_addr=(loopback_address(1000 + index), 0), limit=1)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            for turn in range(cap):
                if time.perf_counter() >= deadline:
                    return
                conversation = turn // len(script)
                body = request_body(script[turn % len(script)], f"tput-{run_id}-{index}-{conversation}",
                                    with_message_id)
                sent = time.perf_counter()
                try:
                    async with session.post(url, json=body, headers=headers) as response:
                        payload = await response.json(content_type=None)
                        status = response.status
                    error = reply_error(status, payload)
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                    payload, error = None, type(exc).__name__
                done = time.perf_counter()
                tally.turns.append((sent - started, done - started, (done - sent) * 1000, error,
                                    error is None and is_busy(payload, busy_texts)))
                if progress is not None:
                    progress.update(1)
                if think_s:
                    await asyncio.sleep(think_s)

    await asyncio.gather(*(sender(index) for index in range(concurrency)))
    return tally, started


def throughput_summary(tally: LoadTally, duration_s: float) -> Dict[str, Any]:
    """Turns/s answered within the window (excluding ``server_busy`` answers, and all answers), the latency
    of the answered turns (p50/p95/p99, ``server_busy`` ones apart), failures by reason."""
    from benchmarks.latency.stats import count_errors, latency_summary

    in_window = [turn for turn in tally.turns if turn[1] <= duration_s]
    answered = [turn for turn in tally.turns if turn[3] is None and not turn[4]]
    busy = [turn for turn in tally.turns if turn[3] is None and turn[4]]
    return {
        "turns_sent": len(tally.turns),
        "turns_per_s": round(sum(1 for t in in_window if t[3] is None and not t[4]) / duration_s, 2),
        "answers_per_s_incl_busy": round(sum(1 for t in in_window if t[3] is None) / duration_s, 2),
        "latency": latency_summary([turn[2] for turn in answered], (50, 95, 99)),
        "server_busy": len(busy),
        "server_busy_latency": latency_summary([turn[2] for turn in busy], (50, 95, 99)),
        "errors": count_errors(turn[3] for turn in tally.turns),
        "last_answer_s": round(max((turn[1] for turn in tally.turns), default=0.0), 2),
    }
