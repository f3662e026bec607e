"""Unit tests of `shop.rules`: which orders are still open, order totals and refund amounts."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from shop import rules
from shop.errors import AddressChangeNotAllowed, InvalidAmount, OrderNotCancellable, RefundNotAllowed
from shop.statuses import OrderStatus, RefundStatus

#: Whether an order in each status is still open (not yet left the warehouse).
OPEN = {"placed": True, "packed": True, "shipped": False, "delivered": False, "cancelled": False}
#: Whether a refund can be requested for an order in each status.
REFUNDABLE = {"placed": False, "packed": False, "shipped": False, "delivered": True, "cancelled": True}


# ------------------------------------------------------------------------------------------------ open orders


@pytest.mark.parametrize("status, is_open", OPEN.items())
def test_an_order_is_open_until_it_ships(status, is_open):
    for value in (status, OrderStatus(status)):
        assert rules.is_open(value) is is_open
        assert rules.can_cancel(value) is is_open
        assert rules.can_change_address(value) is is_open


def test_the_open_statuses_are_placed_and_packed_only():
    assert rules.OPEN_ORDER_STATUSES == {OrderStatus.PLACED, OrderStatus.PACKED}
    assert rules.is_open("lost in space") is False


@pytest.mark.parametrize("status, is_open", OPEN.items())
def test_cancel_and_address_checks_refuse_closed_orders(status, is_open):
    if is_open:
        rules.check_cancellable("10021", status)
        rules.check_address_changeable("10021", status)
        return
    with pytest.raises(OrderNotCancellable) as cancel:
        rules.check_cancellable("10023", status)
    assert cancel.value.status == status and "10023" in cancel.value.user_message
    with pytest.raises(AddressChangeNotAllowed) as address:
        rules.check_address_changeable("10023", OrderStatus(status))
    assert address.value.status == status


# ----------------------------------------------------------------------------------------------------- totals


def test_order_total_is_the_sum_of_price_times_quantity():
    lines = [(Decimal("3.49"), 2), (Decimal("1.69"), 1), (Decimal("2.99"), 1)]
    assert rules.order_total(lines) == Decimal("11.66")
    assert rules.order_total([]) == Decimal("0.00")
    assert rules.order_total([(Decimal("0.10"), 3)]) == Decimal("0.30")


def test_rejected_refunds_do_not_count():
    refunds = [
        (Decimal("1.00"), RefundStatus.REQUESTED),
        (Decimal("2.00"), "approved"),
        (Decimal("4.00"), "paid"),
        (Decimal("8.00"), RefundStatus.REJECTED),
    ]
    assert rules.refunded_so_far(refunds) == Decimal("7.00")
    assert rules.refunded_so_far([]) == Decimal("0.00")


# ---------------------------------------------------------------------------------------------------- refunds


@pytest.mark.parametrize("status, refundable", REFUNDABLE.items())
def test_refunds_only_once_delivered_or_cancelled(status, refundable):
    if refundable:
        assert rules.refund_amount("10024", status, Decimal("9.56"), "EUR", []) == Decimal("9.56")
        return
    with pytest.raises(RefundNotAllowed) as info:
        rules.refund_amount("10021", status, Decimal("9.56"), "EUR", [])
    message = info.value.user_message
    assert f"Order 10021 is {status}" in message and "delivered" in message
    assert ("cancel it instead" in message) is OPEN[status]


@pytest.mark.parametrize(
    "earlier, requested, expected",
    [
        ([], None, Decimal("9.56")),  # everything
        ([], Decimal("2.50"), Decimal("2.50")),  # part of it
        ([], Decimal("9.56"), Decimal("9.56")),  # exactly everything
        ([(Decimal("5.16"), "requested")], None, Decimal("4.40")),  # what is left
        ([(Decimal("5.16"), "paid")], Decimal("4.40"), Decimal("4.40")),
        ([(Decimal("9.56"), "rejected")], None, Decimal("9.56")),  # a rejected request frees the amount
        ([(Decimal("1.00"), "approved"), (Decimal("2.00"), "rejected")], None, Decimal("8.56")),
    ],
)
def test_refund_amount_is_the_request_or_what_is_left(earlier, requested, expected):
    assert rules.refund_amount("10024", "delivered", Decimal("9.56"), "EUR", earlier, requested) == expected


@pytest.mark.parametrize(
    "earlier, requested",
    [
        ([], Decimal("9.57")),
        ([(Decimal("5.16"), "requested")], Decimal("4.41")),
        ([(Decimal("9.00"), "paid")], Decimal("1.00")),
    ],
)
def test_a_refund_never_exceeds_what_is_left(earlier, requested):
    with pytest.raises(InvalidAmount) as info:
        rules.refund_amount("10024", "cancelled", Decimal("9.56"), "EUR", earlier, requested)
    left = Decimal("9.56") - rules.refunded_so_far(earlier)
    assert info.value.user_message == f"The most that can be refunded for order 10024 is {left} EUR."


@pytest.mark.parametrize(
    "earlier", [[(Decimal("9.56"), "paid")], [(Decimal("5.00"), "requested"), (Decimal("4.56"), "approved")]]
)
def test_a_fully_refunded_order_gets_no_further_refund(earlier):
    with pytest.raises(RefundNotAllowed) as info:
        rules.refund_amount("10030", "delivered", Decimal("9.56"), "EUR", earlier, Decimal("0.01"))
    assert "already been refunded" in info.value.user_message


def test_refund_and_ticket_numbers():
    assert rules.refund_number("10026", 0) == "RF-10026-1"
    assert rules.refund_number("10026", 1) == "RF-10026-2"
    numbers = {rules.new_ticket_number() for _ in range(50)}
    assert len(numbers) == 50
    assert all(re.fullmatch(r"TK-[0-9A-F]{8}", number) for number in numbers)
