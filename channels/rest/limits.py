"""The REST channel's rate limits: messages and attachments, per sender id and per client address.

Each limit is a pair of token buckets (:func:`channels.ratelimit.token_buckets`: in Redis, shared by every
server, when ``REDIS_URL`` is set; else in the process):

- messages per client address (``address_message_rate_per_minute``/``address_message_burst``), checked first,
  before a byte of the body is read; a new web conversation (``POST .../session``) spends one token too;
- messages per sender id (``message_rate_per_minute``/``message_burst``), once the body names the sender;
- attachments per sender id and per address (``upload_*``, ``address_rate_per_minute``/``address_burst``).

Web sender ids are issued by the server, but anyone can ask for new ones, which is why the address has
buckets of its own. A refused request is answered 429 ``rate_limited`` with ``Retry-After`` and nothing is
stored or passed to the bot.
"""
from __future__ import annotations

import math

from sanic.request import Request

import os
from typing import Mapping, Optional

from channels.ratelimit import token_buckets
from channels.rest.errors import ChannelError
from channels.rest.settings import ChannelSettings

#: Longest wait in seconds named in ``Retry-After``.
MAX_RETRY_AFTER_S = 3600


def client_address(request: Request) -> str:
    """The client's address as Sanic sees it (the forwarded one only when ``PROXIES_COUNT`` is set)."""
    return request.remote_addr or request.ip or "unknown"


def rate_limited(wait: float, message: str, detail: str) -> ChannelError:
    """429 ``rate_limited`` with ``Retry-After`` (whole seconds, 1 to :data:`MAX_RETRY_AFTER_S`).

    Args:
        wait: Seconds until the request would pass.
        message: The friendly text; ``{seconds}`` is replaced by the rounded wait.
        detail: For the log line.
    """
    seconds = max(1, math.ceil(min(wait, MAX_RETRY_AFTER_S)))
    return ChannelError(
        429,
        "rate_limited",
        message.format(seconds=seconds),
        detail=detail,
        headers={"Retry-After": str(seconds)},
    )


#: What a customer reads when they send messages too fast.
TOO_MANY_MESSAGES = (
    "You're sending messages faster than I can answer them — please wait {seconds} seconds and try again."
)
#: ... and when they send photos and voice notes too fast.
TOO_MANY_UPLOADS = (
    "You're sending photos and voice notes faster than I can look at them — "
    "please wait {seconds} seconds and try again."
)


class MessageRateLimit:
    """Messages per client address (checked before the body is read) and per sender id.

    Args:
        settings: ``address_message_rate_per_minute``/``address_message_burst`` and
            ``message_rate_per_minute``/``message_burst``; a rate of 0 turns that bucket off.
        environ: Where ``REDIS_URL`` is looked up: set, the buckets are shared by every server.
    """

    def __init__(self, settings: ChannelSettings, environ: Optional[Mapping[str, str]] = None) -> None:
        environ = os.environ if environ is None else environ
        self.address_limiter = token_buckets(
            "rest-address-messages", settings.address_message_rate_per_minute, settings.address_message_burst,
            environ=environ,
        )
        self.sender_limiter = token_buckets(
            "rest-sender-messages", settings.message_rate_per_minute, settings.message_burst, environ=environ
        )

    def check_address(self, request: Request) -> None:
        """Spends one token of the client address's bucket.

        Raises:
            ChannelError: 429 ``rate_limited`` when the bucket is empty (nothing is spent).
        """
        client = client_address(request)
        wait = self.address_limiter.take_all((client,))
        if wait > 0:
            raise rate_limited(wait, TOO_MANY_MESSAGES, f"messages from address {client}")

    def check_sender(self, sender: str) -> None:
        """Spends one token of the sender id's bucket.

        Raises:
            ChannelError: 429 ``rate_limited`` when the bucket is empty (nothing is spent).
        """
        wait = self.sender_limiter.take_all((sender,))
        if wait > 0:
            raise rate_limited(wait, TOO_MANY_MESSAGES, f"messages from sender {sender[:40]!r}")


class UploadRateLimit:
    """Per-sender and per-address attachment buckets, sized from the channel settings.

    Args:
        settings: ``upload_rate_per_minute``/``upload_burst`` (per sender) and
            ``address_rate_per_minute``/``address_burst`` (per address); a rate of 0 turns that bucket off.
        environ: Where ``REDIS_URL`` is looked up: set, the buckets are shared by every server.
    """

    def __init__(self, settings: ChannelSettings, environ: Optional[Mapping[str, str]] = None) -> None:
        environ = os.environ if environ is None else environ
        self.sender_limiter = token_buckets(
            "rest-sender-uploads", settings.upload_rate_per_minute, settings.upload_burst, environ=environ
        )
        self.address_limiter = token_buckets(
            "rest-address-uploads", settings.address_rate_per_minute, settings.address_burst, environ=environ
        )

    def check(self, request: Request, sender: str, count: int) -> None:
        """Spends ``count`` tokens of the sender's and the address's buckets, or none when either is short.

        Raises:
            ChannelError: 429 ``rate_limited`` with ``Retry-After`` (whole seconds, 1 to 3600).
        """
        client = client_address(request)
        wait = max(
            self.sender_limiter.retry_after(sender, count), self.address_limiter.retry_after(client, count)
        )
        if wait <= 0:  # both have the tokens (no await in between: nothing else can spend them meanwhile)
            wait = self.sender_limiter.take_all((sender,), count)
            wait += self.address_limiter.take_all((client,), count)
        if wait > 0:
            raise rate_limited(
                wait, TOO_MANY_UPLOADS, f"{count} attachment(s) from sender {sender[:40]!r} / {client}"
            )
