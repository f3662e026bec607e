"""The REST channel's upload rate limit: attachments per sender id and per client address.

Two token buckets (:class:`channels.ratelimit.TokenBucketLimiter`) must both have the tokens; text is never
limited. Sender ids are chosen by the client, which is why the client address has a bucket of its own.
"""
from __future__ import annotations

import math

from sanic.request import Request

from channels.ratelimit import TokenBucketLimiter
from channels.rest.errors import ChannelError
from channels.rest.settings import ChannelSettings

#: Longest wait in seconds named in ``Retry-After``.
MAX_RETRY_AFTER_S = 3600


class UploadRateLimit:
    """Per-sender and per-address attachment buckets, sized from the channel settings.

    Args:
        settings: ``upload_rate_per_minute``/``upload_burst`` (per sender) and
            ``address_rate_per_minute``/``address_burst`` (per address); a rate of 0 turns that bucket off.
    """

    def __init__(self, settings: ChannelSettings) -> None:
        self.sender_limiter = TokenBucketLimiter(settings.upload_rate_per_minute, settings.upload_burst)
        self.address_limiter = TokenBucketLimiter(settings.address_rate_per_minute, settings.address_burst)

    def check(self, request: Request, sender: str, count: int) -> None:
        """Spends ``count`` tokens of the sender's and the address's buckets, or none when either is short.

        Raises:
            ChannelError: 429 ``rate_limited`` with ``Retry-After`` (whole seconds, 1 to 3600).
        """
        client = request.remote_addr or request.ip or "unknown"
        wait = max(
            self.sender_limiter.retry_after(sender, count), self.address_limiter.retry_after(client, count)
        )
        if wait <= 0:  # both have the tokens (no await in between: nothing else can spend them meanwhile)
            wait = self.sender_limiter.take_all((sender,), count)
            wait += self.address_limiter.take_all((client,), count)
        if wait > 0:
            seconds = max(1, math.ceil(min(wait, MAX_RETRY_AFTER_S)))
            raise ChannelError(
                429,
                "rate_limited",
                f"You're sending photos and voice notes faster than I can look at them — "
                f"please wait {seconds} seconds and try again.",
                detail=f"{count} attachment(s) from sender {sender[:40]!r} / {client}",
                headers={"Retry-After": str(seconds)},
            )
