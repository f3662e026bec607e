"""Order actions: track an order, cancel it or change its address after a yes, explain what can change.

Every flow uses a form that asks for the order number and then for the email address on the order
(:class:`actions.verification.OrderFormValidation`): nothing about an order is shown or changed before the
customer proved it is theirs, and a malformed number never gets further than a friendly question. The submit
actions check the proof again (:meth:`OrderFlowAction.order_number`), as they trust nothing but the session's
``verified_orders``.
"""

from __future__ import annotations

import logging
from abc import ABC
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import common
from actions.common import ShopAction
from actions.formatting import format_date, format_money, order_button
from actions.tracker_utils import free_text_answer, logged_in_customer, reset_slots
from actions.verification import (
    ORDER_EMAIL,
    VERIFICATION_LOCKED,
    VERIFY_FIRST_RESPONSE,
    OrderFormValidation,
    may_see_order,
)
from shop.errors import ShopError
from shop.statuses import OrderStatus
from shop.validation import ADDRESS_MAX_CHARS, optional_order_number

if TYPE_CHECKING:
    from shop.views import OrderView

logger = logging.getLogger(__name__)

#: Reply used by :class:`ActionTrackOrder` for each order status.
STATUS_RESPONSES = {
    OrderStatus.PLACED.value: "utter_order_status_placed",
    OrderStatus.PACKED.value: "utter_order_status_packed",
    OrderStatus.SHIPPED.value: "utter_order_status_shipped",
    OrderStatus.DELIVERED.value: "utter_order_status_delivered",
    OrderStatus.CANCELLED.value: "utter_order_status_cancelled",
}

#: Slots an order flow leaves behind; cleared when the flow ends so the next flow asks again
#: (``verified_orders`` stays for the session).
ORDER_FLOW_SLOTS = (
    "order_number",
    "order_action_allowed",
    ORDER_EMAIL,
    VERIFICATION_LOCKED,
    "cancel_confirmed",
    "shipping_address",
    "address_confirmed",
)
#: Orders listed for a logged-in customer who asks about "my order" without a number.
RECENT_ORDERS_LISTED = 5


def order_details(order: "OrderView") -> Dict[Text, Any]:
    """Return the template variables that order responses use.

    Args:
        order: The order.

    Returns:
        ``order_number``, ``status``, ``items`` (e.g. ``"3 items"``), ``total`` (with currency),
        ``tracking_number`` and ``estimated_delivery`` (both readable even when unknown).
    """
    lines = len(order.items)
    return {
        "order_number": order.order_number,
        "status": order.status,
        "items": f"{lines} item" if lines == 1 else f"{lines} items",
        "total": format_money(order.total, order.currency),
        "tracking_number": order.tracking_number or "not available yet",
        "estimated_delivery": format_date(order.estimated_delivery),
    }


# ----------------------------------------------------------------------------------------------- validation

#: The validation shared by every order form (order number, then the email address on the order).
OrderNumberFormValidation = OrderFormValidation


class ValidateTrackOrderForm(OrderNumberFormValidation):
    """Validates ``track_order_form``."""

    def name(self) -> Text:
        """Return the action name."""
        return "validate_track_order_form"


class ValidateCancelOrderForm(OrderNumberFormValidation):
    """Validates ``cancel_order_form``: order number, email address, then the customer's yes or no.

    For an order that can no longer be cancelled the confirmation is skipped: the form ends and
    ``action_cancel_order`` explains why.
    """

    action_slots = ("cancel_confirmed",)

    def name(self) -> Text:
        """Return the action name."""
        return "validate_cancel_order_form"

    def order_action_allowed(self, order: "OrderView", tracker: Tracker) -> bool:
        """An order can be cancelled while it is placed or packed."""
        return bool(order.can_cancel)

    def validate_cancel_confirmed(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Keep the answer as a boolean (filled from affirm/deny)."""
        return self.confirmation("cancel_confirmed", slot_value, tracker)


class ValidateChangeAddressForm(OrderNumberFormValidation):
    """Validates ``change_address_form``: order number, email address, the new address, then a yes or no.

    For an order that has left the warehouse the address questions are skipped: the form ends and
    ``action_change_shipping_address`` explains why.
    """

    action_slots = ("shipping_address", "address_confirmed")

    #: Intents an address reply is often mistaken for; their text is still taken as the address.
    ADDRESS_INTENTS = ("change_shipping_address", "set_up_shipping_address")
    MIN_ADDRESS_CHARS = 8
    MAX_ADDRESS_CHARS = ADDRESS_MAX_CHARS

    def name(self) -> Text:
        """Return the action name."""
        return "validate_change_address_form"

    def order_action_allowed(self, order: "OrderView", tracker: Tracker) -> bool:
        """The address can be changed while the order is placed or packed."""
        return bool(order.can_change_address)

    def extract_shipping_address(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Take the reply text as the address while the form asks for it."""
        text = free_text_answer(tracker, "shipping_address", extra_intents=self.ADDRESS_INTENTS)
        return {} if text is None else {"shipping_address": text}

    def validate_shipping_address(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Accept one line of 8 to 300 characters with letters and a digit (house number or postcode)."""
        address = " ".join(str(slot_value or "").split())
        plausible = (
            self.MIN_ADDRESS_CHARS <= len(address) <= self.MAX_ADDRESS_CHARS
            and any(ch.isdigit() for ch in address)
            and any(ch.isalpha() for ch in address)
        )
        if not plausible:
            dispatcher.utter_message(response="utter_invalid_address")
            return {"shipping_address": None}
        return {"shipping_address": address}

    def validate_address_confirmed(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Keep the answer as a boolean (filled from affirm/deny)."""
        return self.confirmation("address_confirmed", slot_value, tracker)


# ----------------------------------------------------------------------------------------------- flows


def verified_order_number(dispatcher: CollectingDispatcher, tracker: Tracker) -> Optional[Text]:
    """The slot ``order_number`` when this session verified it; otherwise None after telling the customer why
    (nothing after a lock-out, which the form explained already)."""
    if tracker.get_slot(VERIFICATION_LOCKED):
        return None
    value = tracker.get_slot("order_number")
    if not value:
        dispatcher.utter_message(response="utter_order_unknown")
        return None
    number = optional_order_number(str(value))
    if number is None or not may_see_order(tracker, number):
        logger.info("Order %s not verified in conversation %s", str(value)[:16], str(tracker.sender_id)[:40])
        dispatcher.utter_message(response=VERIFY_FIRST_RESPONSE)
        return None
    return number


class OrderFlowAction(ShopAction, ABC):
    """An action that ends an order form; it clears the form's slots whatever happens."""

    @staticmethod
    def end_of_flow() -> List[EventType]:
        """Clear the order flow's slots, so that the next request asks for the order number again."""
        return reset_slots(*ORDER_FLOW_SLOTS)

    def events_on_error(self, tracker: Tracker) -> List[EventType]:
        """End the flow after an error too."""
        return self.end_of_flow()

    def order_number(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> Optional[Text]:
        """Return the form's order number if this session verified it, else None.

        None comes silently after a lock-out (the form already said so), after "I've lost track of which
        order" without a number, and after "I can look that up once you confirm the email address" for an
        order that was never verified (a tracker that skipped the form).
        """
        return verified_order_number(dispatcher, tracker)


class ActionTrackOrder(OrderFlowAction):
    """Submit of ``track_order_form``: tells the status, tracking number and expected delivery."""

    def name(self) -> Text:
        """Return the action name."""
        return "action_track_order"

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Look the order up and describe where it is."""
        number = self.order_number(dispatcher, tracker)
        if number is not None:
            order = common.get_repository().get_order(number)
            response = STATUS_RESPONSES.get(order.status, "utter_order_status_other")
            dispatcher.utter_message(response=response, **order_details(order))
        return self.end_of_flow()


class ActionAskCancelConfirmed(ShopAction):
    """Question of ``cancel_order_form``: shows the order and asks whether to cancel it."""

    def name(self) -> Text:
        """Return the action name."""
        return "action_ask_cancel_confirmed"

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Show number, items, total and status, with yes/no buttons (for a verified order only)."""
        number = verified_order_number(dispatcher, tracker)
        if number is not None:
            order = common.get_repository().get_order(number)
            dispatcher.utter_message(response="utter_ask_cancel_confirmed", **order_details(order))
        return []


class ActionCancelOrder(OrderFlowAction):
    """Submit of ``cancel_order_form``: cancels only after a yes, and explains a refusal.

    The order is read again first, as it may have shipped since the customer was asked.
    """

    CANCEL_REASON = "Cancelled by the customer in the chat"

    def name(self) -> Text:
        """Return the action name."""
        return "action_cancel_order"

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Cancel, keep, or refuse, depending on the order's status and the customer's answer."""
        number = self.order_number(dispatcher, tracker)
        if number is None:
            return self.end_of_flow()
        repository = common.get_repository()
        order = repository.get_order(number)
        details = order_details(order)
        if order.status == OrderStatus.CANCELLED.value:
            dispatcher.utter_message(response="utter_already_cancelled", **details)
        elif not order.can_cancel:
            dispatcher.utter_message(response="utter_cannot_cancel", **details)
        elif tracker.get_slot("cancel_confirmed") is not True:
            dispatcher.utter_message(response="utter_order_kept", **details)
        else:
            cancelled = repository.cancel_order(order.order_number, reason=self.CANCEL_REASON)
            dispatcher.utter_message(response="utter_order_cancelled", **order_details(cancelled))
        return self.end_of_flow()


class ActionChangeShippingAddress(OrderFlowAction):
    """Submit of ``change_address_form``: changes the address after a yes, while the order has not shipped."""

    def name(self) -> Text:
        """Return the action name."""
        return "action_change_shipping_address"

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Change the address, or explain why it can no longer be changed."""
        number = self.order_number(dispatcher, tracker)
        if number is None:
            return self.end_of_flow()
        repository = common.get_repository()
        order = repository.get_order(number)
        address = tracker.get_slot("shipping_address")
        if not order.can_change_address:
            dispatcher.utter_message(response="utter_cannot_change_address", **order_details(order))
        elif not address:
            dispatcher.utter_message(response="utter_ask_shipping_address")
        elif tracker.get_slot("address_confirmed") is not True:
            dispatcher.utter_message(response="utter_order_kept", **order_details(order))
        else:
            updated = repository.change_shipping_address(order.order_number, str(address))
            dispatcher.utter_message(
                response="utter_address_changed",
                order_number=updated.order_number,
                shipping_address=updated.shipping_address,
            )
        return self.end_of_flow()


class ActionExplainOrderChanges(ShopAction):
    """Answer to ``change_order``: what can still be changed; tailored to the order the message names when
    this session verified it, else the general rules (which say nothing about that order)."""

    def name(self) -> Text:
        """Return the action name."""
        return "action_explain_order_changes"

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Tailor the answer to the order named in the message, or give the general rules."""
        mentioned = list(tracker.get_latest_entity_values("order_number"))
        if mentioned:
            try:
                number = common.find_order_number(str(mentioned[-1]))
            except ShopError as error:
                dispatcher.utter_message(text=error.user_message)
            else:
                if may_see_order(tracker, number):
                    order = common.get_repository().get_order(number)
                    response = "utter_change_order_open" if order.can_cancel else "utter_change_order_closed"
                    dispatcher.utter_message(response=response, **order_details(order))
                    return []
                logger.info("Order changes explained in general: order %s not verified", number)
        dispatcher.utter_message(response="utter_change_order_options")
        return []


class ActionAskTrackOrderFormOrderNumber(ShopAction):
    """Question of ``track_order_form`` for the order number: a logged-in customer gets their recent orders.

    Up to :data:`RECENT_ORDERS_LISTED` orders, newest first, as buttons that send
    ``/track_order{"order_number": "<number>"}`` (which answers the question, or starts tracking that order
    later). Anonymous customers, and customers without orders, get the usual question.
    """

    def name(self) -> Text:
        """Return the action name."""
        return "action_ask_track_order_form_order_number"

    def events_on_error(self, tracker: Tracker) -> List[EventType]:
        """Nothing to undo; the customer gets the technical-problem reply and can type a number."""
        return []

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """List the logged-in customer's recent orders, or ask for the number."""
        customer = logged_in_customer(tracker)
        orders = common.get_repository().customer_orders(customer, RECENT_ORDERS_LISTED) if customer else []
        if not orders:
            dispatcher.utter_message(response="utter_ask_track_order_form_order_number")
            return []
        dispatcher.utter_message(
            response="utter_ask_which_of_your_orders",
            buttons=[
                order_button(
                    order.order_number,
                    "track_order",
                    f"{order.order_number} · {format_date(order.placed_at)} · {order.status}",
                )
                for order in orders
            ],
        )
        return []
