"""Shared plumbing of the custom actions: the repository, the error boundary, and reading the order number and
money amount out of a customer's reply.

Nothing in here talks SQL. The database is reached through :class:`shop.repository.ShopRepository` only, built
once per process by :func:`get_repository`; tests install a repository on an in-memory database with
:func:`set_repository`. Formatting lives in :mod:`actions.formatting`, tracker reading in
:mod:`actions.tracker_utils`, the ticket transcript in :mod:`actions.transcript`.
"""

from __future__ import annotations

import logging
import re
import threading
from abc import ABC, abstractmethod
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from shop.errors import InvalidAmount, InvalidOrderNumber, ShopError
from shop.validation import parse_order_number

if TYPE_CHECKING:  # only for annotations; importing the real repository needs the database layer
    from shop.repository import ShopRepository

logger = logging.getLogger(__name__)

#: Response sent when an action fails for a reason the customer cannot fix.
TECHNICAL_PROBLEM_RESPONSE = "utter_technical_problem"
#: A reply longer than this (characters) is not an answer to "what's the order number?"; only tried whole.
MAX_ORDER_REPLY_CHARS = 500
#: Only the first this many characters of an amount reply are searched for a number.
MAX_AMOUNT_REPLY_CHARS = 100

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
        repository: A :class:`shop.repository.ShopRepository` (tests pass one on an in-memory database), or
            None to build the real one again on next use.
    """
    global _repository
    with _repository_lock:
        _repository = repository


# ------------------------------------------------------------------------------------------- reading replies


def find_order_number(text: Any) -> str:
    """Find the order number in a reply such as ``"10023"``, ``"#10023"`` or ``"it's order 10023, thanks"``.

    The whole text is tried first, then each word that contains a digit (surrounding punctuation removed). The
    first candidate that :func:`shop.validation.parse_order_number` accepts wins.

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
    if len(text) <= MAX_ORDER_REPLY_CHARS:
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


def parse_amount(text: Any) -> Optional[Decimal]:
    """Read the number in a reply that gives an amount or quantity: ``"4.50"``, ``"4,50 €"``, ``"5 euros"``.

    Args:
        text: Slot or entity value; None, blank or a number type are accepted too.

    Returns:
        The number as written (sign included), or None when ``text`` is None or blank. Whether it is a valid
        refund amount is for :func:`shop.validation.parse_amount` and :func:`shop.rules.refund_amount`.

    Raises:
        InvalidAmount: If the text contains no number.
    """
    if text is None:
        return None
    if isinstance(text, (int, float, Decimal)) and not isinstance(text, bool):
        return Decimal(str(text))
    if not isinstance(text, str) or not text.strip():
        return None
    match = _AMOUNT_RE.search(text[:MAX_AMOUNT_REPLY_CHARS])
    if match is None:
        raise InvalidAmount(f"no number in amount {text[:40]!r}")
    try:
        return Decimal(match.group(0).replace(",", "."))
    except InvalidOperation as exc:  # pragma: no cover - the pattern only lets numbers through
        raise InvalidAmount(f"bad amount {text[:40]!r}") from exc


# ------------------------------------------------------------------------------------------- action boundary


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
