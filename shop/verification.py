"""How a customer proves that an order is theirs, as pure functions: email addresses, their constant-time
comparison, and the lock-out after too many wrong tries.

The proof is the email address on the order (the customer account's address). It is compared without regard
to case or whitespace (``" Anna.Berg@Example.com "`` proves ``anna.berg@example.com``) and in constant time:
both sides are normalised, hashed with SHA-256 and compared with :func:`hmac.compare_digest`, and an unknown
order is compared against :data:`DUMMY_EMAIL`, so neither the answer's wording nor its timing tells whether an
order exists.

Guessing is limited by :class:`LockPolicy`: after :data:`MAX_FAILURES` wrong tries within :data:`WINDOW`,
counted per conversation and per order number, further tries are refused until the oldest of them is older
than the window. The repository stores the tries (``verification_attempts``), so a restart or another
instance does not reset the count.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Optional

#: Wrong tries that lock further tries, per conversation and per order number.
MAX_FAILURES = 5
#: How far back wrong tries count (a sliding window).
WINDOW = timedelta(minutes=15)
#: Longest email address accepted (RFC 5321 path limit); longer text is not an address.
MAX_EMAIL_CHARS = 254
#: A reply longer than this (characters) is not searched for an address.
MAX_EMAIL_REPLY_CHARS = 500
#: What the given address is compared with when the order does not exist (it can never match: ``.invalid``).
DUMMY_EMAIL = "no-such-order@verification.invalid"

# local part @ labels . top-level domain (2+ characters, no digits); any script (after NFKC, case-folded)
_EMAIL_RE = re.compile(r"[^@\s<>()\[\],;:\"]{1,64}@(?:[^@\s<>()\[\],;:\"._]+\.)+[^@\s<>()\[\],;:\"._0-9]{2,}")
# one address in a reply: the words touching an "@" (spaces right around the "@" tolerated)
_EMAIL_SEARCH_RE = re.compile(r"[^\s@<>()\[\],;:\"]+\s?@\s?[^\s@<>()\[\],;:\"]+")
_LEADING_PUNCTUATION = "([{<\"'"
_TRAILING_PUNCTUATION = ".,;:!?)]}>\"'"


class VerificationResult(str, enum.Enum):
    """The answer to one try: the address is the order's, it is not (or there is no such order: the same
    answer), or tries are locked for this conversation or order number."""

    VERIFIED = "verified"
    MISMATCH = "mismatch"
    LOCKED = "locked"


@dataclass(frozen=True)
class LockPolicy:
    """When wrong tries lock further tries.

    Attributes:
        max_failures: Wrong (or still running) tries within ``window`` that lock, per conversation and per
            order number; at least 1.
        window: How far back tries count.
    """

    max_failures: int = MAX_FAILURES
    window: timedelta = WINDOW

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.window <= timedelta(0):
            raise ValueError("LockPolicy needs max_failures >= 1 and a positive window")

    def is_locked(self, conversation_failures: int, order_failures: int) -> bool:
        """Whether a new try is refused, given the wrong tries counted within the window.

        Args:
            conversation_failures: Wrong tries of this conversation, for any order number.
            order_failures: Wrong tries for this order number, from any conversation.
        """
        return conversation_failures >= self.max_failures or order_failures >= self.max_failures

    @property
    def window_minutes(self) -> int:
        """The window in whole minutes (rounded up), for messages."""
        return max(1, -(-int(self.window.total_seconds()) // 60))


def normalise_email(value: Any) -> Optional[str]:
    """Return the comparable form of an email address, or None when ``value`` is not one.

    NFKC, surrounding whitespace and invisible characters removed, case-folded; then it must look like
    ``local@domain.tld`` (no whitespace inside) and have at most :data:`MAX_EMAIL_CHARS` characters.

    Args:
        value: What the customer typed, or an address from the database.

    Returns:
        E.g. ``"anna.berg@example.com"`` for ``" Anna.Berg@Example.COM "``; None for anything else (not
        text, no ``@``, no dot in the domain, spaces inside, too long).
    """
    if not isinstance(value, str) or len(value) > MAX_EMAIL_REPLY_CHARS:
        return None
    text = unicodedata.normalize("NFKC", value)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc") or ch.isspace())
    text = text.strip().casefold()
    if not text or len(text) > MAX_EMAIL_CHARS or _EMAIL_RE.fullmatch(text) is None:
        return None
    return text


def find_email(text: Any) -> Optional[str]:
    """Find the email address in a reply such as ``"it's anna@example.com, thanks"`` or ``"ANNA@X.COM"``.

    The words touching an ``@`` are the candidate (a space right before or after the ``@`` is tolerated);
    punctuation around it is dropped. Words are never joined across other spaces, so ``"my email is
    a@b.com"`` gives ``"a@b.com"``.

    Args:
        text: The customer's reply or an ``email`` entity value.

    Returns:
        The first address found, normalised (:func:`normalise_email`), or None when there is none.
    """
    if not isinstance(text, str) or len(text) > MAX_EMAIL_REPLY_CHARS:
        return None
    for match in _EMAIL_SEARCH_RE.finditer(unicodedata.normalize("NFKC", text)):
        candidate = "".join(match.group(0).split()).lstrip(_LEADING_PUNCTUATION).rstrip(_TRAILING_PUNCTUATION)
        address = normalise_email(candidate)
        if address is not None:
            return address
    return None


def _digest(address: str) -> bytes:
    return hashlib.sha256(address.encode("utf-8")).digest()


def emails_match(given: Optional[str], stored: Optional[str]) -> bool:
    """Compare two email addresses in constant time, without regard to case or whitespace.

    Both are normalised (:func:`normalise_email`) and their SHA-256 digests compared with
    :func:`hmac.compare_digest`, so the time taken depends on neither the addresses nor their lengths. A
    missing or malformed side is compared against :data:`DUMMY_EMAIL` and never matches.

    Args:
        given: What the customer typed.
        stored: The address on the order; None for an order that does not exist.

    Returns:
        True only when both are addresses and they are equal after normalisation.
    """
    left = normalise_email(given)
    right = normalise_email(stored)
    same = hmac.compare_digest(_digest(left or DUMMY_EMAIL), _digest(right or DUMMY_EMAIL))
    return same and left is not None and right is not None


__all__ = [
    "MAX_FAILURES",
    "WINDOW",
    "MAX_EMAIL_CHARS",
    "DUMMY_EMAIL",
    "VerificationResult",
    "LockPolicy",
    "normalise_email",
    "find_email",
    "emails_match",
]
