"""SQLAlchemy models of the shop: catalog, customers, orders, refunds, support tickets and the customers'
tries at proving that an order is theirs.

Conventions:
    * Money columns are ``NUMERIC(10, 2)`` (:class:`Money`) next to a three-letter ISO 4217 currency code;
      Python code always sees :class:`decimal.Decimal`.
    * Timestamps are timezone-aware UTC (:class:`UTCDateTime`); PostgreSQL stores ``timestamptz``, SQLite
      stores naive UTC text that is read back as aware UTC.
    * Status columns are strings checked by a named CHECK constraint (no native database enum types), so the
      schema is identical on SQLite and PostgreSQL. The statuses themselves are the enums of
      :mod:`shop.statuses`.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Optional, Type

from sqlalchemy import (
    CHAR,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import declarative_base, relationship
from sqlalchemy.types import TypeDecorator, TypeEngine

from shop import matching
from shop.statuses import (
    CENT,
    OrderStatus,
    RefundStatus,
    TicketPriority,
    TicketStatus,
    VerificationOutcome,
)


def utcnow() -> datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timestamp that is always timezone-aware UTC in Python.

    Naive datetimes are refused on the way in (they are ambiguous); aware ones are converted to UTC. Values
    read back are aware UTC on every backend.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Dialect) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Optional[datetime], dialect: Dialect) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Money(TypeDecorator):
    """``NUMERIC(10, 2)`` that is a :class:`~decimal.Decimal` with two places in Python on every backend.

    SQLite has no decimal type; there the driver returns a float, which is turned back into the exact
    two-place decimal through its shortest ``repr`` (exact for the 10 significant digits this column allows).
    This avoids SQLAlchemy's lossy float-to-decimal warning path while keeping the declared column type
    ``NUMERIC(10, 2)``.
    """

    impl = Numeric(10, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine:
        if dialect.supports_native_decimal:
            return dialect.type_descriptor(Numeric(10, 2))
        return dialect.type_descriptor(Numeric(10, 2, asdecimal=False))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Optional[Decimal]:
        if value is None:
            return None
        try:
            amount = value if isinstance(value, Decimal) else Decimal(str(value))
            return amount.quantize(CENT)
        except (InvalidOperation, ValueError) as exc:
            raise ValueError(f"not a money amount: {value!r}") from exc

    def process_result_value(self, value: Any, dialect: Dialect) -> Optional[Decimal]:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            value = Decimal(repr(float(value)))
        return value.quantize(CENT)


def _enum_column_type(enum_cls: Type[enum.Enum], name: str) -> Enum:
    """A portable enum column: VARCHAR with a named CHECK constraint, storing the member values."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


#: The product fields the search text is made of.
SEARCH_FIELDS = ("name", "kind", "category", "coarse_category")


def _default_search_text(context: DefaultExecutionContext) -> str:
    """Column default of ``products.search_text``: computed from the inserted row's fields (ORM and Core
    inserts alike, one row at a time in an ``executemany``)."""
    row = context.get_current_parameters()
    return matching.search_text(*(str(row.get(field) or "") for field in SEARCH_FIELDS))


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
Base = declarative_base(metadata=metadata)


class Product(Base):
    """A product of the catalog.

    ``category`` is a path such as ``"Fruit/Apple"``; ``coarse_category`` its last part (``"Apple"``);
    ``kind`` the plain-language kind of product (``"Granny Smith apple"``). ``unit`` is what one ``price``
    buys (``"kg"``, ``"piece"``, ``"1 l carton"``).

    ``search_text`` is :func:`shop.matching.search_text` of name, kind, category and coarse category, which
    the product look-up indexes (:mod:`shop.lookup`). It is kept in step by the column default (every insert) and
    :func:`_refresh_search_text` (ORM updates); a Core ``update()`` that changes one of those fields must set
    it too.
    """

    __tablename__ = "products"

    id = Column(Integer, primary_key=True)
    sku = Column(String(40), nullable=False, unique=True)
    name = Column(String(120), nullable=False)
    category = Column(String(80), nullable=False, index=True)
    coarse_category = Column(String(60), nullable=False, index=True)
    kind = Column(String(80), nullable=False)
    price = Column(Money, nullable=False)
    currency = Column(CHAR(3), nullable=False, default="EUR")
    stock = Column(Integer, nullable=False, default=0)
    unit = Column(String(30), nullable=False)
    description = Column(Text, nullable=False, default="")
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    search_text = Column(Text, nullable=False, default=_default_search_text)

    images = relationship(
        "ProductImage", back_populates="product", order_by="ProductImage.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
    )


class ProductTerm(Base):
    """The look-up's vocabulary: every word of the products' search texts (and every pair of neighbouring
    words written together, ``"oatmilk"`` → ``phrase`` ``"oat milk"``), which a customer's misspelt word is
    corrected to (:mod:`shop.lookup`). Words of deleted products may stay; they find nothing."""

    __tablename__ = "product_terms"

    term = Column(String(250), primary_key=True)
    phrase = Column(String(250), nullable=False)


def add_terms(connection: Any, texts: Any) -> None:
    """Add the :func:`shop.matching.search_terms` of search texts to ``product_terms`` (existing terms are
    kept). For code that inserts or updates products with Core statements; ORM writes call it themselves."""
    terms: dict = {}
    for stored in texts:
        terms.update(matching.search_terms(stored or ""))
    if not terms:
        return
    rows = [{"term": term[:250], "phrase": phrase[:250]} for term, phrase in terms.items()]
    table = ProductTerm.__table__
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        connection.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    elif connection.dialect.name == "sqlite":
        connection.execute(table.insert().prefix_with("OR IGNORE"), rows)
    else:
        known = set(connection.execute(table.select().with_only_columns(table.c.term)).scalars())
        fresh = [row for row in rows if row["term"] not in known]
        if fresh:
            connection.execute(table.insert(), fresh)


@event.listens_for(Product, "before_update")
def _refresh_search_text(mapper: Any, connection: Any, product: Product) -> None:
    """Recompute ``search_text`` on every ORM update of a product (whichever field changed; it is cheap)."""
    product.search_text = matching.search_text(*(getattr(product, field) or "" for field in SEARCH_FIELDS))


@event.listens_for(Product, "after_insert")
@event.listens_for(Product, "after_update")
def _add_product_terms(mapper: Any, connection: Any, product: Product) -> None:
    """Keep the vocabulary in step with ORM inserts and updates of products."""
    add_terms(connection, [product.search_text])


class ProductImage(Base):
    """A product photo.

    ``path`` is relative to the image root (never absolute); ``sha256`` is the hex hash of the file content.
    """

    __tablename__ = "product_images"

    id = Column(Integer, primary_key=True)
    product_id = Column(Integer, ForeignKey("products.id", ondelete="CASCADE"), nullable=False, index=True)
    path = Column(String(500), nullable=False)
    sha256 = Column(CHAR(64), nullable=False)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)

    product = relationship("Product", back_populates="images")

    __table_args__ = (UniqueConstraint("product_id", "path", name="uq_product_images_product_path"),)


class Customer(Base):
    """A customer account."""

    __tablename__ = "customers"

    id = Column(Integer, primary_key=True)
    name = Column(String(120), nullable=False)
    email = Column(String(254), nullable=False, unique=True)
    default_shipping_address = Column(String(300), nullable=True)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)

    orders = relationship("Order", back_populates="customer")


class Order(Base):
    """A customer order. ``order_number`` is the five-digit number the customer knows."""

    __tablename__ = "orders"

    id = Column(Integer, primary_key=True)
    order_number = Column(String(16), nullable=False, unique=True)
    customer_id = Column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    status = Column(
        _enum_column_type(OrderStatus, "order_status"), nullable=False, default=OrderStatus.PLACED
    )
    currency = Column(CHAR(3), nullable=False, default="EUR")
    shipping_address = Column(String(300), nullable=False)
    tracking_number = Column(String(40), nullable=True)
    estimated_delivery = Column(Date, nullable=True)
    placed_at = Column(UTCDateTime, nullable=False, default=utcnow)
    updated_at = Column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)

    customer = relationship("Customer", back_populates="orders")
    items = relationship(
        "OrderItem", back_populates="order", order_by="OrderItem.id", cascade="all, delete-orphan"
    )
    events = relationship(
        "OrderStatusEvent",
        back_populates="order",
        order_by="(OrderStatusEvent.at, OrderStatusEvent.id)",
        cascade="all, delete-orphan",
    )
    refunds = relationship(
        "Refund", back_populates="order", order_by="Refund.id", cascade="all, delete-orphan"
    )

    __table_args__ = (Index("ix_orders_status", "status"),)


class OrderItem(Base):
    """One line of an order; ``unit_price`` is the price at the time of ordering."""

    __tablename__ = "order_items"

    id = Column(Integer, primary_key=True)
    order_id = Column(Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True)
    product_id = Column(Integer, ForeignKey("products.id"), nullable=False, index=True)
    quantity = Column(Integer, nullable=False)
    unit_price = Column(Money, nullable=False)

    order = relationship("Order", back_populates="items")
    product = relationship("Product")

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
    )


class OrderStatusEvent(Base):
    """One step of an order's status history."""

    __tablename__ = "order_status_events"

    id = Column(Integer, primary_key=True)
    order_id = Column(Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False)
    status = Column(_enum_column_type(OrderStatus, "event_status"), nullable=False)
    at = Column(UTCDateTime, nullable=False, default=utcnow)
    note = Column(Text, nullable=True)

    order = relationship("Order", back_populates="events")

    __table_args__ = (Index("ix_order_status_events_order_at", "order_id", "at"),)


class Refund(Base):
    """A refund request for (part of) an order."""

    __tablename__ = "refunds"

    id = Column(Integer, primary_key=True)
    refund_number = Column(String(24), nullable=False, unique=True)
    order_id = Column(Integer, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True)
    amount = Column(Money, nullable=False)
    currency = Column(CHAR(3), nullable=False, default="EUR")
    status = Column(
        _enum_column_type(RefundStatus, "refund_status"), nullable=False, default=RefundStatus.REQUESTED
    )
    reason = Column(Text, nullable=False, default="")
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)

    order = relationship("Order", back_populates="refunds")

    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)


class RefundRequestKey(Base):
    """The message a refund was requested with, so that the same message delivered again requests nothing more.

    ``key`` is the SHA-256 (hex) of ``<conversation id>:<message id>``. A retried message (a client whose
    connection dropped, a turn whose tracker-store write failed after the action server had already written
    the refund) finds its row and gets the refund it made the first time.
    """

    __tablename__ = "refund_request_keys"

    key = Column(String(64), primary_key=True)
    refund_id = Column(Integer, ForeignKey("refunds.id", ondelete="CASCADE"), nullable=False)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)

    refund = relationship("Refund")


class SupportTicket(Base):
    """A hand-off to a human agent, with the conversation so far.

    ``transcript`` and ``sentiment_trail`` hold JSON text (a list of turn dicts, a list of sentiment labels).
    """

    __tablename__ = "support_tickets"

    id = Column(Integer, primary_key=True)
    ticket_number = Column(String(24), nullable=False, unique=True)
    sender_id = Column(String(255), nullable=False, index=True)
    subject = Column(String(200), nullable=False)
    status = Column(
        _enum_column_type(TicketStatus, "ticket_status"), nullable=False, default=TicketStatus.OPEN
    )
    priority = Column(
        _enum_column_type(TicketPriority, "ticket_priority"), nullable=False, default=TicketPriority.NORMAL
    )
    order_number = Column(String(16), nullable=True, index=True)
    transcript = Column(Text, nullable=False, default="[]")
    sentiment_trail = Column(Text, nullable=False, default="[]")
    created_at = Column(UTCDateTime, nullable=False, default=utcnow, index=True)


class VerificationAttempt(Base):
    """One try at proving that an order is the customer's: the order number and an email address.

    The table is what limits guessing (:mod:`shop.verification`): tries that are ``pending`` or ``failed``
    within the lock-out window count against the conversation (``sender_id``) and against the order number,
    on every instance that shares the database and across restarts. The email address itself is never stored.
    ``order_number`` is the five digits the customer typed, whether or not such an order exists.
    """

    __tablename__ = "verification_attempts"

    id = Column(Integer, primary_key=True)
    sender_id = Column(String(255), nullable=False)
    order_number = Column(String(16), nullable=False)
    outcome = Column(
        _enum_column_type(VerificationOutcome, "verification_outcome"),
        nullable=False,
        default=VerificationOutcome.PENDING,
    )
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        Index("ix_verification_attempts_sender_at", "sender_id", "created_at"),
        Index("ix_verification_attempts_order_at", "order_number", "created_at"),
    )


__all__ = [
    "Base",
    "metadata",
    "utcnow",
    "UTCDateTime",
    "Money",
    "Product",
    "ProductTerm",
    "add_terms",
    "ProductImage",
    "Customer",
    "Order",
    "OrderItem",
    "OrderStatusEvent",
    "Refund",
    "SupportTicket",
    "VerificationAttempt",
]
