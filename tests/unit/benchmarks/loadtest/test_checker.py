"""benchmarks/loadtest/checker.py on synthetic runs: a clean run passes, and each fault (a lost, duplicated,
misrouted or unanswered turn, a duplicated event, an unconfirmed or phantom cancellation) is found and fails
the run. No cluster, no database: the checks are pure functions of the client log, the events and the
cancellations."""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from benchmarks.loadtest import checker, scenario
from benchmarks.loadtest.checker import Cancellation, Event

SIGNATURE = "s" * 43
ALICE = "web:" + "a" * 32
BOB = "web:" + "b" * 32


class Run:
    """Builds a consistent run: what the clients logged and what the tracker store holds."""

    def __init__(self) -> None:
        self.records: List[Dict[str, Any]] = []
        self.events: List[Event] = []
        self.cancellations: List[Cancellation] = []
        self.ids = itertools.count(1)
        self.clock = 1000.0

    def tick(self) -> float:
        self.clock += 0.5
        return self.clock

    def event(self, sender: str, type_name: str, text: str = "", message_id: Optional[str] = None,
              response: Optional[str] = None, **data: Any) -> Event:
        payload: Dict[str, Any] = {"event": type_name, "timestamp": self.tick(), "text": text, **data}
        if message_id:
            payload["message_id"] = message_id
        if response:
            payload["metadata"] = {"utter_action": response}
        event = Event(next(self.ids), sender, type_name, payload["timestamp"], None, None, payload)
        self.events.append(event)
        return event

    def client(self, kind: str, sender: str, **fields: Any) -> None:
        self.records.append({"kind": kind, "sender": f"{sender}.{SIGNATURE}", "t": self.clock, **fields})

    def turn(self, sender: str, mid: str, text: str, replies: List[str], ok: bool = True,
             stored: bool = True, ended: bool = True, response: Optional[str] = None) -> None:
        """A turn the client sent; ``stored``: the tracker holds its user event and the bot's replies."""
        t0 = self.tick()
        self.client("send", sender, message_id=mid, step="x", text=text, t0=t0)
        if stored:
            self.event(sender, "action", action_name="action_listen")
            self.event(sender, "user", text, message_id=mid)
            for reply in replies:
                self.event(sender, "bot", reply, response=response)
        if ended:
            self.client("turn", sender, message_id=mid, step="x", text=text, ok=ok, status=200 if ok else 502,
                        attempts=1, busy=False, t0=t0, t1=self.tick(), replies=replies if ok else [])

    def cancel_visit(self, sender: str, order: str, answer: str, cancelled: bool, prefix: str) -> None:
        """Cancel order ``order``: the question, the customer's ``answer``, and (``cancelled``) the shop's
        cancellation after it."""
        question = f"Order {order} (3 items, €9.99) is placed. Shall I cancel it?"
        self.turn(sender, f"{prefix}-1", f"cancel order {order}", [question], response="utter_ask_cancel_confirmed")
        done = f"Done: order {order} is cancelled and you won't be charged for it."
        self.turn(sender, f"{prefix}-2", answer, [done] if cancelled else ["Okay, I haven't changed anything."])
        if cancelled:
            self.cancellations.append(Cancellation(order, self.tick()))
        self.client("cancel", sender, order_number=order, email="x@example.com", asked=True,
                    answer="yes" if scenario.is_affirmative(answer) else "no", done_seen=cancelled)


def clean_run() -> Run:
    run = Run()
    run.turn(ALICE, "a-0", "hi", ["Hi! I'm the shop assistant."])
    run.cancel_visit(ALICE, "20001", "yes", cancelled=True, prefix="a-c")
    run.turn(BOB, "b-0", "hello", ["Hi! I'm the shop assistant."])
    run.cancel_visit(BOB, "20002", "no", cancelled=False, prefix="b-c")
    run.turn(BOB, "b-9", "thanks", ["You're welcome!"])
    return run


def failed(result: checker.CheckResult) -> Dict[str, int]:
    return {name: f.count for name, f in result.findings.items() if f.failed}


def test_a_clean_run_passes_every_check() -> None:
    run = clean_run()
    result = checker.run_checks(run.records, run.events, run.cancellations)
    assert result.passed, result.as_dict()
    assert result.counts["turns_sent"] == 7 and result.counts["turns_answered"] == 7
    assert result.counts["orders_cancelled"] == 1
    assert result.counts["cancel_answers_yes"] == 1 and result.counts["cancel_answers_no"] == 1


def test_a_turn_stored_twice_is_a_duplicated_turn() -> None:
    run = clean_run()
    original = next(e for e in run.events if e.message_id == "b-9")
    run.event(BOB, "user", original.text, message_id="b-9")  # a retry handled again
    run.event(BOB, "bot", "You're welcome!")
    result = checker.run_checks(run.records, run.events, run.cancellations)
    assert not result.passed
    assert failed(result) == {"duplicated_turns": 1}
    assert "b-9" in result.findings["duplicated_turns"].examples[0]


def test_an_answered_turn_missing_from_the_tracker_is_lost() -> None:
    run = clean_run()
    run.turn(ALICE, "a-lost", "how much are bananas", ["Bananas cost €0.25."], stored=False)
    result = checker.run_checks(run.records, run.events, run.cancellations)
    assert failed(result) == {"lost_turns": 1}
    assert "a-lost" in result.findings["lost_turns"].examples[0]


def test_a_turn_given_up_and_missing_fails_but_one_cut_off_by_the_end_is_only_noted() -> None:
    run = clean_run()
    run.turn(ALICE, "a-gave-up", "hello?", [], ok=False, stored=False)
    run.turn(BOB, "b-open", "one more thing", [], stored=False, ended=False)
    result = checker.run_checks(run.records, run.events, run.cancellations)
    assert failed(result) == {"failed_turns_lost": 1}
    assert result.findings["unfinished_turns"].count == 1 and not result.findings["unfinished_turns"].failed


def test_a_turn_in_another_conversation_is_misrouted() -> None:
    run = clean_run()
    run.turn(ALICE, "a-moved", "where is my order", ["Which order?"], stored=False)
    run.event(BOB, "user", "where is my order", message_id="a-moved")
    run.event(BOB, "bot", "Which order?")
    result = checker.run_checks(run.records, run.events, run.cancellations)
    assert failed(result) == {"misrouted_turns": 1, "lost_turns": 1}


def test_a_user_event_without_a_bot_event_is_unanswered() -> None:
    run = clean_run()
    run.turn(ALICE, "a-silent", "is anyone there", [])  # stored, but no bot event follows
    run.turn(ALICE, "a-next", "hello", ["Hi!"])
    result = checker.run_checks(run.records, run.events, run.cancellations)
    assert failed(result) == {"unanswered_turns": 1}
    assert "a-silent" in result.findings["unanswered_turns"].examples[0]


def test_an_event_row_stored_twice_is_a_duplicated_event() -> None:
    run = clean_run()
    slot = run.event(ALICE, "slot", name="order_number", value="20001")
    run.events.append(Event(next(run.ids), slot.sender_id, slot.type_name, slot.timestamp, None, None,
                            dict(slot.data)))
    result = checker.run_checks(run.records, run.events, run.cancellations)
    assert failed(result) == {"duplicated_events": 1}


@pytest.mark.parametrize("answer", ["no", "no thanks", "what?"])
def test_an_order_cancelled_after_anything_but_yes_is_an_unconfirmed_change(answer: str) -> None:
    run = clean_run()
    run.cancel_visit(ALICE, "20003", answer, cancelled=True, prefix="a-d")
    result = checker.run_checks(run.records, run.events, run.cancellations)
    assert failed(result) == {"unconfirmed_changes": 1}
    assert "20003" in result.findings["unconfirmed_changes"].examples[0]


def test_an_order_cancelled_without_any_question_is_an_unconfirmed_change() -> None:
    run = clean_run()
    run.cancellations.append(Cancellation("20002", run.tick()))  # Bob said no; the order is cancelled anyway
    result = checker.run_checks(run.records, run.events, run.cancellations)
    assert failed(result) == {"unconfirmed_changes": 1}


def test_a_yes_from_another_customer_does_not_confirm_an_order() -> None:
    run = clean_run()
    # Bob is given 20004 and says no; Alice is asked about 20004 (she may not be) and says yes: cancelled.
    run.turn(BOB, "b-e1", "cancel order 20004", ["Order 20004 (…) is placed. Shall I cancel it?"])
    run.turn(BOB, "b-e2", "no", ["Okay, I haven't changed anything."])
    run.client("cancel", BOB, order_number="20004", asked=True, answer="no", done_seen=False)
    run.turn(ALICE, "a-e1", "cancel order 20004", ["Order 20004 (…) is placed. Shall I cancel it?"])
    run.turn(ALICE, "a-e2", "yes", ["Done: order 20004 is cancelled and you won't be charged for it."])
    run.cancellations.append(Cancellation("20004", run.tick()))
    result = checker.run_checks(run.records, run.events, run.cancellations)
    assert failed(result) == {"unconfirmed_changes": 1}


def test_the_last_answer_before_the_cancellation_decides_and_a_later_yes_does_not_count() -> None:
    run = clean_run()
    question = ["Order 20005 (…) is placed. Shall I cancel it?"]
    run.turn(ALICE, "a-f1", "cancel order 20005", question)
    run.turn(ALICE, "a-f2", "yes", ["Sorry, something went wrong."])  # a yes that did not cancel
    run.turn(ALICE, "a-f3", "cancel order 20005", question)
    run.turn(ALICE, "a-f4", "no", ["Okay, I haven't changed anything."])
    run.cancellations.append(Cancellation("20005", run.tick()))  # ... yet cancelled after the no
    run.turn(ALICE, "a-f5", "cancel order 20005", question)
    run.turn(ALICE, "a-f6", "yes", ["Order 20005 is already cancelled."])  # after the change: too late
    run.client("cancel", ALICE, order_number="20005", asked=True, answer="no", done_seen=False)
    result = checker.run_checks(run.records, run.events, run.cancellations)
    assert failed(result) == {"unconfirmed_changes": 1}
    assert "'no'" in result.findings["unconfirmed_changes"].examples[0]


def test_a_client_told_of_a_cancellation_the_shop_did_not_make_is_a_phantom() -> None:
    run = clean_run()
    run.cancel_visit(BOB, "20006", "yes", cancelled=True, prefix="b-g")
    run.cancellations = [c for c in run.cancellations if c.order_number != "20006"]  # the shop has no record
    result = checker.run_checks(run.records, run.events, run.cancellations)
    assert failed(result) == {"phantom_cancellations": 1}


def test_the_client_log_reader_skips_a_line_cut_by_a_killed_client(tmp_path: Path) -> None:
    log = tmp_path / "client-log.jsonl"
    log.write_text(json.dumps({"kind": "send", "message_id": "m"}) + "\n" + '{"kind": "tu', encoding="utf-8")
    assert checker.read_client_log(log) == [{"kind": "send", "message_id": "m"}]


def test_epoch_seconds_reads_naive_datetimes_as_utc() -> None:
    from datetime import datetime, timezone

    assert checker.epoch_seconds(datetime(1970, 1, 1, 0, 1)) == 60.0
    assert checker.epoch_seconds(datetime(1970, 1, 1, 0, 1, tzinfo=timezone.utc)) == 60.0
