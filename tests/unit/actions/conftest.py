"""Fixtures of the action tests: the real repository on the seeded in-memory database, installed as the
actions' repository, and the few doubles the tests need (checked against the real class, never a
re-implementation).

The seeded database comes from ``tests/unit/conftest.py`` (``shop_repo``, ``shop_session_factory``); its demo
orders and customers are those of :mod:`shop.seed` (10021 placed, 10022 packed, 10023 shipped, 10024
delivered, 10025 cancelled, ...), its catalog ``data/catalog/products.csv``.
"""

from __future__ import annotations

import inspect
import json
from decimal import Decimal
from typing import Any, Callable, Dict, Iterator, List
from unittest import mock

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from actions import common
from shop.db import unit_of_work
from shop.models import Order, OrderStatusEvent, Product, ProductImage, Refund, SupportTicket
from shop.repository import ShopRepository


def database_state(session_factory: sessionmaker) -> Dict[str, Any]:
    """Everything an action could change: orders, their history, refunds, tickets, stock and photos."""
    with unit_of_work(session_factory) as session:

        def rows(*columns: Any) -> List[tuple]:
            return sorted(tuple(row) for row in session.execute(select(*columns)).all())

        def count(model: Any) -> int:
            return session.execute(select(func.count()).select_from(model)).scalar_one()

        return {
            "orders": rows(Order.order_number, Order.status, Order.shipping_address, Order.updated_at),
            "events": count(OrderStatusEvent),
            "refunds": rows(Refund.refund_number, Refund.amount, Refund.status, Refund.reason),
            "tickets": count(SupportTicket),
            "stock": rows(Product.sku, Product.stock),
            "images": count(ProductImage),
        }


class DatabaseWatch:
    """Remembers the database as it was when the test started."""

    def __init__(self, session_factory: sessionmaker) -> None:
        self._session_factory = session_factory
        self.initial = database_state(session_factory)

    def unchanged(self) -> bool:
        """True when nothing was written since the test started."""
        return database_state(self._session_factory) == self.initial


@pytest.fixture
def repo(shop_repo: ShopRepository) -> Iterator[ShopRepository]:
    """The real repository on a fresh seeded in-memory database, installed as the actions' repository."""
    common.set_repository(shop_repo)
    yield shop_repo
    common.set_repository(None)


@pytest.fixture
def db(repo: ShopRepository, shop_session_factory: sessionmaker) -> DatabaseWatch:
    """Watches the actions' database for writes (``assert db.unchanged()``)."""
    return DatabaseWatch(shop_session_factory)


@pytest.fixture
def fail_repository() -> Iterator[Callable[[BaseException], mock.NonCallableMagicMock]]:
    """Install a repository whose every public method raises ``error`` (the database is down).

    The double is ``create_autospec(ShopRepository)``, so a call with a wrong name or signature fails the
    test instead of passing silently.
    """

    def install(error: BaseException) -> mock.NonCallableMagicMock:
        double = mock.create_autospec(ShopRepository, instance=True, spec_set=True)
        for name, _ in inspect.getmembers(ShopRepository, inspect.isfunction):
            if not name.startswith("_"):
                getattr(double, name).side_effect = error
        common.set_repository(double)
        return double

    yield install
    common.set_repository(None)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Callable[[ShopRepository, str], mock.MagicMock]:
    """Record the calls of one repository method while the real method still does the work."""

    def wrap(repository: ShopRepository, method: str) -> mock.MagicMock:
        real = getattr(repository, method)
        double = mock.create_autospec(real, side_effect=real)
        monkeypatch.setattr(repository, method, double)
        return double

    return wrap


def stored_tickets(session_factory: sessionmaker) -> List[Dict[str, Any]]:
    """The support tickets as stored, oldest first, with transcript and sentiment trail decoded."""
    with unit_of_work(session_factory) as session:
        tickets = session.execute(select(SupportTicket).order_by(SupportTicket.id)).scalars().all()
        return [
            {
                "ticket_number": ticket.ticket_number,
                "sender_id": ticket.sender_id,
                "subject": ticket.subject,
                "priority": ticket.priority.value,
                "order_number": ticket.order_number,
                "transcript": json.loads(ticket.transcript),
                "sentiment_trail": json.loads(ticket.sentiment_trail),
            }
            for ticket in tickets
        ]


@pytest.fixture
def tickets(repo: ShopRepository, shop_session_factory: sessionmaker) -> Callable[[], List[Dict[str, Any]]]:
    """Read the stored support tickets (see :func:`stored_tickets`)."""
    return lambda: stored_tickets(shop_session_factory)


@pytest.fixture
def set_stock(shop_session_factory: sessionmaker) -> Callable[[str, int], None]:
    """Arrange the stock of one product in the database."""

    def arrange(sku: str, stock: int) -> None:
        with unit_of_work(shop_session_factory) as session:
            session.execute(update(Product).where(Product.sku == sku).values(stock=stock))

    return arrange


@pytest.fixture
def add_product(shop_session_factory: sessionmaker) -> Callable[..., None]:
    """Arrange one more catalog product in the database (EUR, in stock unless told otherwise)."""

    def arrange(sku: str, name: str, category: str, kind: str, price: str = "1.00", stock: int = 5) -> None:
        with unit_of_work(shop_session_factory) as session:
            session.add(
                Product(
                    sku=sku,
                    name=name,
                    category=category,
                    coarse_category=category.split("/")[-1],
                    kind=kind,
                    price=Decimal(price),
                    currency="EUR",
                    unit="piece",
                    stock=stock,
                    description=f"A {kind}.",
                )
            )

    return arrange
