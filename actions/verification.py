"""Who may see or change an order: the customer proves it is theirs before anything about it is shown.

The proof is the email address on the order (:mod:`shop.verification`). A logged-in customer (the channel
checked a signed token, :func:`actions.tracker_utils.logged_in_customer`) needs no further proof for their own
orders, for as long as the messages carry the token (:func:`may_see_order`: the token's orders are not stored
in the session, so a logout or another customer's token on the same conversation closes them). Every order
form asks for the order number, then for the email address (``order_email``) unless the order is already
verified, and only then for the form's own questions.

- A verified order number goes into ``verified_orders`` (a list slot the policies do not see) for the rest of
  the session; every other order needs its own proof, and a new session starts without any
  (``carry_over_slots_to_new_session: false``).
- Until an order is verified nothing about it is said, not even whether it exists: an unknown number gets the
  same question and the same "that doesn't match" as a known one (a malformed number is still refused as
  malformed).
- Wrong addresses are counted in the database per conversation and per order number
  (:meth:`shop.repository.ShopRepository.verify_order_email`); when they lock, the customer is told once, the
  form ends (``verification_locked``) and the submit action says nothing more.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions import common
from actions.tracker_utils import (
    FREE_TEXT_INTENTS,
    free_text_answer,
    has_entity,
    latest_entities,
    latest_intent,
    latest_text,
    logged_in_customer,
    slot_before_latest_message,
)
from shop.errors import ShopError
from shop.validation import optional_order_number
from shop.verification import VerificationResult, find_email

if TYPE_CHECKING:
    from shop.views import OrderView

logger = logging.getLogger(__name__)

#: Slot: order numbers verified in this session (list of five-digit strings).
VERIFIED_ORDERS = "verified_orders"
#: Slot: the email address the customer gave for the order in the form (cleared once checked).
ORDER_EMAIL = "order_email"
#: Slot: True once tries are locked; ends the form, and its submit action stays silent.
VERIFICATION_LOCKED = "verification_locked"
#: Response sent by submit actions for an order that was never verified (e.g. a forged tracker).
VERIFY_FIRST_RESPONSE = "utter_verify_first"
#: Most order numbers one session keeps as verified.
MAX_VERIFIED_ORDERS = 50


def _short(sender_id: Text) -> Text:
    """The start of a sender id, for log lines."""
    return str(sender_id)[:40]


def verified_orders(tracker: Tracker) -> List[Text]:
    """Return the order numbers verified in this session (malformed entries left out)."""
    value = tracker.get_slot(VERIFIED_ORDERS)
    if not isinstance(value, list):
        return []
    return [number for number in value if isinstance(number, str) and optional_order_number(number) == number]


def is_verified(tracker: Tracker, order_number: Any) -> bool:
    """Whether ``order_number`` (any form the parser accepts) was verified in this session."""
    number = optional_order_number(None if order_number is None else str(order_number))
    return number is not None and number in verified_orders(tracker)


def may_see_order(tracker: Tracker, order_number: Any) -> bool:
    """Whether this message may see and change ``order_number``: verified in this session, or the order of the
    customer whom this message's token names. The token's orders are never stored in the session: they are
    open only while each message carries the token (after a logout or a change of customer they are not).

    Raises:
        Exception: whatever the repository raises (the logged-in case looks the order up).
    """
    if is_verified(tracker, order_number):
        return True
    number = optional_order_number(None if order_number is None else str(order_number))
    customer = logged_in_customer(tracker)
    return number is not None and customer is not None and common.get_repository().order_belongs_to(
        number, customer
    )


def with_verified(tracker: Tracker, order_number: Text) -> List[Text]:
    """The new value of ``verified_orders`` with ``order_number`` added (at most the newest
    :data:`MAX_VERIFIED_ORDERS`)."""
    numbers = [number for number in verified_orders(tracker) if number != order_number] + [order_number]
    return numbers[-MAX_VERIFIED_ORDERS:]


def identity_known(tracker: Tracker) -> bool:
    """Whether the conversation knows who the customer is: logged in, or an order verified in this session."""
    return logged_in_customer(tracker) is not None or bool(verified_orders(tracker))


def verified_customers(tracker: Tracker) -> List[int]:
    """The ids of the customers this conversation is verified for: the logged-in customer and the customers
    of the verified orders (distinct, ascending)."""
    customers = set(common.get_repository().customers_of_orders(verified_orders(tracker)))
    customer = logged_in_customer(tracker)
    if customer is not None:
        customers.add(customer)
    return sorted(customers)


def log_lock_out(order_number: Text, tracker: Tracker) -> None:
    """The one log line of a refused try: which order, which conversation (its start)."""
    logger.warning("Verification locked: order %s, conversation %s", order_number, _short(tracker.sender_id))


def locked_reply(dispatcher: CollectingDispatcher) -> None:
    """Tell the customer that tries are locked for now (how long comes from the repository's policy)."""
    minutes = common.get_repository().verification_policy.window_minutes
    dispatcher.utter_message(response="utter_verification_locked", minutes=minutes)


def guarded(
    dispatcher: CollectingDispatcher,
    what: Text,
    fallback: Dict[Text, Any],
    step: Callable[[], Dict[Text, Any]],
) -> Dict[Text, Any]:
    """Run one repository step of a form validation and return its slots; on failure say why and return
    ``fallback``: a :class:`ShopError`'s own friendly message (logged as info), anything else the
    technical-problem reply (logged with its traceback). ``what`` names the step in the log line."""
    try:
        return step()
    except ShopError as error:
        logger.info("%s refused: %s", what, error)
        dispatcher.utter_message(text=error.user_message)
    except Exception:
        logger.exception("%s failed", what)
        dispatcher.utter_message(response=common.TECHNICAL_PROBLEM_RESPONSE)
    return fallback


class OrderFormValidation(FormValidationAction, ABC):
    """Validation shared by the forms about one order: the order number, then the proof, then the rest.

    ``extract_order_number`` takes a bare reply ("10023", "it's #10023") as the number while the form asks for
    it; ``validate_order_number`` normalises it and, for an order already verified (or the logged-in
    customer's own), looks it up and sets ``order_action_allowed`` (see :meth:`order_action_allowed`).
    Otherwise it only keeps the number, and the form asks for ``order_email``, whose validator checks the
    address with the repository. :attr:`action_slots` (the form's own questions) are dropped when the order
    does not allow the form's change, so the form ends and its submit action explains why.
    """

    #: The form's own questions after the proof; skipped when ``order_action_allowed`` is False.
    action_slots: tuple = ()

    @abstractmethod
    def name(self) -> Text:
        """Return ``validate_<form name>``."""

    def order_action_allowed(self, order: "OrderView", tracker: Tracker) -> bool:
        """Whether the form's change may still be made to ``order``; True unless a subclass says otherwise."""
        return True

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        """Nothing once locked; no email question for a verified order; no further questions for an order
        that does not allow the form's change."""
        if tracker.get_slot(VERIFICATION_LOCKED):
            return []
        if not may_see_order(tracker, tracker.get_slot("order_number")):
            return list(domain_slots)
        slots = [slot for slot in domain_slots if slot != ORDER_EMAIL]
        if tracker.get_slot("order_action_allowed") is False:
            slots = [slot for slot in slots if slot not in self.action_slots]
        return slots

    def confirmation(self, slot: Text, slot_value: Any, tracker: Tracker) -> Dict[Text, Any]:
        """The form's yes/no slot ``slot`` as a boolean, or None (asked again) when the same message also
        named another order than the one the question was about (``/affirm{"order_number": ...}``, "yes,
        10028"): a yes is only ever for the order it was asked about."""
        new = tracker.slots_to_validate().get("order_number")
        if new is not None:
            before = slot_before_latest_message(tracker, "order_number")
            previous = optional_order_number(None if before is None else str(before))
            if optional_order_number(str(new)) != previous:
                logger.info("A %s answer that names another order is asked again", slot)
                return {slot: None}
        return {slot: slot_value is True or str(slot_value).lower() == "true"}

    # -------------------------------------------------------------------------------------- order number

    def extract_order_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Take the reply text as the order number while the form asks for it (see ``free_text_answer``)."""
        text = free_text_answer(tracker, "order_number")
        return {} if text is None else {"order_number": text}

    def validate_order_number(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Accept a well-formed order number; describe the order only once it is verified.

        Returns:
            ``order_number`` (five digits) with ``order_action_allowed`` for a verified order (or the
            logged-in customer's own, which becomes verified), or with ``order_email`` cleared so the form
            asks for the proof. All None after saying why: malformed number, tries locked, technical problem.
        """
        rejected: Dict[Text, Any] = {"order_number": None, "order_action_allowed": None, ORDER_EMAIL: None}
        try:
            number = common.find_order_number("" if slot_value is None else str(slot_value))
        except ShopError as error:
            logger.info("Order number refused: %s", error)
            dispatcher.utter_message(text=error.user_message)
            return rejected
        return guarded(
            dispatcher, f"Checking order {number}", rejected,
            lambda: self._check_number(number, dispatcher, tracker, rejected),
        )

    def _check_number(
        self, number: Text, dispatcher: CollectingDispatcher, tracker: Tracker, rejected: Dict[Text, Any]
    ) -> Dict[Text, Any]:
        """Slots for a well-formed number: verified (already, or the logged-in customer's own), locked, or
        waiting for the proof (may raise)."""
        if is_verified(tracker, number):
            return self._verified(number, tracker)
        repository = common.get_repository()
        customer = logged_in_customer(tracker)
        if customer is not None and repository.order_belongs_to(number, customer):
            logger.info("Order %s is the logged-in customer's own", number)
            return self._verified(number, tracker)  # open while the messages carry the token, not stored
        if repository.verification_locked(tracker.sender_id, number):
            log_lock_out(number, tracker)
            locked_reply(dispatcher)
            return {**rejected, VERIFICATION_LOCKED: True}
        return {"order_number": number, "order_action_allowed": None, ORDER_EMAIL: None}

    def _verified(self, number: Text, tracker: Tracker) -> Dict[Text, Any]:
        """Slots for a verified order: its number and whether the form's change is allowed (may raise)."""
        order = common.get_repository().get_order(number)
        return {
            "order_number": order.order_number,
            "order_action_allowed": self.order_action_allowed(order, tracker),
            ORDER_EMAIL: None,
        }

    # ------------------------------------------------------------------------------------------ the proof

    def extract_order_email(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Take an ``email`` entity whenever the form runs, and the reply text while the form asks for the
        address (unless the reply is a question of its own or carries a new order number)."""
        entities = latest_entities(tracker, "email")
        if entities and entities[-1].get("value"):
            return {ORDER_EMAIL: str(entities[-1]["value"])}
        if tracker.get_slot("requested_slot") != ORDER_EMAIL or has_entity(tracker, "order_number"):
            return {}
        text = latest_text(tracker)
        intent = latest_intent(tracker)
        if text and ("@" in text or intent is None or intent in FREE_TEXT_INTENTS):
            return {ORDER_EMAIL: text}
        return {}

    def validate_order_email(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Check the address against the order, within the limit on wrong tries.

        Returns:
            On success the order number added to ``verified_orders`` with ``order_action_allowed``; otherwise
            ``order_email`` None so the form asks again (after "that isn't an email address", which does not
            count as a wrong try, or "that doesn't match", which does), or ``verification_locked`` True.
        """
        cleared: Dict[Text, Any] = {ORDER_EMAIL: None}
        number = optional_order_number(tracker.get_slot("order_number"))
        if number is None:
            return cleared
        email = find_email("" if slot_value is None else str(slot_value))
        if email is None:
            logger.info("Order email refused: not an email address (%s)", _short(tracker.sender_id))
            dispatcher.utter_message(response="utter_invalid_email")
            return cleared
        return guarded(
            dispatcher, f"Verifying order {number}", cleared,
            lambda: self._check_email(number, email, dispatcher, tracker, cleared),
        )

    def _check_email(
        self,
        number: Text,
        email: Text,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        cleared: Dict[Text, Any],
    ) -> Dict[Text, Any]:
        """Slots after checking ``email`` against order ``number``: verified, locked, or asked again after
        "that doesn't match" (may raise)."""
        result = common.get_repository().verify_order_email(tracker.sender_id, number, email)
        if result is VerificationResult.VERIFIED:
            return {**self._verified(number, tracker), VERIFIED_ORDERS: with_verified(tracker, number)}
        if result is VerificationResult.LOCKED:
            log_lock_out(number, tracker)
            locked_reply(dispatcher)
            return {**cleared, "order_number": None, "order_action_allowed": None, VERIFICATION_LOCKED: True}
        logger.info("Order email for %s did not match (conversation %s)", number, _short(tracker.sender_id))
        dispatcher.utter_message(response="utter_email_mismatch", order_number=number)
        return cleared


__all__ = [
    "VERIFIED_ORDERS",
    "ORDER_EMAIL",
    "VERIFICATION_LOCKED",
    "VERIFY_FIRST_RESPONSE",
    "verified_orders",
    "is_verified",
    "may_see_order",
    "with_verified",
    "identity_known",
    "verified_customers",
    "locked_reply",
    "OrderFormValidation",
]
