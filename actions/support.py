"""Support actions: complaints and hand-over to a person (support tickets), offering a person to an unhappy
customer, stopping a flow, the fallback.

A ticket carries the conversation so far (see :func:`actions.transcript.conversation_transcript`) and the
sentiment of each user message (:func:`actions.transcript.sentiment_trail`), so the colleague who takes over
does not have to ask again.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import common
from actions.common import ShopAction
from actions.formatting import shorten
from actions.orders import ORDER_FLOW_SLOTS
from actions.tracker_utils import last_bot_action, latest_intent, latest_text, reset_slots
from actions.transcript import conversation_transcript, sentiment_trail
from assistant.keys import NEGATIVE
from shop.errors import InvalidOrderNumber
from shop.statuses import TicketPriority

logger = logging.getLogger(__name__)

#: A hand-over is urgent when one of the customer's last this many messages was negative.
RECENT_SENTIMENT_WINDOW = 3
NEGATIVE_SENTIMENTS = frozenset({NEGATIVE, "angry", "frustrated"})
MAX_SUBJECT_CHARS = 120
#: Action predicted by components.sentiment_policy.SentimentHandoffPolicy for an unhappy customer.
OFFER_HUMAN_ACTION = "action_offer_human"


class TicketAction(ShopAction, ABC):
    """Opens a support ticket with the transcript and tells the customer its number."""

    #: Response that tells the customer the ticket number (variable ``ticket_number``).
    response: Text = "utter_handoff_ticket"
    #: Reply when the ticket could not be created; must not send the customer back here.
    problem_response: Text = "utter_handoff_failed"

    @abstractmethod
    def subject(self, tracker: Tracker) -> Text:
        """Return the ticket's subject line."""

    def priority(self, trail: List[Text]) -> Text:
        """Return ``"normal"`` or ``"high"``; high when the customer sounded negative lately."""
        recent = {label.lower() for label in trail[-RECENT_SENTIMENT_WINDOW:]}
        return TicketPriority.HIGH.value if recent & NEGATIVE_SENTIMENTS else TicketPriority.NORMAL.value

    @staticmethod
    def related_order(tracker: Tracker) -> Optional[Text]:
        """Return the order number the conversation is about, if a valid one is known."""
        values = list(tracker.get_latest_entity_values("order_number")) + [tracker.get_slot("order_number")]
        for value in values:
            if not value:
                continue
            try:
                return common.find_order_number(str(value))
            except InvalidOrderNumber:
                continue
        return None

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Create the ticket and give the customer its number."""
        trail = sentiment_trail(tracker)
        ticket = common.get_repository().create_ticket(
            sender_id=tracker.sender_id,
            subject=self.subject(tracker),
            transcript=conversation_transcript(tracker),
            sentiment_trail=trail,
            order_number=self.related_order(tracker),
            priority=self.priority(trail),
        )
        logger.info("Ticket %s opened by %s", ticket.ticket_number, self.name())
        dispatcher.utter_message(response=self.response, ticket_number=ticket.ticket_number)
        return []


class ActionFileComplaint(TicketAction):
    """Answer to ``complaint``: an urgent ticket whose subject is the complaint itself."""

    response = "utter_complaint_ticket"

    def name(self) -> Text:
        """Return the action name."""
        return "action_file_complaint"

    def subject(self, tracker: Tracker) -> Text:
        """``"Complaint: <the customer's words>"``."""
        text = shorten(latest_text(tracker), MAX_SUBJECT_CHARS)
        return f"Complaint: {text}" if text else "Complaint"

    def priority(self, trail: List[Text]) -> Text:
        """Complaints are always urgent."""
        return TicketPriority.HIGH.value


class ActionHandOverToHuman(TicketAction):
    """Answer to ``contact_human_agent``: a ticket for a colleague to take over the conversation."""

    def name(self) -> Text:
        """Return the action name."""
        return "action_hand_over_to_human"

    def subject(self, tracker: Tracker) -> Text:
        """``"Customer asked for a person"``, or ``"Unhappy customer accepted a person"`` after the bot
        offered one; with the order number when one is known."""
        order_number = self.related_order(tracker)
        subject = (
            "Unhappy customer accepted a person"
            if last_bot_action(tracker) == OFFER_HUMAN_ACTION
            else "Customer asked for a person"
        )
        return f"{subject} (order {order_number})" if order_number else subject


class ActionOfferHuman(ShopAction):
    """Apologises and offers a person (yes/no buttons); predicted by ``SentimentHandoffPolicy``.

    An active form is ended first, like the rules do when the customer asks for a person in the middle of a
    form: otherwise a "yes" to the offer would be taken as the form's answer (e.g. "cancel this order?").
    The answer is handled by rules: ``affirm`` → ``action_hand_over_to_human``, ``deny`` →
    ``utter_sort_it_out_together``.
    """

    def name(self) -> Text:
        """Return the action name."""
        return OFFER_HUMAN_ACTION

    @staticmethod
    def _end_form(tracker: Tracker) -> List[EventType]:
        if not tracker.active_loop_name:
            return []
        return [ActiveLoop(None), SlotSet("requested_slot", None)]

    def events_on_error(self, tracker: Tracker) -> List[EventType]:
        """End the form even after an error, so the next answer is not taken as a form slot."""
        return self._end_form(tracker)

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Apologise and ask whether the customer wants a person."""
        dispatcher.utter_message(response="utter_offer_human")
        return self._end_form(tracker)


class ActionStopFlow(ShopAction):
    """Ends a stopped form ("no", "never mind", "bye"): says so and forgets the flow's slots."""

    FLOW_SLOTS = ORDER_FLOW_SLOTS + (
        "refund_reason",
        "amount",
        "refund_confirmed",
        "delete_data_confirmed",
        "product_miss",
        "product_suggestions",
    )

    def name(self) -> Text:
        """Return the action name."""
        return "action_stop_flow"

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Say goodbye or confirm the stop, and clear the slots."""
        response = "utter_goodbye" if latest_intent(tracker) == "goodbye" else "utter_flow_stopped"
        dispatcher.utter_message(response=response)
        return reset_slots(*self.FLOW_SLOTS)


class ActionDefaultFallback(ShopAction):
    """Fallback for messages the assistant did not understand (``nlu_fallback`` and low policy confidence).

    Asks the customer to rephrase; after two misses in a row it offers a person instead. Like Rasa's default
    fallback it reverts the user message, so a misunderstanding does not steer the rest of the dialogue.
    """

    def name(self) -> Text:
        """Return the action name (replaces Rasa's built-in fallback)."""
        return "action_default_fallback"

    @staticmethod
    def misses_in_a_row(tracker: Tracker) -> int:
        """Count the fallbacks that directly preceded this one (user messages and bot replies in between)."""
        count = 0
        for event in reversed(tracker.events or []):
            kind = event.get("event")
            if kind in ("user", "bot", "rewind", "user_featurization", "slot"):
                continue
            if kind != "action":
                break
            name = event.get("name")
            if name == "action_listen":
                continue
            if name != "action_default_fallback":
                break
            count += 1
        return count

    def events_on_error(self, tracker: Tracker) -> List[EventType]:
        """Revert the misunderstood message even after an error."""
        return [UserUtteranceReverted()]

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Ask to rephrase, or offer a person after repeated misses."""
        response = "utter_default_handoff" if self.misses_in_a_row(tracker) >= 1 else "utter_default"
        dispatcher.utter_message(response=response)
        return [UserUtteranceReverted()]
