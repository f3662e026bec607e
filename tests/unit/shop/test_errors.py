"""Unit tests of `shop.errors`: every refusal is a ShopError with a friendly message."""

from __future__ import annotations

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


def test_errors_are_shop_errors_with_friendly_messages():
    errors = [
        InvalidOrderNumber(),
        OrderNotFound("12345"),
        OrderNotCancellable("12345", "shipped"),
        AddressChangeNotAllowed("12345", "delivered"),
        RefundNotAllowed(),
        InvalidAmount(),
        InvalidInput(),
    ]
    for error in errors:
        assert isinstance(error, ShopError)
        assert error.user_message and "Traceback" not in error.user_message
    assert OrderNotCancellable("12345", "shipped").status == "shipped"
    assert "12345" in OrderNotFound("12345").user_message


def test_cancel_refusal_says_why():
    assert "already cancelled" in OrderNotCancellable("10025", "cancelled").user_message
    shipped = OrderNotCancellable("10023", "shipped").user_message
    assert "already been shipped" in shipped and "refund" in shipped


def test_log_text_and_user_message_are_separate():
    error = InvalidInput("sender_id too long (300 > 255 characters)", user_message="That is too long.")
    assert str(error) == "sender_id too long (300 > 255 characters)"
    assert error.user_message == "That is too long."
    assert str(InvalidAmount()) == InvalidAmount.default_user_message
