"""Unit tests of `shop.models`: timezone-aware timestamps and exact money columns."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from shop.db import unit_of_work
from shop.models import Customer, Product


def test_timestamps_are_aware_utc_and_naive_ones_are_refused(shop_session_factory):
    with unit_of_work(shop_session_factory) as session:
        created = session.execute(select(Product.created_at).limit(1)).scalar_one()
    assert created.tzinfo is not None and created.utcoffset().total_seconds() == 0
    with pytest.raises(StatementError):
        with unit_of_work(shop_session_factory) as session:
            session.add(Customer(name="N", email="naive@example.com", created_at=datetime(2025, 1, 1)))


def test_money_round_trips_exactly(shop_session_factory):
    with unit_of_work(shop_session_factory) as session:
        product = session.execute(select(Product).where(Product.sku == "FRU-BANANA")).scalar_one()
        product.price = Decimal("12345678.91")
    with unit_of_work(shop_session_factory) as session:
        price = session.execute(select(Product.price).where(Product.sku == "FRU-BANANA")).scalar_one()
    assert price == Decimal("12345678.91") and isinstance(price, Decimal)
