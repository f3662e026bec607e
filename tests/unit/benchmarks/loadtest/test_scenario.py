"""benchmarks/loadtest/scenario.py: how the simulated customer reads replies and walks a visit, with a fake
`send` (no Locust, no server)."""
from __future__ import annotations

import random
from typing import Any, Dict, List, Optional, Tuple

import pytest

from benchmarks.loadtest import scenario
from benchmarks.loadtest.scenario import Reply

SIGNED = "web:" + "0123456789abcdef" * 2 + "." + "A" * 43


def test_a_signed_web_sender_loses_its_signature_in_the_tracker() -> None:
    assert scenario.tracker_sender(SIGNED) == "web:" + "0123456789abcdef" * 2
    assert scenario.tracker_sender("api:someone") == "api:someone"
    assert scenario.tracker_sender("web:short.sig") == "web:short.sig"


@pytest.mark.parametrize("text", ["yes", "Yes please!", " yes,  go ahead ", "sure", '/affirm{"x": 1}'])
def test_explicit_yeses(text: str) -> None:
    assert scenario.is_affirmative(text)


@pytest.mark.parametrize("text", ["no", "no thanks", "yes and no", "maybe", "", None, "not sure"])
def test_anything_else_is_not_a_yes(text: Optional[str]) -> None:
    assert not scenario.is_affirmative(text)


def test_the_cancel_question_is_recognised_by_text_or_response_and_names_the_order() -> None:
    question = "Order 20001 (3 items, €8.92) is placed. Shall I cancel it?"
    assert scenario.is_cancel_question(question, "20001")
    assert not scenario.is_cancel_question(question, "20002")
    assert scenario.is_cancel_question("Order 20001 …", "20001", scenario.CANCEL_QUESTION_RESPONSE)
    assert not scenario.is_cancel_question("Order 20001 is on its way.", "20001")


def test_message_ids_are_unique_and_within_the_channels_rule() -> None:
    ids = {scenario.message_id("abcd1234", user, visit, turn) for user in range(3) for visit in range(3)
           for turn in range(12)}
    assert len(ids) == 3 * 3 * 12
    with pytest.raises(ValueError):
        scenario.message_id("a" * 60, 1, 1, 1)


class FakeBot:
    """Answers like the assistant: the email question for tracking, then the order; the cancel question for
    the verified order; the cancellation for a yes. ``busy_first``: steps answered 'busy' once;
    ``fail_step``: a step whose turn fails."""

    REPLIES = {
        "track": "I can look that up once you confirm the email address on the order.",
        "track_email": "Order 20001 (3 items, €8.92) is confirmed and waiting to be packed.",
        "cancel": "Order 20001 (3 items, €8.92) is placed. Shall I cancel it?",
    }

    def __init__(self, busy_first: Tuple[str, ...] = (), fail_step: str = "") -> None:
        self.sent: List[Tuple[str, str, bool]] = []
        self.busy_first = set(busy_first)
        self.fail_step = fail_step

    def send(self, step: str, text: str, photo: bool) -> Reply:
        self.sent.append((step, text, photo))
        if step == self.fail_step:
            return Reply(ok=False)
        if step in self.busy_first:
            self.busy_first.discard(step)
            return Reply(ok=True, texts=["I'm busy right now"], busy=True)
        if step == "cancel_answer":
            done = "Done: order 20001 is cancelled and you won't be charged for it."
            return Reply(ok=True, texts=[done if scenario.is_affirmative(text) else "Okay."])
        return Reply(ok=True, texts=[self.REPLIES.get(step, "Sure.")])


def walk(bot: FakeBot, confirm: bool) -> List[Tuple[str, Dict[str, Any]]]:
    lines: List[Tuple[str, Dict[str, Any]]] = []
    visit = scenario.conversation(bot.send, lambda kind, fields: lines.append((kind, fields)),
                                  {"order_number": "20001", "email": "anna.berg@example.com"}, confirm,
                                  random.Random(1))
    for _ in visit:
        pass
    return lines


def test_a_visit_verifies_then_cancels_with_a_yes() -> None:
    bot = FakeBot()
    lines = dict(walk(bot, confirm=True))
    steps = [step for step, _, _ in bot.sent]
    assert steps == ["greet", "track", "track_email", "price", "photo", "cancel", "cancel_answer", "thanks"]
    assert bot.sent[2][1] == "anna.berg@example.com"
    assert [photo for _, _, photo in bot.sent] == [False, False, False, False, True, False, False, False]
    assert scenario.is_affirmative(bot.sent[6][1])
    assert lines["cancel"] == {"order_number": "20001", "email": "anna.berg@example.com", "asked": True,
                               "answer": "yes", "done_seen": True}
    assert lines["visit"] == {"order_number": "20001", "completed": True, "deviations": []}


def test_a_visit_that_answers_no() -> None:
    bot = FakeBot()
    lines = dict(walk(bot, confirm=False))
    assert scenario.normalised(bot.sent[6][1]) in scenario.NO_TEXTS
    assert lines["cancel"]["answer"] == "no" and not lines["cancel"]["done_seen"]


def test_a_busy_answer_is_sent_again_as_a_new_turn() -> None:
    bot = FakeBot(busy_first=("price",))
    walk(bot, confirm=True)
    assert [step for step, _, _ in bot.sent].count("price") == 2


def test_a_failed_turn_ends_the_visit_and_still_writes_its_lines() -> None:
    bot = FakeBot(fail_step="photo")
    lines = dict(walk(bot, confirm=True))
    assert [step for step, _, _ in bot.sent][-1] == "photo"
    assert lines["visit"]["completed"] is False and lines["cancel"]["asked"] is False


def test_a_visit_stopped_before_its_answer_was_sent_records_no_answer() -> None:
    bot = FakeBot()
    lines: List[Tuple[str, Dict[str, Any]]] = []
    visit = scenario.conversation(bot.send, lambda kind, fields: lines.append((kind, fields)),
                                  {"order_number": "20001", "email": "a@example.com"}, True, random.Random(1))
    while not bot.sent or bot.sent[-1][0] != "cancel":
        next(visit)  # the last one read the cancel question and stopped in the pause before the answer
    visit.close()  # the run ends there
    cancel = dict(lines)["cancel"]
    assert cancel["asked"] is True and cancel["answer"] is None
    assert [step for step, _, _ in bot.sent][-1] == "cancel"
