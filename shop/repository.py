"""The repository: the only module that queries the shop database.

Every public method of :class:`ShopRepository` runs in its own short unit of work (one session, committed or
rolled back before the method returns) and returns frozen dataclasses, never ORM objects, so nothing outside
this module can touch a session. Inputs that come from customers (order numbers, addresses, reasons, search
text) are validated here; rejected input raises a :class:`~shop.errors.ShopError` whose ``user_message`` can
be shown as it is, and nothing is written for it.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Dict, Iterable, List, Optional, Tuple

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from shop import matching
from shop.db import make_engine, make_session_factory, unit_of_work
from shop.errors import (
    AddressChangeNotAllowed,
    InvalidAmount,
    InvalidInput,
    InvalidOrderNumber,
    OrderNotCancellable,
    OrderNotFound,
    RefundNotAllowed,
    ShopError,
)
from shop.models import (
    CENT,
    OPEN_ORDER_STATUSES,
    Order,
    OrderItem,
    OrderStatus,
    OrderStatusEvent,
    Product,
    ProductImage,
    Refund,
    RefundStatus,
    SupportTicket,
    TicketPriority,
    TicketStatus,
    utcnow,
)

logger = logging.getLogger(__name__)

#: Order numbers are exactly this many ASCII digits.
ORDER_NUMBER_DIGITS = 5
#: Longest text :func:`parse_order_number` looks at; anything longer is refused outright.
MAX_ORDER_NUMBER_TEXT = 64
#: Shipping address length bounds, in characters after clean-up.
ADDRESS_MIN_CHARS = 5
ADDRESS_MAX_CHARS = 300
#: Free-text reasons (cancellation, refund) are cut to this many characters.
MAX_REASON_CHARS = 1000
#: Ticket subjects are cut to this many characters.
MAX_SUBJECT_CHARS = 200
#: Sender ids longer than this are refused.
MAX_SENDER_ID_CHARS = 255
#: A stored transcript keeps at most the last this many turns ...
MAX_TRANSCRIPT_TURNS = 200
#: ... and at most this many bytes of UTF-8 JSON (older turns are dropped first).
MAX_TRANSCRIPT_BYTES = 200_000
#: Each string inside a transcript turn is cut to this many characters.
MAX_TURN_STRING_CHARS = 5_000
#: Nested containers in a transcript turn deeper than this are replaced by a placeholder string.
MAX_TURN_DEPTH = 6
#: A sentiment trail keeps at most the last this many labels, each cut to 32 characters.
MAX_SENTIMENT_LABELS = 200
#: Largest money amount a NUMERIC(10, 2) column holds.
MAX_AMOUNT = Decimal("99999999.99")
#: Upper bound for the ``limit`` of :meth:`ShopRepository.search_products`.
MAX_SEARCH_LIMIT = 100
#: Minimum match score for a product to be listed by a text search.
SEARCH_MIN_SCORE = 0.5
#: :meth:`ShopRepository.list_tickets` returns at most this many tickets (newest first).
MAX_TICKETS_LISTED = 500
#: Number of suggestions returned by :meth:`ShopRepository.find_product`.
MAX_SUGGESTIONS = 5

_ORDER_NUMBER_RE = re.compile(
    r"(?:order(?:\s*(?:number|num|no|nr))?\.?\s*[:#]?\s*|(?:number|no|nr)\.?\s*[:#]?\s*|#\s*)?"
    r"(?P<number>[0-9][0-9 ]*[0-9])",
    re.ASCII,
)
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_WHITESPACE_RE = re.compile(r"\s+")


# ------------------------------------------------------------------------------------------------------------
# Views
# ------------------------------------------------------------------------------------------------------------


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
    """Result of :meth:`ShopRepository.find_product`.

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
        """True while the order has not left the warehouse (placed or packed)."""
        return self.status in (OrderStatus.PLACED.value, OrderStatus.PACKED.value)

    @property
    def can_change_address(self) -> bool:
        """True while the order has not left the warehouse (placed or packed)."""
        return self.status in (OrderStatus.PLACED.value, OrderStatus.PACKED.value)


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


# ------------------------------------------------------------------------------------------------------------
# Input clean-up
# ------------------------------------------------------------------------------------------------------------


def parse_order_number(text: str) -> str:
    """Extract a five-digit order number from what a customer typed.

    Accepted: ``"10023"``, ``"#10023"``, ``"order 10023"``, ``"Order no. 10023"``, ``" 10 023 "`` (spaces
    between digits, including no-break and thin spaces, and full-width digits are tolerated).

    Args:
        text: The customer's text or an entity value.

    Returns:
        The order number as five ASCII digits, e.g. ``"10023"``.

    Raises:
        InvalidOrderNumber: For anything else: not a string, empty, over 64 characters, letters or signs
            around the digits, negative numbers, more or fewer than five digits.
    """
    if not isinstance(text, str) or len(text) > MAX_ORDER_NUMBER_TEXT:
        raise InvalidOrderNumber(
            f"order number text refused (type {type(text).__name__}, too long or not text)"
        )
    normalised = unicodedata.normalize("NFKC", text)
    normalised = "".join(
        ch for ch in normalised if unicodedata.category(ch) not in ("Cf", "Cc") or ch in "\t\n\r"
    )
    normalised = normalised.strip().casefold()
    match = _ORDER_NUMBER_RE.fullmatch(normalised)
    if match is None:
        raise InvalidOrderNumber(f"not an order number: {text[:40]!r}")
    digits = match.group("number").replace(" ", "")
    if len(digits) != ORDER_NUMBER_DIGITS:
        raise InvalidOrderNumber(f"order number must have {ORDER_NUMBER_DIGITS} digits: {text[:40]!r}")
    return digits


def _clean_text(value: Any, field: str, *, max_chars: int, min_chars: int = 0, truncate: bool = True) -> str:
    """Make customer text safe to store: one line, no control/format characters, collapsed whitespace.

    Raises:
        InvalidInput: If ``value`` is not a string, shorter than ``min_chars`` after clean-up, or longer than
            ``max_chars`` while ``truncate`` is False.
    """
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text, got {type(value).__name__}")
    text = unicodedata.normalize("NFC", value)
    text = "".join(
        (" " if ch.isspace() else "") if unicodedata.category(ch) == "Cc" else ch
        for ch in text
        if unicodedata.category(ch) not in ("Cf", "Cs", "Co", "Cn")
    )
    text = _WHITESPACE_RE.sub(" ", text).strip()
    if len(text) > max_chars:
        if not truncate:
            raise InvalidInput(
                f"{field} too long ({len(text)} > {max_chars} characters)",
                user_message=f"That {field.replace('_', ' ')} is too long (at most {max_chars} characters).",
            )
        text = text[:max_chars].rstrip()
    if len(text) < min_chars:
        raise InvalidInput(
            f"{field} too short ({len(text)} < {min_chars} characters)",
            user_message=f"That {field.replace('_', ' ')} looks too short. Could you give the full one?",
        )
    return text


def _clean_json_value(value: Any, depth: int = 0) -> Any:
    """Copy a transcript value into plain JSON types with capped strings and depth."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, str):
        text = "".join(ch for ch in value if ch != "\x00" and unicodedata.category(ch) != "Cs")
        return text[:MAX_TURN_STRING_CHARS]
    if depth >= MAX_TURN_DEPTH:
        return "[nested data omitted]"
    if isinstance(value, dict):
        return {
            str(_clean_json_value(str(key), depth + 1)): _clean_json_value(item, depth + 1)
            for key, item in list(value.items())[:100]
        }
    if isinstance(value, (list, tuple)):
        return [_clean_json_value(item, depth + 1) for item in list(value)[:100]]
    return _clean_json_value(str(value), depth + 1)


def _cap_transcript(transcript: Any) -> List[Dict[str, Any]]:
    """Keep the newest turns of a transcript within the turn and byte limits.

    Raises:
        InvalidInput: If ``transcript`` is not a list or tuple.
    """
    if not isinstance(transcript, (list, tuple)):
        raise InvalidInput(f"transcript must be a list of dicts, got {type(transcript).__name__}")
    newest = list(transcript)[-MAX_TRANSCRIPT_TURNS:]
    kept: List[Dict[str, Any]] = []
    used = 2  # the enclosing brackets
    for turn in reversed(newest):
        cleaned = _clean_json_value(turn if isinstance(turn, dict) else {"text": turn})
        size = len(json.dumps(cleaned, ensure_ascii=False).encode("utf-8")) + 2  # ", " separator
        if used + size > MAX_TRANSCRIPT_BYTES:
            break
        kept.append(cleaned)
        used += size
    kept.reverse()
    dropped = len(transcript) - len(kept)
    if dropped:
        logger.info("Transcript capped: kept the newest %d turns, dropped %d", len(kept), dropped)
    return kept


def _parse_amount(amount: Any) -> Optional[Decimal]:
    """Turn a requested amount into a two-place Decimal (None stays None).

    Raises:
        InvalidAmount: If the amount is not a finite number with at most two decimal places, or not positive.
    """
    if amount is None:
        return None
    if isinstance(amount, bool):
        raise InvalidAmount("amount must be a number, got a bool")
    try:
        if isinstance(amount, Decimal):
            value = amount
        elif isinstance(amount, (int, float)):
            value = Decimal(str(amount))
        elif isinstance(amount, str) and len(amount) <= 32:
            text = amount.strip().replace("€", "").replace("EUR", "").replace("eur", "").strip()
            if text.count(",") == 1 and "." not in text:
                text = text.replace(",", ".")
            value = Decimal(text)
        else:
            raise InvalidAmount(f"amount of type {type(amount).__name__} refused")
    except (InvalidOperation, ValueError) as exc:
        raise InvalidAmount(f"not an amount: {str(amount)[:40]!r}") from exc
    if not value.is_finite():
        raise InvalidAmount(f"amount is not finite: {value}")
    if value <= 0:
        raise InvalidAmount(
            f"amount must be positive, got {value}",
            user_message="The refund amount has to be more than zero.",
        )
    if value > MAX_AMOUNT:
        raise InvalidAmount(f"amount too large: {value}", user_message="That amount is far too large.")
    if value != value.quantize(CENT):
        raise InvalidAmount(
            f"amount has more than two decimal places: {value}",
            user_message="Please give the amount in euros and cents, like 4.50.",
        )
    return value.quantize(CENT)


def _clean_image_path(path: Any) -> str:
    """Validate an image path relative to the image root and return it in POSIX form.

    Raises:
        InvalidInput: For non-strings, empty or over-long paths, absolute paths, drive letters, ``..`` parts
            or control characters.
    """
    if not isinstance(path, str) or not path.strip() or len(path) > 500:
        raise InvalidInput("image path must be a non-empty string of at most 500 characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in path):
        raise InvalidInput("image path contains control characters")
    posix = path.strip().replace("\\", "/")
    windows = PureWindowsPath(path.strip())
    pure = PurePosixPath(posix)
    if (
        pure.is_absolute()
        or windows.drive
        or windows.is_absolute()
        or ".." in pure.parts
        or posix.startswith("~")
    ):
        raise InvalidInput(f"image path must be relative to the image root: {path[:80]!r}")
    parts = [part for part in pure.parts if part not in ("", ".")]
    if not parts:
        raise InvalidInput("image path has no file name")
    return "/".join(parts)


# ------------------------------------------------------------------------------------------------------------
# Repository
# ------------------------------------------------------------------------------------------------------------


class ShopRepository:
    """Queries and updates of the shop database, one short unit of work per call.

    The repository is thread-safe as long as the session factory's engine is (every call opens its own
    session).

    Args:
        session_factory: Factory from :func:`shop.db.make_session_factory`.
    """

    #: :func:`parse_order_number`, also reachable from an instance.
    parse_order_number = staticmethod(parse_order_number)

    def __init__(self, session_factory: sessionmaker) -> None:
        self._session_factory = session_factory

    @classmethod
    def from_url(cls, url: Optional[str] = None) -> "ShopRepository":
        """Build a repository on a new engine.

        Args:
            url: SQLAlchemy URL; defaults to :func:`shop.db.database_url` (``DATABASE_URL`` or the SQLite
                file).

        Returns:
            A repository. The schema is not created here; run ``python -m shop.seed`` for that.
        """
        return cls(make_session_factory(make_engine(url)))

    # ----------------------------------------------------------------------------------------------- products

    @staticmethod
    def _product_view(product: Product) -> ProductView:
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

    def _load_products(self, session: Session, *conditions: Any) -> List[ProductView]:
        statement = (
            select(Product)
            .options(selectinload(Product.images))
            .where(*conditions)
            .order_by(Product.category, Product.name, Product.sku)
        )
        return [self._product_view(product) for product in session.execute(statement).scalars()]

    def list_products(self) -> List[ProductView]:
        """Return the whole catalog, ordered by category and name.

        Returns:
            Every product, in and out of stock.
        """
        with unit_of_work(self._session_factory) as session:
            return self._load_products(session)

    def get_product(self, sku: str) -> Optional[ProductView]:
        """Return one product by SKU (case-insensitive, surrounding spaces ignored).

        Args:
            sku: E.g. ``"FRU-BANANA"``.

        Returns:
            The product, or None if there is none (also for non-string or over-long input).
        """
        if not isinstance(sku, str) or not sku.strip() or len(sku) > 64:
            return None
        with unit_of_work(self._session_factory) as session:
            found = self._load_products(session, Product.sku == sku.strip().upper())
        return found[0] if found else None

    def list_categories(self) -> List[str]:
        """Return the distinct category paths of the catalog, sorted.

        Returns:
            Category paths such as ``["Dairy/Eggs", "Fruit/Apple", ...]``; the top-level category is the part
            before the first ``/``.
        """
        with unit_of_work(self._session_factory) as session:
            rows = session.execute(select(Product.category).distinct().order_by(Product.category)).scalars()
            return list(rows)

    def find_product(self, query: str) -> ProductMatch:
        """Find the product a customer most likely means.

        Tolerates case, filler words (``"some bananas please"``), plurals (``bananas``, ``tomatoes``,
        ``berries``), small typos (``bananna``, ``tomatos``) and spelling variants (``yogurt``); see
        :mod:`shop.matching`. Never raises for odd input: empty, emoji-only, non-string or over-long (> 256
        characters) queries give no match.

        Args:
            query: Free text or an entity value.

        Returns:
            The best product when its score is at least :data:`shop.matching.MATCH_THRESHOLD` (else
            ``product`` is None), its score, and up to five other close products as suggestions.
        """
        if not matching.query_tokens(query):
            return ProductMatch(product=None, score=0.0, suggestions=())
        products = self.list_products()
        ranked = matching.rank(query, products)
        if not ranked:
            return ProductMatch(product=None, score=0.0, suggestions=())
        best_score, best = ranked[0]
        chosen = best if best_score >= matching.MATCH_THRESHOLD else None
        rest = ranked[1:] if chosen is not None else ranked
        suggestions = tuple(product for score, product in rest if score >= matching.SUGGESTION_MIN_SCORE)
        suggestions = suggestions[:MAX_SUGGESTIONS]
        logger.debug("find_product: best %s (%.3f), %d suggestions", best.sku, best_score, len(suggestions))
        return ProductMatch(product=chosen, score=float(best_score), suggestions=suggestions)

    def search_products(
        self,
        query: Optional[str] = None,
        category: Optional[str] = None,
        in_stock_only: bool = False,
        limit: int = 5,
    ) -> List[ProductView]:
        """Search the catalog by text and/or category.

        Args:
            query: Free text matched like :meth:`find_product` (products scoring at least 0.5, best first).
                None or blank lists products by category and name. Text without any content word (emoji,
                filler words) finds nothing.
            category: Case-insensitive full path (``"Fruit/Apple"``), top level (``"Fruit"``) or coarse
                category (``"Apple"``).
            in_stock_only: Leave out products with stock 0.
            limit: Maximum number of results, clamped to 1..100.

        Returns:
            Matching products, at most ``limit``.

        Raises:
            InvalidInput: If ``limit`` is not an integer.
        """
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidInput(f"limit must be an integer, got {type(limit).__name__}")
        limit = max(1, min(limit, MAX_SEARCH_LIMIT))
        conditions = []
        if category is not None:
            if not isinstance(category, str) or len(category) > 80:
                return []
            wanted = category.strip().lower()
            if wanted:
                lowered = func.lower(Product.category)
                conditions.append(
                    (lowered == wanted)
                    | (func.lower(Product.coarse_category) == wanted)
                    | lowered.startswith(wanted + "/", autoescape=True)
                )
        if in_stock_only:
            conditions.append(Product.stock > 0)
        with unit_of_work(self._session_factory) as session:
            products = self._load_products(session, *conditions)
        if query is None or (isinstance(query, str) and not query.strip()):
            return products[:limit]
        ranked = matching.rank(query, products)
        return [product for score, product in ranked if score >= SEARCH_MIN_SCORE][:limit]

    def product_images(self) -> List[Tuple[str, str]]:
        """Return every product photo as ``(sku, relative path)``, ordered by SKU and path.

        Returns:
            The pairs; paths are relative to the image root.
        """
        with unit_of_work(self._session_factory) as session:
            rows = session.execute(
                select(Product.sku, ProductImage.path)
                .join(ProductImage, ProductImage.product_id == Product.id)
                .order_by(Product.sku, ProductImage.path)
            ).all()
            return [(sku, path) for sku, path in rows]

    def add_product_image(self, sku: str, path: str, sha256: str) -> None:
        """Record a product photo; adding the same photo again changes nothing.

        The pair (product, path) identifies a photo; if it exists with another hash, the hash is updated.

        Args:
            sku: Product SKU.
            path: Path relative to the image root, POSIX separators (backslashes are converted).
            sha256: Hex SHA-256 of the file content (64 characters, any case).

        Raises:
            InvalidInput: Unknown SKU, a path that is absolute or climbs out (``..``), or a malformed hash.
        """
        clean_path = _clean_image_path(path)
        digest = sha256.strip().lower() if isinstance(sha256, str) else ""
        if not _SHA256_RE.fullmatch(digest):
            raise InvalidInput("sha256 must be 64 hexadecimal characters")
        if not isinstance(sku, str) or not sku.strip() or len(sku) > 64:
            raise InvalidInput("sku must be a non-empty string")
        for attempt in (1, 2):
            try:
                with unit_of_work(self._session_factory) as session:
                    product_id = session.execute(
                        select(Product.id).where(Product.sku == sku.strip().upper())
                    ).scalar_one_or_none()
                    if product_id is None:
                        raise InvalidInput(
                            f"unknown sku {sku[:64]!r}", user_message="I don't know that product."
                        )
                    image = session.execute(
                        select(ProductImage).where(
                            ProductImage.product_id == product_id, ProductImage.path == clean_path
                        )
                    ).scalar_one_or_none()
                    if image is None:
                        session.add(ProductImage(product_id=product_id, path=clean_path, sha256=digest))
                        logger.info("Added image %s for %s", clean_path, sku)
                    elif image.sha256 != digest:
                        image.sha256 = digest
                        logger.info("Updated hash of image %s for %s", clean_path, sku)
                return
            except IntegrityError:
                if attempt == 2:
                    raise
                logger.info("Concurrent insert of image %s for %s; retrying", clean_path, sku)

    # ------------------------------------------------------------------------------------------------- orders

    @staticmethod
    def _order_view(order: Order) -> OrderView:
        items = tuple(
            OrderItemView(
                sku=item.product.sku,
                name=item.product.name,
                quantity=int(item.quantity),
                unit_price=item.unit_price,
            )
            for item in order.items
        )
        total = sum((item.unit_price * item.quantity for item in items), Decimal("0")).quantize(CENT)
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
            total=total,
            currency=order.currency,
            status_history=tuple((OrderStatus(event.status).value, event.at) for event in events),
        )

    @staticmethod
    def _load_order(session: Session, order_number: str, *, for_update: bool = False) -> Order:
        statement = (
            select(Order)
            .where(Order.order_number == order_number)
            .options(
                selectinload(Order.items).selectinload(OrderItem.product),
                selectinload(Order.events),
                selectinload(Order.customer),
                selectinload(Order.refunds),
            )
        )
        if for_update:
            statement = statement.with_for_update()
        order = session.execute(statement).scalar_one_or_none()
        if order is None:
            raise OrderNotFound(order_number)
        return order

    def get_order(self, order_number: str) -> OrderView:
        """Return an order with items, total and status history.

        Args:
            order_number: Anything :func:`parse_order_number` accepts, e.g. ``"#10023"``.

        Returns:
            The order.

        Raises:
            InvalidOrderNumber: Malformed number.
            OrderNotFound: No such order.
        """
        number = parse_order_number(order_number)
        with unit_of_work(self._session_factory) as session:
            return self._order_view(self._load_order(session, number))

    def cancel_order(self, order_number: str, reason: Optional[str] = None) -> OrderView:
        """Cancel an order that has not shipped yet, and put its items back in stock.

        Writes the new status and a status event (with the reason as its note). Nothing is written when the
        order cannot be cancelled.

        Args:
            order_number: Anything :func:`parse_order_number` accepts.
            reason: Optional free text, cut to 1000 characters.

        Returns:
            The cancelled order.

        Raises:
            InvalidOrderNumber: Malformed number.
            InvalidInput: ``reason`` is not a string.
            OrderNotFound: No such order.
            OrderNotCancellable: The order is shipped, delivered or already cancelled (``.status`` says
                which).
        """
        number = parse_order_number(order_number)
        note = _clean_text(reason, "reason", max_chars=MAX_REASON_CHARS) if reason is not None else None
        with unit_of_work(self._session_factory) as session:
            order = self._load_order(session, number, for_update=True)
            status = OrderStatus(order.status)
            if status not in OPEN_ORDER_STATUSES:
                logger.info("Cancellation of order %s refused: status %s", number, status.value)
                raise OrderNotCancellable(number, status.value)
            now = utcnow()
            order.status = OrderStatus.CANCELLED
            order.updated_at = now
            session.add(
                OrderStatusEvent(order=order, status=OrderStatus.CANCELLED, at=now, note=note or None)
            )
            for item in order.items:
                session.execute(
                    update(Product)
                    .where(Product.id == item.product_id)
                    .values(stock=Product.stock + item.quantity)
                    .execution_options(synchronize_session=False)
                )
            session.flush()
            view = self._order_view(order)
        logger.info("Order %s cancelled (was %s)", number, status.value)
        return view

    def change_shipping_address(self, order_number: str, new_address: str) -> OrderView:
        """Change the delivery address of an order that has not shipped yet.

        The address is cleaned (control and invisible characters removed, whitespace collapsed to one line)
        and must then be 5 to 300 characters long.

        Args:
            order_number: Anything :func:`parse_order_number` accepts.
            new_address: The new address.

        Returns:
            The updated order.

        Raises:
            InvalidOrderNumber: Malformed number.
            InvalidInput: Address not text, too short or too long.
            OrderNotFound: No such order.
            AddressChangeNotAllowed: The order is shipped, delivered or cancelled.
        """
        number = parse_order_number(order_number)
        address = _clean_text(
            new_address, "address", min_chars=ADDRESS_MIN_CHARS, max_chars=ADDRESS_MAX_CHARS, truncate=False
        )
        with unit_of_work(self._session_factory) as session:
            order = self._load_order(session, number, for_update=True)
            status = OrderStatus(order.status)
            if status not in OPEN_ORDER_STATUSES:
                logger.info("Address change for order %s refused: status %s", number, status.value)
                raise AddressChangeNotAllowed(number, status.value)
            order.shipping_address = address
            order.updated_at = utcnow()
            session.flush()
            view = self._order_view(order)
        logger.info("Shipping address of order %s changed", number)
        return view

    # ------------------------------------------------------------------------------------------------ refunds

    @staticmethod
    def _refund_view(refund: Refund, order_number: str) -> RefundView:
        return RefundView(
            refund_number=refund.refund_number,
            order_number=order_number,
            amount=refund.amount,
            currency=refund.currency,
            status=RefundStatus(refund.status).value,
            reason=refund.reason or "",
            created_at=refund.created_at,
        )

    @staticmethod
    def _refunded_so_far(refunds: Iterable[Refund]) -> Decimal:
        return sum(
            (refund.amount for refund in refunds if RefundStatus(refund.status) is not RefundStatus.REJECTED),
            Decimal("0"),
        )

    @classmethod
    def _refund_amount(cls, number: str, order: Order, requested: Optional[Decimal]) -> Decimal:
        """Check that ``order`` can be refunded and return the amount to request.

        Raises:
            RefundNotAllowed: Not delivered or cancelled, or nothing left to refund.
            InvalidAmount: ``requested`` is more than what is left.
        """
        status = OrderStatus(order.status)
        if status not in (OrderStatus.DELIVERED, OrderStatus.CANCELLED):
            hint = " You can still cancel it instead." if status in OPEN_ORDER_STATUSES else ""
            raise RefundNotAllowed(
                f"refund refused for order {number} in status {status.value}",
                user_message=(
                    f"Order {number} is {status.value}. Refunds are possible once it has been delivered"
                    f" (or if it was cancelled).{hint}"
                ),
            )
        total = sum((item.unit_price * item.quantity for item in order.items), Decimal("0"))
        remaining = (total - cls._refunded_so_far(order.refunds)).quantize(CENT)
        if remaining <= 0:
            raise RefundNotAllowed(
                f"order {number} is fully refunded already",
                user_message=f"Everything on order {number} has already been refunded or requested.",
            )
        if requested is not None and requested > remaining:
            raise InvalidAmount(
                f"refund {requested} exceeds remaining {remaining} for order {number}",
                user_message=(
                    f"The most that can be refunded for order {number} is {remaining} {order.currency}."
                ),
            )
        return remaining if requested is None else requested

    def request_refund(self, order_number: str, reason: str, amount: Optional[Decimal] = None) -> RefundView:
        """Request a refund for a delivered or cancelled order.

        Refund requests that are not rejected count against the order total. The refund number is
        ``RF-<order number>-<n>``; two concurrent requests for one order cannot both succeed with the same
        remaining amount (the second is re-checked against the first).

        Args:
            order_number: Anything :func:`parse_order_number` accepts.
            reason: The customer's reason (cleaned, cut to 1000 characters; may be empty).
            amount: Amount in the order's currency with at most two decimal places (``Decimal``, ``int``, or a
                string like ``"4.50"``); None means everything not yet refunded.

        Returns:
            The new refund request (status ``"requested"``).

        Raises:
            InvalidOrderNumber: Malformed number.
            InvalidInput: ``reason`` is not a string.
            InvalidAmount: Malformed, zero or negative amount, or more than what is left to refund.
            OrderNotFound: No such order.
            RefundNotAllowed: The order is not delivered or cancelled, or it is fully refunded already.
        """
        number = parse_order_number(order_number)
        clean_reason = _clean_text(reason, "reason", max_chars=MAX_REASON_CHARS)
        requested = _parse_amount(amount)
        for attempt in (1, 2):
            try:
                with unit_of_work(self._session_factory) as session:
                    order = self._load_order(session, number, for_update=True)
                    try:
                        value = self._refund_amount(number, order, requested)
                    except ShopError as exc:
                        logger.info("Refund request refused: %s", exc)
                        raise
                    refund = Refund(
                        refund_number=f"RF-{number}-{len(order.refunds) + 1}",
                        order=order,
                        amount=value,
                        currency=order.currency,
                        status=RefundStatus.REQUESTED,
                        reason=clean_reason,
                        created_at=utcnow(),
                    )
                    session.add(refund)
                    session.flush()
                    view = self._refund_view(refund, number)
                logger.info("Refund %s of %s %s requested", view.refund_number, view.amount, view.currency)
                return view
            except IntegrityError:
                if attempt == 2:
                    raise
                logger.info("Concurrent refund request for order %s; re-checking", number)
        raise AssertionError("unreachable")  # pragma: no cover

    def list_refunds(self, order_number: str) -> List[RefundView]:
        """Return the refund requests of an order, oldest first.

        Args:
            order_number: Anything :func:`parse_order_number` accepts.

        Returns:
            The refunds (possibly none).

        Raises:
            InvalidOrderNumber: Malformed number.
            OrderNotFound: No such order.
        """
        number = parse_order_number(order_number)
        with unit_of_work(self._session_factory) as session:
            order_id = session.execute(
                select(Order.id).where(Order.order_number == number)
            ).scalar_one_or_none()
            if order_id is None:
                raise OrderNotFound(number)
            refunds = session.execute(
                select(Refund).where(Refund.order_id == order_id).order_by(Refund.created_at, Refund.id)
            ).scalars()
            return [self._refund_view(refund, number) for refund in refunds]

    def get_refund(self, refund_number: str) -> Optional[RefundView]:
        """Return one refund request by its number (case-insensitive).

        Args:
            refund_number: E.g. ``"RF-10026-1"``.

        Returns:
            The refund, or None if unknown (also for non-string or over-long input).
        """
        if not isinstance(refund_number, str) or not refund_number.strip() or len(refund_number) > 64:
            return None
        with unit_of_work(self._session_factory) as session:
            row = session.execute(
                select(Refund, Order.order_number)
                .join(Order, Order.id == Refund.order_id)
                .where(Refund.refund_number == refund_number.strip().upper())
            ).one_or_none()
            return self._refund_view(row[0], row[1]) if row is not None else None

    # ------------------------------------------------------------------------------------------------ tickets

    @staticmethod
    def _ticket_view(ticket: SupportTicket) -> TicketView:
        return TicketView(
            ticket_number=ticket.ticket_number,
            sender_id=ticket.sender_id,
            subject=ticket.subject,
            status=TicketStatus(ticket.status).value,
            priority=TicketPriority(ticket.priority).value,
            order_number=ticket.order_number,
            created_at=ticket.created_at,
        )

    def create_ticket(
        self,
        sender_id: str,
        subject: str,
        transcript: List[dict],
        sentiment_trail: Optional[List[str]] = None,
        order_number: Optional[str] = None,
        priority: str = "normal",
    ) -> TicketView:
        """Open a support ticket for a human agent, storing the conversation so far.

        The transcript keeps the newest 200 turns and at most 200 KB of JSON (older turns are dropped first);
        strings in a turn are cut to 5,000 characters. A malformed ``order_number`` is not an error here (the
        hand-off must not fail because of it): it is left out of the ticket and logged.

        Args:
            sender_id: Conversation id (at most 255 characters).
            subject: Short subject, cut to 200 characters; blank becomes ``"Support request"``.
            transcript: Turns, e.g. ``[{"event": "user", "text": "hi", "timestamp": 1700000000.0}]``.
            sentiment_trail: Sentiment labels per user turn, e.g. ``["neutral", "negative"]``.
            order_number: Related order, if known.
            priority: ``"normal"`` or ``"high"``.

        Returns:
            The new ticket (status ``"open"``).

        Raises:
            InvalidInput: Blank or over-long sender id, transcript or trail not a list, unknown priority.
        """
        sender = _clean_text(
            sender_id, "sender_id", max_chars=MAX_SENDER_ID_CHARS, min_chars=1, truncate=False
        )
        clean_subject = _clean_text(subject, "subject", max_chars=MAX_SUBJECT_CHARS) or "Support request"
        try:
            ticket_priority = TicketPriority(priority)
        except ValueError as exc:
            raise InvalidInput(f"priority must be 'normal' or 'high', got {str(priority)[:20]!r}") from exc
        turns = _cap_transcript(transcript)
        if sentiment_trail is None:
            sentiment_trail = []
        if not isinstance(sentiment_trail, (list, tuple)):
            raise InvalidInput(f"sentiment_trail must be a list, got {type(sentiment_trail).__name__}")
        trail = [
            _clean_text(label if isinstance(label, str) else str(label), "sentiment", max_chars=32)
            for label in list(sentiment_trail)[-MAX_SENTIMENT_LABELS:]
        ]
        related: Optional[str] = None
        if order_number is not None:
            try:
                related = parse_order_number(order_number)
            except InvalidOrderNumber:
                logger.info("Ticket for %s: ignoring malformed order number", sender[:40])
        transcript_json = json.dumps(turns, ensure_ascii=False)
        trail_json = json.dumps(trail, ensure_ascii=False)
        for attempt in range(1, 4):
            try:
                with unit_of_work(self._session_factory) as session:
                    ticket = SupportTicket(
                        ticket_number=f"TK-{secrets.token_hex(4).upper()}",
                        sender_id=sender,
                        subject=clean_subject,
                        status=TicketStatus.OPEN,
                        priority=ticket_priority,
                        order_number=related,
                        transcript=transcript_json,
                        sentiment_trail=trail_json,
                        created_at=utcnow(),
                    )
                    session.add(ticket)
                    session.flush()
                    view = self._ticket_view(ticket)
                logger.info(
                    "Ticket %s opened (%s priority, %d turns)", view.ticket_number, view.priority, len(turns)
                )
                return view
            except IntegrityError:
                if attempt == 3:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def list_tickets(self, sender_id: Optional[str] = None) -> List[TicketView]:
        """Return tickets, newest first (at most 500).

        Args:
            sender_id: Only this conversation's tickets; None for all.

        Returns:
            The tickets (empty for a non-string ``sender_id``).
        """
        statement = select(SupportTicket).order_by(SupportTicket.created_at.desc(), SupportTicket.id.desc())
        if sender_id is not None:
            try:
                sender = _clean_text(sender_id, "sender_id", max_chars=MAX_SENDER_ID_CHARS, truncate=False)
            except InvalidInput:
                return []
            statement = statement.where(SupportTicket.sender_id == sender)
        with unit_of_work(self._session_factory) as session:
            tickets = session.execute(statement.limit(MAX_TICKETS_LISTED)).scalars()
            return [self._ticket_view(ticket) for ticket in tickets]

    def get_ticket_transcript(self, ticket_number: str) -> List[dict]:
        """Return the stored transcript of a ticket.

        Args:
            ticket_number: E.g. ``"TK-3F9A12C0"`` (case-insensitive).

        Returns:
            The turns as stored (already capped), or an empty list for an unknown ticket.
        """
        if not isinstance(ticket_number, str) or not ticket_number.strip() or len(ticket_number) > 64:
            return []
        with unit_of_work(self._session_factory) as session:
            raw = session.execute(
                select(SupportTicket.transcript).where(
                    SupportTicket.ticket_number == ticket_number.strip().upper()
                )
            ).scalar_one_or_none()
        if raw is None:
            return []
        try:
            turns = json.loads(raw)
        except ValueError:
            logger.warning("Ticket %s has an unreadable transcript", ticket_number[:24])
            return []
        return [turn for turn in turns if isinstance(turn, dict)] if isinstance(turns, list) else []


__all__ = [
    "ShopRepository",
    "ProductView",
    "ProductMatch",
    "OrderItemView",
    "OrderView",
    "RefundView",
    "TicketView",
    "parse_order_number",
    "ShopError",
    "InvalidOrderNumber",
    "OrderNotFound",
    "OrderNotCancellable",
    "AddressChangeNotAllowed",
    "RefundNotAllowed",
    "InvalidAmount",
    "InvalidInput",
]
