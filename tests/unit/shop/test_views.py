"""Unit tests of `shop.views`: frozen views, their permissions, and the builders from ORM rows."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shop.models import (
    Customer,
    Order,
    OrderItem,
    OrderStatusEvent,
    Product,
    ProductImage,
    Refund,
    SupportTicket,
)
from shop.statuses import OrderStatus, RefundStatus, TicketPriority, TicketStatus
from shop.views import OrderView, order_view, product_view, refund_view, ticket_view

AT = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)


def _product(sku: str, price: str, stock: int = 10) -> Product:
    return Product(
        sku=sku,
        name=sku.title(),
        category="Fruit/Test",
        coarse_category="Test",
        kind="test fruit",
        price=Decimal(price),
        currency="EUR",
        unit="piece",
        stock=stock,
        description=None,
    )


def _order(status: OrderStatus = OrderStatus.PACKED) -> Order:
    """A transient order (never added to a session) with two lines and an out-of-order history."""
    order = Order(
        order_number="10099",
        customer=Customer(name="Test Person", email="test@example.com"),
        status=status,
        currency="EUR",
        shipping_address="Somewhere 1, 12345 Town",
        tracking_number=None,
        estimated_delivery=date(2025, 3, 4),
        placed_at=AT,
        updated_at=AT + timedelta(hours=5),
    )
    order.items = [
        OrderItem(product=_product("FRU-A", "1.25"), quantity=3, unit_price=Decimal("1.25")),
        OrderItem(product=_product("FRU-B", "0.99"), quantity=1, unit_price=Decimal("0.99")),
    ]
    order.events = [
        OrderStatusEvent(status=OrderStatus.PACKED, at=AT + timedelta(hours=5)),
        OrderStatusEvent(status=OrderStatus.PLACED, at=AT),
    ]
    return order


# ------------------------------------------------------------------------------------ views of the repository


def test_views_are_frozen(shop_repo):
    product = shop_repo.get_product("FRU-BANANA")
    with pytest.raises(dataclasses.FrozenInstanceError):
        product.stock = 0  # type: ignore[misc]
    order = shop_repo.get_order("10023")
    with pytest.raises(dataclasses.FrozenInstanceError):
        order.status = "cancelled"  # type: ignore[misc]


@pytest.mark.parametrize(
    "status, allowed",
    [("placed", True), ("packed", True), ("shipped", False), ("delivered", False), ("cancelled", False)],
)
def test_order_view_permissions_follow_status(shop_repo, status, allowed):
    order = dataclasses.replace(shop_repo.get_order("10023"), status=status)
    assert order.can_cancel is allowed
    assert order.can_change_address is allowed


def test_product_view_in_stock(shop_repo):
    assert shop_repo.get_product("FRU-BANANA").in_stock is True
    assert shop_repo.get_product("VEG-ASPARAGUS").in_stock is False


def test_views_outlive_their_session(shop_repo):
    """Every value is loaded before the session closes: nothing lazy leaks out of the repository."""
    order = shop_repo.get_order("10026")
    product = shop_repo.list_products()[0]
    refund = shop_repo.list_refunds("10026")[0]
    assert order.items[0].name and product.image_paths == () and refund.amount > 0
    assert order.placed_at.tzinfo is timezone.utc or order.placed_at.utcoffset().total_seconds() == 0


# --------------------------------------------------------------------------------------------------- builders


def test_product_view_from_a_row():
    row = _product("fru-a", "2.50", stock=0)
    row.sku = "FRU-A"
    row.images = [ProductImage(path="Fruit/Test/a1.jpg", sha256="a" * 64)]
    view = product_view(row)
    assert (view.sku, view.price, view.stock, view.in_stock) == ("FRU-A", Decimal("2.50"), 0, False)
    assert view.description == "" and view.image_paths == ("Fruit/Test/a1.jpg",)


def test_order_view_from_a_row_has_total_sorted_history_and_plain_status():
    view = order_view(_order())
    assert isinstance(view, OrderView)
    assert view.total == Decimal("4.74")  # 3 × 1.25 + 0.99
    assert [(item.sku, item.quantity, item.unit_price) for item in view.items] == [
        ("FRU-A", 3, Decimal("1.25")),
        ("FRU-B", 1, Decimal("0.99")),
    ]
    assert [status for status, _ in view.status_history] == ["placed", "packed"]
    assert view.status == "packed" and type(view.status) is str
    assert (view.customer_name, view.customer_email) == ("Test Person", "test@example.com")
    assert view.can_cancel and view.can_change_address


def test_order_view_of_an_order_without_lines_has_zero_total():
    order = _order(OrderStatus.CANCELLED)
    order.items = []
    view = order_view(order)
    assert view.total == Decimal("0.00") and view.items == ()
    assert not view.can_cancel


def test_refund_and_ticket_views_from_rows():
    refund = Refund(
        refund_number="RF-10099-1",
        amount=Decimal("1.00"),
        currency="EUR",
        status=RefundStatus.PAID,
        reason=None,
        created_at=AT,
    )
    view = refund_view(refund, "10099")
    assert (view.order_number, view.status, view.reason) == ("10099", "paid", "")
    ticket = SupportTicket(
        ticket_number="TK-0000ABCD",
        sender_id="user-1",
        subject="Help",
        status=TicketStatus.OPEN,
        priority=TicketPriority.HIGH,
        order_number=None,
        created_at=AT,
    )
    assert (ticket_view(ticket).status, ticket_view(ticket).priority) == ("open", "high")
