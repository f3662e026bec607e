"""Logged-in customers: the shop's signed customer token, checked per message.

The shop's backend signs a JWT for the logged-in customer (HS256, key ``CUSTOMER_TOKEN_SECRET``, claims
``sub`` = the customer id as a string of digits and ``exp`` = expiry in Unix seconds; docs/channels.md shows
how) and embeds the web chat with it. The page sends it with every message in the ``X-Customer-Token``
header; a server-to-server caller may send the same header. When the token checks out, the message's
metadata gets ``{"customer": {"id": <int>}}`` (``assistant.keys.CUSTOMER``); a client's own ``customer``
metadata is always dropped by the parser.

Anything else (no secret configured, a bad signature, ``alg: none`` or any algorithm but HS256, an expired
token, a missing ``exp``/``sub``, a ``sub`` that is not a positive integer) leaves the message anonymous
with one log line naming the reason's class, never the token.
"""
from __future__ import annotations

import logging
import re
import time
from typing import Any, Dict, Mapping, Optional

import jwt
from rasa.shared.exceptions import RasaException

from assistant.keys import CUSTOMER

logger = logging.getLogger(__name__)

#: Request header carrying the token.
HEADER = "X-Customer-Token"
#: Environment variable holding the HMAC key shared with the shop's backend.
SECRET_ENV = "CUSTOMER_TOKEN_SECRET"
#: Shortest key accepted (characters); RFC 7518 asks for at least 256 bits for HS256.
MIN_SECRET_CHARS = 32
#: The only algorithm accepted.
ALGORITHM = "HS256"
#: Longest token read (characters); a customer token is a few hundred.
MAX_TOKEN_CHARS = 4096
#: A customer id: a positive integer of at most 18 digits, written as a string.
_CUSTOMER_ID_RE = re.compile(r"[1-9][0-9]{0,17}")


class CustomerTokens:
    """Checks customer tokens with one key.

    Args:
        secret: The shared key, or ``None`` when logged-in customers are off (every token is ignored).
        leeway_s: Seconds of clock difference allowed on ``exp`` (and ``nbf``/``iat`` when present).

    Raises:
        RasaException: for a key shorter than :data:`MIN_SECRET_CHARS` characters.
    """

    def __init__(self, secret: Optional[str], leeway_s: float = 30.0) -> None:
        if secret is not None and len(secret) < MIN_SECRET_CHARS:
            raise RasaException(
                f"{SECRET_ENV} must have at least {MIN_SECRET_CHARS} characters, e.g. "
                "python -c \"import secrets; print(secrets.token_urlsafe(32))\""
            )
        self._secret = secret
        self.leeway_s = leeway_s

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], leeway_s: float = 30.0) -> "CustomerTokens":
        """Checker keyed with ``CUSTOMER_TOKEN_SECRET`` from ``environ`` (unset or blank: tokens ignored)."""
        return cls((environ.get(SECRET_ENV) or "").strip() or None, leeway_s)

    @property
    def enabled(self) -> bool:
        """Whether a key is configured."""
        return self._secret is not None

    def customer_id(self, token: Optional[str]) -> Optional[int]:
        """The customer id a token vouches for, or ``None`` (anonymous; logged once when a token was sent).

        Args:
            token: The header value; ``None`` or blank when the request carried none.
        """
        token = (token or "").strip()
        if not token:
            return None
        if self._secret is None:
            logger.info("Customer token ignored: %s is not set; the message is anonymous", SECRET_ENV)
            return None
        if len(token) > MAX_TOKEN_CHARS:
            logger.warning("Customer token ignored (longer than %d characters)", MAX_TOKEN_CHARS)
            return None
        try:
            claims: Dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "sub"]},
                leeway=self.leeway_s,
            )
        except jwt.PyJWTError as error:  # the class only: messages may quote parts of the token
            logger.warning("Customer token ignored (%s); the message is anonymous", type(error).__name__)
            return None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not _CUSTOMER_ID_RE.fullmatch(subject):
            logger.warning("Customer token ignored (sub is not a customer id); the message is anonymous")
            return None
        return int(subject)

    def metadata(self, token: Optional[str]) -> Dict[str, Any]:
        """``{"customer": {"id": <int>}}`` for a valid token, else ``{}``."""
        customer = self.customer_id(token)
        return {} if customer is None else {CUSTOMER: {"id": customer}}


def issue_token(customer_id: int, secret: str, lifetime_s: int = 3600, now: Optional[float] = None) -> str:
    """A customer token as the shop's backend makes it (the example of docs/channels.md, for tests and tools).

    Args:
        customer_id: The shop's customer id.
        secret: ``CUSTOMER_TOKEN_SECRET``.
        lifetime_s: Seconds until it expires.
        now: Unix time of issue (default: the current time).

    Raises:
        ValueError: for a customer id below 1 or a lifetime below 1 second.
    """
    if customer_id < 1 or lifetime_s < 1:
        raise ValueError("the customer id and the lifetime must be positive")
    issued = int(time.time() if now is None else now)
    claims = {"sub": str(customer_id), "iat": issued, "exp": issued + lifetime_s}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
