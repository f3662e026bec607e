"""What the repository hands out: frozen dataclasses, built from ORM rows while their session is open.

Views hold plain values only (strings, ``Decimal``, aware ``datetime``, tuples), so nothing outside the
repository can reach a session or trigger a lazy load. The builders expect the rows' relationships to be
loaded already (the repository loads them eagerly).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Optional, Tuple

from shop import rules
from shop.statuses import OrderStatus, RefundStatus, TicketPriority, TicketStatus

if TYPE_CHECKING:  # the builders only read attributes; the models are not needed at run time
    from shop.models import Order, Product, Refund, SupportTicket


@dataclass(frozen=True)
class ProductView:
    """A catalog product.

    Attributes:
        sku: Stock keeping unit, e.g. ``"FRU-BANANA"``.
        name: Display name, e.g. ``"Banana"``.
        category: Category path, e.g. ``"Fruit/Banana"``.
        coarse_category: Last part of the category, e.g. ``"Banana"``.
        kind: Plain-language kind, e.g. ``"banana"`` or ``"oat milk"``.
        price: Price of one ``unit`` (two decimal places).
        currency: ISO 4217 code, e.g. ``"EUR"``.
        unit: What the price buys: ``"kg"``, ``"piece"``, ``"1 l carton"``, ...
        stock: Units in stock (0 = sold out).
        description: One or two sentences for customers.
        image_paths: Product photos, relative to the image root, oldest first.
    """

    sku: str
    name: str
    category: str
    coarse_category: str
    kind: str
    price: Decimal
    currency: str
    unit: str
    stock: int
    description: str
    image_paths: Tuple[str, ...] = ()

    @property
    def in_stock(self) -> bool:
        """True when at least one unit is in stock."""
        return self.stock > 0


@dataclass(frozen=True)
class ProductMatch:
    """Result of :meth:`shop.repository.ShopRepository.find_product`.

    Attributes:
        product: The best product, or None when nothing scored at least :data:`shop.matching.MATCH_THRESHOLD`.
        score: Score of the best candidate in [0, 1] (0.0 when there was no candidate at all).
        suggestions: Up to five other close products, best first (may be empty).
    """

    product: Optional[ProductView]
    score: float
    suggestions: Tuple[ProductView, ...] = ()


@dataclass(frozen=True)
class OrderItemView:
    """One line of an order; ``unit_price`` is the price paid per unit."""

    sku: str
    name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class OrderView:
    """An order with its items, total and status history.

    Attributes:
        order_number: Five-digit order number, e.g. ``"10023"``.
        status: ``"placed"``, ``"packed"``, ``"shipped"``, ``"delivered"`` or ``"cancelled"``.
        customer_name: Customer's full name.
        customer_email: Customer's e-mail address.
        shipping_address: Delivery address, one line.
        tracking_number: Carrier tracking number once shipped, else None.
        estimated_delivery: Expected delivery date, if known.
        placed_at: When the order was placed (aware UTC).
        updated_at: Last change (aware UTC).
        items: Order lines.
        total: Sum of quantity × unit price (two decimal places).
        currency: ISO 4217 code of all amounts.
        status_history: ``(status, at)`` pairs, oldest first.
    """

    order_number: str
    status: str
    customer_name: str
    customer_email: str
    shipping_address: str
    tracking_number: Optional[str]
    estimated_delivery: Optional[date]
    placed_at: datetime
    updated_at: datetime
    items: Tuple[OrderItemView, ...]
    total: Decimal
    currency: str
    status_history: Tuple[Tuple[str, datetime], ...]

    @property
    def can_cancel(self) -> bool:
        """True while the order has not left the warehouse (see :func:`shop.rules.can_cancel`)."""
        return rules.can_cancel(self.status)

    @property
    def can_change_address(self) -> bool:
        """True while the order has not left the warehouse (see :func:`shop.rules.can_change_address`)."""
        return rules.can_change_address(self.status)


@dataclass(frozen=True)
class RefundView:
    """A refund request.

    Attributes:
        refund_number: E.g. ``"RF-10026-1"``.
        order_number: The refunded order.
        amount: Amount requested (two decimal places, positive).
        currency: ISO 4217 code.
        status: ``"requested"``, ``"approved"``, ``"paid"`` or ``"rejected"``.
        reason: The customer's reason (may be empty).
        created_at: When it was requested (aware UTC).
    """

    refund_number: str
    order_number: str
    amount: Decimal
    currency: str
    status: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class TicketView:
    """A support ticket (hand-off to a human agent), without its transcript.

    Attributes:
        ticket_number: E.g. ``"TK-3F9A12C0"``.
        sender_id: Conversation id of the customer (Rasa sender id).
        subject: Short subject line.
        status: ``"open"`` or ``"closed"``.
        priority: ``"normal"`` or ``"high"``.
        order_number: Related order, if any.
        created_at: When it was opened (aware UTC).
    """

    ticket_number: str
    sender_id: str
    subject: str
    status: str
    priority: str
    order_number: Optional[str]
    created_at: datetime


# --------------------------------------------------------------------------------------------------- builders


def product_view(product: "Product") -> ProductView:
    """Build the view of a product row (its ``images`` loaded)."""
    return ProductView(
        sku=product.sku,
        name=product.name,
        category=product.category,
        coarse_category=product.coarse_category,
        kind=product.kind,
        price=product.price,
        currency=product.currency,
        unit=product.unit,
        stock=int(product.stock),
        description=product.description or "",
        image_paths=tuple(image.path for image in product.images),
    )


def order_view(order: "Order") -> OrderView:
    """Build the view of an order row (its ``items`` with their ``product``, ``events`` and ``customer``
    loaded); the status history is sorted by time."""
    items = tuple(
        OrderItemView(
            sku=item.product.sku,
            name=item.product.name,
            quantity=int(item.quantity),
            unit_price=item.unit_price,
        )
        for item in order.items
    )
    events = sorted(order.events, key=lambda event: (event.at, event.id or 0))
    return OrderView(
        order_number=order.order_number,
        status=OrderStatus(order.status).value,
        customer_name=order.customer.name,
        customer_email=order.customer.email,
        shipping_address=order.shipping_address,
        tracking_number=order.tracking_number,
        estimated_delivery=order.estimated_delivery,
        placed_at=order.placed_at,
        updated_at=order.updated_at,
        items=items,
        total=rules.order_total((item.unit_price, item.quantity) for item in items),
        currency=order.currency,
        status_history=tuple((OrderStatus(event.status).value, event.at) for event in events),
    )


def refund_view(refund: "Refund", order_number: str) -> RefundView:
    """Build the view of a refund row of the order ``order_number``."""
    return RefundView(
        refund_number=refund.refund_number,
        order_number=order_number,
        amount=refund.amount,
        currency=refund.currency,
        status=RefundStatus(refund.status).value,
        reason=refund.reason or "",
        created_at=refund.created_at,
    )


def ticket_view(ticket: "SupportTicket") -> TicketView:
    """Build the view of a support ticket row (without its transcript)."""
    return TicketView(
        ticket_number=ticket.ticket_number,
        sender_id=ticket.sender_id,
        subject=ticket.subject,
        status=TicketStatus(ticket.status).value,
        priority=TicketPriority(ticket.priority).value,
        order_number=ticket.order_number,
        created_at=ticket.created_at,
    )


__all__ = [
    "ProductView",
    "ProductMatch",
    "OrderItemView",
    "OrderView",
    "RefundView",
    "TicketView",
    "product_view",
    "order_view",
    "refund_view",
    "ticket_view",
]
