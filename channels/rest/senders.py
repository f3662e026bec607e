"""Conversation ids of the web chat: issued by the server, signed, and refused when not signed by it.

``POST /webhooks/multimodal/session`` answers ``{"sender": "web:<32 hex>.<signature>"}``: 128 random bits and
the HMAC-SHA256 of ``"web-sender:" + <32 hex>`` keyed with ``SENDER_ID_SECRET``, in unpadded base64url (43
characters). The client sends that value as its ``sender``; the channel checks the signature in constant time
and hands Rasa ``web:<32 hex>`` (the signature never reaches the tracker, the logs or an action). A visitor
cannot guess another visitor's id (128 bits) nor make one up (the HMAC key is on the server only).

``SENDER_ID_SECRET`` (at least :data:`MIN_SECRET_CHARS` characters) keeps conversations across restarts and
across instances behind a load balancer. When it is unset, one random secret per process is used (with one
warning): every web conversation then ends when the server restarts, and the page starts a new one.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import threading
from typing import Mapping, Optional

from rasa.shared.exceptions import RasaException

from channels.senders import WEB, namespaced

logger = logging.getLogger(__name__)

#: Environment variable holding the HMAC key of web conversation ids.
SECRET_ENV = "SENDER_ID_SECRET"
#: Shortest secret accepted (characters); ``secrets.token_urlsafe(32)`` gives 43.
MIN_SECRET_CHARS = 32
#: Random bytes of a conversation id (shown as twice as many hex digits).
RANDOM_BYTES = 16
#: What the signature covers besides the random part, so that no other HMAC made with the key can pass.
_DOMAIN = b"web-sender:"
#: A signed id as the client holds it: ``web:<32 lower-case hex>.<43 base64url characters>``.
SIGNED_RE = re.compile(rf"{WEB}:([0-9a-f]{{{RANDOM_BYTES * 2}}})\.([A-Za-z0-9_-]{{43}})")

_process_secret: Optional[bytes] = None
_process_secret_lock = threading.Lock()


def _per_process_secret() -> bytes:
    """One random key per process, made (and warned about) once."""
    global _process_secret
    with _process_secret_lock:
        if _process_secret is None:
            _process_secret = secrets.token_bytes(32)
            logger.warning(
                "%s is not set: web chat conversation ids are signed with a random key of this process, so "
                "every web conversation starts anew when the server restarts (and ids of one instance are "
                "refused by another). Set it to a random value of %d or more characters.",
                SECRET_ENV,
                MIN_SECRET_CHARS,
            )
        return _process_secret


class WebSenderIds:
    """Issues and checks signed web conversation ids.

    Args:
        secret: The HMAC key; ``None`` for the per-process random key.

    Raises:
        RasaException: for a secret shorter than :data:`MIN_SECRET_CHARS` characters.
    """

    def __init__(self, secret: Optional[str] = None) -> None:
        if secret is None:
            self._key = _per_process_secret()
        elif len(secret) < MIN_SECRET_CHARS:
            raise RasaException(
                f"{SECRET_ENV} must have at least {MIN_SECRET_CHARS} characters, e.g. "
                "python -c \"import secrets; print(secrets.token_urlsafe(32))\""
            )
        else:
            self._key = secret.encode("utf-8")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "WebSenderIds":
        """Signer keyed with ``SENDER_ID_SECRET`` from ``environ`` (unset or blank: the per-process key)."""
        return cls((environ.get(SECRET_ENV) or "").strip() or None)

    def _signature(self, random_part: str) -> str:
        digest = hmac.new(self._key, _DOMAIN + random_part.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def issue(self) -> str:
        """A new signed id for the client: ``web:<32 hex>.<signature>`` (80 characters)."""
        random_part = secrets.token_hex(RANDOM_BYTES)
        return f"{namespaced(WEB, random_part)}.{self._signature(random_part)}"

    def verify(self, signed: str) -> Optional[str]:
        """The conversation's sender id (``web:<32 hex>``) when ``signed`` was issued with this key.

        Args:
            signed: The ``sender`` the client sent.

        Returns:
            ``web:<32 hex>``, or ``None`` for anything else (another shape, another key, a changed digit).
        """
        match = SIGNED_RE.fullmatch(signed)
        if match is None:
            return None
        random_part, given = match.groups()
        if not hmac.compare_digest(given.encode("ascii"), self._signature(random_part).encode("ascii")):
            return None
        return namespaced(WEB, random_part)
