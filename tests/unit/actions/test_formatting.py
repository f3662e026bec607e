"""Unit tests of `actions.formatting`: money, prices per unit, dates, lists, echoed text and buttons."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from actions.formatting import (
    format_date,
    format_money,
    format_unit_price,
    join_alternatives,
    product_button,
    shorten,
)


@pytest.mark.parametrize(
    "amount, currency, expected",
    [
        (Decimal("1.79"), "EUR", "€1.79"),
        (Decimal("1234.5"), "EUR", "€1,234.50"),
        (Decimal("3"), "GBP", "£3.00"),
        (Decimal("3.5"), "CHF", "3.50 CHF"),
        (Decimal("-2"), "EUR", "-€2.00"),
        ("0.1", "usd", "$0.10"),
    ],
)
def test_format_money(amount, currency: str, expected: str) -> None:
    assert format_money(amount, currency) == expected


def test_format_unit_price() -> None:
    assert format_unit_price(Decimal("1.79"), "EUR", "kg") == "€1.79 per kg"
    assert format_unit_price(Decimal("1.29"), "EUR", "1 l carton") == "€1.29 for a 1 l carton"
    assert format_unit_price(Decimal("1.29"), "EUR", "") == "€1.29"


def test_format_date() -> None:
    assert format_date(date(2024, 6, 14)) == "Friday 14 June 2024"
    assert format_date(datetime(2025, 3, 11, 23, 0, tzinfo=timezone.utc)) == "Tuesday 11 March 2025"
    assert format_date(None) == "not known yet"


def test_join_alternatives() -> None:
    assert join_alternatives(["A", "B", "C"]) == "A, B or C"
    assert join_alternatives(["A", "", "B"], "and") == "A and B"
    assert join_alternatives(["A"]) == "A" and join_alternatives([]) == ""


def test_shorten() -> None:
    assert shorten("  two\n lines ") == "two lines"
    assert shorten("x" * 100, 10) == "x" * 9 + "…"
    assert shorten(None) == ""


def test_product_button_payload_is_json_that_fills_the_product_slot() -> None:
    expected = {"title": "Galia Melon", "payload": '/inform{"product": "Galia Melon"}'}
    assert product_button("Galia Melon") == expected
    button = product_button('Odd "Quoted" Fruit', "product_price", title="Price")
    assert button["title"] == "Price"
    intent, _, payload = button["payload"][1:].partition("{")
    assert intent == "product_price" and json.loads("{" + payload) == {"product": 'Odd "Quoted" Fruit'}
