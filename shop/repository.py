"""The repository: the only module that queries the shop database.

Every public method of :class:`ShopRepository` runs in its own short unit of work (one session, committed or
rolled back before the method returns), queries with 2.0-style ``select()``/``update()`` and bound parameters,
and returns frozen views (:mod:`shop.views`), never ORM objects, so nothing outside this module can touch a
session. Input is checked by :mod:`shop.validation` before anything is read or written, and the business
rules come from :mod:`shop.rules`; a refusal raises a :class:`~shop.errors.ShopError` whose ``user_message``
can be shown as it is, and nothing is written for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable, List, Optional, Tuple, Union

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from shop import lookup, matching, rules, validation
from shop.verification import LockPolicy, VerificationResult, emails_match, normalise_email
from shop.db import make_engine, make_session_factory, unit_of_work
from shop.errors import InvalidInput, OrderNotFound, ShopError
from shop.models import (
    RefundRequestKey,
    Customer,
    Order,
    OrderItem,
    OrderStatusEvent,
    Product,
    ProductImage,
    Refund,
    SupportTicket,
    VerificationAttempt,
    utcnow,
)
from shop.statuses import OrderStatus, RefundStatus, TicketStatus, VerificationOutcome
from shop.views import (
    OrderView,
    ProductMatch,
    ProductView,
    RefundView,
    TicketView,
    order_view,
    product_view,
    refund_view,
    ticket_view,
)

logger = logging.getLogger(__name__)

#: Upper bound for the ``limit`` of :meth:`ShopRepository.search_products`.
MAX_SEARCH_LIMIT = 100
#: Minimum match score for a product to be listed by a text search.
SEARCH_MIN_SCORE = 0.5
#: :meth:`ShopRepository.list_tickets` returns at most this many tickets (newest first).
MAX_TICKETS_LISTED = 500
#: Number of suggestions returned by :meth:`ShopRepository.find_product`.
MAX_SUGGESTIONS = 5
#: Attempts at a write that may collide with a concurrent one (refund and image inserts).
_WRITE_ATTEMPTS = 2
#: Attempts at creating a ticket (a random ticket number may collide).
_TICKET_ATTEMPTS = 3
#: Most orders :meth:`ShopRepository.customer_orders` returns.
MAX_CUSTOMER_ORDERS = 20
#: What an erased ticket's subject becomes (the subject of a complaint quotes the customer).
ERASED_SUBJECT = "Erased at the customer's request"
#: What :func:`shop.matching.rank` reads of a product (a light row instead of an ORM object).
_MATCH_COLUMNS = (
    Product.sku,
    Product.name,
    Product.kind,
    Product.category,
    Product.coarse_category,
    Product.stock,
    Product.search_text,
)
#: Outcomes of verification tries that count against the limit.
_COUNTED_OUTCOMES = (VerificationOutcome.PENDING, VerificationOutcome.FAILED)


class ShopRepository:
    """Queries and updates of the shop database, one short unit of work per call.

    The repository is thread-safe as long as the session factory's engine is (every call opens its own
    session).

    Args:
        session_factory: Factory from :func:`shop.db.make_session_factory`.
        verification_policy: When wrong email addresses lock further tries (:class:`shop.verification.
            LockPolicy`; 5 within 15 minutes by default).
    """

    #: :func:`shop.validation.parse_order_number`, the parser every method applies to order numbers.
    parse_order_number = staticmethod(validation.parse_order_number)

    def __init__(
        self, session_factory: sessionmaker, verification_policy: Optional[LockPolicy] = None
    ) -> None:
        self._session_factory = session_factory
        self.verification_policy = verification_policy or LockPolicy()

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

    # --------------------------------------------------------------------------------------------- products

    @staticmethod
    def _load_products(session: Session, *conditions: Any) -> List[ProductView]:
        statement = (
            select(Product)
            .options(selectinload(Product.images))
            .where(*conditions)
            .order_by(Product.category, Product.name, Product.sku)
        )
        return [product_view(product) for product in session.execute(statement).scalars()]

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
        wanted = validation.normalise_identifier(sku)
        if wanted is None:
            return None
        with unit_of_work(self._session_factory) as session:
            found = self._load_products(session, Product.sku == wanted)
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

    def _ranked(self, query: object, *conditions: Any, keep: int) -> List[Tuple[float, ProductView]]:
        """The best ``keep`` products for a text query, with their scores, best first.

        Candidates come from the database's text index (:func:`shop.lookup.candidate_ids`; every product
        that meets ``conditions`` where the database has none) and are scored by :func:`shop.matching.rank`
        on light rows (the stored search text, no ORM objects); only the ``keep`` best become views.
        """
        tokens = matching.query_tokens(query)
        if not tokens:
            return []
        with unit_of_work(self._session_factory) as session:
            ids = lookup.candidate_ids(session, tokens, conditions)
            if ids is not None:
                if not ids:
                    return []
                conditions = (Product.id.in_(ids),)
            rows = session.execute(select(*_MATCH_COLUMNS).where(*conditions)).all()
            ranked = matching.rank(query, rows, {row.sku: row.search_text for row in rows})[:keep]
            views = {
                view.sku: view
                for view in self._load_products(session, Product.sku.in_([row.sku for _, row in ranked]))
            }
        return [(score, views[row.sku]) for score, row in ranked if row.sku in views]

    def find_product(self, query: str) -> ProductMatch:
        """Find the product a customer most likely means.

        Tolerates case, filler words (``"some bananas please"``), plurals (``bananas``, ``tomatoes``,
        ``berries``), small typos (``bananna``, ``tomatos``) and spelling variants (``yogurt``); see
        :mod:`shop.matching`. Never raises for odd input: empty, emoji-only, non-string or over-long (> 256
        characters) queries give no match.

        The database's text search picks at most :data:`shop.lookup.CANDIDATE_LIMIT` candidates (misspelt
        words corrected against the catalog's vocabulary through a trigram index, then products by word:
        :mod:`shop.lookup`), which :func:`shop.matching.rank` scores, so a look-up reads a bounded number of
        rows whatever the size of the catalog.

        Args:
            query: Free text or an entity value.

        Returns:
            The best product when its score is at least :data:`shop.matching.MATCH_THRESHOLD` (else
            ``product`` is None), its score, and up to five other close products as suggestions.
        """
        ranked = self._ranked(query, keep=1 + MAX_SUGGESTIONS)
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
            query: Free text matched like :meth:`find_product` (products scoring at least 0.5, best first,
                among the text index's candidates that meet the other filters). None or blank lists products
                by category and name. Text without any content word (emoji, filler words) finds nothing.
            category: Case-insensitive full path (``"Fruit/Apple"``), top level (``"Fruit"``) or coarse
                category (``"Apple"``).
            in_stock_only: Leave out products with stock 0.
            limit: Maximum number of results, clamped to 1..100.

        Returns:
            Matching products, at most ``limit``.

        Raises:
            InvalidInput: If ``limit`` is not an integer.
        """
        limit = validation.clamp_limit(limit, MAX_SEARCH_LIMIT)
        conditions = []
        if category is not None:
            wanted = validation.category_filter(category)
            if wanted is None:
                return []
            if wanted:
                lowered = func.lower(Product.category)
                conditions.append(
                    (lowered == wanted)
                    | (func.lower(Product.coarse_category) == wanted)
                    | lowered.startswith(wanted + "/", autoescape=True)
                )
        if in_stock_only:
            conditions.append(Product.stock > 0)
        if query is None or (isinstance(query, str) and not query.strip()):
            with unit_of_work(self._session_factory) as session:
                statement = (
                    select(Product)
                    .options(selectinload(Product.images))
                    .where(*conditions)
                    .order_by(Product.category, Product.name, Product.sku)
                    .limit(limit)
                )
                return [product_view(product) for product in session.execute(statement).scalars()]
        ranked = self._ranked(query, *conditions, keep=limit)
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
        clean_path = validation.clean_image_path(path)
        digest = validation.clean_sha256(sha256)
        wanted = validation.clean_sku(sku)
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                with unit_of_work(self._session_factory) as session:
                    product_id = session.execute(
                        select(Product.id).where(Product.sku == wanted)
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
                if attempt == _WRITE_ATTEMPTS:
                    raise
                logger.info("Concurrent insert of image %s for %s; retrying", clean_path, sku)

    # ----------------------------------------------------------------------------------------------- orders

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
            order_number: Anything :func:`shop.validation.parse_order_number` accepts, e.g. ``"#10023"``.

        Returns:
            The order.

        Raises:
            InvalidOrderNumber: Malformed number.
            OrderNotFound: No such order.
        """
        number = validation.parse_order_number(order_number)
        with unit_of_work(self._session_factory) as session:
            return order_view(self._load_order(session, number))

    def cancel_order(self, order_number: str, reason: Optional[str] = None) -> OrderView:
        """Cancel an order that has not shipped yet, and put its items back in stock.

        Writes the new status and a status event (with the reason as its note). Nothing is written when the
        order cannot be cancelled (:func:`shop.rules.check_cancellable`).

        Args:
            order_number: Anything :func:`shop.validation.parse_order_number` accepts.
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
        number = validation.parse_order_number(order_number)
        note = validation.clean_reason(reason) if reason is not None else None
        with unit_of_work(self._session_factory) as session:
            order = self._load_order(session, number, for_update=True)
            status = OrderStatus(order.status)
            try:
                rules.check_cancellable(number, status)
            except ShopError:
                logger.info("Cancellation of order %s refused: status %s", number, status.value)
                raise
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
            view = order_view(order)
        logger.info("Order %s cancelled (was %s)", number, status.value)
        return view

    def change_shipping_address(self, order_number: str, new_address: str) -> OrderView:
        """Change the delivery address of an order that has not shipped yet.

        The address is cleaned (control and invisible characters removed, whitespace collapsed to one line)
        and must then be 5 to 300 characters long (:func:`shop.validation.clean_address`).

        Args:
            order_number: Anything :func:`shop.validation.parse_order_number` accepts.
            new_address: The new address.

        Returns:
            The updated order.

        Raises:
            InvalidOrderNumber: Malformed number.
            InvalidInput: Address not text, too short or too long.
            OrderNotFound: No such order.
            AddressChangeNotAllowed: The order is shipped, delivered or cancelled.
        """
        number = validation.parse_order_number(order_number)
        address = validation.clean_address(new_address)
        with unit_of_work(self._session_factory) as session:
            order = self._load_order(session, number, for_update=True)
            status = OrderStatus(order.status)
            try:
                rules.check_address_changeable(number, status)
            except ShopError:
                logger.info("Address change for order %s refused: status %s", number, status.value)
                raise
            order.shipping_address = address
            order.updated_at = utcnow()
            session.flush()
            view = order_view(order)
        logger.info("Shipping address of order %s changed", number)
        return view

    # ------------------------------------------------------------------------------- customers, verification

    def order_belongs_to(self, order_number: str, customer_id: Any) -> bool:
        """Whether an order is one of a customer's (a logged-in customer needs no further proof for it).

        Args:
            order_number: Anything :func:`shop.validation.parse_order_number` accepts.
            customer_id: The customer's id.

        Returns:
            True only for a well-formed number of an existing order of that customer; False for anything else
            (malformed number or id, no such order, another customer's order).
        """
        number = validation.optional_order_number(order_number)
        try:
            customer = validation.parse_customer_id(customer_id)
        except InvalidInput:
            return False
        if number is None:
            return False
        with unit_of_work(self._session_factory) as session:
            found = session.execute(
                select(Order.id).where(Order.order_number == number, Order.customer_id == customer)
            ).scalar_one_or_none()
        return found is not None

    def customer_orders(self, customer_id: Any, limit: int = 5) -> List[OrderView]:
        """Return a customer's most recent orders, newest first.

        Args:
            customer_id: The customer's id.
            limit: How many at most, clamped to 1..20.

        Returns:
            The orders (empty for an unknown or malformed id).

        Raises:
            InvalidInput: ``limit`` is not an integer.
        """
        limit = validation.clamp_limit(limit, MAX_CUSTOMER_ORDERS)
        try:
            customer = validation.parse_customer_id(customer_id)
        except InvalidInput:
            return []
        with unit_of_work(self._session_factory) as session:
            numbers = session.execute(
                select(Order.order_number)
                .where(Order.customer_id == customer)
                .order_by(Order.placed_at.desc(), Order.id.desc())
                .limit(limit)
            ).scalars().all()
            return [order_view(self._load_order(session, number)) for number in numbers]

    def customers_of_orders(self, order_numbers: Iterable[Any]) -> List[int]:
        """Return the ids of the customers who placed these orders (malformed and unknown numbers skipped).

        Args:
            order_numbers: Order numbers, e.g. the ones verified in a conversation (at most 100 are read).

        Returns:
            Distinct customer ids, ascending.
        """
        wanted = map(validation.optional_order_number, list(order_numbers)[:100])
        numbers = {number for number in wanted if number}
        if not numbers:
            return []
        with unit_of_work(self._session_factory) as session:
            rows = session.execute(
                select(Order.customer_id).where(Order.order_number.in_(sorted(numbers))).distinct()
            ).scalars()
            return sorted(int(customer) for customer in rows)

    def _count_failures(
        self, session: Session, sender: str, number: str, since: datetime, exclude_id: Optional[int] = None
    ) -> Tuple[int, int]:
        """Wrong (or running) tries since ``since``: (of this conversation, for this order number)."""
        counted = [
            VerificationAttempt.created_at > since,
            VerificationAttempt.outcome.in_(_COUNTED_OUTCOMES),
        ]
        if exclude_id is not None:
            counted.append(VerificationAttempt.id != exclude_id)
        by_sender = session.execute(
            select(func.count()).where(VerificationAttempt.sender_id == sender, *counted)
        ).scalar_one()
        by_order = session.execute(
            select(func.count()).where(VerificationAttempt.order_number == number, *counted)
        ).scalar_one()
        return int(by_sender), int(by_order)

    def verification_locked(
        self, sender_id: str, order_number: str, *, now: Optional[datetime] = None
    ) -> bool:
        """Whether tries to verify ``order_number`` in this conversation are locked right now.

        Args:
            sender_id: The conversation.
            order_number: Anything :func:`shop.validation.parse_order_number` accepts.
            now: The current time (aware); for tests.

        Returns:
            True when the conversation or the order number has had :attr:`verification_policy`'s number of
            wrong tries within its window.

        Raises:
            InvalidOrderNumber: Malformed number.
            InvalidInput: Blank or over-long sender id, naive ``now``.
        """
        sender = validation.clean_sender_id(sender_id)
        number = validation.parse_order_number(order_number)
        now = validation.aware_datetime(now, "now") if now is not None else utcnow()
        with unit_of_work(self._session_factory) as session:
            counts = self._count_failures(session, sender, number, now - self.verification_policy.window)
        return self.verification_policy.is_locked(*counts)

    def verify_order_email(
        self, sender_id: str, order_number: str, email: str, *, now: Optional[datetime] = None
    ) -> VerificationResult:
        """Check that ``email`` is the address on the order, within the limit on wrong tries.

        The try is written first as ``pending`` (its own unit of work), so that concurrent tries count against
        each other; then, in a second unit of work, the earlier tries within the window are counted, and
        unless that locks, the address is compared with the order's (an unknown order is compared with a
        dummy, :func:`shop.verification.emails_match`) and the try becomes ``verified`` or ``failed``. A try
        made while locked becomes ``refused`` and is not counted; the wrong try that reaches the limit is
        ``failed`` and already answers ``LOCKED``, so the customer hears of the lock-out at once. The same work
        is done whether or not the order exists.

        Args:
            sender_id: The conversation (tries are counted per conversation and per order number).
            order_number: Anything :func:`shop.validation.parse_order_number` accepts.
            email: The address the customer typed (case and surrounding whitespace do not matter).
            now: The current time (aware); for tests.

        Returns:
            ``VerificationResult.VERIFIED``, ``MISMATCH`` (wrong address, or no such order) or ``LOCKED``
            (refused while locked, or the wrong try that locks).

        Raises:
            InvalidOrderNumber: Malformed number (nothing written).
            InvalidInput: Blank or over-long sender id, ``email`` not an email address, naive ``now``
                (nothing written).
        """
        sender = validation.clean_sender_id(sender_id)
        number = validation.parse_order_number(order_number)
        given = normalise_email(email)
        if given is None:
            raise InvalidInput(
                "not an email address", user_message="That doesn't look like an email address."
            )
        now = validation.aware_datetime(now, "now") if now is not None else utcnow()
        with unit_of_work(self._session_factory) as session:
            attempt = VerificationAttempt(
                sender_id=sender, order_number=number, outcome=VerificationOutcome.PENDING, created_at=now
            )
            session.add(attempt)
            session.flush()
            attempt_id = attempt.id
        with unit_of_work(self._session_factory) as session:
            counts = self._count_failures(
                session, sender, number, now - self.verification_policy.window, exclude_id=attempt_id
            )
            if self.verification_policy.is_locked(*counts):
                outcome, result = VerificationOutcome.REFUSED, VerificationResult.LOCKED
            else:
                stored = session.execute(
                    select(Customer.email)
                    .join(Order, Order.customer_id == Customer.id)
                    .where(Order.order_number == number)
                ).scalar_one_or_none()
                matched = emails_match(given, stored)
                outcome = VerificationOutcome.VERIFIED if matched else VerificationOutcome.FAILED
                if matched:
                    result = VerificationResult.VERIFIED
                elif self.verification_policy.is_locked(counts[0] + 1, counts[1] + 1):
                    result = VerificationResult.LOCKED  # this wrong try is the one that locks: say so now
                else:
                    result = VerificationResult.MISMATCH
            session.execute(
                update(VerificationAttempt)
                .where(VerificationAttempt.id == attempt_id)
                .values(outcome=outcome)
                .execution_options(synchronize_session=False)
            )
        logger.info("Verification try for order %s: %s", number, result.value)
        return result

    # ---------------------------------------------------------------------------------------------- refunds

    def request_refund(
        self,
        order_number: str,
        reason: str,
        amount: Union[Decimal, int, float, str, None] = None,
        request_key: Optional[str] = None,
    ) -> RefundView:
        """Request a refund for a delivered or cancelled order.

        The amount follows :func:`shop.rules.refund_amount`: refund requests that are not rejected count
        against the order total. The refund number is ``RF-<order number>-<n>``; two concurrent requests for
        one order cannot both succeed with the same remaining amount (the second is re-checked against the
        first).

        Args:
            order_number: Anything :func:`shop.validation.parse_order_number` accepts.
            reason: The customer's reason (cleaned, cut to 1000 characters; may be empty).
            amount: Amount in the order's currency with at most two decimal places (``Decimal``, ``int``, or a
                string like ``"4.50"``); None means everything not yet refunded.
            request_key: The message this request comes from (``<conversation id>:<message id>``); the same
                key again returns the refund it made instead of requesting another (table
                ``refund_request_keys``). ``None``: no such check.

        Returns:
            The new refund request (status ``"requested"``), or the one made earlier with ``request_key``.

        Raises:
            InvalidOrderNumber: Malformed number.
            InvalidInput: ``reason`` is not a string.
            InvalidAmount: Malformed, zero or negative amount, or more than what is left to refund.
            OrderNotFound: No such order.
            RefundNotAllowed: The order is not delivered or cancelled, or it is fully refunded already.
        """
        number = validation.parse_order_number(order_number)
        clean_reason = validation.clean_reason(reason)
        requested = validation.parse_amount(amount)
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                with unit_of_work(self._session_factory) as session:
                    digest = hashlib.sha256(request_key.encode("utf-8")).hexdigest() if request_key else None
                    earlier = session.get(RefundRequestKey, digest) if digest else None
                    if earlier is not None:
                        view = refund_view(earlier.refund, earlier.refund.order.order_number)
                        logger.info("Refund %s already requested by this message; not requested again",
                                    view.refund_number)
                        return view
                    order = self._load_order(session, number, for_update=True)
                    value = self._refund_value(number, order, requested)
                    refund = Refund(
                        refund_number=rules.refund_number(number, len(order.refunds)),
                        order=order,
                        amount=value,
                        currency=order.currency,
                        status=RefundStatus.REQUESTED,
                        reason=clean_reason,
                        created_at=utcnow(),
                    )
                    session.add(refund)
                    session.flush()
                    if digest:
                        session.add(RefundRequestKey(key=digest, refund_id=refund.id, created_at=utcnow()))
                        session.flush()
                    view = refund_view(refund, number)
                logger.info("Refund %s of %s %s requested", view.refund_number, view.amount, view.currency)
                return view
            except IntegrityError:
                if attempt == _WRITE_ATTEMPTS:
                    raise
                logger.info("Concurrent refund request for order %s; re-checking", number)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _refund_value(number: str, order: Order, requested: Optional[Decimal]) -> Decimal:
        try:
            return rules.refund_amount(
                number,
                order.status,
                rules.order_total((item.unit_price, item.quantity) for item in order.items),
                order.currency,
                [(refund.amount, refund.status) for refund in order.refunds],
                requested,
            )
        except ShopError as exc:
            logger.info("Refund refused: %s", exc)
            raise

    def refund_quote(
        self, order_number: str, amount: Union[Decimal, int, float, str, None] = None
    ) -> Tuple[Decimal, str]:
        """What :meth:`request_refund` would request now, without writing anything (for the confirmation).

        Args:
            order_number: Anything :func:`shop.validation.parse_order_number` accepts.
            amount: As for :meth:`request_refund`; None means everything not yet refunded.

        Returns:
            ``(amount, currency)``, e.g. ``(Decimal("9.56"), "EUR")``.

        Raises:
            The errors of :meth:`request_refund`: ``InvalidOrderNumber``, ``InvalidAmount``,
            ``OrderNotFound``, ``RefundNotAllowed``.
        """
        number = validation.parse_order_number(order_number)
        requested = validation.parse_amount(amount)
        with unit_of_work(self._session_factory) as session:
            order = self._load_order(session, number)
            return self._refund_value(number, order, requested), order.currency

    def list_refunds(self, order_number: str) -> List[RefundView]:
        """Return the refund requests of an order, oldest first.

        Args:
            order_number: Anything :func:`shop.validation.parse_order_number` accepts.

        Returns:
            The refunds (possibly none).

        Raises:
            InvalidOrderNumber: Malformed number.
            OrderNotFound: No such order.
        """
        number = validation.parse_order_number(order_number)
        with unit_of_work(self._session_factory) as session:
            order_id = session.execute(
                select(Order.id).where(Order.order_number == number)
            ).scalar_one_or_none()
            if order_id is None:
                raise OrderNotFound(number)
            refunds = session.execute(
                select(Refund).where(Refund.order_id == order_id).order_by(Refund.created_at, Refund.id)
            ).scalars()
            return [refund_view(refund, number) for refund in refunds]

    def get_refund(self, refund_number: str) -> Optional[RefundView]:
        """Return one refund request by its number (case-insensitive).

        Args:
            refund_number: E.g. ``"RF-10026-1"``.

        Returns:
            The refund, or None if unknown (also for non-string or over-long input).
        """
        wanted = validation.normalise_identifier(refund_number)
        if wanted is None:
            return None
        with unit_of_work(self._session_factory) as session:
            row = session.execute(
                select(Refund, Order.order_number)
                .join(Order, Order.id == Refund.order_id)
                .where(Refund.refund_number == wanted)
            ).one_or_none()
            return refund_view(row[0], row[1]) if row is not None else None

    # ---------------------------------------------------------------------------------------------- tickets

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
        strings in a turn are cut to 5,000 characters (:func:`shop.validation.cap_transcript`). A malformed
        ``order_number`` is not an error here (the hand-off must not fail because of it): it is left out of
        the ticket and logged.

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
        sender = validation.clean_sender_id(sender_id)
        clean_subject = validation.clean_subject(subject)
        ticket_priority = validation.parse_priority(priority)
        turns = validation.cap_transcript(transcript)
        trail = validation.clean_sentiment_trail(sentiment_trail)
        related = validation.optional_order_number(order_number)
        if order_number is not None and related is None:
            logger.info("Ticket for %s: ignoring malformed order number", sender[:40])
        transcript_json = json.dumps(turns, ensure_ascii=False)
        trail_json = json.dumps(trail, ensure_ascii=False)
        for attempt in range(1, _TICKET_ATTEMPTS + 1):
            try:
                with unit_of_work(self._session_factory) as session:
                    ticket = SupportTicket(
                        ticket_number=rules.new_ticket_number(),
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
                    view = ticket_view(ticket)
                logger.info(
                    "Ticket %s opened (%s priority, %d turns)", view.ticket_number, view.priority, len(turns)
                )
                return view
            except IntegrityError:
                if attempt == _TICKET_ATTEMPTS:
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
                sender = validation.clean_text(
                    sender_id, "sender_id", max_chars=validation.MAX_SENDER_ID_CHARS, truncate=False
                )
            except InvalidInput:
                return []
            statement = statement.where(SupportTicket.sender_id == sender)
        with unit_of_work(self._session_factory) as session:
            tickets = session.execute(statement.limit(MAX_TICKETS_LISTED)).scalars()
            return [ticket_view(ticket) for ticket in tickets]

    def get_ticket_transcript(self, ticket_number: str) -> List[dict]:
        """Return the stored transcript of a ticket.

        Args:
            ticket_number: E.g. ``"TK-3F9A12C0"`` (case-insensitive).

        Returns:
            The turns as stored (already capped), or an empty list for an unknown ticket.
        """
        wanted = validation.normalise_identifier(ticket_number)
        if wanted is None:
            return []
        with unit_of_work(self._session_factory) as session:
            raw = session.execute(
                select(SupportTicket.transcript).where(SupportTicket.ticket_number == wanted)
            ).scalar_one_or_none()
        if raw is None:
            return []
        try:
            turns = json.loads(raw)
        except ValueError:
            logger.warning("Ticket %s has an unreadable transcript", wanted[:24])
            return []
        return [turn for turn in turns if isinstance(turn, dict)] if isinstance(turns, list) else []

    # ---------------------------------------------------------------------------------------------- privacy

    def erase_customer_data(self, customer_id: Any, *, sender_id: Optional[str] = None) -> int:
        """Erase what support tickets keep of a customer's conversations ("delete my data").

        The customer's tickets are those about one of their orders, and (with ``sender_id``) those opened in
        that conversation. Their transcript and sentiment trail are emptied and their subject (which quotes
        a complaint) is replaced by :data:`ERASED_SUBJECT`; the ticket itself stays for the support team's
        records. Erasing again changes nothing.

        Args:
            customer_id: The verified customer's id.
            sender_id: The conversation the request came from, whose tickets are the customer's too.

        Returns:
            How many tickets were changed.

        Raises:
            InvalidInput: Malformed customer id or sender id.
        """
        customer = validation.parse_customer_id(customer_id)
        conditions = [
            SupportTicket.order_number.in_(select(Order.order_number).where(Order.customer_id == customer))
        ]
        if sender_id is not None:
            conditions.append(SupportTicket.sender_id == validation.clean_sender_id(sender_id))
        with unit_of_work(self._session_factory) as session:
            changed = session.execute(
                update(SupportTicket)
                .where(
                    or_(*conditions),
                    (SupportTicket.transcript != "[]")
                    | (SupportTicket.sentiment_trail != "[]")
                    | (SupportTicket.subject != ERASED_SUBJECT),
                )
                .values(transcript="[]", sentiment_trail="[]", subject=ERASED_SUBJECT)
                .execution_options(synchronize_session=False)
            ).rowcount
        logger.info("Erased the ticket data of customer %d: %d tickets", customer, changed)
        return int(changed)

    def purge_transcripts(self, older_than: datetime) -> int:
        """Clear the transcript and sentiment trail of tickets created before ``older_than`` (retention).

        Args:
            older_than: Aware cut-off time; tickets created strictly before it are cleared.

        Returns:
            How many tickets were changed (already cleared ones are not counted again).

        Raises:
            InvalidInput: ``older_than`` is not an aware datetime.
        """
        cutoff = validation.aware_datetime(older_than, "older_than")
        with unit_of_work(self._session_factory) as session:
            changed = session.execute(
                update(SupportTicket)
                .where(
                    SupportTicket.created_at < cutoff,
                    (SupportTicket.transcript != "[]") | (SupportTicket.sentiment_trail != "[]"),
                )
                .values(transcript="[]", sentiment_trail="[]")
                .execution_options(synchronize_session=False)
            ).rowcount
        logger.info("Purged the transcripts of %d tickets created before %s", changed, cutoff.isoformat())
        return int(changed)


__all__ = [
    "ShopRepository",
    "MAX_SEARCH_LIMIT",
    "SEARCH_MIN_SCORE",
    "MAX_TICKETS_LISTED",
    "MAX_SUGGESTIONS",
    "MAX_CUSTOMER_ORDERS",
    "ERASED_SUBJECT",
]
