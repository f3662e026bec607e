"""Validation and normalisation of what customers and callers hand to the shop (pure functions, no database).

Everything that comes from a chat (order numbers, addresses, reasons, amounts, free text, transcripts) or from
a file system (image paths, hashes) is checked here before the repository writes or looks anything up.
Rejected input raises a :class:`~shop.errors.ShopError` subclass whose ``user_message`` can be shown to the
customer as it is.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, List, Optional

from shop.catalog_photos import relative_parts
from shop.errors import InvalidAmount, InvalidInput, InvalidOrderNumber
from shop.statuses import CENT, MAX_AMOUNT, TicketPriority

logger = logging.getLogger(__name__)

#: Order numbers are exactly this many ASCII digits.
ORDER_NUMBER_DIGITS = 5
#: Longest text :func:`parse_order_number` looks at; anything longer is refused outright.
MAX_ORDER_NUMBER_TEXT = 64
#: Longest SKU, refund number or ticket number looked up; longer text is no identifier.
MAX_IDENTIFIER_CHARS = 64
#: Shipping address length bounds, in characters after clean-up.
ADDRESS_MIN_CHARS = 5
ADDRESS_MAX_CHARS = 300
#: Free-text reasons (cancellation, refund) are cut to this many characters.
MAX_REASON_CHARS = 1000
#: Ticket subjects are cut to this many characters.
MAX_SUBJECT_CHARS = 200
#: Sender ids longer than this are refused.
MAX_SENDER_ID_CHARS = 255
#: A stored transcript keeps at most the last this many turns ...
MAX_TRANSCRIPT_TURNS = 200
#: ... and at most this many bytes of UTF-8 JSON (older turns are dropped first).
MAX_TRANSCRIPT_BYTES = 200_000
#: Each string inside a transcript turn is cut to this many characters.
MAX_TURN_STRING_CHARS = 5_000
#: Nested containers in a transcript turn deeper than this are replaced by a placeholder string.
MAX_TURN_DEPTH = 6
#: Dicts and lists inside a transcript turn keep at most this many entries.
MAX_TURN_ITEMS = 100
#: A sentiment trail keeps at most the last this many labels ...
MAX_SENTIMENT_LABELS = 200
#: ... each cut to this many characters.
MAX_SENTIMENT_LABEL_CHARS = 32
#: Longest money amount text :func:`parse_amount` reads.
MAX_AMOUNT_TEXT = 32
#: Longest image path, in characters.
MAX_IMAGE_PATH_CHARS = 500
#: Longest category text a search accepts.
MAX_CATEGORY_CHARS = 80

_ORDER_NUMBER_RE = re.compile(
    r"(?:order(?:\s*(?:number|num|no|nr))?\.?\s*[:#]?\s*|(?:number|no|nr)\.?\s*[:#]?\s*|#\s*)?"
    r"(?P<number>[0-9][0-9 ]*[0-9])",
    re.ASCII,
)
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_WHITESPACE_RE = re.compile(r"\s+")


# ---------------------------------------------------------------------------------------------- order numbers


def parse_order_number(text: Any) -> str:
    """Extract a five-digit order number from what a customer typed.

    Accepted: ``"10023"``, ``"#10023"``, ``"order 10023"``, ``"Order no. 10023"``, ``" 10 023 "`` (spaces
    between digits, including no-break and thin spaces, and full-width digits are tolerated).

    Args:
        text: The customer's text or an entity value.

    Returns:
        The order number as five ASCII digits, e.g. ``"10023"``.

    Raises:
        InvalidOrderNumber: For anything else: not a string, empty, over 64 characters, letters or signs
            around the digits, negative numbers, more or fewer than five digits.
    """
    if not isinstance(text, str) or len(text) > MAX_ORDER_NUMBER_TEXT:
        raise InvalidOrderNumber(
            f"order number text refused (type {type(text).__name__}, too long or not text)"
        )
    normalised = unicodedata.normalize("NFKC", text)
    normalised = "".join(
        ch for ch in normalised if unicodedata.category(ch) not in ("Cf", "Cc") or ch in "\t\n\r"
    )
    normalised = normalised.strip().casefold()
    match = _ORDER_NUMBER_RE.fullmatch(normalised)
    if match is None:
        raise InvalidOrderNumber(f"not an order number: {text[:40]!r}")
    digits = match.group("number").replace(" ", "")
    if len(digits) != ORDER_NUMBER_DIGITS:
        raise InvalidOrderNumber(f"order number must have {ORDER_NUMBER_DIGITS} digits: {text[:40]!r}")
    return digits


def optional_order_number(text: Any) -> Optional[str]:
    """Like :func:`parse_order_number`, but None instead of an error for a malformed number.

    Args:
        text: An order number as :func:`parse_order_number` accepts it, or None.

    Returns:
        The five digits, or None when ``text`` is None or not an order number.
    """
    if text is None:
        return None
    try:
        return parse_order_number(text)
    except InvalidOrderNumber:
        return None


# -------------------------------------------------------------------------------------------------- free text


def clean_text(
    value: Any, field: str, *, max_chars: int, min_chars: int = 0, truncate: bool = True
) -> str:
    """Make customer text safe to store: one line, no control/format characters, collapsed whitespace.

    Unicode is NFC-normalised; format, surrogate, private-use and unassigned characters are dropped; control
    characters that are whitespace (tab, newline) become a space, other controls (NUL) are dropped.

    Args:
        value: The text.
        field: Its name for messages, e.g. ``"address"`` (underscores read as spaces).
        max_chars: Longest result, in characters.
        min_chars: Shortest result, in characters.
        truncate: Cut over-long text to ``max_chars`` (True) or refuse it (False).

    Returns:
        The cleaned text.

    Raises:
        InvalidInput: If ``value`` is not a string, shorter than ``min_chars`` after clean-up, or longer than
            ``max_chars`` while ``truncate`` is False.
    """
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text, got {type(value).__name__}")
    text = unicodedata.normalize("NFC", value)
    text = "".join(
        (" " if ch.isspace() else "") if unicodedata.category(ch) == "Cc" else ch
        for ch in text
        if unicodedata.category(ch) not in ("Cf", "Cs", "Co", "Cn")
    )
    text = _WHITESPACE_RE.sub(" ", text).strip()
    label = field.replace("_", " ")
    if len(text) > max_chars:
        if not truncate:
            raise InvalidInput(
                f"{field} too long ({len(text)} > {max_chars} characters)",
                user_message=f"That {label} is too long (at most {max_chars} characters).",
            )
        text = text[:max_chars].rstrip()
    if len(text) < min_chars:
        raise InvalidInput(
            f"{field} too short ({len(text)} < {min_chars} characters)",
            user_message=f"That {label} looks too short. Could you give the full one?",
        )
    return text


def clean_address(value: Any) -> str:
    """Clean a shipping address (see :func:`clean_text`) and check its length.

    Raises:
        InvalidInput: Not text, or not 5 to 300 characters after clean-up.
    """
    return clean_text(
        value, "address", min_chars=ADDRESS_MIN_CHARS, max_chars=ADDRESS_MAX_CHARS, truncate=False
    )


def clean_reason(value: Any) -> str:
    """Clean a cancellation or refund reason, cut to :data:`MAX_REASON_CHARS` (may be empty).

    Raises:
        InvalidInput: Not text.
    """
    return clean_text(value, "reason", max_chars=MAX_REASON_CHARS)


def clean_sender_id(value: Any) -> str:
    """Check a conversation id (Rasa sender id): 1 to 255 characters after clean-up.

    Raises:
        InvalidInput: Not text, blank or too long.
    """
    return clean_text(value, "sender_id", max_chars=MAX_SENDER_ID_CHARS, min_chars=1, truncate=False)


def clean_subject(value: Any) -> str:
    """Clean a ticket subject, cut to :data:`MAX_SUBJECT_CHARS`; blank becomes ``"Support request"``.

    Raises:
        InvalidInput: Not text.
    """
    return clean_text(value, "subject", max_chars=MAX_SUBJECT_CHARS) or "Support request"


def parse_priority(value: Any) -> TicketPriority:
    """Read a ticket priority.

    Raises:
        InvalidInput: Anything but ``"normal"`` or ``"high"``.
    """
    try:
        return TicketPriority(value)
    except ValueError as exc:
        raise InvalidInput(f"priority must be 'normal' or 'high', got {str(value)[:20]!r}") from exc


def clean_sentiment_trail(trail: Any) -> List[str]:
    """Keep the newest :data:`MAX_SENTIMENT_LABELS` sentiment labels, each cleaned and cut to 32 characters.

    Args:
        trail: Labels, e.g. ``["neutral", "negative"]``; None means none. Non-string labels are written as
            text (``None`` → ``"None"``).

    Returns:
        The cleaned labels, oldest first.

    Raises:
        InvalidInput: ``trail`` is not a list or tuple.
    """
    if trail is None:
        return []
    if not isinstance(trail, (list, tuple)):
        raise InvalidInput(f"sentiment_trail must be a list, got {type(trail).__name__}")
    return [
        clean_text(str(label), "sentiment", max_chars=MAX_SENTIMENT_LABEL_CHARS)
        for label in list(trail)[-MAX_SENTIMENT_LABELS:]
    ]


# ------------------------------------------------------------------------------------------------ transcripts


def clean_json_value(value: Any, depth: int = 0) -> Any:
    """Copy a transcript value into plain JSON types with capped strings, containers and depth.

    Strings lose NUL and surrogate characters and are cut to :data:`MAX_TURN_STRING_CHARS`; NaN and infinity
    become None; containers keep :data:`MAX_TURN_ITEMS` entries; anything nested deeper than
    :data:`MAX_TURN_DEPTH` becomes ``"[nested data omitted]"``; other objects become their ``str``.

    Args:
        value: Any value.
        depth: Nesting level of ``value`` (0 for a turn).

    Returns:
        A value that :func:`json.dumps` accepts.
    """
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, str):
        text = "".join(ch for ch in value if ch != "\x00" and unicodedata.category(ch) != "Cs")
        return text[:MAX_TURN_STRING_CHARS]
    if depth >= MAX_TURN_DEPTH:
        return "[nested data omitted]"
    if isinstance(value, dict):
        return {
            str(clean_json_value(str(key), depth + 1)): clean_json_value(item, depth + 1)
            for key, item in list(value.items())[:MAX_TURN_ITEMS]
        }
    if isinstance(value, (list, tuple)):
        return [clean_json_value(item, depth + 1) for item in list(value)[:MAX_TURN_ITEMS]]
    return clean_json_value(str(value), depth + 1)


def cap_transcript(transcript: Any) -> List[Dict[str, Any]]:
    """Keep the newest turns of a transcript within the turn and byte limits.

    At most :data:`MAX_TRANSCRIPT_TURNS` newest turns are kept, and only as many of them (newest first) as
    fit in :data:`MAX_TRANSCRIPT_BYTES` of UTF-8 JSON. A turn that is not a dict becomes ``{"text": turn}``.

    Args:
        transcript: Turns, e.g. ``[{"role": "user", "text": "hi"}]``.

    Returns:
        The cleaned turns (see :func:`clean_json_value`), oldest first.

    Raises:
        InvalidInput: If ``transcript`` is not a list or tuple.
    """
    if not isinstance(transcript, (list, tuple)):
        raise InvalidInput(f"transcript must be a list of dicts, got {type(transcript).__name__}")
    newest = list(transcript)[-MAX_TRANSCRIPT_TURNS:]
    kept: List[Dict[str, Any]] = []
    used = 2  # the enclosing brackets
    for turn in reversed(newest):
        cleaned = clean_json_value(turn if isinstance(turn, dict) else {"text": turn})
        size = len(json.dumps(cleaned, ensure_ascii=False).encode("utf-8")) + 2  # ", " separator
        if used + size > MAX_TRANSCRIPT_BYTES:
            break
        kept.append(cleaned)
        used += size
    kept.reverse()
    dropped = len(transcript) - len(kept)
    if dropped:
        logger.info("Transcript capped: kept the newest %d turns, dropped %d", len(kept), dropped)
    return kept


# ---------------------------------------------------------------------------------------------------- amounts


def parse_amount(amount: Any) -> Optional[Decimal]:
    """Turn a requested money amount into a two-place Decimal (None stays None).

    Accepted: ``Decimal``, ``int``, ``float`` and strings such as ``"4.50"``, ``"4,50"``, ``"€4.50"``,
    ``"4.50 EUR"`` (at most 32 characters).

    Args:
        amount: The amount in the order's currency, or None for "everything".

    Returns:
        The amount with two decimal places, or None.

    Raises:
        InvalidAmount: If the amount is not a finite number with at most two decimal places, not positive, or
            larger than :data:`shop.statuses.MAX_AMOUNT`.
    """
    if amount is None:
        return None
    if isinstance(amount, bool):
        raise InvalidAmount("amount must be a number, got a bool")
    try:
        if isinstance(amount, Decimal):
            value = amount
        elif isinstance(amount, (int, float)):
            value = Decimal(str(amount))
        elif isinstance(amount, str) and len(amount) <= MAX_AMOUNT_TEXT:
            text = amount.strip().replace("€", "").replace("EUR", "").replace("eur", "").strip()
            if text.count(",") == 1 and "." not in text:
                text = text.replace(",", ".")
            value = Decimal(text)
        else:
            raise InvalidAmount(f"amount of type {type(amount).__name__} refused")
    except (InvalidOperation, ValueError) as exc:
        raise InvalidAmount(f"not an amount: {str(amount)[:40]!r}") from exc
    if not value.is_finite():
        raise InvalidAmount(f"amount is not finite: {value}")
    if value <= 0:
        raise InvalidAmount(
            f"amount must be positive, got {value}",
            user_message="The refund amount has to be more than zero.",
        )
    if value > MAX_AMOUNT:
        raise InvalidAmount(f"amount too large: {value}", user_message="That amount is far too large.")
    if value != value.quantize(CENT):
        raise InvalidAmount(
            f"amount has more than two decimal places: {value}",
            user_message="Please give the amount in euros and cents, like 4.50.",
        )
    return value.quantize(CENT)


# ---------------------------------------------------------------------------------------- identifiers, limits


def normalise_identifier(value: Any) -> Optional[str]:
    """Normalise a SKU, refund number or ticket number for a lookup: stripped and upper case.

    Args:
        value: E.g. ``" fru-banana "`` or ``"rf-10026-1"``.

    Returns:
        E.g. ``"FRU-BANANA"``, or None for non-strings, blank text or more than 64 characters (no such
        identifier exists, so the lookup can answer "not found" without a query).
    """
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_IDENTIFIER_CHARS:
        return None
    return value.strip().upper()


def parse_customer_id(value: Any) -> int:
    """Check a customer id (the primary key of ``customers``), e.g. from a verified customer token.

    Raises:
        InvalidInput: Not an ``int`` (``bool`` and numeric strings included), or not positive.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"customer id must be a positive integer, got {type(value).__name__}")
    return value


def aware_datetime(value: Any, field: str) -> datetime:
    """Check that ``value`` is a timezone-aware :class:`~datetime.datetime` (naive ones are ambiguous).

    Raises:
        InvalidInput: Not a datetime, or a naive one.
    """
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{field} must be a timezone-aware datetime, got {type(value).__name__}")
    return value


def clean_sku(value: Any) -> str:
    """Like :func:`normalise_identifier` for a SKU that must be given.

    Raises:
        InvalidInput: Non-string, blank or over-long SKU.
    """
    sku = normalise_identifier(value)
    if sku is None:
        raise InvalidInput("sku must be a non-empty string")
    return sku


def clean_sha256(value: Any) -> str:
    """Check a hex SHA-256 digest and return it in lower case.

    Raises:
        InvalidInput: Not 64 hexadecimal characters (any case, surrounding spaces ignored).
    """
    digest = value.strip().lower() if isinstance(value, str) else ""
    if not _SHA256_RE.fullmatch(digest):
        raise InvalidInput("sha256 must be 64 hexadecimal characters")
    return digest


def clean_image_path(path: Any) -> str:
    """Validate an image path relative to the image root and return it in POSIX form.

    The path syntax is `shop.catalog_photos.relative_parts` (the check the catalog's readers make):
    backslashes become slashes, ``.`` parts and empty parts are dropped: ``"Fruit\\\\Banana\\\\b.jpg"`` →
    ``"Fruit/Banana/b.jpg"``. What is stored must also be short, free of control characters and not start
    with ``~``.

    Args:
        path: The path as a caller gives it.

    Returns:
        The relative POSIX path.

    Raises:
        InvalidInput: For non-strings, empty or over-long (> 500 characters) paths, absolute paths, drive
            letters (a colon in the first part), ``..`` parts, ``~`` or control characters.
    """
    if not isinstance(path, str) or not path.strip() or len(path) > MAX_IMAGE_PATH_CHARS:
        raise InvalidInput("image path must be a non-empty string of at most 500 characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in path):
        raise InvalidInput("image path contains control characters")
    parts = relative_parts(path)
    if parts is None or path.strip().replace("\\", "/").startswith("~"):
        raise InvalidInput(f"image path must be relative to the image root: {path[:80]!r}")
    if not parts:
        raise InvalidInput("image path has no file name")
    return "/".join(parts)


def clamp_limit(limit: Any, maximum: int) -> int:
    """Clamp a result limit to ``1..maximum``.

    Raises:
        InvalidInput: If ``limit`` is not an integer (a bool is not one).
    """
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidInput(f"limit must be an integer, got {type(limit).__name__}")
    return max(1, min(limit, maximum))


def category_filter(category: Any) -> Optional[str]:
    """Normalise a category for a search: stripped, lower case.

    Args:
        category: A full path (``"Fruit/Apple"``), a top level (``"Fruit"``) or a coarse category
            (``"Apple"``), any case.

    Returns:
        The lower-case text (``""`` for blank text, meaning no filter), or None when no category can match
        (not a string, or over 80 characters).
    """
    if not isinstance(category, str) or len(category) > MAX_CATEGORY_CHARS:
        return None
    return category.strip().lower()


__all__ = [
    "ORDER_NUMBER_DIGITS",
    "MAX_ORDER_NUMBER_TEXT",
    "ADDRESS_MIN_CHARS",
    "ADDRESS_MAX_CHARS",
    "MAX_REASON_CHARS",
    "MAX_SUBJECT_CHARS",
    "MAX_SENDER_ID_CHARS",
    "MAX_TRANSCRIPT_TURNS",
    "MAX_TRANSCRIPT_BYTES",
    "MAX_TURN_STRING_CHARS",
    "MAX_SENTIMENT_LABELS",
    "parse_order_number",
    "optional_order_number",
    "clean_text",
    "clean_address",
    "clean_reason",
    "clean_sender_id",
    "clean_subject",
    "parse_priority",
    "clean_sentiment_trail",
    "clean_json_value",
    "cap_transcript",
    "parse_amount",
    "normalise_identifier",
    "parse_customer_id",
    "aware_datetime",
    "clean_sku",
    "clean_sha256",
    "clean_image_path",
    "clamp_limit",
    "category_filter",
]
