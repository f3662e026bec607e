"""Errors raised by the shop repository.

Every error carries a ``user_message``: a short, friendly sentence that an action can show to the customer as
it is. The exception text (``str(error)``) is meant for logs and may contain technical detail.
"""

from __future__ import annotations

from typing import Optional


class ShopError(Exception):
    """Base class of all errors the repository raises on purpose.

    Attributes:
        user_message: Friendly text for the customer, without internal details.
    """

    default_user_message = "Sorry, something went wrong with that request."

    def __init__(self, message: Optional[str] = None, *, user_message: Optional[str] = None) -> None:
        self.user_message: str = user_message or self.default_user_message
        super().__init__(message or self.user_message)


class InvalidOrderNumber(ShopError):
    """The text is not a well-formed order number (five digits)."""

    default_user_message = (
        "That doesn't look like an order number. Order numbers have five digits, like 10023."
    )


class OrderNotFound(ShopError):
    """No order has this (well-formed) order number."""

    default_user_message = "I couldn't find an order with that number. Could you check it?"

    def __init__(self, order_number: str) -> None:
        self.order_number = order_number
        super().__init__(
            f"order {order_number} not found",
            user_message=f"I couldn't find order {order_number}. Could you double-check the number?",
        )


class OrderNotCancellable(ShopError):
    """The order can no longer be cancelled (it has shipped, been delivered or was cancelled already).

    Attributes:
        status: The order's current status, e.g. ``"shipped"``.
    """

    default_user_message = "Sorry, this order can no longer be cancelled."

    def __init__(self, order_number: str, status: str) -> None:
        self.order_number = order_number
        self.status = status
        if status == "cancelled":
            text = f"Order {order_number} is already cancelled."
        else:
            text = (
                f"Order {order_number} has already been {status}, so it can't be cancelled any more. "
                "You can ask for a refund once it has been delivered."
            )
        super().__init__(f"order {order_number} not cancellable in status {status}", user_message=text)


class AddressChangeNotAllowed(ShopError):
    """The shipping address can no longer be changed because the order has left the warehouse."""

    default_user_message = "Sorry, the delivery address can no longer be changed for this order."

    def __init__(self, order_number: str, status: str) -> None:
        self.order_number = order_number
        self.status = status
        super().__init__(
            f"address change refused for order {order_number} in status {status}",
            user_message=(
                f"Order {order_number} is already {status}, "
                "so its delivery address can't be changed any more."
            ),
        )


class RefundNotAllowed(ShopError):
    """A refund cannot be requested for this order (wrong status or nothing left to refund)."""

    default_user_message = "Sorry, a refund can't be requested for this order."


class InvalidAmount(ShopError):
    """A money amount is malformed, not positive, or larger than allowed."""

    default_user_message = "That amount doesn't look right. Please give an amount in euros, like 4.50."


class InvalidInput(ShopError):
    """Some other input is empty, too long or otherwise malformed."""

    default_user_message = "Sorry, I couldn't use that input. Could you rephrase it?"


__all__ = [
    "ShopError",
    "InvalidOrderNumber",
    "OrderNotFound",
    "OrderNotCancellable",
    "AddressChangeNotAllowed",
    "RefundNotAllowed",
    "InvalidAmount",
    "InvalidInput",
]
