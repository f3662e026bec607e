"""The load test's correctness checks: what the clients sent against what the tracker store and the shop hold.

Inputs (each check is a pure function of these; the readers at the end fetch them):

- the client log (JSON lines of `benchmarks.loadtest.locustfile`): every turn a client sent (``send``), how it
  ended (``turn``), and each visit's cancel answer (``cancel``);
- the tracker store's events (Rasa's SQL schema, table ``events``: id, sender_id, type_name, timestamp,
  intent_name, action_name, data), read through ``TRACKER_STORE_URL``;
- the orders cancelled in the shop database during the run (``order_status_events`` with status cancelled).

Checks (each failure is listed with examples in the report; any failure makes the run fail):

1. **Every turn once**: each ``message_id`` a client sent is the ``message_id`` of exactly one user event of its
   conversation (`scenario.tracker_sender`). None: a *lost* turn (split by whether the client had an answer:
   an answered turn that is not in the tracker was acknowledged and then lost; an unanswered one the client
   gave up on, or was still waiting for when the run ended: ``unfinished``, reported but not failed, as
   nobody could retry it). More than one: a *duplicated* turn. In another conversation: *misrouted*.
2. **Every turn answered**: in each conversation of the run, every user event is followed by at least one bot
   event before the next user event.
3. **No duplicated events**: no two events of a conversation are the same row twice (type, timestamp, data).
4. **No unconfirmed order changes**: every order cancelled during the run was asked about ("Shall I cancel
   it?" naming the order) in a conversation of the customer the order was given to, and the customer's next
   message after that question was an explicit yes (`scenario.is_affirmative`), sent before the cancellation
   (plus :data:`CLOCK_SLACK_S`). A customer who answered no and whose order was cancelled anyway fails this.
5. **No phantom cancellations**: no client was told "order N is cancelled" for an order the shop did not
   cancel during the run.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from benchmarks.loadtest import scenario

#: Seconds a yes may follow the cancellation's database timestamp (two clocks of the same machine: the
#: replica's time.time() and the action server's utcnow()).
CLOCK_SLACK_S = 1.0
#: Examples listed per finding.
EXAMPLES = 10


@dataclass(frozen=True)
class Event:
    """One row of the tracker store's ``events`` table (``data`` decoded)."""

    id: int
    sender_id: str
    type_name: str
    timestamp: float
    intent_name: Optional[str]
    action_name: Optional[str]
    data: Dict[str, Any]

    @property
    def message_id(self) -> Optional[str]:
        return self.data.get("message_id")

    @property
    def text(self) -> str:
        return self.data.get("text") or ""

    @property
    def response(self) -> Optional[str]:
        return (self.data.get("metadata") or {}).get("utter_action")


@dataclass(frozen=True)
class Cancellation:
    """An order the shop cancelled: its number and when (seconds since the epoch)."""

    order_number: str
    at: float


@dataclass
class Finding:
    """One check's result: how many cases failed, a few of them, and whether they fail the run."""

    name: str
    description: str
    count: int = 0
    examples: List[str] = field(default_factory=list)
    fails_run: bool = True

    def add(self, example: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)

    @property
    def failed(self) -> bool:
        return self.fails_run and self.count > 0


@dataclass
class CheckResult:
    """Every finding, and the counts they were checked on."""

    findings: Dict[str, Finding]
    counts: Dict[str, int]

    @property
    def passed(self) -> bool:
        return not any(finding.failed for finding in self.findings.values())

    def as_dict(self) -> Dict[str, Any]:
        return {
            "passed": self.passed,
            "counts": self.counts,
            "findings": {
                name: {"description": f.description, "count": f.count, "fails_run": f.fails_run,
                       "failed": f.failed, "examples": f.examples}
                for name, f in self.findings.items()
            },
        }


# --------------------------------------------------------------------------------------------------------
# The client log
# --------------------------------------------------------------------------------------------------------
@dataclass
class SentTurn:
    """A turn as the client saw it: sent (always), answered (``ok``) or given up (``ended`` without ok), or
    still open when the run ended (not ``ended``)."""

    message_id: str
    sender: str
    step: str
    text: str
    ended: bool = False
    ok: bool = False


def read_client_log(path: Path) -> List[Dict[str, Any]]:
    """The client log's records (lines that are not JSON objects are skipped: a line cut by a killed client)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def sent_turns(records: Iterable[Mapping[str, Any]]) -> Dict[str, SentTurn]:
    """The turns of the client log by message_id (``send`` opens one, ``turn`` ends it)."""
    turns: Dict[str, SentTurn] = {}
    for record in records:
        kind, mid = record.get("kind"), record.get("message_id")
        if kind == "send" and mid:
            turns.setdefault(mid, SentTurn(mid, scenario.tracker_sender(record.get("sender") or ""),
                                           record.get("step") or "", record.get("text") or ""))
        elif kind == "turn" and mid:
            turn = turns.setdefault(mid, SentTurn(mid, scenario.tracker_sender(record.get("sender") or ""),
                                                  record.get("step") or "", record.get("text") or ""))
            turn.ended, turn.ok = True, bool(record.get("ok"))
    return turns


def owners_of_orders(records: Iterable[Mapping[str, Any]]) -> Dict[str, Set[str]]:
    """Which conversations (tracker sender ids) were given each order (from the ``cancel`` lines)."""
    owners: Dict[str, Set[str]] = defaultdict(set)
    for record in records:
        if record.get("kind") == "cancel" and record.get("order_number") and record.get("sender"):
            owners[record["order_number"]].add(scenario.tracker_sender(record["sender"]))
    return owners


# --------------------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------------------
def _by_conversation(events: Iterable[Event]) -> Dict[str, List[Event]]:
    conversations: Dict[str, List[Event]] = defaultdict(list)
    for event in events:
        conversations[event.sender_id].append(event)
    for conversation in conversations.values():
        conversation.sort(key=lambda event: event.id)
    return conversations


def check_turns_once(turns: Mapping[str, SentTurn], events: Iterable[Event]) -> Dict[str, Finding]:
    """Check 1 (see the module docstring)."""
    lost = Finding("lost_turns", "answered turns (HTTP 200) that are not in the tracker store")
    gave_up = Finding("failed_turns_lost", "turns the client gave up on (retries spent) that are not in the "
                      "tracker store")
    unfinished = Finding("unfinished_turns", "turns still waiting for an answer when the run ended, not in the "
                         "tracker store (nobody could retry them)", fails_run=False)
    duplicated = Finding("duplicated_turns", "message_ids found in more than one user event")
    misrouted = Finding("misrouted_turns", "message_ids found in another conversation than the one that sent them")
    seen: Dict[str, List[Event]] = defaultdict(list)
    for event in events:
        if event.type_name == "user" and event.message_id:
            seen[event.message_id].append(event)
    for mid, turn in turns.items():
        found = seen.get(mid, [])
        own = [event for event in found if event.sender_id == turn.sender]
        if len(found) > len(own):
            misrouted.add(f"{mid} sent by {turn.sender}, found in "
                          f"{sorted({e.sender_id for e in found if e.sender_id != turn.sender})}")
        if len(own) > 1:
            duplicated.add(f"{mid} ({turn.step}: {turn.text[:40]!r}) {len(own)} times in {turn.sender}")
        elif not own:
            target = lost if turn.ok else unfinished if not turn.ended else gave_up
            target.add(f"{mid} ({turn.step}: {turn.text[:40]!r}) of {turn.sender}")
    return {finding.name: finding for finding in (lost, gave_up, duplicated, misrouted, unfinished)}


def check_turns_answered(events: Iterable[Event], senders: Optional[Set[str]] = None) -> Finding:
    """Check 2: a user event without a bot event before the next user event (or the end)."""
    unanswered = Finding("unanswered_turns", "user events without a bot event before the next user event")
    for sender, conversation in _by_conversation(events).items():
        if senders is not None and sender not in senders:
            continue
        pending: Optional[Event] = None
        for event in conversation:
            if event.type_name == "user":
                if pending is not None:
                    unanswered.add(f"{sender} event {pending.id} ({pending.text[:40]!r}, {pending.message_id})")
                pending = event
            elif event.type_name == "bot":
                pending = None
        if pending is not None:
            unanswered.add(f"{sender} event {pending.id} ({pending.text[:40]!r}, {pending.message_id}) (last)")
    return unanswered


def check_duplicate_events(events: Iterable[Event], senders: Optional[Set[str]] = None) -> Finding:
    """Check 3: the same event (type, timestamp, data) stored more than once in a conversation."""
    duplicates = Finding("duplicated_events", "events stored more than once in a conversation (same type, "
                         "timestamp and data)")
    keys: Counter = Counter()
    first_id: Dict[Tuple[str, str, float, str], int] = {}
    for event in events:
        if senders is not None and event.sender_id not in senders:
            continue
        key = (event.sender_id, event.type_name, event.timestamp, json.dumps(event.data, sort_keys=True))
        keys[key] += 1
        first_id.setdefault(key, event.id)
    for key, count in keys.items():
        if count > 1:
            for _ in range(count - 1):
                duplicates.add(f"{key[0]} {key[1]} event {first_id[key]} stored {count} times")
    return duplicates


def check_cancellations(
    cancellations: Sequence[Cancellation],
    events: Iterable[Event],
    owners: Mapping[str, Set[str]],
) -> Finding:
    """Check 4 (see the module docstring). ``owners``: the conversations each order was given to (orders not
    given to any client may be confirmed in any conversation)."""
    unconfirmed = Finding("unconfirmed_changes", "orders cancelled without an explicit yes to the cancel "
                          "question from the customer the order was given to")
    conversations = _by_conversation(events)
    for cancellation in cancellations:
        number = cancellation.order_number
        allowed = owners.get(number)
        answers: List[Tuple[float, str, Event]] = []  # (time, conversation, the message after the question)
        for sender, conversation in conversations.items():
            if allowed and sender not in allowed:
                continue
            question: Optional[Event] = None
            for event in conversation:
                if event.timestamp > cancellation.at + CLOCK_SLACK_S:
                    break
                if event.type_name == "bot" and scenario.is_cancel_question(event.text, number, event.response):
                    question = event
                elif event.type_name == "user" and question is not None:
                    answers.append((event.timestamp, sender, event))
                    question = None
        # The last answer to a question about this order before the cancellation decides.
        last = max(answers, key=lambda answer: answer[0]) if answers else None
        if last is None or not scenario.is_affirmative(last[2].text):
            who = f"given to {sorted(allowed)}" if allowed else "given to no client"
            detail = f"{last[1]} answered {last[2].text[:30]!r}" if last else "no cancel question answered before it"
            unconfirmed.add(f"order {number} cancelled at {cancellation.at:.3f} ({who}): {detail}")
    return unconfirmed


def check_phantom_cancellations(
    records: Iterable[Mapping[str, Any]], cancellations: Sequence[Cancellation]
) -> Finding:
    """Check 5: clients told that an order is cancelled that the shop did not cancel during the run."""
    phantom = Finding("phantom_cancellations", "orders a client was told are cancelled that the shop did not "
                      "cancel during the run")
    cancelled = {cancellation.order_number for cancellation in cancellations}
    for record in records:
        if record.get("kind") == "cancel" and record.get("done_seen") and record.get("order_number") not in cancelled:
            phantom.add(f"order {record.get('order_number')} ({scenario.tracker_sender(record.get('sender') or '')})")
    return phantom


def run_checks(
    records: Sequence[Mapping[str, Any]], events: Sequence[Event], cancellations: Sequence[Cancellation]
) -> CheckResult:
    """Every check of the module docstring over one run's inputs."""
    turns = sent_turns(records)
    senders = {turn.sender for turn in turns.values()}
    findings = check_turns_once(turns, events)
    for finding in (
        check_turns_answered(events, senders),
        check_duplicate_events(events, senders),
        check_cancellations(cancellations, events, owners_of_orders(records)),
        check_phantom_cancellations(records, cancellations),
    ):
        findings[finding.name] = finding
    run_events = [event for event in events if event.sender_id in senders]
    counts = {
        "turns_sent": len(turns),
        "turns_answered": sum(turn.ok for turn in turns.values()),
        "conversations": len(senders),
        "tracker_events": len(run_events),
        "tracker_user_events": sum(event.type_name == "user" for event in run_events),
        "orders_cancelled": len(cancellations),
        "cancel_answers_yes": sum(r.get("kind") == "cancel" and r.get("answer") == "yes" for r in records),
        "cancel_answers_no": sum(r.get("kind") == "cancel" and r.get("answer") == "no" for r in records),
    }
    return CheckResult(findings, counts)


# --------------------------------------------------------------------------------------------------------
# Readers (databases)
# --------------------------------------------------------------------------------------------------------
def read_events(tracker_store_url: str, since: float) -> List[Event]:
    """The tracker store's events with a timestamp from ``since`` on (seconds since the epoch), by id."""
    from sqlalchemy import create_engine, text

    engine = create_engine(tracker_store_url, future=True)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT id, sender_id, type_name, timestamp, intent_name, action_name, data FROM events "
                     "WHERE timestamp >= :since ORDER BY id"),
                {"since": since},
            ).all()
    finally:
        engine.dispose()
    return [
        Event(int(row[0]), row[1], row[2], float(row[3] or 0.0), row[4], row[5], json.loads(row[6] or "{}"))
        for row in rows
    ]


def epoch_seconds(moment: datetime) -> float:
    """Seconds since the epoch of a datetime (a naive one is UTC, as the shop stores them)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def read_cancellations(database_url: str, since: float) -> List[Cancellation]:
    """Orders whose status became cancelled from ``since`` on (the shop's order_status_events)."""
    from sqlalchemy import select

    from shop.db import make_engine, make_session_factory
    from shop.models import Order, OrderStatusEvent
    from shop.statuses import OrderStatus

    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(
                select(Order.order_number, OrderStatusEvent.at)
                .join(OrderStatusEvent, OrderStatusEvent.order_id == Order.id)
                .where(OrderStatusEvent.status == OrderStatus.CANCELLED)
            ).all()
    finally:
        engine.dispose()
    found = [Cancellation(str(number), epoch_seconds(at)) for number, at in rows]
    return sorted((c for c in found if c.at >= since), key=lambda c: c.at)
