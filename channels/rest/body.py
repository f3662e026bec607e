"""Reading a REST request body under the channel's byte cap (``max_body_bytes``).

The declared Content-Length is checked before a byte is read, and a streamed body is cut off as soon as it
passes the cap, so a 1 GB upload costs nothing. A refused body is not drained: the connection is closed.
"""
from __future__ import annotations

from sanic.request import Request

from channels.rest.errors import ChannelError
from media import AttachmentLimits
from media.limits import MiB


def too_large(limits: AttachmentLimits, detail: str) -> ChannelError:
    """413 ``too_large``, telling the customer the store's photo and voice-note limits in MB."""
    return ChannelError(
        413,
        "too_large",
        f"That upload is too big for me — I can take photos up to {limits.image_max_bytes / MiB:g} MB "
        f"and voice notes up to {limits.audio_max_bytes / MiB:g} MB.",
        detail=detail,
    )


async def read_body(request: Request, cap: int, limits: AttachmentLimits) -> bytearray:
    """Reads the request body, refusing it as soon as it passes ``cap`` bytes.

    Args:
        request: A request of a streaming route (``stream=True``), or one whose body is already loaded.
        cap: Most bytes accepted.
        limits: The store's limits, named in the 413 answer.

    Returns:
        The whole body.

    Raises:
        ChannelError: 400 for a Content-Length that is not a number; 413 ``too_large`` when the declared or
            the received length passes ``cap``.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise ChannelError(400, "invalid_request", "Content-Length is not a number.")
        if int(declared) > cap:
            raise too_large(limits, f"Content-Length {int(declared)} bytes > {cap} bytes")
    body = bytearray()
    stream = request.stream
    if stream is None:  # body preloaded (not a streaming route, e.g. in a different server set-up)
        body += request.body or b""
    else:
        while True:
            chunk = await stream.read()
            if chunk is None:
                break
            body += chunk
            if len(body) > cap:
                raise too_large(limits, f"body passed {cap} bytes while reading")
    if len(body) > cap:
        raise too_large(limits, f"body of {len(body)} bytes > {cap} bytes")
    return body


def stop_reading(request: Request) -> None:
    """Answer without reading the rest of a body: Sanic would otherwise drain up to its own
    ``REQUEST_MAX_SIZE`` (100 MB) after the response (and log a 2xx answer's body as "not consumed"). The
    connection is closed after the answer instead."""
    stream = request.stream
    if stream is not None and hasattr(stream, "request_max_size"):
        stream.request_max_size = 0
        stream.keep_alive = False
        stream.request_body = None
