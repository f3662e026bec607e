"""The shop's business rules as plain functions on plain values (no database, no sessions).

- An order is *open* while it has not left the warehouse (placed or packed): only then can it be cancelled or
  sent to another address.
- A refund can be requested once the order is delivered, or after it was cancelled. Requests that are not
  rejected count against the order total; a request may ask for part of what is left, never more.

The repository applies these rules inside its unit of work; the views use them for ``can_cancel`` and
``can_change_address``; the actions see their outcome through the views and the errors they raise.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Iterable, Optional, Tuple, Union

from shop.errors import AddressChangeNotAllowed, InvalidAmount, OrderNotCancellable, RefundNotAllowed
from shop.statuses import CENT, OrderStatus, RefundStatus

#: Statuses in which the order has not left the warehouse (cancel and address change are still possible).
OPEN_ORDER_STATUSES = frozenset({OrderStatus.PLACED, OrderStatus.PACKED})
#: Statuses in which a refund can be requested.
REFUNDABLE_ORDER_STATUSES = frozenset({OrderStatus.DELIVERED, OrderStatus.CANCELLED})

#: An order status as an enum member or its value (``"placed"``).
StatusLike = Union[OrderStatus, str]


def is_open(status: StatusLike) -> bool:
    """Whether an order in ``status`` is still open: placed or packed, not yet on its way.

    Args:
        status: An :class:`~shop.statuses.OrderStatus` or its value.

    Returns:
        True for placed and packed; False for shipped, delivered, cancelled and unknown values.
    """
    try:
        return OrderStatus(status) in OPEN_ORDER_STATUSES
    except ValueError:
        return False


def can_cancel(status: StatusLike) -> bool:
    """Whether an order in ``status`` can still be cancelled (while it is open)."""
    return is_open(status)


def can_change_address(status: StatusLike) -> bool:
    """Whether the delivery address of an order in ``status`` can still change (while it is open)."""
    return is_open(status)


def check_cancellable(order_number: str, status: StatusLike) -> None:
    """Refuse to cancel an order that is no longer open.

    Raises:
        OrderNotCancellable: The order is shipped, delivered or already cancelled (``.status`` says which).
    """
    if not can_cancel(status):
        raise OrderNotCancellable(order_number, OrderStatus(status).value)


def check_address_changeable(order_number: str, status: StatusLike) -> None:
    """Refuse to change the delivery address of an order that is no longer open.

    Raises:
        AddressChangeNotAllowed: The order is shipped, delivered or cancelled.
    """
    if not can_change_address(status):
        raise AddressChangeNotAllowed(order_number, OrderStatus(status).value)


def order_total(lines: Iterable[Tuple[Decimal, int]]) -> Decimal:
    """Sum of unit price × quantity over an order's lines.

    Args:
        lines: ``(unit_price, quantity)`` pairs; prices with two decimal places.

    Returns:
        The total with two decimal places (``Decimal("0.00")`` for no lines).
    """
    return sum((price * quantity for price, quantity in lines), Decimal("0")).quantize(CENT)


def refunded_so_far(refunds: Iterable[Tuple[Decimal, Union[RefundStatus, str]]]) -> Decimal:
    """Amount already refunded or requested: every refund that was not rejected.

    Args:
        refunds: ``(amount, status)`` of the order's refund requests.

    Returns:
        The sum with two decimal places.
    """
    return sum(
        (amount for amount, status in refunds if RefundStatus(status) is not RefundStatus.REJECTED),
        Decimal("0"),
    ).quantize(CENT)


def refund_amount(
    order_number: str,
    status: StatusLike,
    total: Decimal,
    currency: str,
    refunds: Iterable[Tuple[Decimal, Union[RefundStatus, str]]],
    requested: Optional[Decimal] = None,
) -> Decimal:
    """Check that a refund may be requested and return its amount.

    The amount is ``requested``, or everything not yet refunded when ``requested`` is None.

    Args:
        order_number: Five digits, for the messages.
        status: The order's status.
        total: The order total (see :func:`order_total`).
        currency: ISO 4217 code, for the messages.
        refunds: ``(amount, status)`` of the refund requests already on file.
        requested: A validated positive amount (see :func:`shop.validation.parse_amount`), or None.

    Returns:
        The amount to request, two decimal places.

    Raises:
        RefundNotAllowed: The order is neither delivered nor cancelled, or nothing is left to refund.
        InvalidAmount: ``requested`` is more than what is left.
    """
    order_status = OrderStatus(status)
    if order_status not in REFUNDABLE_ORDER_STATUSES:
        hint = " You can still cancel it instead." if order_status in OPEN_ORDER_STATUSES else ""
        raise RefundNotAllowed(
            f"refund refused for order {order_number} in status {order_status.value}",
            user_message=(
                f"Order {order_number} is {order_status.value}. Refunds are possible once it has been"
                f" delivered (or if it was cancelled).{hint}"
            ),
        )
    remaining = (total - refunded_so_far(refunds)).quantize(CENT)
    if remaining <= 0:
        raise RefundNotAllowed(
            f"order {order_number} is fully refunded already",
            user_message=f"Everything on order {order_number} has already been refunded or requested.",
        )
    if requested is not None and requested > remaining:
        raise InvalidAmount(
            f"refund {requested} exceeds remaining {remaining} for order {order_number}",
            user_message=f"The most that can be refunded for order {order_number} is {remaining} {currency}.",
        )
    return remaining if requested is None else requested


def refund_number(order_number: str, earlier_requests: int) -> str:
    """Number of the next refund request of an order, e.g. ``"RF-10026-2"`` after one earlier request."""
    return f"RF-{order_number}-{earlier_requests + 1}"


def new_ticket_number() -> str:
    """A fresh random ticket number, e.g. ``"TK-3F9A12C0"`` (32 random bits; the database keeps it unique)."""
    return f"TK-{secrets.token_hex(4).upper()}"


__all__ = [
    "OPEN_ORDER_STATUSES",
    "REFUNDABLE_ORDER_STATUSES",
    "is_open",
    "can_cancel",
    "can_change_address",
    "check_cancellable",
    "check_address_changeable",
    "order_total",
    "refunded_so_far",
    "refund_amount",
    "refund_number",
    "new_ticket_number",
]
