""""Delete my data" (intent ``delete_account``): erase a verified customer's uploads and support transcripts.

``delete_data_form`` first makes sure who the customer is: a logged-in customer, or one who verified an order
in this session, is asked straight away; anyone else proves one of their orders first (order number and the
email address on it, as in the order forms). Then the customer confirms, and ``action_delete_my_data`` deletes
the uploads of this conversation and erases the transcripts of the customer's support tickets
(:func:`shop.erasure.erase_customer`), and sets ``erase_conversation`` so that the SQL tracker store deletes
the conversation's history instead of saving the turn. Closing the account itself stays in the account settings.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import common
from assistant.keys import ERASE_CONVERSATION_SLOT
from actions.common import ShopAction
from actions.orders import ORDER_FLOW_SLOTS
from actions.tracker_utils import reset_slots, upload_ids
from actions.verification import (
    ORDER_EMAIL,
    VERIFICATION_LOCKED,
    OrderFormValidation,
    identity_known,
    verified_customers,
)
from shop.erasure import erase_customer

logger = logging.getLogger(__name__)

#: Slots the deletion flow leaves behind.
DELETE_FLOW_SLOTS = ORDER_FLOW_SLOTS + ("delete_data_confirmed",)


class ValidateDeleteDataForm(OrderFormValidation):
    """Validates ``delete_data_form``: proof of identity unless it is known already, then a yes or no."""

    def name(self) -> Text:
        """Return the action name."""
        return "validate_delete_data_form"

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        """Skip the order number and email address for a customer the conversation already knows."""
        if not tracker.get_slot(VERIFICATION_LOCKED) and identity_known(tracker):
            return [slot for slot in domain_slots if slot not in ("order_number", ORDER_EMAIL)]
        return await super().required_slots(domain_slots, dispatcher, tracker, domain)

    def validate_delete_data_confirmed(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Keep the answer as a boolean (filled from affirm/deny)."""
        return self.confirmation("delete_data_confirmed", slot_value, tracker)


class ActionDeleteMyData(ShopAction):
    """Submit of ``delete_data_form``: after a yes, deletes the uploads and erases the support transcripts."""

    def name(self) -> Text:
        """Return the action name."""
        return "action_delete_my_data"

    def events_on_error(self, tracker: Tracker) -> List[EventType]:
        """End the flow after an error too."""
        return reset_slots(*DELETE_FLOW_SLOTS)

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Erase, keep, or explain that the customer has to confirm who they are first."""
        if tracker.get_slot(VERIFICATION_LOCKED):
            return reset_slots(*DELETE_FLOW_SLOTS)
        customers = verified_customers(tracker)
        if not customers:
            logger.info("Data deletion refused: conversation %s not verified", str(tracker.sender_id)[:40])
            dispatcher.utter_message(response="utter_identity_needed")
        elif tracker.get_slot("delete_data_confirmed") is not True:
            dispatcher.utter_message(response="utter_data_kept")
        else:
            report = erase_customer(
                common.get_repository(),
                customers,
                sender_id=tracker.sender_id,
                attachment_ids=upload_ids(tracker),
            )
            dispatcher.utter_message(
                response="utter_data_deleted", uploads=report.uploads, tickets=report.tickets
            )
            # the conversation itself goes too: the tracker store deletes it instead of saving this turn
            return [*reset_slots(*DELETE_FLOW_SLOTS), SlotSet(ERASE_CONVERSATION_SLOT, True)]
        return reset_slots(*DELETE_FLOW_SLOTS)


__all__ = ["DELETE_FLOW_SLOTS", "ValidateDeleteDataForm", "ActionDeleteMyData"]
