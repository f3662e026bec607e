"""The life cycles of orders, refunds and support tickets, the outcomes of identity checks, and the money
conventions of the shop.

Plain Python (no SQLAlchemy), so the business rules, the validation and the views can use the same values as
the models' CHECK constraints.
"""

from __future__ import annotations

import enum
from decimal import Decimal

#: One cent: every amount of money has two decimal places (``amount.quantize(CENT)``).
CENT = Decimal("0.01")
#: Largest money amount a ``NUMERIC(10, 2)`` column holds.
MAX_AMOUNT = Decimal("99999999.99")


class OrderStatus(str, enum.Enum):
    """Life cycle of an order: placed → packed → shipped → delivered, or cancelled before shipping."""

    PLACED = "placed"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class RefundStatus(str, enum.Enum):
    """Life cycle of a refund request."""

    REQUESTED = "requested"
    APPROVED = "approved"
    PAID = "paid"
    REJECTED = "rejected"


class TicketStatus(str, enum.Enum):
    """Whether a support ticket is still being handled."""

    OPEN = "open"
    CLOSED = "closed"


class TicketPriority(str, enum.Enum):
    """How urgently a human agent should look at a ticket."""

    NORMAL = "normal"
    HIGH = "high"


class VerificationOutcome(str, enum.Enum):
    """What became of one try at proving that an order is the customer's (order number + email address).

    ``pending`` is written before the check and counts like a failure until the check has finished, so that
    concurrent tries cannot slip past the limit; ``refused`` marks a try made while locked (never compared and
    not counted, so waiting lifts the lock).
    """

    PENDING = "pending"
    FAILED = "failed"
    VERIFIED = "verified"
    REFUSED = "refused"


__all__ = [
    "CENT",
    "MAX_AMOUNT",
    "OrderStatus",
    "RefundStatus",
    "TicketStatus",
    "TicketPriority",
    "VerificationOutcome",
]
