"""Refund actions: request a refund for an order after confirmation, and list the refunds of an order.

Both forms ask for the order number and the email address on the order first (:mod:`actions.verification`).
The reason of a refund is the customer's own message that asked for it (slot ``refund_reason``, filled from
the text of the ``get_refund`` message); an optional ``amount`` entity asks for part of the order only. Before
anything is requested the customer confirms the amount (``refund_confirmed``); an order that cannot be
refunded skips the question and the submit action explains why.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import common
from actions.common import ShopAction
from actions.formatting import format_date, format_money
from actions.orders import OrderFlowAction, OrderNumberFormValidation, verified_order_number
from actions.tracker_utils import message_key, reset_slots
from shop.errors import ShopError
from shop.statuses import RefundStatus
from shop.validation import MAX_REASON_CHARS

if TYPE_CHECKING:
    from shop.views import OrderView, RefundView

logger = logging.getLogger(__name__)

#: How each refund status reads for the customer.
REFUND_STATUS_TEXT = {
    RefundStatus.REQUESTED.value: "being checked",
    RefundStatus.APPROVED.value: "approved, the money is on its way",
    RefundStatus.PAID.value: "paid back",
    RefundStatus.REJECTED.value: "not approved",
}


#: Slots a refund flow leaves behind besides those of :data:`actions.orders.ORDER_FLOW_SLOTS`.
REFUND_FLOW_SLOTS = ("refund_reason", "amount", "refund_confirmed")


def refund_line(refund: "RefundView") -> Text:
    """Describe one refund on one line, e.g. ``"• RF-10024-1: €4.50, asked for on Monday 3 June 2024, being
    checked"``."""
    status = REFUND_STATUS_TEXT.get(refund.status, refund.status)
    return (
        f"• {refund.refund_number}: {format_money(refund.amount, refund.currency)}, "
        f"asked for on {format_date(refund.created_at)}, {status}"
    )


class ValidateRefundForm(OrderNumberFormValidation):
    """Validates ``refund_form``: order number, email address, then a yes or no to the amount.

    Whether a refund is possible is the repository's call (:meth:`~shop.repository.ShopRepository.
    refund_quote`); when it is not, the confirmation is skipped and ``action_request_refund`` explains why.
    """

    action_slots = ("refund_confirmed",)

    def name(self) -> Text:
        """Return the action name."""
        return "validate_refund_form"

    def order_action_allowed(self, order: "OrderView", tracker: Tracker) -> bool:
        """A refund is possible for the order and the amount asked for (if any)."""
        try:
            amount = common.parse_amount(tracker.get_slot("amount"))
            common.get_repository().refund_quote(order.order_number, amount)
        except ShopError as error:
            logger.info("No refund possible for order %s: %s", order.order_number, error)
            return False
        return True

    def validate_refund_confirmed(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Keep the answer as a boolean (filled from affirm/deny)."""
        return self.confirmation("refund_confirmed", slot_value, tracker)


class ValidateTrackRefundForm(OrderNumberFormValidation):
    """Validates ``track_refund_form``."""

    def name(self) -> Text:
        """Return the action name."""
        return "validate_track_refund_form"


class RefundFlowAction(OrderFlowAction):
    """Ends a refund form: clears the order flow's slots and the refund's reason and amount."""

    @staticmethod
    def end_of_flow() -> List[EventType]:
        """Clear the order flow's slots, the reason, the amount and the confirmation."""
        return OrderFlowAction.end_of_flow() + reset_slots(*REFUND_FLOW_SLOTS)


class ActionAskRefundConfirmed(ShopAction):
    """Question of ``refund_form``: the amount that would be requested, with yes/no buttons."""

    def name(self) -> Text:
        """Return the action name."""
        return "action_ask_refund_confirmed"

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Ask whether to request the refund (for a verified order only)."""
        number = verified_order_number(dispatcher, tracker)
        if number is not None:
            amount, currency = common.get_repository().refund_quote(
                number, common.parse_amount(tracker.get_slot("amount"))
            )
            dispatcher.utter_message(
                response="utter_ask_refund_confirmed",
                order_number=number,
                amount=format_money(amount, currency),
            )
        return []


class ActionRequestRefund(RefundFlowAction):
    """Submit of ``refund_form``: after a yes, requests a refund with the customer's reason and amount.

    Without a yes nothing is requested; for an order that cannot be refunded the repository's refusal is the
    answer (nothing is written).
    """

    def name(self) -> Text:
        """Return the action name."""
        return "action_request_refund"

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Request the refund; refusals (not delivered yet, too much, ...) come back as the shop's message."""
        number = self.order_number(dispatcher, tracker)
        if number is None:
            return self.end_of_flow()
        repository = common.get_repository()
        amount = common.parse_amount(tracker.get_slot("amount"))
        if tracker.get_slot("refund_confirmed") is not True:
            if tracker.get_slot("order_action_allowed") is False:
                repository.refund_quote(number, amount)  # raises the shop's reason; nothing is written
            dispatcher.utter_message(response="utter_refund_not_requested", order_number=number)
            return self.end_of_flow()
        reason = str(tracker.get_slot("refund_reason") or "")[:MAX_REASON_CHARS]
        refund = repository.request_refund(number, reason, amount, request_key=message_key(tracker))
        dispatcher.utter_message(
            response="utter_refund_requested",
            order_number=refund.order_number,
            refund_number=refund.refund_number,
            amount=format_money(refund.amount, refund.currency),
        )
        return self.end_of_flow()


class ActionTrackRefund(RefundFlowAction):
    """Submit of ``track_refund_form``: lists the refund requests of the order and their status."""

    def name(self) -> Text:
        """Return the action name."""
        return "action_track_refund"

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """List the refunds, or say that there are none."""
        number = self.order_number(dispatcher, tracker)
        if number is None:
            return self.end_of_flow()
        refunds = common.get_repository().list_refunds(number)
        if not refunds:
            dispatcher.utter_message(response="utter_no_refunds", order_number=number)
        else:
            dispatcher.utter_message(
                response="utter_refund_list",
                order_number=number,
                refund_lines="\n".join(refund_line(refund) for refund in refunds),
            )
        return self.end_of_flow()
