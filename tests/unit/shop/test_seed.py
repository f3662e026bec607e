"""Unit tests of the seed catalog and `shop.seed`: catalog checks, idempotent seeding, the demo orders."""

from __future__ import annotations

import logging
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from shop.db import make_engine, make_session_factory, unit_of_work
from shop.models import (
    Customer,
    Order,
    OrderItem,
    OrderStatusEvent,
    Product,
    ProductImage,
    Refund,
    SupportTicket,
    VerificationAttempt,
)
from shop.repository import ShopRepository
from shop.seed import DEFAULT_CATALOG_PATH, DEMO_ORDERS, create_and_seed, load_catalog, main, seed
from shop.statuses import OrderStatus
from tests.unit.conftest import SEED_NOW

PROJECT_ROOT = Path(__file__).resolve().parents[3]
ALL_MODELS = (
    Product,
    ProductImage,
    Customer,
    Order,
    OrderItem,
    OrderStatusEvent,
    Refund,
    SupportTicket,
    VerificationAttempt,
)

#: Kinds the catalog must offer, as (coarse category, words that must appear in one product's name or kind).
REQUIRED_KINDS = [
    ("Apple", "golden delicious"),
    ("Apple", "granny smith"),
    ("Apple", "pink lady"),
    ("Apple", "red delicious"),
    ("Apple", "royal gala"),
    ("Avocado", "avocado"),
    ("Banana", "banana"),
    ("Kiwi", "kiwi"),
    ("Lemon", "lemon"),
    ("Lime", "lime"),
    ("Mango", "mango"),
    ("Melon", "cantaloupe"),
    ("Melon", "galia"),
    ("Melon", "honeydew"),
    ("Melon", "watermelon"),
    ("Nectarine", "nectarine"),
    ("Orange", "orange"),
    ("Papaya", "papaya"),
    ("Passion Fruit", "passion fruit"),
    ("Peach", "peach"),
    ("Pear", "anjou"),
    ("Pear", "conference"),
    ("Pear", "kaiser"),
    ("Pineapple", "pineapple"),
    ("Plum", "plum"),
    ("Pomegranate", "pomegranate"),
    ("Red Grapefruit", "red grapefruit"),
    ("Satsumas", "satsuma"),
    ("Juice", "apple juice"),
    ("Juice", "orange juice"),
    ("Juice", "grapefruit juice"),
    ("Juice", "mandarin"),
    ("Milk", "whole milk"),
    ("Milk", "semi-skimmed"),
    ("Milk", "lactose-free"),
    ("Milk", "organic"),
    ("Oat Milk", "oat milk"),
    ("Oatghurt", "oat yoghurt"),
    ("Sour Cream", "sour cream"),
    ("Sour Milk", "sour milk"),
    ("Soy Milk", "fresh soy milk"),
    ("Soy Milk", "shelf soy milk"),
    ("Soyghurt", "blueberry soy"),
    ("Soyghurt", "vanilla soy"),
    ("Yoghurt", "vanilla yoghurt"),
    ("Yoghurt", "natural yoghurt"),
    ("Yoghurt", "low-fat"),
    ("Yoghurt", "strawberry yoghurt"),
    ("Asparagus", "asparagus"),
    ("Aubergine", "aubergine"),
    ("Cabbage", "cabbage"),
    ("Carrots", "carrot"),
    ("Cucumber", "cucumber"),
    ("Garlic", "garlic"),
    ("Ginger", "ginger"),
    ("Leek", "leek"),
    ("Mushroom", "brown cap"),
    ("Onion", "yellow onion"),
    ("Pepper", "green bell"),
    ("Pepper", "orange bell"),
    ("Pepper", "red bell"),
    ("Pepper", "yellow bell"),
    ("Potato", "floury"),
    ("Potato", "solid"),
    ("Potato", "sweet potato"),
    ("Red Beet", "red beet"),
    ("Tomato", "beef tomato"),
    ("Tomato", "regular tomato"),
    ("Tomato", "vine tomato"),
    ("Zucchini", "zucchini"),
    ("Berries", "strawberr"),
    ("Berries", "blueberr"),
    ("Broccoli", "broccoli"),
    ("Spinach", "spinach"),
    ("Eggs", "free-range"),
    ("Butter", "butter"),
    ("Cheese", "cheddar"),
]

#: A status history is a path through these transitions.
ALLOWED_TRANSITIONS = {
    "placed": {"packed", "cancelled"},
    "packed": {"shipped", "cancelled"},
    "shipped": {"delivered"},
    "delivered": set(),
    "cancelled": set(),
}


def _counts(engine) -> dict:
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        return {
            model.__name__: session.execute(select(func.count()).select_from(model)).scalar_one()
            for model in ALL_MODELS
        }


# ---------------------------------------------------------------------------------------------------- catalog


def test_catalog_file_is_in_the_project():
    assert DEFAULT_CATALOG_PATH == PROJECT_ROOT / "data" / "catalog" / "products.csv"
    assert DEFAULT_CATALOG_PATH.is_file()


def test_catalog_rows_are_complete_and_plausible():
    rows = load_catalog()
    assert len(rows) >= 85
    assert len({row["sku"] for row in rows}) == len(rows)
    assert len({str(row["name"]).lower() for row in rows}) == len(rows)
    assert len({row["description"] for row in rows}) == len(rows)
    for row in rows:
        assert isinstance(row["price"], Decimal) and Decimal("0.20") <= row["price"] <= Decimal("15.00"), row
        assert row["currency"] == "EUR"
        assert isinstance(row["stock"], int) and row["stock"] >= 0
        assert str(row["category"]).endswith("/" + str(row["coarse_category"])), row
        assert len(str(row["description"])) >= 20, row
    assert sum(1 for row in rows if row["stock"] == 0) >= 3
    assert sum(1 for row in rows if row["stock"] > 0) >= 80


@pytest.mark.parametrize("coarse, words", REQUIRED_KINDS)
def test_catalog_covers_required_kind(coarse, words):
    rows = load_catalog()
    hits = [
        row
        for row in rows
        if row["coarse_category"] == coarse and words in f"{row['name']} {row['kind']}".lower()
    ]
    assert hits, f"no {words!r} in {coarse}"


@pytest.mark.parametrize(
    "content, message",
    [
        ("sku,name\nA,B\n", "missing columns"),
        ("{header}\nX-1,A,Fruit/A,A,a,1.00,EUR,kg,1,d\nX-1,B,Fruit/B,B,b,1.00,EUR,kg,1,d\n", "duplicate"),
        ("{header}\nX-1,A,Fruit/A,A,a,cheap,EUR,kg,1,d\n", "malformed"),
        ("{header}\nX-1,A,Fruit/A,A,a,1.005,EUR,kg,1,d\n", "two decimals"),
        ("{header}\nX-1,A,Fruit/A,A,a,1.00,EUR,kg,-3,d\n", "stock"),
        ("{header}\nX-1,A,Fruit/A,A,a,1.00,EURO,kg,1,d\n", "currency"),
        ("{header}\nX-1,,Fruit/A,A,a,1.00,EUR,kg,1,d\n", "required"),
    ],
)
def test_load_catalog_rejects_malformed_files(tmp_path, content, message):
    header = "sku,name,category,coarse_category,kind,price,currency,unit,stock,description"
    path = tmp_path / "products.csv"
    path.write_text(content.format(header=header), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_catalog(path)


# ------------------------------------------------------------------------------------------------------- seed


def test_create_and_seed_creates_every_table(shop_engine):
    tables = set(inspect(shop_engine).get_table_names())
    assert {model.__tablename__ for model in ALL_MODELS} <= tables


def test_create_and_seed_adds_the_verification_table_to_an_existing_database(tmp_path):
    """A database made before verification existed gets the new table from ``make db``; nothing else
    changes."""
    from shop.models import Base
    from shop.verification import VerificationResult

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    older_tables = [table for table in Base.metadata.sorted_tables if table.name != "verification_attempts"]
    Base.metadata.create_all(engine, tables=older_tables)
    seed(make_session_factory(engine), now=SEED_NOW)
    before = {name: count for name, count in _counts_without_attempts(engine).items()}
    assert "verification_attempts" not in inspect(engine).get_table_names()
    create_and_seed(engine, now=SEED_NOW)
    assert "verification_attempts" in inspect(engine).get_table_names()
    assert _counts_without_attempts(engine) == before
    repo = ShopRepository(make_session_factory(engine))
    assert repo.verify_order_email("web:a", "10023", "anna.berg@example.com") is VerificationResult.VERIFIED
    engine.dispose()


def _counts_without_attempts(engine) -> dict:
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        return {
            model.__name__: session.execute(select(func.count()).select_from(model)).scalar_one()
            for model in ALL_MODELS
            if model is not VerificationAttempt
        }


def test_seeding_is_idempotent():
    engine = make_engine("sqlite://")
    create_and_seed(engine, now=SEED_NOW)
    first = _counts(engine)
    create_and_seed(engine, now=SEED_NOW)
    create_and_seed(engine)  # another reference time adds nothing either
    assert _counts(engine) == first
    report = seed(make_session_factory(engine), now=SEED_NOW)
    assert (report.products, report.customers, report.orders, report.refunds) == (0, 0, 0, 0)
    assert sorted(report.skipped_orders) == sorted(spec.order_number for spec in DEMO_ORDERS)
    assert first["Product"] == len(load_catalog())
    assert first["Customer"] >= 5 and first["Order"] >= 12
    assert first["ProductImage"] == 0 and first["SupportTicket"] == 0


def test_reseeding_keeps_changes_made_since(shop_engine, shop_repo):
    shop_repo.cancel_order("10021")
    shop_repo.change_shipping_address("10022", "New Street 1, 1000 Town")
    stock = shop_repo.get_product("FRU-BANANA").stock
    create_and_seed(shop_engine, now=SEED_NOW)
    assert shop_repo.get_order("10021").status == "cancelled"
    assert shop_repo.get_order("10022").shipping_address == "New Street 1, 1000 Town"
    assert shop_repo.get_product("FRU-BANANA").stock == stock


def test_seeding_fills_in_missing_rows_only(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'partial.db'}")
    create_and_seed(engine, now=SEED_NOW)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        order = session.execute(select(Order).where(Order.order_number == "10027")).scalar_one()
        session.delete(order)
    assert _counts(engine)["Order"] == len(DEMO_ORDERS) - 1
    report = seed(factory, now=SEED_NOW)
    assert (report.products, report.customers, report.orders) == (0, 0, 1)
    assert _counts(engine)["Order"] == len(DEMO_ORDERS)
    engine.dispose()


def test_demo_orders_cover_every_status(shop_repo):
    statuses = {spec.order_number: shop_repo.get_order(spec.order_number).status for spec in DEMO_ORDERS}
    assert len(statuses) >= 12
    assert set(statuses.values()) == {status.value for status in OrderStatus}
    expected = {
        "10021": "placed",
        "10022": "packed",
        "10023": "shipped",
        "10024": "delivered",
        "10025": "cancelled",
        "10026": "delivered",
    }
    assert {number: statuses[number] for number in expected} == expected


def test_demo_order_10023_is_shipped_with_tracking_and_eta(shop_repo):
    order = shop_repo.get_order("10023")
    assert order.status == "shipped"
    assert order.tracking_number
    assert order.estimated_delivery is not None and order.estimated_delivery >= order.placed_at.date()


def test_demo_order_10026_has_a_requested_refund(shop_repo):
    refunds = shop_repo.list_refunds("10026")
    assert [refund.status for refund in refunds] == ["requested"]
    assert refunds[0].amount < shop_repo.get_order("10026").total


@pytest.mark.parametrize("number", [spec.order_number for spec in DEMO_ORDERS])
def test_demo_order_history_is_consistent(shop_repo, number):
    order = shop_repo.get_order(number)
    statuses = [status for status, _ in order.status_history]
    times = [at for _, at in order.status_history]
    assert statuses[0] == "placed" and statuses[-1] == order.status
    for before, after in zip(statuses, statuses[1:], strict=False):
        assert after in ALLOWED_TRANSITIONS[before], statuses
    assert times == sorted(times) and times[0] == order.placed_at and times[-1] == order.updated_at
    assert all(at <= SEED_NOW for at in times)
    assert ("shipped" in statuses) == (order.tracking_number is not None)
    assert (order.status == "cancelled") == (order.estimated_delivery is None)
    assert order.items and order.total > 0
    refunded = sum(
        (refund.amount for refund in shop_repo.list_refunds(number) if refund.status != "rejected"),
        Decimal("0"),
    )
    assert refunded <= order.total
    if refunded:
        assert order.status in ("delivered", "cancelled")


def test_demo_customers(shop_session_factory):
    with unit_of_work(shop_session_factory) as session:
        customers = session.execute(select(Customer)).scalars().all()
        emails = [customer.email for customer in customers]
        assert len(customers) >= 5 and len(set(emails)) == len(emails)
        assert all(email.endswith("@example.com") for email in emails)
        assert all(customer.default_shipping_address for customer in customers)


def test_seed_command_line(tmp_path, caplog):
    """Rows only (`--no-photos`); attaching the shipped photos: tests/unit/shop/test_shipped_photos.py."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with caplog.at_level(logging.INFO, logger="shop.seed"):
        assert main(["--database-url", url, "--no-photos"]) == 0
        assert main(["--database-url", url, "--no-photos"]) == 0
    summaries = [record.getMessage() for record in caplog.records if record.name == "shop.seed"]
    assert any("inserted" in text and "0 orders" not in text for text in summaries)
    assert "inserted 0 products, 0 customers, 0 orders, 0 refunds" in summaries[-1]
    repo = ShopRepository.from_url(url)
    assert repo.get_order("10023").status == "shipped"


def test_seed_command_line_reports_bad_catalog(tmp_path, caplog):
    bad = tmp_path / "bad.csv"
    bad.write_text("sku\nX\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="shop.seed"):
        assert main(["--database-url", "sqlite://", "--catalog", str(bad)]) == 1
    assert any("missing columns" in record.getMessage() for record in caplog.records)


def test_seed_command_line_reports_database_errors_in_one_line(tmp_path, caplog):
    missing_dir = tmp_path / "no" / "such" / "dir" / "x.db"
    with caplog.at_level(logging.ERROR, logger="shop.seed"):
        assert main(["--database-url", f"sqlite:///{missing_dir}"]) == 1
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1 and "database error OperationalError" in errors[0].getMessage()
    assert errors[0].exc_info is None


def test_seed_runs_as_module(tmp_path):
    """As `make db` runs it: rows, then the shipped photos (into a temporary image root here)."""
    url = f"sqlite:///{tmp_path / 'module.db'}"
    images = tmp_path / "images"
    result = subprocess.run(
        [sys.executable, "-m", "shop.seed", "--database-url", url, "--image-root", str(images)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "inserted" in result.stderr and "Product photos from" in result.stderr
    assert len(ShopRepository.from_url(url).product_images()) == len(list(images.rglob("*.jpg"))) > 0
