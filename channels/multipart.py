"""A small, strict ``multipart/form-data`` parser for request bodies that are already in memory.

Sanic's own parser decodes every header line without limits and trusts the client's charset; this one caps
the number of parts and the size of part headers, refuses malformed framing with :class:`MultipartError`, and
returns file contents as zero-copy ``memoryview`` slices of the body.
"""
from __future__ import annotations

import email.utils
from dataclasses import dataclass
from typing import List, Optional
from urllib.parse import unquote

from sanic.headers import parse_content_header

_MAX_HEADER_BYTES = 8 * 1024  # bytes of headers per part
_MAX_BOUNDARY_CHARS = 200  # RFC 2046 allows 70; some clients send a little more


class MultipartError(ValueError):
    """The body is not well-formed ``multipart/form-data``; ``str(error)`` names the fault."""


@dataclass(frozen=True)
class Part:
    """One part of a form.

    Attributes:
        name: The form field name (``Content-Disposition: form-data; name=...``).
        filename: The client's file name, or ``None`` for a plain field.
        content_type: The part's declared ``Content-Type`` without parameters (lower case), or ``None``.
        data: The part's bytes (a view into the request body).
    """

    name: str
    filename: Optional[str]
    content_type: Optional[str]
    data: memoryview

    def text(self) -> str:
        """The part as UTF-8 text (invalid sequences replaced)."""
        return bytes(self.data).decode("utf-8", errors="replace")


def boundary_of(content_type: str) -> bytes:
    """The ``boundary`` parameter of a ``multipart/form-data`` Content-Type header.

    Raises:
        MultipartError: when the header has no usable boundary.
    """
    _, params = parse_content_header(content_type or "")
    boundary = params.get("boundary")
    if not boundary or len(boundary) > _MAX_BOUNDARY_CHARS:
        raise MultipartError("multipart/form-data without a valid boundary parameter")
    try:
        return boundary.encode("ascii")
    except UnicodeEncodeError:
        raise MultipartError("multipart boundary is not ASCII") from None


def _parse_headers(block: bytes) -> dict:
    headers = {}
    for line in block.split(b"\r\n"):
        if not line:
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            raise MultipartError("part header line without a colon")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("utf-8", errors="replace")
    return headers


def parse_multipart(body: bytes, content_type: str, max_parts: int) -> List[Part]:
    """Split a ``multipart/form-data`` body into its parts.

    Args:
        body: The whole request body.
        content_type: The request's Content-Type header (holds the boundary).
        max_parts: Most parts accepted; more is an error (so a body of a million empty parts costs nothing).

    Returns:
        The parts in body order.

    Raises:
        MultipartError: missing boundary, bad framing, oversized part headers, too many parts, a part without
            a ``name``.
    """
    view = memoryview(body)
    delimiter = b"--" + boundary_of(content_type)
    if body.startswith(delimiter):
        position = len(delimiter)
    else:
        first = body.find(b"\r\n" + delimiter)
        if first < 0:
            raise MultipartError("no multipart boundary in the body")
        position = first + 2 + len(delimiter)
    parts: List[Part] = []
    next_delimiter = b"\r\n" + delimiter
    while True:
        if body[position : position + 2] == b"--":
            return parts  # closing delimiter; the epilogue is ignored
        # transport padding (spaces/tabs) may follow a delimiter before its CRLF
        while body[position : position + 1] in (b" ", b"\t"):
            position += 1
        if body[position : position + 2] != b"\r\n":
            raise MultipartError("multipart delimiter not followed by a line break")
        position += 2
        if len(parts) >= max_parts:
            raise MultipartError(f"more than {max_parts} form parts")
        if body.startswith(b"\r\n", position):
            raise MultipartError("a part has no headers")
        header_end = body.find(b"\r\n\r\n", position, position + _MAX_HEADER_BYTES + 4)
        if header_end < 0:
            raise MultipartError(f"part headers missing or longer than {_MAX_HEADER_BYTES} bytes")
        headers = _parse_headers(body[position:header_end])
        content_start = header_end + 4
        content_end = body.find(next_delimiter, content_start)
        if content_end < 0:
            raise MultipartError("multipart body ends without a closing boundary")
        disposition, params = parse_content_header(headers.get("content-disposition", ""))
        name = params.get("name")
        if disposition.lower() != "form-data" or not name:
            raise MultipartError("a part has no 'Content-Disposition: form-data; name=...' header")
        filename = params.get("filename")
        if filename is None and params.get("filename*"):
            try:
                encoding, _, value = email.utils.decode_rfc2231(params["filename*"])
                filename = unquote(value, encoding=encoding or "utf-8", errors="replace")
            except (LookupError, ValueError):
                filename = None
        declared = headers.get("content-type")
        declared_type = declared.split(";", 1)[0].strip().lower() if declared else None
        parts.append(Part(name, filename, declared_type or None, view[content_start:content_end]))
        position = content_end + len(next_delimiter)
