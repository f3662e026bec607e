"""Refund actions: request a refund for an order, and list the refunds of an order.

The reason of a refund is the customer's own message that asked for it (slot ``refund_reason``, filled from
the text of the ``get_refund`` message); an optional ``amount`` entity asks for part of the order only.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, List, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import common
from actions.formatting import format_date, format_money
from actions.orders import OrderFlowAction, OrderNumberFormValidation
from actions.tracker_utils import reset_slots
from shop.statuses import RefundStatus
from shop.validation import MAX_REASON_CHARS

if TYPE_CHECKING:
    from shop.views import RefundView

logger = logging.getLogger(__name__)

#: How each refund status reads for the customer.
REFUND_STATUS_TEXT = {
    RefundStatus.REQUESTED.value: "being checked",
    RefundStatus.APPROVED.value: "approved, the money is on its way",
    RefundStatus.PAID.value: "paid back",
    RefundStatus.REJECTED.value: "not approved",
}


def refund_line(refund: "RefundView") -> Text:
    """Describe one refund on one line, e.g. ``"• RF-10024-1: €4.50, asked for on Monday 3 June 2024, being
    checked"``."""
    status = REFUND_STATUS_TEXT.get(refund.status, refund.status)
    return (
        f"• {refund.refund_number}: {format_money(refund.amount, refund.currency)}, "
        f"asked for on {format_date(refund.created_at)}, {status}"
    )


class ValidateRefundForm(OrderNumberFormValidation):
    """Validates ``refund_form`` (the order number; whether a refund is possible is the repository's call)."""

    def name(self) -> Text:
        """Return the action name."""
        return "validate_refund_form"


class ValidateTrackRefundForm(OrderNumberFormValidation):
    """Validates ``track_refund_form``."""

    def name(self) -> Text:
        """Return the action name."""
        return "validate_track_refund_form"


class RefundFlowAction(OrderFlowAction):
    """Ends a refund form: clears the order flow's slots and the refund's reason and amount."""

    @staticmethod
    def end_of_flow() -> List[EventType]:
        """Clear the order flow's slots, the reason and the amount."""
        return OrderFlowAction.end_of_flow() + reset_slots("refund_reason", "amount")


class ActionRequestRefund(RefundFlowAction):
    """Submit of ``refund_form``: requests a refund with the customer's reason and optional amount."""

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
        reason = str(tracker.get_slot("refund_reason") or "")[:MAX_REASON_CHARS]
        amount = common.parse_amount(tracker.get_slot("amount"))
        refund = common.get_repository().request_refund(number, reason, amount)
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
