"""What a simulated customer says, and how replies and tracker events are read (standard library only).

One visit is a conversation of about ten turns (:func:`conversation`): greet; track an order (order number,
then the email address on it when asked); ask a price; send a photo; cancel the same order (the email again if
asked; then an explicit yes, or a no for a share of the customers); thanks. The customer reads each reply the
way a person would (does it ask for the email? is it the "Shall I cancel it?" question?), so a deviation is
recorded instead of a blind script running on. A ``server_busy`` answer ("I'm busy right now") is sent again
as a new message (a new ``message_id``), at most :data:`BUSY_RESENDS` times, as the reply asks.

The Locust file drives :func:`conversation` one turn per Locust task, so that the pause between turns is
Locust's wait time and a stopping run lets the current turn (and its retries) finish. The checker uses the
same readers (:func:`is_cancel_question`, :func:`is_affirmative`, :func:`tracker_sender`), so the customers
and the checker agree on what a question and a yes are.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generator, List, Mapping, Optional, Sequence

#: What a customer types (one of each list, chosen by the customer's seeded random generator).
GREETINGS = ("hi", "hello", "hey there", "good morning")
TRACK = ("where is my order {order}", "can you track order {order}", "what's the status of order {order}")
PRICES = ("how much are bananas", "how much is oat milk", "what do avocados cost", "price of cheddar")
PHOTO_CAPTIONS = ("", "what is this?", "do you sell this?")
CANCEL = ("please cancel order {order}", "I want to cancel my order {order}", "cancel order {order}")
#: Explicit yeses the NLU reads as affirm. (Typed, "yes, cancel it", the title of the question's button, is not
#: understood and answered with the fallback: measured 2026-12-05, so it is not among them.)
YES_TEXTS = ("yes", "yes please", "yes, go ahead", "sure", "yep")
NO_TEXTS = ("no", "no, keep it", "no thanks")
THANKS = ("thanks, bye", "thank you", "thanks for your help")

#: Lower-case marks of replies: the email question of the order forms, the cancel question, the cancel done.
ASKS_EMAIL_MARK = "email address"
CANCEL_QUESTION_MARK = "shall i cancel"
CANCEL_DONE_MARK = "is cancelled and you won't be charged"
#: The response of the cancel question (a bot event's ``metadata.utter_action``).
CANCEL_QUESTION_RESPONSE = "utter_ask_cancel_confirmed"
#: How often a ``server_busy`` turn is sent again (each time as a new message).
BUSY_RESENDS = 2

#: The longest message_id the REST channel accepts, and its alphabet.
MESSAGE_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_SIGNED_WEB_SENDER_RE = re.compile(r"(web:[0-9a-f]{32})\.[A-Za-z0-9_-]{43}")


def normalised(text: Optional[str]) -> str:
    """Lower case, single spaces, no surrounding blanks or final full stop/exclamation mark."""
    return " ".join((text or "").lower().split()).rstrip(".!")


def is_affirmative(text: Optional[str]) -> bool:
    """Whether a customer's text is an explicit yes: one of :data:`YES_TEXTS` or an ``/affirm`` payload."""
    said = normalised(text)
    return said in YES_TEXTS or said.startswith("/affirm")


def asks_email(texts: Sequence[str]) -> bool:
    """Whether the bot's replies ask for the email address on an order."""
    return any(ASKS_EMAIL_MARK in normalised(text) for text in texts)


def is_cancel_question(text: Optional[str], order_number: Optional[str] = None,
                       response: Optional[str] = None) -> bool:
    """Whether a bot text (or the response it came from) is "Order N ... Shall I cancel it?", about
    ``order_number`` when one is given."""
    said = normalised(text)
    asked = response == CANCEL_QUESTION_RESPONSE or CANCEL_QUESTION_MARK in said
    return asked and (order_number is None or order_number in said)


def is_cancel_done(texts: Sequence[str], order_number: str) -> bool:
    """Whether the bot's replies say that ``order_number`` is now cancelled."""
    return any(CANCEL_DONE_MARK in normalised(text) and order_number in text for text in texts)


def tracker_sender(client_sender: str) -> str:
    """The conversation id Rasa keeps for what the client sends: a signed web id ``web:<hex>.<signature>``
    becomes ``web:<hex>`` (the channel drops the signature); anything else is returned as it is."""
    match = _SIGNED_WEB_SENDER_RE.fullmatch(client_sender)
    return match.group(1) if match else client_sender


def message_id(run: str, user: int, visit: int, turn: int) -> str:
    """``lt-<run>-<user>-<visit>-<turn>``: unique per run, within the channel's 64 characters of
    ``[A-Za-z0-9_.:-]``."""
    value = f"lt-{run}-{user}-{visit}-{turn}"
    if not MESSAGE_ID_RE.fullmatch(value):
        raise ValueError(f"not a valid message_id: {value!r}")
    return value


@dataclass
class Reply:
    """What one turn got: ``ok`` (an HTTP 200 with the bot's replies, after any retries), the reply texts,
    and whether the answer was the worker pool's ``server_busy``."""

    ok: bool
    texts: List[str] = field(default_factory=list)
    busy: bool = False


#: ``send(step, text, photo) -> Reply``: one turn, retries included (the Locust file's).
Send = Callable[[str, str, bool], Reply]
#: ``record(kind, fields)``: one line of the client log.
Record = Callable[[str, Dict[str, Any]], None]
Turns = Generator[None, None, Reply]


def _say(send: Send, step: str, text: str, photo: bool = False) -> Turns:
    """Pauses (yields), then sends; again after a busy answer. The pause comes first so that a visit stopped
    at a yield has read every reply it got (its lines are complete)."""
    reply = Reply(ok=False)
    for _ in range(1 + BUSY_RESENDS):
        yield
        reply = send(step, text, photo)
        if not (reply.ok and reply.busy):
            break
    return reply


def _say_with_proof(send: Send, step: str, text: str, email: str) -> Turns:
    """Says ``text``; when the bot asks for the order's email address, answers it (step ``<step>_email``)."""
    reply = yield from _say(send, step, text)
    if reply.ok and asks_email(reply.texts):
        reply = yield from _say(send, f"{step}_email", email)
    return reply


def conversation(
    send: Send, record: Record, order: Mapping[str, str], confirm: bool, rng: Any
) -> Generator[None, None, None]:
    """One customer visit; yields before every turn (the caller pauses there).

    Args:
        send: Sends one turn (with its retries) and returns the :class:`Reply`.
        record: Writes a client-log line; called with ``"cancel"`` (the order, whether the question came,
            the answer given, whether the bot said it is cancelled) and ``"visit"`` (steps that went another
            way than planned, whether the visit reached its end).
        order: ``{"order_number", "email"}``: the order this visit tracks and cancels.
        confirm: Whether the customer answers the cancel question with yes (else no).
        rng: A ``random.Random`` (phrasing, photo caption).
    """
    number, email = order["order_number"], order["email"]
    deviations: List[str] = []
    cancel: Dict[str, Any] = {"order_number": number, "email": email, "asked": False, "answer": None,
                              "done_seen": False}
    completed = False
    try:
        reply = yield from _say(send, "greet", rng.choice(GREETINGS))
        if not reply.ok:
            return
        reply = yield from _say_with_proof(send, "track", rng.choice(TRACK).format(order=number), email)
        if not reply.ok:
            return
        if not any(number in text for text in reply.texts) or asks_email(reply.texts):
            deviations.append("track: no status of the order")
        reply = yield from _say(send, "price", rng.choice(PRICES))
        if not reply.ok:
            return
        reply = yield from _say(send, "photo", rng.choice(PHOTO_CAPTIONS), True)
        if not reply.ok:
            return
        reply = yield from _say_with_proof(send, "cancel", rng.choice(CANCEL).format(order=number), email)
        if not reply.ok:
            return
        if any(is_cancel_question(text, number) for text in reply.texts):
            cancel["asked"] = True
            reply = yield from _say(send, "cancel_answer", rng.choice(YES_TEXTS if confirm else NO_TEXTS))
            cancel["answer"] = "yes" if confirm else "no"  # sent (a visit stopped in the pause before is not)
            if not reply.ok:
                return
            cancel["done_seen"] = is_cancel_done(reply.texts, number)
            if confirm and not cancel["done_seen"]:
                deviations.append("cancel: yes not answered with the cancellation")
        else:
            deviations.append("cancel: no cancel question")
        reply = yield from _say(send, "thanks", rng.choice(THANKS))
        completed = reply.ok
    finally:
        record("cancel", cancel)
        record("visit", {"order_number": number, "completed": completed, "deviations": deviations})
