"""A malformed ``Content-Length`` is a 400, not a frozen server: a guard on Sanic 21.12's HTTP/1 parser.

Sanic 21.12 (the version Rasa 3.6 pins) takes ``int(headers["content-length"])`` as the body size without
checking it. A negative value (``Content-Length: -1``) makes its body reader slice the receive buffer with a
negative size and spin on the event loop for ever: one unauthenticated request on any route freezes every
conversation of the server, and SIGTERM no longer stops it. A value that is not a number (``abc``, ``1e9``)
raises ``ValueError``, answered as a 500 with a traceback in the log. Later Sanic releases validate the
header; this guard does the same for the pinned one.

:func:`install_content_length_guard` wraps ``sanic.request.Request.__init__``, which Sanic's HTTP/1 parser
calls once the headers are read and before it looks at the body size: a request whose ``Content-Length`` is
not one run of ASCII digits (one value, or repeated identical values as RFC 9110 allows) is refused with ``400
Bad Request`` (Sanic's ``InvalidUsage``, raised while the request is still being parsed, so Sanic closes the
connection after the answer) before any body is read, with one log line. (The parser method itself cannot be
wrapped: Sanic recompiles it from its source when an app starts.) The project's channels install the guard
when constructed, as they install the worker pool, so any server that serves them is guarded; installing again
does nothing.
"""
from __future__ import annotations

import functools
import logging
import re
from typing import Any, Callable

logger = logging.getLogger(__name__)

#: A valid Content-Length value (RFC 9110 section 8.6: 1*DIGIT).
_DIGITS_RE = re.compile(r"[0-9]{1,19}")
#: Marks the wrapped method, so installing twice is harmless.
_GUARD_FLAG = "_content_length_guarded"


def content_length_is_valid(values: list) -> bool:
    """Whether the ``Content-Length`` header values of one request are acceptable.

    Args:
        values: Every ``Content-Length`` value of the request (``str``), as the header parser collected them.

    Returns:
        True for no value, or for values that are all the same run of 1–19 ASCII digits.
    """
    if not values:
        return True
    first = values[0].strip()
    return bool(_DIGITS_RE.fullmatch(first)) and all(value.strip() == first for value in values)


def install_content_length_guard() -> None:
    """Wrap Sanic's ``Request.__init__`` with the ``Content-Length`` check (once per process).

    Raises (in the wrapped constructor): ``sanic.exceptions.InvalidUsage`` for a malformed ``Content-Length``.
    """
    from sanic.exceptions import InvalidUsage
    from sanic.request import Request

    original: Callable[..., None] = Request.__init__
    if getattr(original, _GUARD_FLAG, False):
        return

    @functools.wraps(original)
    def guarded(self: Request, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if not content_length_is_valid(self.headers.getall("content-length", [])):
            logger.warning("Request refused: malformed Content-Length header")
            raise InvalidUsage("Bad Content-Length")

    setattr(guarded, _GUARD_FLAG, True)
    Request.__init__ = guarded  # type: ignore[method-assign]


__all__ = ["content_length_is_valid", "install_content_length_guard"]
