"""Several requests in one message: offer the next one, start it after a yes, or leave it after a no.

The NLU pipeline splits "where is order 10023 and can you also cancel 10027" into requests (parse-result key
``requests``, components/multi_request.py); the message's own flow handles the first, and the queue of the
others is derived from the conversation's events (:func:`assistant.requests.request_queue`), so nothing is
stored here. ``components.multi_request_policy`` predicts :class:`ActionOfferNextRequest` when a flow has
ended and a request waits; the rules in data/rules.yml send a yes to :class:`ActionStartNextRequest` and a no
to :class:`ActionSkipNextRequest`.

Starting a request never skips a step: the flow's form starts with the order number of the request filled in,
its validator checks the number, asks for the email address on that order unless this session verified it
already, and cancelling, re-addressing or refunding still needs the customer's yes to the form's own question.
"""

from __future__ import annotations

import logging
from typing import Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import ShopAction
from actions.orders import ORDER_FLOW_SLOTS
from actions.refunds import REFUND_FLOW_SLOTS
from actions.tracker_utils import reset_slots
from assistant.requests import FollowUp, request_queue
from shop.validation import MAX_REASON_CHARS

logger = logging.getLogger(__name__)

#: The form that handles each request intent (data/rules.yml starts the same form for the intent).
FORM_OF_INTENT: Dict[Text, Text] = {
    "track_order": "track_order_form",
    "cancel_order": "cancel_order_form",
    "change_shipping_address": "change_address_form",
    "get_refund": "refund_form",
    "track_refund": "track_refund_form",
}
#: The response that offers each request; ``{order}`` is "order 10027" or "another order".
OFFER_RESPONSES: Dict[Text, Text] = {intent: f"utter_offer_{intent}" for intent in FORM_OF_INTENT}
#: ``{order}`` of a request that named no order number.
UNNAMED_ORDER = "another order"
#: Slot of the refund's reason, which the refund flow otherwise takes from the message that asked.
REFUND_REASON = "refund_reason"


def order_phrase(task: FollowUp) -> Text:
    """``"order 10027"``, or :data:`UNNAMED_ORDER` for a request without an order number."""
    return f"order {task.order_number}" if task.order_number else UNNAMED_ORDER


def _queue_task(tracker: Tracker, offered: bool) -> Optional[FollowUp]:
    queue = request_queue(tracker.events or [])
    return queue.last_offered() if offered else queue.next_task()


class ActionOfferNextRequest(ShopAction):
    """Offers the next waiting request: "You also asked to cancel order 10027 — shall I do that now?"."""

    def name(self) -> Text:
        """Return the action name."""
        return "action_offer_next_request"

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Ask with yes/no buttons; say nothing when no request waits (the policy predicted it on an old
        state)."""
        task = _queue_task(tracker, offered=False)
        if task is None or task.intent not in OFFER_RESPONSES:
            logger.info("No request to offer in conversation %s", str(tracker.sender_id)[:40])
            return []
        dispatcher.utter_message(response=OFFER_RESPONSES[task.intent], order=order_phrase(task))
        return []


class ActionStartNextRequest(ShopAction):
    """After a yes to the offer: starts the offered request's form with its order number filled in."""

    def name(self) -> Text:
        """Return the action name."""
        return "action_start_next_request"

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Clear what the last flow left, set the request's order number (and a refund's reason), and run its
        form next; the form verifies the customer as always."""
        task = _queue_task(tracker, offered=True)
        form = FORM_OF_INTENT.get(task.intent) if task is not None else None
        if task is None or form is None:
            logger.info("A yes to an offer that is gone, conversation %s", str(tracker.sender_id)[:40])
            dispatcher.utter_message(response="utter_what_else")
            return []
        events: List[EventType] = reset_slots(*ORDER_FLOW_SLOTS, *REFUND_FLOW_SLOTS)
        if task.order_number:
            events.append(SlotSet("order_number", task.order_number))
        if task.intent == "get_refund" and task.text:
            events.append(SlotSet(REFUND_REASON, task.text[:MAX_REASON_CHARS]))
        logger.info("Starting %s for the customer's next request", form)
        return events + [FollowupAction(form)]


class ActionSkipNextRequest(ShopAction):
    """After a no to the offer: leaves that request (the next one, if any, is offered after this)."""

    def name(self) -> Text:
        """Return the action name."""
        return "action_skip_next_request"

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Confirm that nothing is done about it."""
        task = _queue_task(tracker, offered=True)
        dispatcher.utter_message(
            response="utter_request_skipped", order=order_phrase(task) if task else UNNAMED_ORDER
        )
        return []
