"""Reading the conversation: the latest message's intent, text, entities and parse-result values, whether a
form's question was answered, the last bot action, the logged-in customer and the conversation's uploads, and
the events that clear slots.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet

from assistant.keys import ATTACHMENTS, CUSTOMER, METADATA

#: An upload id as channels write it into the metadata (SHA-256 of the content, lower-case hex).
_UPLOAD_ID_RE = re.compile(r"[0-9a-f]{64}")

#: Intents whose text a form may take as the answer to its question (a bare "10023", "bananas", "👍").
FREE_TEXT_INTENTS = frozenset({"inform", "nlu_fallback"})

#: Intents that are questions or requests of their own. A form never takes their text as a slot value, so it
#: rejects and the rules answer them (FAQ answers, then back to the form; "no"/"bye" stop the form).
INTERRUPTING_INTENTS = frozenset(
    {
        "affirm",
        "deny",
        "goodbye",
        "greet",
        "thank_you",
        "bot_challenge",
        "out_of_scope",
        "complaint",
        "contact_human_agent",
        "contact_customer_service",
        "check_payment_methods",
        "delivery_options",
        "delivery_period",
        "check_refund_policy",
        "check_cancellation_fee",
        "check_invoice",
        "get_invoice",
        "create_account",
        "delete_account",
        "edit_account",
        "switch_account",
        "recover_password",
        "registration_problems",
        "newsletter_subscription",
        "set_up_shipping_address",
        "place_order",
        "payment_issue",
        "review",
    }
)


def latest_intent(tracker: Tracker) -> Optional[Text]:
    """Return the intent of the latest user message, ``nlu_fallback`` included, or None."""
    intent = (tracker.latest_message or {}).get("intent") or {}
    return intent.get("name")


def latest_text(tracker: Tracker) -> Text:
    """Return the text of the latest user message, stripped (empty for image- or audio-only messages)."""
    text = (tracker.latest_message or {}).get("text")
    return text.strip() if isinstance(text, str) else ""


def latest_entities(tracker: Tracker, entity: Text) -> List[dict]:
    """Return the entities of type ``entity`` of the latest user message (malformed entries left out)."""
    entities = (tracker.latest_message or {}).get("entities") or []
    return [item for item in entities if isinstance(item, dict) and item.get("entity") == entity]


def has_entity(tracker: Tracker, entity: Text) -> bool:
    """Return True if the latest user message carries an entity of this type."""
    return bool(latest_entities(tracker, entity))


def parse_value(tracker: Tracker, key: Text, kind: type) -> Optional[Any]:
    """Return what an NLU component put under ``key`` in the latest parse result, when it has the right type.

    Args:
        tracker: The conversation.
        key: A parse-result key from :mod:`assistant.keys`, e.g. ``PRODUCT_RECOGNITION``.
        kind: The type the value must have (``dict``, ``list``); anything else reads as missing.

    Returns:
        The value, or None when it is missing or malformed.
    """
    value = (tracker.latest_message or {}).get(key)
    return value if isinstance(value, kind) else None


def free_text_answer(tracker: Tracker, slot: Text, extra_intents: Iterable[Text] = ()) -> Optional[Text]:
    """Return the latest message text as the answer to a form's question, or None.

    Used by ``extract_<slot>`` methods of form validation actions. The text counts as the answer only while
    the form asks for ``slot``, when no entity of the same name was found (the entity mapping fills the slot
    then), and when the message is not a question or request of its own (:data:`INTERRUPTING_INTENTS`). A
    message without any intent (no NLU model loaded) can only be an answer.

    Args:
        tracker: Tracker as passed to the validation action.
        slot: The slot being asked for.
        extra_intents: Further intents whose text is accepted (even interrupting ones);
            :data:`FREE_TEXT_INTENTS` always are.

    Returns:
        The stripped message text, or None.
    """
    if tracker.get_slot("requested_slot") != slot or has_entity(tracker, slot):
        return None
    text = latest_text(tracker)
    intent = latest_intent(tracker)
    if not text:
        return None
    if intent is None or intent in FREE_TEXT_INTENTS or intent in set(extra_intents):
        return text
    if intent in INTERRUPTING_INTENTS:
        return None
    # Other intents (e.g. "10023" read as track_order without an entity): take text that has a digit and let
    # the slot's validator decide.
    return text if any(ch.isdigit() for ch in text) else None


def last_bot_action(tracker: Tracker) -> Optional[Text]:
    """The last action other than ``action_listen`` before the latest user message, or None."""
    seen_user = False
    for event in reversed(tracker.events or []):
        kind = event.get("event")
        if kind == "user":
            if seen_user:
                return None
            seen_user = True
        elif kind == "action" and seen_user and event.get("name") != "action_listen":
            return event.get("name")
    return None


def latest_user_metadata(tracker: Tracker) -> Dict[Text, Any]:
    """Return the metadata of the latest user message (``{}`` when there is none or it is not a dict)."""
    for event in reversed(tracker.events or []):
        if isinstance(event, dict) and event.get("event") == "user":
            metadata = event.get(METADATA)
            return metadata if isinstance(metadata, dict) else {}
    return {}


def logged_in_customer(tracker: Tracker) -> Optional[int]:
    """Return the id of the customer the shop's site vouched for, or None for an anonymous conversation.

    Channels set ``metadata["customer"] = {"id": <int>}`` (:data:`assistant.keys.CUSTOMER`) on a message only
    after checking the customer's signed token, and drop any value a client sent under that key. Only the
    latest user message counts, so a token that expired or was left off makes the conversation anonymous
    again.

    Returns:
        The positive integer id, or None when the latest user message carries none (or a malformed one).
    """
    customer = latest_user_metadata(tracker).get(CUSTOMER)
    value = customer.get("id") if isinstance(customer, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def upload_ids(tracker: Tracker) -> List[Text]:
    """Return the ids of the uploads sent in this conversation, oldest first and each once.

    Read from the ``attachments`` references (:data:`assistant.keys.ATTACHMENTS`) in the metadata of every
    user message; platform-hosted files (a ``url`` instead of an ``id``) and malformed entries are skipped.
    """
    found: List[Text] = []
    for event in tracker.events or []:
        if not isinstance(event, dict) or event.get("event") != "user":
            continue
        metadata = event.get(METADATA)
        attachments = metadata.get(ATTACHMENTS) if isinstance(metadata, dict) else None
        for item in attachments if isinstance(attachments, list) else []:
            upload = item.get("id") if isinstance(item, dict) else None
            if isinstance(upload, str) and _UPLOAD_ID_RE.fullmatch(upload) and upload not in found:
                found.append(upload)
    return found


def slot_before_latest_message(tracker: Tracker, slot: Text) -> Any:
    """The value ``slot`` had when the latest user message arrived (before this turn's extraction), from the
    tracker's events; None when it was never set."""
    events = list(tracker.events or [])
    users = [index for index, event in enumerate(events) if event.get("event") == "user"]
    before = events[: users[-1]] if users else events
    for event in reversed(before):
        if event.get("event") == "slot" and event.get("name") == slot:
            return event.get("value")
        if event.get("event") in ("restart", "session_started"):
            return None
    return None


def reset_slots(*names: Text) -> List[EventType]:
    """Return ``SlotSet(name, None)`` for each slot name."""
    return [SlotSet(name, None) for name in names]


def message_key(tracker: Tracker) -> Optional[Text]:
    """``<conversation id>:<message id>`` of the message being handled, or ``None`` when it has no id.

    The key of a write that must happen once per message, however often the message is delivered (a client's
    retry with the same ``message_id``, a platform's re-delivery): see ``ShopRepository.request_refund``.
    """
    message_id = (tracker.latest_message or {}).get("message_id")
    if not message_id:
        return None
    return f"{tracker.sender_id}:{message_id}"
