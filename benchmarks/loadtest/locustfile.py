"""The simulated customers of `make loadtest` (Locust; runs in `.venv-load`, started by `benchmarks.loadtest.run`).

Each Locust user is one customer at a time on a loopback address of its own (127.0.<n>.<m>, so the REST
channel's per-address rate limits see one customer each: HAProxy passes the address on in X-Forwarded-For):
it asks ``POST /webhooks/multimodal/session`` for a signed web conversation id, then holds the conversation of
:func:`benchmarks.loadtest.scenario.conversation`, one turn per Locust task (the wait time between tasks is the
customer's pause), and starts a new conversation with the next order when one ends.

Every turn carries a ``message_id``. A connection error, a timeout, 429, 502, 503 or 504 is sent again with the
SAME ``message_id`` (at most ``max_attempts`` tries; ``Retry-After`` honoured up to ``retry_after_cap_s``;
otherwise exponential back-off with jitter). Any other answer ends the turn. Every try and every turn is written
to the client log (JSON lines), which the checker reads:

- ``{"kind": "send", ...}`` before a turn's first try (so a turn cut off by the end of the run is known),
- ``{"kind": "attempt", "status", "error", "t0", "t1", ...}`` per try,
- ``{"kind": "turn", "ok", "status", "attempts", "busy", "replies", "t0", "t1", ...}`` per turn,
- ``{"kind": "session", ...}``, ``{"kind": "cancel", ...}`` and ``{"kind": "visit", ...}`` per visit.

Settings come from the plan file named by ``LOADTEST_PLAN`` (JSON written by the runner): ``run`` (run id),
``client_log``, ``orders`` (``[{"order_number", "email"}]``, one per visit, in order), ``photo_fields`` (the
JSON body fields of the photo), ``busy_texts``, ``yes_ratio``, ``think_s`` ([min, max]), ``timeout_s``,
``max_attempts``, ``retry_after_cap_s``, ``seed``, ``source_addresses`` (bool).
"""
from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from typing import Any, Dict, Optional

from locust import HttpUser, between, task
from requests.adapters import HTTPAdapter

from benchmarks.loadtest import scenario

PLAN: Dict[str, Any] = json.loads(open(os.environ["LOADTEST_PLAN"], encoding="utf-8").read())
WEBHOOK = "/webhooks/multimodal/webhook"
SESSION = "/webhooks/multimodal/session"
RETRY_STATUSES = {0, 429, 502, 503, 504}

_users = itertools.count(1)
_orders = itertools.count(0)
_log_lock = threading.Lock()
_log = open(PLAN["client_log"], "a", encoding="utf-8")


def log(kind: str, fields: Dict[str, Any]) -> None:
    """One line of the client log (``kind``, the wall-clock time ``t``, the fields)."""
    line = json.dumps({"kind": kind, "t": time.time(), **fields}, ensure_ascii=False)
    with _log_lock:
        _log.write(line + "\n")
        _log.flush()


def source_address(index: int) -> str:
    """The loopback address of customer ``index`` (1-based): 127.0.1.1, 127.0.1.2, ... 127.0.1.250, 127.0.2.1."""
    return f"127.0.{1 + (index - 1) // 250}.{1 + (index - 1) % 250}"


class SourceAddressAdapter(HTTPAdapter):
    """Connections from one local address (each simulated customer has its own)."""

    def __init__(self, address: str, **kwargs: Any) -> None:
        self._source = (address, 0)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = self._source
        super().init_poolmanager(*args, **kwargs)


class Customer(HttpUser):
    """One simulated customer (see the module docstring)."""

    wait_time = between(*PLAN["think_s"])

    def on_start(self) -> None:
        self.index = next(_users)
        self.rng = random.Random(f"{PLAN['seed']}-{self.index}")
        self.address = source_address(self.index) if PLAN.get("source_addresses", True) else None
        if self.address:
            self.client.mount("http://", SourceAddressAdapter(self.address))
        self.visit_number = 0
        self.turn_number = 0
        self.sender: Optional[str] = None
        self.visit = None

    def ids(self) -> Dict[str, Any]:
        return {"user": self.index, "visit": self.visit_number, "sender": self.sender, "address": self.address}

    # ---- HTTP with retries ---------------------------------------------------------------------------
    def _pause_before_retry(self, attempt: int, response: Any) -> None:
        retry_after = None
        if response is not None and getattr(response, "headers", None):
            try:
                retry_after = float(response.headers.get("Retry-After", ""))
            except ValueError:
                retry_after = None
        if retry_after is not None:
            pause = min(retry_after, PLAN["retry_after_cap_s"])
        else:
            pause = min(8.0, 0.5 * 2 ** (attempt - 1)) * (0.5 + self.rng.random())
        time.sleep(pause)

    def post(self, path: str, body: Optional[Dict[str, Any]], name: str, fields: Dict[str, Any]) -> Any:
        """POSTs with the retry rule; returns ``(response or None, attempts, status)``."""
        response = None
        status = 0
        attempts = 0
        for attempt in range(1, PLAN["max_attempts"] + 1):
            attempts = attempt
            t0 = time.time()
            with self.client.post(path, json=body, name=name, timeout=PLAN["timeout_s"],
                                  catch_response=True) as response:
                status = int(response.status_code or 0)
                error = detail = None
                if status == 0:
                    cause = getattr(response, "error", None)
                    error, detail = type(cause).__name__, str(cause)[:200]
                    response.failure(error)
                elif status != 200:
                    error = f"HTTP {status}"
                    response.failure(error)
                else:
                    response.success()
            log("attempt", {**self.ids(), **fields, "attempt": attempt, "t0": t0, "t1": time.time(),
                            "status": status, "error": error, "detail": detail})
            if status not in RETRY_STATUSES or attempt == PLAN["max_attempts"]:
                break
            self._pause_before_retry(attempt, response)
        return response, attempts, status

    # ---- one visit ----------------------------------------------------------------------------------
    def new_session(self) -> bool:
        t0 = time.time()
        response, attempts, status = self.post(SESSION, None, "session", {"step": "session"})
        self.sender = None
        if status == 200:
            try:
                self.sender = response.json()["sender"]
            except (ValueError, KeyError, TypeError):
                status = -1
        log("session", {**self.ids(), "ok": self.sender is not None, "status": status, "attempts": attempts,
                        "t0": t0, "t1": time.time()})
        return self.sender is not None

    def send(self, step: str, text: str, photo: bool) -> scenario.Reply:
        self.turn_number += 1
        mid = scenario.message_id(PLAN["run"], self.index, self.visit_number, self.turn_number)
        body: Dict[str, Any] = {"sender": self.sender, "message": text, "message_id": mid}
        if photo:
            body.update(PLAN["photo_fields"])
        fields = {"message_id": mid, "step": step}
        t0 = time.time()
        log("send", {**self.ids(), **fields, "text": text, "photo": photo, "t0": t0})
        response, attempts, status = self.post(WEBHOOK, body, f"webhook {step}", fields)
        texts = []
        if status == 200:
            try:
                texts = [reply.get("text") or "" for reply in response.json() if isinstance(reply, dict)]
            except ValueError:
                status = -1
        busy = any(text.strip() in PLAN["busy_texts"] for text in texts)
        log("turn", {**self.ids(), **fields, "text": text, "photo": photo, "ok": status == 200,
                     "status": status, "attempts": attempts, "busy": busy, "t0": t0, "t1": time.time(),
                     "replies": [reply[:300] for reply in texts]})
        return scenario.Reply(ok=status == 200, texts=texts, busy=busy)

    def start_visit(self) -> bool:
        self.visit_number += 1
        self.turn_number = 0
        if not self.new_session():
            return False
        orders = PLAN["orders"]
        order = orders[next(_orders) % len(orders)]
        confirm = self.rng.random() < PLAN["yes_ratio"]
        sender_fields = self.ids()  # the visit's lines name its conversation, also when written at the end
        self.visit = scenario.conversation(
            self.send, lambda kind, fields: log(kind, {**sender_fields, **fields}), order, confirm, self.rng
        )
        return True

    @task
    def next_turn(self) -> None:
        """The next turn of the current visit (a new visit when there is none)."""
        if self.visit is None and not self.start_visit():
            return
        try:
            next(self.visit)
        except StopIteration:
            self.visit = None

    def on_stop(self) -> None:
        if self.visit is not None:
            self.visit.close()  # writes the visit's cancel and visit lines
            self.visit = None
