"""Shared plumbing of the custom actions: repository access, the error boundary and formatting helpers.

Nothing in here talks SQL. The database is reached through :class:`shop.repository.ShopRepository` only, built
once per process by :func:`get_repository`. Tests swap it for an in-memory fake with :func:`set_repository`.
"""

from __future__ import annotations

import logging
import re
import threading
from abc import ABC, abstractmethod
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from shop.errors import InvalidAmount, InvalidOrderNumber, ShopError

if TYPE_CHECKING:  # only for annotations; importing the real repository needs the database layer
    from shop.repository import ShopRepository

logger = logging.getLogger(__name__)

#: Response sent when an action fails for a reason the customer cannot fix.
TECHNICAL_PROBLEM_RESPONSE = "utter_technical_problem"

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

#: Transcript limits for support tickets: newest turns kept, characters kept per message.
TRANSCRIPT_MAX_TURNS = 100
TRANSCRIPT_MAX_CHARS = 2000

_CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}
_CENT = Decimal("0.01")
_AMOUNT_RE = re.compile(r"[-+]?\d+(?:[.,]\d+)?")
_TOKEN_PUNCTUATION = ".,;:!?()[]{}\"'"

_repository: Optional["ShopRepository"] = None
_repository_lock = threading.Lock()


# ------------------------------------------------------------------------------------------ repository access


def get_repository() -> "ShopRepository":
    """Return the process-wide shop repository, creating it on first use.

    The repository is built from ``shop.db.make_engine()``, so ``DATABASE_URL`` selects the database. Creation
    is lazy so that importing the actions (for example by the action server or by unit tests) needs no
    database.

    Returns:
        The repository shared by all actions of this process.
    """
    global _repository
    if _repository is None:
        with _repository_lock:
            if _repository is None:
                from shop.db import make_engine, make_session_factory
                from shop.repository import ShopRepository

                _repository = ShopRepository(make_session_factory(make_engine()))
                logger.info("Shop repository created")
    return _repository


def set_repository(repository: Optional["ShopRepository"]) -> None:
    """Replace the process-wide repository.

    Args:
        repository: Any object with the :class:`shop.repository.ShopRepository` API (tests pass an in-memory
            fake), or None to build the real one again on next use.
    """
    global _repository
    with _repository_lock:
        _repository = repository


def parse_order_number(text: str) -> str:
    """Normalise an order number with :func:`shop.validation.parse_order_number`.

    Args:
        text: What the customer typed, or an entity value.

    Returns:
        The five-digit order number.

    Raises:
        InvalidOrderNumber: If ``text`` is not an order number.
    """
    from shop.validation import parse_order_number as parse

    return parse(text)


def find_order_number(text: Any) -> str:
    """Find the order number in a reply such as ``"10023"``, ``"#10023"`` or ``"it's order 10023, thanks"``.

    The whole text is tried first, then each word that contains a digit (surrounding punctuation removed). The
    first candidate that :func:`parse_order_number` accepts wins.

    Args:
        text: The slot value or message text; anything else than a string is refused.

    Returns:
        The five-digit order number.

    Raises:
        InvalidOrderNumber: If no candidate is an order number (empty, emoji, ``-5``, twenty digits, ...).
    """
    if not isinstance(text, str):
        raise InvalidOrderNumber(f"order number is not text: {type(text).__name__}")
    candidates = [text]
    if len(text) <= 500:  # a longer reply is not an answer to "what's the order number?"
        candidates += [
            word.strip(_TOKEN_PUNCTUATION) for word in text.split() if any(ch.isdigit() for ch in word)
        ]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return parse_order_number(candidate)
        except InvalidOrderNumber:
            continue
    raise InvalidOrderNumber(f"no order number in {text[:40]!r}")


# -------------------------------------------------------------------------------------------- tracker helpers


def latest_intent(tracker: Tracker) -> Optional[Text]:
    """Return the intent of the latest user message, ``nlu_fallback`` included, or None."""
    intent = (tracker.latest_message or {}).get("intent") or {}
    return intent.get("name")


def latest_text(tracker: Tracker) -> Text:
    """Return the text of the latest user message, stripped (empty for image- or audio-only messages)."""
    text = (tracker.latest_message or {}).get("text")
    return text.strip() if isinstance(text, str) else ""


def has_entity(tracker: Tracker, entity: Text) -> bool:
    """Return True if the latest user message carries an entity of this type."""
    entities = (tracker.latest_message or {}).get("entities") or []
    return any(item.get("entity") == entity for item in entities)


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


def conversation_transcript(
    tracker: Tracker, max_turns: int = TRANSCRIPT_MAX_TURNS, max_chars: int = TRANSCRIPT_MAX_CHARS
) -> List[Dict[str, Any]]:
    """Build the transcript stored with a support ticket.

    Args:
        tracker: The conversation.
        max_turns: Only the newest this many messages are kept.
        max_chars: Each message text is cut to this many characters.

    Returns:
        One dict per message, oldest first: ``{"role": "user" | "bot", "text": str, "timestamp": str | None,
        "intent": str | None}``; ``timestamp`` is ISO 8601 in UTC, ``intent`` is set for user messages only.
        Messages without text (e.g. a photo) get a short placeholder such as ``"[image]"``.
    """
    turns: List[Dict[str, Any]] = []
    for event in tracker.events or []:
        kind = event.get("event")
        if kind not in ("user", "bot"):
            continue
        text = event.get("text")
        if not isinstance(text, str) or not text.strip():
            text = _attachment_placeholder(event)
        if len(text) > max_chars:
            text = text[: max_chars - 1] + "…"
        intent = None
        if kind == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        turns.append(
            {
                "role": "user" if kind == "user" else "bot",
                "text": text,
                "timestamp": _iso_timestamp(event.get("timestamp")),
                "intent": intent,
            }
        )
    return turns[-max_turns:]


def sentiment_trail(tracker: Tracker) -> List[str]:
    """Return the sentiment label of each user message that has one, oldest first.

    The NLU pipeline adds the sentiment to the parse result; both ``{"name": "negative", ...}`` and a plain
    ``"negative"`` are understood. Messages without a sentiment are skipped.
    """
    trail: List[str] = []
    for event in tracker.events or []:
        if event.get("event") != "user":
            continue
        sentiment = (event.get("parse_data") or {}).get("sentiment")
        if isinstance(sentiment, dict):
            sentiment = sentiment.get("name") or sentiment.get("label")
        if isinstance(sentiment, str) and sentiment:
            trail.append(sentiment)
    return trail


def _attachment_placeholder(event: Dict[str, Any]) -> str:
    metadata = event.get("metadata") or {}
    attachments = metadata.get("attachments") if isinstance(metadata, dict) else None
    if isinstance(attachments, list) and attachments:
        kinds = sorted({str(item.get("type", "file")) for item in attachments if isinstance(item, dict)})
        return "[" + ", ".join(kinds or ["file"]) + "]"
    return ""


def _iso_timestamp(value: Any) -> Optional[str]:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc).isoformat(timespec="seconds")
    return None


# ----------------------------------------------------------------------------------------------- formatting


def format_money(amount: Any, currency: Text) -> Text:
    """Format an amount with its currency: ``"€1.79"``, ``"£12.00"``, ``"3.50 CHF"``.

    Args:
        amount: ``Decimal`` (or anything ``Decimal(str(x))`` accepts).
        currency: ISO 4217 code.

    Returns:
        The amount with two decimal places and thousands separators.
    """
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    text = f"{value.quantize(_CENT):,.2f}"
    symbol = _CURRENCY_SYMBOLS.get((currency or "").upper())
    if symbol is None:
        return f"{text} {currency}".strip()
    return f"-{symbol}{text[1:]}" if text.startswith("-") else f"{symbol}{text}"


def format_unit_price(price: Any, currency: Text, unit: Text) -> Text:
    """Format a catalog price with what it buys: ``"€1.79 per kg"``, ``"€1.29 for a 1 l carton"``."""
    money = format_money(price, currency)
    unit = (unit or "").strip()
    if not unit:
        return money
    if any(ch.isdigit() for ch in unit):
        return f"{money} for a {unit}"
    return f"{money} per {unit}"


def format_date(value: Optional[date]) -> Text:
    """Format a date for customers, e.g. ``"Friday 14 June 2024"``; None gives ``"not known yet"``."""
    if value is None:
        return "not known yet"
    if isinstance(value, datetime):
        value = value.date()
    return f"{value:%A} {value.day} {value:%B %Y}"


def join_alternatives(items: Sequence[Text], conjunction: Text = "or") -> Text:
    """Join ``["A", "B", "C"]`` as ``"A, B or C"``."""
    items = [item for item in items if item]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def shorten(text: Any, limit: int = 60) -> Text:
    """Return ``text`` on one line, cut to ``limit`` characters with an ellipsis (for echoing user input)."""
    line = " ".join(str(text or "").split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def parse_amount(text: Any) -> Optional[Decimal]:
    """Read a money amount the customer wrote: ``"4.50"``, ``"4,50 €"``, ``"5 euros"``.

    Args:
        text: Slot or entity value; None, blank or a number type are accepted too.

    Returns:
        The amount, or None when ``text`` is None or blank. Sign and range are checked by the repository.

    Raises:
        InvalidAmount: If the text contains no number.
    """
    if text is None:
        return None
    if isinstance(text, (int, float, Decimal)) and not isinstance(text, bool):
        return Decimal(str(text))
    if not isinstance(text, str) or not text.strip():
        return None
    match = _AMOUNT_RE.search(text[:100])
    if match is None:
        raise InvalidAmount(f"no number in amount {text[:40]!r}")
    try:
        return Decimal(match.group(0).replace(",", "."))
    except InvalidOperation as exc:  # pragma: no cover - the pattern only lets numbers through
        raise InvalidAmount(f"bad amount {text[:40]!r}") from exc


def reset_slots(*names: Text) -> List[EventType]:
    """Return ``SlotSet(name, None)`` for each slot name."""
    return [SlotSet(name, None) for name in names]


# -------------------------------------------------------------------------------------------- action boundary


class ShopAction(Action, ABC):
    """Base class of the shop's actions: the place where errors turn into friendly replies.

    Subclasses implement :meth:`perform`. A :class:`~shop.errors.ShopError` is answered with its
    ``user_message``; any other exception is logged with its traceback and answered with
    :attr:`problem_response`. Either way :meth:`events_on_error` is returned, so forms can clear their slots.
    """

    #: Response for unexpected errors.
    problem_response: Text = TECHNICAL_PROBLEM_RESPONSE

    @abstractmethod
    def name(self) -> Text:
        """Return the action name used in the domain."""

    @abstractmethod
    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Do the action's work; may raise.

        Args:
            dispatcher: Collects the messages for the customer.
            tracker: The conversation.
            domain: The bot's domain.

        Returns:
            Events to apply to the conversation.
        """

    def events_on_error(self, tracker: Tracker) -> List[EventType]:
        """Events returned when :meth:`perform` raised; none by default."""
        return []

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        """Run :meth:`perform` and turn any error into a friendly reply.

        Returns:
            The events from :meth:`perform`, or :meth:`events_on_error` after an error.
        """
        try:
            return self.perform(dispatcher, tracker, domain)
        except ShopError as error:
            logger.info("%s refused: %s", self.name(), error)
            dispatcher.utter_message(text=error.user_message)
        except Exception:  # the action boundary: nothing technical reaches the customer
            logger.exception("Action %s failed for conversation %s", self.name(), tracker.sender_id)
            dispatcher.utter_message(response=self.problem_response)
        return self.events_on_error(tracker)
