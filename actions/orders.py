"""Order actions: track an order, cancel it after confirmation, change its delivery address, explain changes.

Every flow uses a form that asks for the order number. :class:`OrderNumberFormValidation` checks the number
with the repository and re-asks on anything that is not an existing order, so a mistyped, absurd or unknown
number never gets further than a friendly question.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions import common
from actions.common import ShopAction
from actions.formatting import format_date, format_money
from actions.tracker_utils import free_text_answer, reset_slots
from shop.errors import ShopError
from shop.statuses import OrderStatus
from shop.validation import ADDRESS_MAX_CHARS

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

#: Slots an order flow leaves behind; cleared when the flow ends so the next flow asks again.
ORDER_FLOW_SLOTS = ("order_number", "order_action_allowed", "cancel_confirmed", "shipping_address")


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


class OrderNumberFormValidation(FormValidationAction, ABC):
    """Validation shared by the forms that ask for an order number.

    ``extract_order_number`` takes a bare reply ("10023", "it's #10023") as the answer while the form asks for
    the number; ``validate_order_number`` normalises it and looks the order up. On success it also sets
    ``order_action_allowed`` (see :meth:`order_action_allowed`); on failure it says why and clears the slot,
    so the form asks again.
    """

    @abstractmethod
    def name(self) -> Text:
        """Return ``validate_<form name>``."""

    def order_action_allowed(self, order: "OrderView") -> bool:
        """Whether the form's change may still be made to ``order``; True unless a subclass says otherwise."""
        return True

    def extract_order_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Take the reply text as the order number while the form asks for it (see ``free_text_answer``)."""
        text = free_text_answer(tracker, "order_number")
        return {} if text is None else {"order_number": text}

    def validate_order_number(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Accept the order number only if such an order exists.

        Returns:
            ``order_number`` (five digits) and ``order_action_allowed``, or both None after telling the
            customer what was wrong (malformed, unknown, or a technical problem).
        """
        rejected: Dict[Text, Any] = {"order_number": None, "order_action_allowed": None}
        try:
            number = common.find_order_number("" if slot_value is None else str(slot_value))
            order = common.get_repository().get_order(number)
        except ShopError as error:
            logger.info("Order number refused: %s", error)
            dispatcher.utter_message(text=error.user_message)
            return rejected
        except Exception:
            logger.exception("Looking up an order number failed")
            dispatcher.utter_message(response=common.TECHNICAL_PROBLEM_RESPONSE)
            return rejected
        return {"order_number": order.order_number, "order_action_allowed": self.order_action_allowed(order)}


class ValidateTrackOrderForm(OrderNumberFormValidation):
    """Validates ``track_order_form``."""

    def name(self) -> Text:
        """Return the action name."""
        return "validate_track_order_form"


class ValidateCancelOrderForm(OrderNumberFormValidation):
    """Validates ``cancel_order_form``: order number, then the customer's yes or no.

    For an order that can no longer be cancelled the confirmation is skipped: the form ends and
    ``action_cancel_order`` explains why.
    """

    def name(self) -> Text:
        """Return the action name."""
        return "validate_cancel_order_form"

    def order_action_allowed(self, order: "OrderView") -> bool:
        """An order can be cancelled while it is placed or packed."""
        return bool(order.can_cancel)

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        """Drop the confirmation question for an order that cannot be cancelled."""
        if tracker.get_slot("order_number") and tracker.get_slot("order_action_allowed") is False:
            return [slot for slot in domain_slots if slot != "cancel_confirmed"]
        return domain_slots

    def validate_cancel_confirmed(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Keep the answer as a boolean (filled from affirm/deny)."""
        return {"cancel_confirmed": slot_value is True or str(slot_value).lower() == "true"}


class ValidateChangeAddressForm(OrderNumberFormValidation):
    """Validates ``change_address_form``: order number, then the new address.

    For an order that has left the warehouse the address question is skipped: the form ends and
    ``action_change_shipping_address`` explains why.
    """

    #: Intents an address reply is often mistaken for; their text is still taken as the address.
    ADDRESS_INTENTS = ("change_shipping_address", "set_up_shipping_address")
    MIN_ADDRESS_CHARS = 8
    MAX_ADDRESS_CHARS = ADDRESS_MAX_CHARS

    def name(self) -> Text:
        """Return the action name."""
        return "validate_change_address_form"

    def order_action_allowed(self, order: "OrderView") -> bool:
        """The address can be changed while the order is placed or packed."""
        return bool(order.can_change_address)

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        """Drop the address question for an order whose address can no longer change."""
        if tracker.get_slot("order_number") and tracker.get_slot("order_action_allowed") is False:
            return [slot for slot in domain_slots if slot != "shipping_address"]
        return domain_slots

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


# ----------------------------------------------------------------------------------------------- flows


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
        """Return the validated order number, or None after saying that it got lost."""
        number = tracker.get_slot("order_number")
        if not number:
            dispatcher.utter_message(response="utter_order_unknown")
            return None
        return str(number)


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
        """Show number, items, total and status, with yes/no buttons."""
        order = common.get_repository().get_order(str(tracker.get_slot("order_number")))
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
    """Submit of ``change_address_form``: changes the address while the order has not shipped."""

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
        else:
            updated = repository.change_shipping_address(order.order_number, str(address))
            dispatcher.utter_message(
                response="utter_address_changed",
                order_number=updated.order_number,
                shipping_address=updated.shipping_address,
            )
        return self.end_of_flow()


class ActionExplainOrderChanges(ShopAction):
    """Answer to ``change_order``: what can still be changed, for a given order when the message names one."""

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
                order = common.get_repository().get_order(common.find_order_number(str(mentioned[-1])))
            except ShopError as error:
                dispatcher.utter_message(text=error.user_message)
            else:
                response = "utter_change_order_open" if order.can_cancel else "utter_change_order_closed"
                dispatcher.utter_message(response=response, **order_details(order))
                return []
        dispatcher.utter_message(response="utter_change_order_options")
        return []
