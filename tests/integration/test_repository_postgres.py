"""The repository's key behaviours against a real PostgreSQL server.

Runs when ``DATABASE_URL`` starts with ``postgresql`` (e.g.
``DATABASE_URL=postgresql+psycopg2://postgres@127.0.0.1:5432/test``) and skips otherwise. Every test module
run creates its own schema with a unique name, points the engine's ``search_path`` at it and drops it at the
end, so parallel runs against the same database do not collide and nothing is left behind.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timezone
from decimal import Decimal
from typing import Iterator, List

import pytest
from sqlalchemy import func, select, text

pytestmark = pytest.mark.integration

DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
if not DATABASE_URL.startswith("postgresql"):
    pytest.skip("DATABASE_URL does not point at PostgreSQL", allow_module_level=True)

from shop.db import make_engine, make_session_factory, unit_of_work  # noqa: E402
from shop.models import Order, OrderStatusEvent, ProductImage, Refund, SupportTicket  # noqa: E402
from shop.errors import (  # noqa: E402
    InvalidAmount,
    InvalidInput,
    InvalidOrderNumber,
    OrderNotCancellable,
    OrderNotFound,
    RefundNotAllowed,
)
from shop.repository import ShopRepository  # noqa: E402
from shop.seed import create_and_seed, seed  # noqa: E402
from tests.postgres import postgres_schema  # noqa: E402

SEED_NOW = datetime(2025, 3, 10, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def pg_engine():
    """An engine whose connections use a fresh, uniquely named schema that is dropped afterwards."""
    with postgres_schema(DATABASE_URL, "shop_test") as options:
        engine = make_engine(DATABASE_URL, **options)
        try:
            create_and_seed(engine, now=SEED_NOW)
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def pg_factory(pg_engine):
    return make_session_factory(pg_engine)


@pytest.fixture(scope="module")
def pg_repo(pg_factory) -> Iterator[ShopRepository]:
    yield ShopRepository(pg_factory)


def _count(factory, model) -> int:
    with unit_of_work(factory) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_tables_live_in_the_private_schema(pg_engine):
    with pg_engine.connect() as connection:
        schema = connection.execute(text("select current_schema()")).scalar_one()
        tables = set(
            connection.execute(
                text("select table_name from information_schema.tables where table_schema = :schema"),
                {"schema": schema},
            ).scalars()
        )
    assert schema.startswith("shop_test_")
    assert {
        "products",
        "orders",
        "order_items",
        "order_status_events",
        "refunds",
        "support_tickets",
    } <= tables


def test_seeding_is_idempotent(pg_engine, pg_factory):
    before = {model: _count(pg_factory, model) for model in (Order, OrderStatusEvent, Refund)}
    create_and_seed(pg_engine, now=SEED_NOW)
    report = seed(pg_factory)
    assert (report.products, report.customers, report.orders, report.refunds) == (0, 0, 0, 0)
    assert {model: _count(pg_factory, model) for model in before} == before


def test_order_10023_money_and_timestamps(pg_repo):
    order = pg_repo.get_order("#10023")
    assert order.status == "shipped" and order.tracking_number and order.estimated_delivery
    assert order.total == sum(item.unit_price * item.quantity for item in order.items)
    assert all(isinstance(item.unit_price, Decimal) for item in order.items)
    assert order.placed_at.utcoffset().total_seconds() == 0
    assert [status for status, _ in order.status_history] == ["placed", "packed", "shipped"]
    with pytest.raises(OrderNotFound):
        pg_repo.get_order("99999")
    with pytest.raises(InvalidOrderNumber):
        pg_repo.get_order("order number 99999999999999999999999999")


def test_cancel_refused_once_shipped_writes_nothing(pg_repo, pg_factory):
    before = pg_repo.get_order("10023")
    events = _count(pg_factory, OrderStatusEvent)
    with pytest.raises(OrderNotCancellable) as info:
        pg_repo.cancel_order("10023")
    assert info.value.status == "shipped"
    assert pg_repo.get_order("10023") == before
    assert _count(pg_factory, OrderStatusEvent) == events


def test_cancel_and_change_address_before_shipping(pg_repo):
    stock = pg_repo.get_product("FRU-BER-STRAWBERRY").stock
    order = pg_repo.cancel_order("10021", reason="changed my mind")
    assert order.status == "cancelled" and order.status_history[-1][0] == "cancelled"
    assert pg_repo.get_product("FRU-BER-STRAWBERRY").stock == stock + 2
    updated = pg_repo.change_shipping_address("10022", "Stra\u00dfe 1\x00\n 10115 Berlin")
    assert updated.shipping_address == "Stra\u00dfe 1 10115 Berlin"
    with pytest.raises(InvalidInput):
        pg_repo.change_shipping_address("10022", "A" * 301)


def test_refund_bounds(pg_repo, pg_factory):
    total = pg_repo.get_order("10024").total
    refunds = _count(pg_factory, Refund)
    for amount in (Decimal("0"), Decimal("-1"), total + Decimal("0.01"), Decimal("0.001")):
        with pytest.raises(InvalidAmount):
            pg_repo.request_refund("10024", "bad amount", amount)
    with pytest.raises(RefundNotAllowed):
        pg_repo.request_refund("10023", "not delivered yet")
    assert _count(pg_factory, Refund) == refunds
    first = pg_repo.request_refund("10024", "partial", Decimal("1.25"))
    rest = pg_repo.request_refund("10024", "the rest")
    assert first.amount + rest.amount == total
    assert pg_repo.get_refund(rest.refund_number) == rest


def test_concurrent_refunds_never_exceed_the_total(pg_repo):
    total = pg_repo.get_order("10017").total
    outcomes: List[object] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        try:
            outcomes.append(pg_repo.request_refund("10017", "race"))
        except RefundNotAllowed as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    granted = [outcome for outcome in outcomes if not isinstance(outcome, Exception)]
    assert len(outcomes) == 4 and len(granted) == 1
    assert sum(refund.amount for refund in pg_repo.list_refunds("10017")) == total


def test_find_product_is_tolerant(pg_repo):
    assert pg_repo.find_product("some bananas please").product.sku == "FRU-BANANA"
    assert pg_repo.find_product("tomatos").product.sku == "VEG-TOMATO-REGULAR"
    assert pg_repo.find_product("yogurt").product.coarse_category == "Yoghurt"
    assert pg_repo.find_product("😀").product is None
    assert pg_repo.find_product("x" * 10_000).product is None
    assert pg_repo.search_products(category="%") == []
    assert all(p.category.startswith("Fruit/") for p in pg_repo.search_products(category="FRUIT", limit=100))


def test_tickets_store_unicode_and_cap_transcripts(pg_repo, pg_factory):
    transcript = [{"event": "user", "text": f"{i} 我的订单在哪里 \x00 مرحبا \ud800"} for i in range(300)]
    ticket = pg_repo.create_ticket(
        "pg-user", "Zero\x00 width\u200b", transcript, ["negative"], "10023", "high"
    )
    stored = pg_repo.get_ticket_transcript(ticket.ticket_number)
    assert len(stored) == 200 and stored[-1]["text"].startswith("299 ")
    assert "\x00" not in stored[-1]["text"] and "\ud800" not in stored[-1]["text"]
    assert ticket.subject == "Zero width" and ticket.order_number == "10023"
    assert pg_repo.list_tickets("pg-user") == [ticket]
    assert _count(pg_factory, SupportTicket) == 1


def test_product_images_are_idempotent(pg_repo, pg_factory):
    pg_repo.add_product_image("FRU-KIWI", "Fruit/Kiwi/kiwi.jpg", "c" * 64)
    pg_repo.add_product_image("FRU-KIWI", "Fruit/Kiwi/kiwi.jpg", "c" * 64)
    assert pg_repo.product_images() == [("FRU-KIWI", "Fruit/Kiwi/kiwi.jpg")]
    assert _count(pg_factory, ProductImage) == 1
    with pytest.raises(InvalidInput):
        pg_repo.add_product_image("FRU-KIWI", "../../etc/passwd", "c" * 64)
