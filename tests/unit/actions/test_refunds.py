"""Unit tests of `actions.refunds` on the real repository over the seeded in-memory database (orders verified in
the conversation; the proof itself is tested in test_verification.py).

Seed orders: 10024 delivered (€9.56, no refund yet), 10025 cancelled (€6.74), 10026 delivered (€10.14,
€5.16 requested), 10029 delivered (€14.42, its one refund rejected), 10030 delivered and fully refunded, 10018
delivered (€3.98 paid back), 10019 cancelled (refund approved), 10021 placed, 10022 packed, 10023 shipped.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Optional

import pytest

from actions.refunds import ActionAskRefundConfirmed, ActionRequestRefund, ActionTrackRefund, ValidateRefundForm
from tests.unit.actions.harness import (
    buttons,
    form_tracker,
    make_tracker,
    rendered,
    responses,
    run,
    run_validation,
    slot_values,
    verified,
)


def request(number: str, reason: str = "bad", amount: Optional[str] = None, confirmed: Optional[bool] = True):
    """Run ``action_request_refund`` for the verified ``number`` after the customer's answer ``confirmed``;
    return (dispatcher, events)."""
    slots = verified(number, refund_reason=reason, amount=amount, refund_confirmed=confirmed)
    return run(ActionRequestRefund(), make_tracker(slots=slots))


# ----------------------------------------------------------------------------------------- requesting refunds


def test_refund_is_requested_with_the_customers_reason(repo) -> None:
    reason = "I want a refund for order 10024, the juice was sour"
    dispatcher, events = request("10024", reason)
    assert responses(dispatcher) == ["utter_refund_requested"]
    text = rendered(dispatcher)[0]
    assert "RF-10024-1" in text and "€9.56" in text
    (refund,) = repo.list_refunds("10024")
    assert refund.reason == reason and refund.amount == Decimal("9.56")
    assert slot_values(events)["refund_reason"] is None and slot_values(events)["amount"] is None
    assert slot_values(events)["refund_confirmed"] is None


@pytest.mark.parametrize("answer", [False, None])
def test_nothing_is_requested_without_a_yes(repo, db, answer: Optional[bool]) -> None:
    dispatcher, events = request("10024", confirmed=answer)
    assert responses(dispatcher) == ["utter_refund_not_requested"]
    assert "10024" in rendered(dispatcher)[0]
    assert db.unchanged()


def test_the_confirmation_shows_the_amount(repo, db) -> None:
    dispatcher, events = run(ActionAskRefundConfirmed(), make_tracker(slots=verified("10026")))
    assert responses(dispatcher) == ["utter_ask_refund_confirmed"]
    assert "€4.98" in rendered(dispatcher)[0] and "10026" in rendered(dispatcher)[0]
    assert [button["payload"] for button in buttons(dispatcher)] == ["/affirm", "/deny"]
    assert events == [] and db.unchanged()


@pytest.mark.parametrize(
    "number, amount, allowed",
    [("10024", None, True), ("10024", "2.50", True), ("10024", "20", False), ("10023", None, False),
     ("10030", None, False)],
)
async def test_the_form_asks_for_a_yes_only_when_a_refund_is_possible(
    repo, db, number: str, amount: Optional[str], allowed: bool
) -> None:
    tracker = form_tracker(
        "refund_form", None, {"order_number": number}, verified(number, amount=amount), text=number, intent="inform"
    )
    _, slots = await run_validation(ValidateRefundForm(), tracker)
    assert slots["order_action_allowed"] is allowed
    assert slots["requested_slot"] == ("refund_confirmed" if allowed else None)
    assert db.unchanged()


def test_partial_refund_reads_the_amount(repo) -> None:
    request("10024", "two bananas were bad", "2,50 €")
    assert repo.list_refunds("10024")[0].amount == Decimal("2.50")


@pytest.mark.parametrize(
    "number, expected",
    [
        ("10026", Decimal("4.98")),  # €10.14 less the €5.16 already requested
        ("10029", Decimal("14.42")),  # the rejected refund does not count
        ("10025", Decimal("6.74")),  # cancelled orders can be refunded
    ],
)
def test_the_refund_is_what_is_left_of_the_order(repo, number: str, expected: Decimal) -> None:
    dispatcher, _ = request(number)
    assert responses(dispatcher) == ["utter_refund_requested"]
    (*_, refund) = repo.list_refunds(number)
    assert refund.amount == expected and refund.status == "requested"
    assert f"€{expected}" in rendered(dispatcher)[0]


@pytest.mark.parametrize(
    "amount, fragment",
    [
        ("lots", "amount"),
        ("-5", "more than zero"),
        ("0", "more than zero"),
        ("1000000", "the most that can be refunded for order 10024 is 9.56 eur"),
        ("9.57", "the most that can be refunded for order 10024 is 9.56 eur"),
        ("4.555", "euros and cents"),
    ],
)
def test_bad_refund_amounts_are_explained(repo, db, amount: str, fragment: str) -> None:
    dispatcher, _ = request("10024", amount=amount)
    assert responses(dispatcher) == [None]
    assert fragment in rendered(dispatcher)[0].lower()
    assert db.unchanged()


def test_more_than_what_is_left_is_refused(repo, db) -> None:
    dispatcher, _ = request("10026", amount="5.00")
    assert "The most that can be refunded for order 10026 is 4.98 EUR." in rendered(dispatcher)
    assert db.unchanged()


def test_a_fully_refunded_order_gets_no_further_refund(repo, db) -> None:
    dispatcher, _ = request("10030", amount="0.01")
    assert "already been refunded" in rendered(dispatcher)[0]
    assert db.unchanged()


@pytest.mark.parametrize("number, status", [("10021", "placed"), ("10022", "packed"), ("10023", "shipped")])
@pytest.mark.parametrize("confirmed", [True, None])
def test_refund_for_an_order_not_delivered_yet_is_refused(
    repo, db, number: str, status: str, confirmed: Optional[bool]
) -> None:
    """A yes (forged) is refused by the shop; without one (the form skipped the question because the validator
    set ``order_action_allowed`` False) the shop's reason is the answer too."""
    slots = verified(number, refund_reason="x", refund_confirmed=confirmed, order_action_allowed=False)
    dispatcher, events = run(ActionRequestRefund(), make_tracker(slots=slots))
    assert f"Order {number} is {status}" in rendered(dispatcher)[0]
    assert ("cancel it instead" in rendered(dispatcher)[0]) is (status != "shipped")
    assert slot_values(events)["order_number"] is None
    assert db.unchanged()


def test_huge_refund_reason_is_cut(repo) -> None:
    request("10024", "z" * 10_000)
    assert len(repo.list_refunds("10024")[0].reason) == 1000


async def test_refund_form_validates_the_order_number(repo) -> None:  # malformed: no proof needed to refuse
    tracker = form_tracker("refund_form", "order_number", {"order_number": "-5"}, text="-5", intent="inform")
    dispatcher, slots = await run_validation(ValidateRefundForm(), tracker)
    assert slots["order_number"] is None
    assert "five digits" in rendered(dispatcher)[0]


async def test_refund_form_finds_a_typed_order_number(repo) -> None:
    text = "order 10024 please"
    tracker = form_tracker(
        "refund_form", "order_number", {"order_number": text}, {"verified_orders": ["10024"]}, text=text,
        intent="inform",
    )
    _, slots = await run_validation(ValidateRefundForm(), tracker)
    assert slots["order_number"] == "10024"


# ------------------------------------------------------------------------------------------- tracking refunds


def test_track_refund_lists_refunds(repo) -> None:
    dispatcher, _ = run(ActionTrackRefund(), make_tracker(slots=verified("10024")))
    assert responses(dispatcher) == ["utter_no_refunds"]
    repo.request_refund("10024", "sour juice", Decimal("1.29"))
    dispatcher, events = run(ActionTrackRefund(), make_tracker(slots=verified("10024")))
    assert responses(dispatcher) == ["utter_refund_list"]
    text = rendered(dispatcher)[0]
    assert "RF-10024-1" in text and "€1.29" in text and "being checked" in text
    assert slot_values(events)["order_number"] is None


@pytest.mark.parametrize(
    "number, line",
    [
        ("10026", "RF-10026-1: €5.16"),
        ("10018", "paid back"),
        ("10029", "not approved"),
        ("10019", "approved, the money is on its way"),
    ],
)
def test_track_refund_describes_the_seeded_refunds(repo, number: str, line: str) -> None:
    dispatcher, _ = run(ActionTrackRefund(), make_tracker(slots=verified(number)))
    assert line in rendered(dispatcher)[0]


def test_the_same_message_delivered_again_requests_no_second_refund(repo) -> None:
    """Found by the attacker trial: a yes whose turn was cut short after the refund was written, sent again with
    the same message_id, requested a second refund."""
    slots = verified("10024", refund_reason="sour", amount="2.00", refund_confirmed=True)
    tracker = make_tracker(slots=slots)
    tracker.latest_message["message_id"] = "m-yes"
    first, _ = run(ActionRequestRefund(), tracker)
    again, _ = run(ActionRequestRefund(), tracker)
    assert rendered(first) == rendered(again)
    assert len(repo.list_refunds("10024")) == 1
    tracker.latest_message["message_id"] = "m-another-yes"  # a new message is a new request
    run(ActionRequestRefund(), tracker)
    assert len(repo.list_refunds("10024")) == 2
