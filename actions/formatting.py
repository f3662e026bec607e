"""How the actions write values for customers: money, prices per unit, dates, lists, echoed text, buttons.

Pure functions of their arguments (no tracker, no repository), used to fill the ``{variables}`` of domain
responses.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Dict, Optional, Sequence, Text

from assistant.keys import PRODUCT_ENTITY

#: Entity (and slot) of an order number in a button payload.
ORDER_NUMBER_ENTITY = "order_number"

_CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}
_CENT = Decimal("0.01")


def format_money(amount: Any, currency: Text) -> Text:
    """Format an amount with its currency: ``"€1.79"``, ``"£12.00"``, ``"3.50 CHF"``, ``"-€2.00"``.

    Args:
        amount: ``Decimal`` (or anything ``Decimal(str(x))`` accepts).
        currency: ISO 4217 code; EUR, USD and GBP are written as their symbol in front.

    Returns:
        The amount with two decimal places and thousands separators.
    """
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    text = f"{value.quantize(_CENT):,.2f}"
    symbol = _CURRENCY_SYMBOLS.get((currency or "").upper())
    if symbol is None:
        return f"{text} {currency}".strip()
    return f"-{symbol}{text[1:]}" if text.startswith("-") else f"{symbol}{text}"


def format_unit_price(price: Any, currency: Text, unit: Text) -> Text:
    """Format a catalog price with what it buys: ``"€1.79 per kg"``, ``"€1.29 for a 1 l carton"``.

    Args:
        price: Price of one unit.
        currency: ISO 4217 code.
        unit: ``"kg"``, ``"piece"``, ``"1 l carton"``, ...; a unit with a digit reads "for a", others "per".

    Returns:
        The price and unit (just the price for a blank unit).
    """
    money = format_money(price, currency)
    unit = (unit or "").strip()
    if not unit:
        return money
    if any(ch.isdigit() for ch in unit):
        return f"{money} for a {unit}"
    return f"{money} per {unit}"


def format_date(value: Optional[date]) -> Text:
    """Format a date for customers, e.g. ``"Friday 14 June 2024"``; None gives ``"not known yet"``.

    A ``datetime`` is written as its date (in its own time zone).
    """
    if value is None:
        return "not known yet"
    if isinstance(value, datetime):
        value = value.date()
    return f"{value:%A} {value.day} {value:%B %Y}"


def join_alternatives(items: Sequence[Text], conjunction: Text = "or") -> Text:
    """Join ``["A", "B", "C"]`` as ``"A, B or C"`` (empty items are left out)."""
    items = [item for item in items if item]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def shorten(text: Any, limit: int = 60) -> Text:
    """Return ``text`` on one line, cut to ``limit`` characters with an ellipsis (for echoing user input)."""
    line = " ".join(str(text or "").split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def product_button(
    product_name: Text, intent: Text = "inform", title: Optional[Text] = None
) -> Dict[Text, Text]:
    """A button that sends ``/<intent>{"product": "<name>"}``, which fills the ``product`` slot.

    Args:
        product_name: Catalog name of the product (JSON-escaped in the payload).
        intent: Intent the button triggers.
        title: Button text; the product name when None.

    Returns:
        ``{"title", "payload"}``.
    """
    payload = json.dumps({PRODUCT_ENTITY: product_name})
    return {"title": product_name if title is None else title, "payload": f"/{intent}{payload}"}


def order_button(order_number: Text, intent: Text, title: Text) -> Dict[Text, Text]:
    """A button that sends ``/<intent>{"order_number": "<number>"}``, which fills the ``order_number`` slot.

    Args:
        order_number: Five-digit order number.
        intent: Intent the button triggers, e.g. ``"track_order"``.
        title: Button text.

    Returns:
        ``{"title", "payload"}``.
    """
    return {"title": title, "payload": f"/{intent}{json.dumps({ORDER_NUMBER_ENTITY: order_number})}"}
