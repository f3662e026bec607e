"""The REST channel's refusals: an exception that knows its HTTP answer ``{"error": {"code", "message"}}``."""
from __future__ import annotations

from typing import Dict, Optional

from sanic import response
from sanic.response import HTTPResponse

from channels.common import TROUBLE_REPLY


class ChannelError(Exception):
    """A refused request: answered with ``status`` and ``{"error": {"code", "message"}}``.

    Attributes:
        status: HTTP status code (4xx; 500 for a failure in the bot).
        code: Stable machine-readable code, e.g. ``invalid_json``.
        message: Human-readable explanation for the client developer or the customer.
        detail: Extra cause for the log line only.
        headers: Extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(
        self, status: int, code: str, message: str, detail: str = "", headers: Optional[Dict[str, str]] = None
    ) -> None:
        super().__init__(code, message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers or {}

    def to_response(self) -> HTTPResponse:
        """The JSON error response."""
        return response.json(
            {"error": {"code": self.code, "message": self.message}}, status=self.status, headers=self.headers
        )


def trouble_response() -> HTTPResponse:
    """503 ``store_unavailable`` with :data:`channels.common.TROUBLE_REPLY` and ``Retry-After: 60``: a shared
    store is unreachable, the turn was not saved, the same message may be sent again."""
    return ChannelError(503, "store_unavailable", TROUBLE_REPLY, headers={"Retry-After": "60"}).to_response()
