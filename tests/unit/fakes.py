"""In-memory stand-in for :class:`shop.repository.ShopRepository`, used by the action unit tests.

It implements the same methods with the same views, errors and rules as the contract in docs/architecture.md
(orders can be cancelled or re-addressed while placed or packed; refunds once delivered or cancelled), but
without a database, so the action tests do not depend on the database layer. Every call is recorded in
``calls``; calls that change data are also listed in ``writes``.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, List, Optional, Tuple

from shop.errors import (
    AddressChangeNotAllowed,
    InvalidAmount,
    InvalidInput,
    InvalidOrderNumber,
    OrderNotCancellable,
    OrderNotFound,
    RefundNotAllowed,
)

OPEN_STATUSES = ("placed", "packed")
REFUNDABLE_STATUSES = ("delivered", "cancelled")
NOW = datetime(2024, 6, 3, 9, 30, tzinfo=timezone.utc)

_ORDER_NUMBER_RE = re.compile(r"(?:order\s*(?:number|no\.?|nr\.?)?\s*[:#]?\s*|#\s*)?(\d{5})")


def fake_parse_order_number(text: Any) -> str:
    """Accept ``"10023"``, ``"#10023"``, ``"order 10023"``, ``"Order no. 10023"``; refuse everything else.

    Raises:
        InvalidOrderNumber: For anything that is not exactly one five-digit order number.
    """
    if not isinstance(text, str) or len(text) > 64:
        raise InvalidOrderNumber("not text or too long")
    normalised = unicodedata.normalize("NFKC", text).strip().casefold()
    match = _ORDER_NUMBER_RE.fullmatch(normalised)
    if match is None:
        raise InvalidOrderNumber(f"not an order number: {text[:40]!r}")
    return match.group(1)


@dataclass(frozen=True)
class ProductView:
    """Same fields as ``shop.repository.ProductView``."""

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
    """Same fields as ``shop.repository.ProductMatch``."""

    product: Optional[ProductView]
    score: float
    suggestions: Tuple[ProductView, ...] = ()


@dataclass(frozen=True)
class OrderItemView:
    """Same fields as ``shop.repository.OrderItemView``."""

    sku: str
    name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class OrderView:
    """Same fields as ``shop.repository.OrderView``."""

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
    status_history: Tuple[Tuple[str, datetime], ...] = ()

    @property
    def can_cancel(self) -> bool:
        """True while placed or packed."""
        return self.status in OPEN_STATUSES

    @property
    def can_change_address(self) -> bool:
        """True while placed or packed."""
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class RefundView:
    """Same fields as ``shop.repository.RefundView``."""

    refund_number: str
    order_number: str
    amount: Decimal
    currency: str
    status: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class TicketView:
    """Same fields as ``shop.repository.TicketView``."""

    ticket_number: str
    sender_id: str
    subject: str
    status: str
    priority: str
    order_number: Optional[str]
    created_at: datetime


def _product(sku: str, name: str, category: str, kind: str, price: str, unit: str, stock: int) -> ProductView:
    return ProductView(
        sku=sku,
        name=name,
        category=category,
        coarse_category=category.split("/")[-1],
        kind=kind,
        price=Decimal(price),
        currency="EUR",
        unit=unit,
        stock=stock,
        description=f"Fresh {kind} from our shop.",
    )


def seed_products() -> List[ProductView]:
    """A small catalog: bananas, melons (one sold out), berries (one low, one sold out), milk."""
    return [
        _product("FRU-BANANA", "Banana", "Fruit/Banana", "banana", "1.79", "kg", 300),
        _product("FRU-MANGO", "Mango", "Fruit/Mango", "mango", "1.49", "piece", 70),
        _product("FRU-AVOCADO", "Avocado", "Fruit/Avocado", "avocado", "0.99", "piece", 90),
        _product("FRU-MELON-GALIA", "Galia Melon", "Fruit/Melon", "galia melon", "2.49", "piece", 0),
        _product(
            "FRU-MELON-CANT", "Cantaloupe Melon", "Fruit/Melon", "cantaloupe melon", "2.79", "piece", 40
        ),
        _product("FRU-BLUEBERRY", "Blueberries", "Fruit/Berries", "blueberries", "2.99", "250 g punnet", 3),
        _product("FRU-RASPBERRY", "Raspberries", "Fruit/Berries", "raspberries", "3.49", "125 g punnet", 0),
        _product("DAI-MILK-WHOLE", "Arla Whole Milk", "Dairy/Milk", "whole milk", "1.29", "1 l carton", 200),
    ]


def _order(number: str, status: str, **extra: Any) -> OrderView:
    items = (
        OrderItemView("FRU-BANANA", "Banana", 2, Decimal("1.79")),
        OrderItemView("DAI-MILK-WHOLE", "Arla Whole Milk", 3, Decimal("1.29")),
    )
    values: Dict[str, Any] = dict(
        order_number=number,
        status=status,
        customer_name="Alex Example",
        customer_email="alex@example.org",
        shipping_address="Old Road 1, 10115 Springfield",
        tracking_number=None,
        estimated_delivery=None,
        placed_at=NOW,
        updated_at=NOW,
        items=items,
        total=sum((item.unit_price * item.quantity for item in items), Decimal("0")),
        currency="EUR",
        status_history=((status, NOW),),
    )
    values.update(extra)
    return OrderView(**values)


def seed_orders() -> List[OrderView]:
    """The seed orders the project relies on: 10021 placed ... 10025 cancelled."""
    return [
        _order("10021", "placed"),
        _order("10022", "packed", estimated_delivery=date(2024, 6, 5)),
        _order("10023", "shipped", tracking_number="TRK-1002-3XYZ", estimated_delivery=date(2024, 6, 4)),
        _order("10024", "delivered", estimated_delivery=date(2024, 6, 1)),
        _order("10025", "cancelled"),
    ]


def _words(text: str) -> List[str]:
    words = re.findall(r"[a-z]+", text.casefold())
    return [word[:-1] if len(word) > 3 and word.endswith("s") else word for word in words]


@dataclass
class FakeShopRepository:
    """The repository API over dicts, with call recording and optional failure injection.

    Attributes:
        products: Catalog by SKU.
        orders: Orders by number.
        refunds: Refund requests by order number.
        tickets: ``create_ticket`` keyword arguments plus the ticket number, in order of creation.
        calls: ``(method name, args, kwargs)`` of every call.
        writes: Names of the methods that changed data.
        fail_with: When set, every method raises this exception (to test error handling).
    """

    products: Dict[str, ProductView] = field(default_factory=lambda: {p.sku: p for p in seed_products()})
    orders: Dict[str, OrderView] = field(default_factory=lambda: {o.order_number: o for o in seed_orders()})
    refunds: Dict[str, List[RefundView]] = field(default_factory=dict)
    tickets: List[Dict[str, Any]] = field(default_factory=list)
    calls: List[Tuple[str, tuple, dict]] = field(default_factory=list)
    writes: List[str] = field(default_factory=list)
    fail_with: Optional[BaseException] = None

    def _record(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((method, args, kwargs))
        if self.fail_with is not None:
            raise self.fail_with

    def called(self, method: str) -> List[Tuple[tuple, dict]]:
        """Return the arguments of every call to ``method``."""
        return [(args, kwargs) for name, args, kwargs in self.calls if name == method]

    # ------------------------------------------------------------------------------------------- products

    def find_product(self, query: Any) -> ProductMatch:
        """Tolerant match on name and kind (case, plurals, small typos); never raises for odd input."""
        self._record("find_product", query)
        if not isinstance(query, str) or len(query) > 256 or not _words(query):
            return ProductMatch(None, 0.0, ())
        wanted = " ".join(_words(query))
        scored = []
        for product in self.products.values():
            names = [" ".join(_words(product.name)), " ".join(_words(product.kind))]
            score = max(difflib.SequenceMatcher(None, wanted, name).ratio() for name in names)
            if any(wanted == name or wanted in name.split() for name in names):
                score = max(score, 0.95)
            scored.append((score, product))
        scored.sort(key=lambda pair: (-pair[0], pair[1].name))
        best_score, best = scored[0]
        chosen = best if best_score >= 0.8 else None
        rest = scored[1:] if chosen else scored
        suggestions = tuple(product for score, product in rest if score >= 0.3)[:5]
        return ProductMatch(chosen, float(best_score), suggestions)

    def search_products(
        self,
        query: Optional[str] = None,
        category: Optional[str] = None,
        in_stock_only: bool = False,
        limit: int = 5,
    ) -> List[ProductView]:
        """Products whose name or kind contains a query word and/or whose category matches."""
        self._record(
            "search_products", query=query, category=category, in_stock_only=in_stock_only, limit=limit
        )
        found = sorted(self.products.values(), key=lambda product: (product.category, product.name))
        if category:
            wanted = category.strip().casefold()
            found = [
                product
                for product in found
                if product.category.casefold() == wanted
                or product.coarse_category.casefold() == wanted
                or product.category.casefold().startswith(wanted + "/")
            ]
        if in_stock_only:
            found = [product for product in found if product.in_stock]
        if query is not None and query.strip():
            words = set(_words(query))
            found = [product for product in found if words & set(_words(f"{product.name} {product.kind}"))]
        return found[: max(1, min(limit, 100))]

    def get_product(self, sku: str) -> Optional[ProductView]:
        """The product with this SKU, or None."""
        self._record("get_product", sku)
        return self.products.get(sku)

    def list_categories(self) -> List[str]:
        """All category paths, sorted."""
        self._record("list_categories")
        return sorted({product.category for product in self.products.values()})

    # ------------------------------------------------------------------------------------------- orders

    def _order(self, order_number: str) -> OrderView:
        number = fake_parse_order_number(order_number)
        if number not in self.orders:
            raise OrderNotFound(number)
        return self.orders[number]

    def get_order(self, order_number: str) -> OrderView:
        """The order; raises InvalidOrderNumber or OrderNotFound."""
        self._record("get_order", order_number)
        return self._order(order_number)

    def cancel_order(self, order_number: str, reason: Optional[str] = None) -> OrderView:
        """Cancel a placed or packed order; raises OrderNotCancellable otherwise."""
        self._record("cancel_order", order_number, reason=reason)
        order = self._order(order_number)
        if not order.can_cancel:
            raise OrderNotCancellable(order.order_number, order.status)
        cancelled = replace(
            order, status="cancelled", status_history=order.status_history + (("cancelled", NOW),)
        )
        self.orders[order.order_number] = cancelled
        self.writes.append("cancel_order")
        return cancelled

    def change_shipping_address(self, order_number: str, new_address: str) -> OrderView:
        """Change the address of a placed or packed order (5 to 300 characters)."""
        self._record("change_shipping_address", order_number, new_address)
        order = self._order(order_number)
        address = " ".join(str(new_address).split()) if isinstance(new_address, str) else None
        if address is None or not 5 <= len(address) <= 300:
            raise InvalidInput("bad address")
        if not order.can_change_address:
            raise AddressChangeNotAllowed(order.order_number, order.status)
        updated = replace(order, shipping_address=address)
        self.orders[order.order_number] = updated
        self.writes.append("change_shipping_address")
        return updated

    # ------------------------------------------------------------------------------------------- refunds

    def request_refund(self, order_number: str, reason: str, amount: Optional[Decimal] = None) -> RefundView:
        """Request a refund of a delivered or cancelled order, at most what is left to refund."""
        self._record("request_refund", order_number, reason, amount)
        order = self._order(order_number)
        if not isinstance(reason, str):
            raise InvalidInput("reason must be text")
        if order.status not in REFUNDABLE_STATUSES:
            raise RefundNotAllowed(
                f"refund refused in status {order.status}",
                user_message=(
                    f"Order {order.order_number} is {order.status}. "
                    "Refunds are possible once it has been delivered."
                ),
            )
        earlier = self.refunds.setdefault(order.order_number, [])
        remaining = order.total - sum((refund.amount for refund in earlier), Decimal("0"))
        if remaining <= 0:
            raise RefundNotAllowed("fully refunded")
        try:
            value = remaining if amount is None else Decimal(str(amount)).quantize(Decimal("0.01"))
        except InvalidOperation as exc:
            raise InvalidAmount("malformed amount") from exc
        if value <= 0 or value > remaining:
            raise InvalidAmount(f"amount {value} outside 0..{remaining}")
        refund = RefundView(
            refund_number=f"RF-{order.order_number}-{len(earlier) + 1}",
            order_number=order.order_number,
            amount=value,
            currency=order.currency,
            status="requested",
            reason=reason[:1000],
            created_at=NOW,
        )
        earlier.append(refund)
        self.writes.append("request_refund")
        return refund

    def list_refunds(self, order_number: str) -> List[RefundView]:
        """Refund requests of the order, oldest first."""
        self._record("list_refunds", order_number)
        order = self._order(order_number)
        return list(self.refunds.get(order.order_number, []))

    # ------------------------------------------------------------------------------------------- tickets

    def create_ticket(
        self,
        sender_id: str,
        subject: str,
        transcript: List[dict],
        sentiment_trail: Optional[List[str]] = None,
        order_number: Optional[str] = None,
        priority: str = "normal",
    ) -> TicketView:
        """Store the ticket's arguments and return a view with a new ticket number."""
        self._record(
            "create_ticket",
            sender_id=sender_id,
            subject=subject,
            transcript=transcript,
            sentiment_trail=sentiment_trail,
            order_number=order_number,
            priority=priority,
        )
        if not isinstance(sender_id, str) or not sender_id.strip():
            raise InvalidInput("blank sender id")
        if not isinstance(transcript, list):
            raise InvalidInput("transcript must be a list")
        if priority not in ("normal", "high"):
            raise InvalidInput("unknown priority")
        number = f"TK-{len(self.tickets) + 1:08X}"
        self.tickets.append(
            {
                "ticket_number": number,
                "sender_id": sender_id,
                "subject": subject,
                "transcript": transcript,
                "sentiment_trail": list(sentiment_trail or []),
                "order_number": order_number,
                "priority": priority,
            }
        )
        self.writes.append("create_ticket")
        return TicketView(number, sender_id, subject[:200], "open", priority, order_number, NOW)
