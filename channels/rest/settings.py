"""What credentials.yml may set for the REST channel, checked by the project's config mechanism.

``ChannelSettings`` is a pydantic model (a :class:`assistant.configuration.ComponentConfig`); a bad key or
value stops Rasa at start with ``MultimodalRestInput: `<key>` must be <valid values>, got <value>.`` or
``MultimodalRestInput: unknown config key(s) 'x'; valid keys are ...``. Secrets are never written there:
``token_env`` names the environment variable that holds the bearer token.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Optional

from pydantic import validator

from assistant.configuration import ComponentConfig, Flag, Integer, Number, TextValue, validate_config
from media.limits import MiB

#: The class name credentials.yml uses; it starts every settings error.
CHANNEL_CLASS = "MultimodalRestInput"
_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_CSP_BREAKERS_RE = re.compile(r"[;,\r\n\x00]")


class ChannelSettings(ComponentConfig):
    """The REST channel's settings (every key optional; immutable once checked, also when built in code).

    Attributes:
        token_env: Name of the environment variable holding the bearer token for ``POST .../webhook``. When
            the variable is unset or empty, no token is needed. ``None`` or ``""`` turns auth off entirely.
        max_body_bytes: Largest request body in bytes (default 32 MiB: one 20 MiB voice note as base64 fits).
        max_text_chars: Longest message text in characters (default 20,000).
        max_metadata_bytes: Largest client ``metadata`` object, as compact JSON, in bytes (default 16 KiB).
        max_metadata_depth: Deepest nesting of client ``metadata`` in levels (default 10).
        upload_rate_per_minute: Attachments per minute granted to each sender id (token bucket refill rate,
            default 20). ``0`` turns the limit off.
        upload_burst: The sender's bucket size in attachments (default 20); at least the store's
            ``max_attachments`` (checked by the channel, which knows the store).
        address_rate_per_minute: Attachments per minute granted to each client address, whatever sender ids
            it uses (default 120; sender ids are chosen by the client). Behind a reverse proxy every client
            has the proxy's address unless Sanic is told to trust forwarded headers (``PROXIES_COUNT``): raise
            this or set it to ``0`` there.
        address_burst: The address's bucket size in attachments (default 60); at least ``max_attachments``.
        message_rate_per_minute: Messages per minute granted to each sender id (token bucket refill rate,
            default 30). ``0`` turns the limit off.
        message_burst: Messages a sender may send at once after being idle (default 10).
        address_message_rate_per_minute: Messages (and new web conversations) per minute granted to each
            client address, whatever sender ids it uses (default 120). Checked before the request body is
            read. Behind a reverse proxy: as ``address_rate_per_minute``.
        address_message_burst: The address's message bucket size (default 60).
        customer_token_leeway_s: Seconds of clock difference allowed when checking a customer token's
            ``exp`` (default 30).
        web_chat: Whether the chat page and widget are served (default true).
        frame_ancestors: CSP ``frame-ancestors`` sources allowed to embed the chat page in an iframe
            (default ``*``: any site may embed the widget; e.g. ``'self' https://shop.example``).
    """

    class Config:
        title = CHANNEL_CLASS

    token_env: Optional[str] = TextValue(
        "CHAT_API_TOKEN",
        valid="an environment variable name such as CHAT_API_TOKEN (not the token), or empty for no auth",
        optional=True,
        allow_empty=True,
        pattern=_ENV_NAME,
    )
    max_body_bytes: int = Integer(32 * MiB, ge=1024, valid="an integer >= 1024 (bytes per request)")
    max_text_chars: int = Integer(20_000, ge=1, valid="an integer >= 1 (characters)")
    max_metadata_bytes: int = Integer(16 * 1024, ge=2, valid="an integer >= 2 (bytes of compact JSON)")
    max_metadata_depth: int = Integer(10, ge=1, valid="an integer >= 1 (levels)")
    upload_rate_per_minute: float = Number(
        20.0, ge=0, valid="a number >= 0 (attachments per minute; 0 = no limit)"
    )
    upload_burst: int = Integer(20, ge=1, valid="an integer >= 1 (attachments)")
    address_rate_per_minute: float = Number(
        120.0, ge=0, valid="a number >= 0 (attachments per minute; 0 = no limit)"
    )
    address_burst: int = Integer(60, ge=1, valid="an integer >= 1 (attachments)")
    message_rate_per_minute: float = Number(
        30.0, ge=0, valid="a number >= 0 (messages per minute; 0 = no limit)"
    )
    message_burst: int = Integer(10, ge=1, valid="an integer >= 1 (messages)")
    address_message_rate_per_minute: float = Number(
        120.0, ge=0, valid="a number >= 0 (messages per minute; 0 = no limit)"
    )
    address_message_burst: int = Integer(60, ge=1, valid="an integer >= 1 (messages)")
    customer_token_leeway_s: int = Integer(30, ge=0, le=300, valid="an integer from 0 to 300 (seconds)")
    web_chat: bool = Flag(True)
    frame_ancestors: str = TextValue(
        "*", valid="CSP sources separated by spaces, e.g. 'self' https://shop.example"
    )

    @validator("frame_ancestors")
    def _csp_sources(cls, value: str) -> str:
        if not value.strip() or _CSP_BREAKERS_RE.search(value):
            raise ValueError("not a list of CSP sources")
        return value

    @classmethod
    def from_credentials(cls, credentials: Optional[Mapping[str, Any]]) -> "ChannelSettings":
        """Builds and checks settings from the channel's credentials.yml section (``None`` = all defaults).

        Raises:
            rasa.shared.exceptions.InvalidConfigException: (a ``RasaException``) naming the key and its valid
                values, for an unknown key or a bad value.
        """
        return validate_config(CHANNEL_CLASS, cls, dict(credentials or {}))
