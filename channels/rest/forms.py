"""``multipart/form-data`` bodies that are already in memory, framed by python-multipart.

python-multipart (the streaming parser Starlette uses; Apache-2.0) finds the boundaries, the part headers and
the part contents. This module adds what a public upload endpoint needs on top of it: at most ``max_parts``
parts and :data:`MAX_HEADER_BYTES` bytes of headers per part (so a body of a million empty parts or one huge
header costs nothing), a ``Content-Disposition: form-data; name=...`` on every part, a closing boundary, the
preamble before the first boundary skipped (RFC 2046), and file contents as zero-copy ``memoryview`` slices
of the body. Sanic's own ``parse_multipart_form`` decodes parts with the client's charset, drops parts
without a name silently and has no limits, which is why it is not used.
"""
from __future__ import annotations

import email.utils
from dataclasses import dataclass
from typing import Dict, List, Optional, Union
from urllib.parse import unquote

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser
from sanic.headers import parse_content_header

#: Bytes of headers per part (all header lines together).
MAX_HEADER_BYTES = 8 * 1024
#: Longest ``boundary`` parameter accepted (RFC 2046 allows 70; some clients send a little more).
MAX_BOUNDARY_CHARS = 200


class FormError(ValueError):
    """The body is not well-formed ``multipart/form-data`` or breaks a limit (``str(error)`` says which)."""


@dataclass(frozen=True)
class FormPart:
    """One part of a form.

    Attributes:
        name: The form field name (``Content-Disposition: form-data; name=...``).
        filename: The client's file name (``filename``, else RFC 2231 ``filename*``), or ``None``.
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
        FormError: when the header has no usable boundary (missing, longer than :data:`MAX_BOUNDARY_CHARS`,
            not ASCII).
    """
    _, params = parse_content_header(content_type or "")
    boundary = params.get("boundary")
    if not boundary or len(boundary) > MAX_BOUNDARY_CHARS:
        raise FormError("multipart/form-data without a valid boundary parameter")
    try:
        return boundary.encode("ascii")
    except UnicodeEncodeError:
        raise FormError("multipart boundary is not ASCII") from None


class _PartCollector:
    """python-multipart callbacks that collect :class:`FormPart` objects and enforce the limits."""

    def __init__(self, body: Union[bytes, bytearray], max_parts: int) -> None:
        self.body = body
        self.view = memoryview(body)
        self.max_parts = max_parts
        self.parts: List[FormPart] = []
        self.closed = False
        self._headers: Dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._header_bytes = 0
        self._chunks: List[memoryview] = []

    def _piece(self, data: bytes, start: int, end: int) -> memoryview:
        # Within one write() python-multipart hands out slices of the body itself; anything else is copied.
        return self.view[start:end] if data is self.body else memoryview(bytes(data[start:end]))

    def _count_header_bytes(self, count: int) -> None:
        self._header_bytes += count
        if self._header_bytes > MAX_HEADER_BYTES:
            raise FormError(f"part headers longer than {MAX_HEADER_BYTES} bytes")

    def on_part_begin(self) -> None:
        if len(self.parts) >= self.max_parts:
            raise FormError(f"more than {self.max_parts} form parts")
        self._headers, self._chunks, self._header_bytes = {}, [], 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._count_header_bytes(4)  # ": " and the line break (spaces before a value are not handed over)
        name = bytes(self._field).strip().lower().decode("latin-1")
        self._headers[name] = bytes(self._value).strip().decode("utf-8", errors="replace")
        self._field, self._value = bytearray(), bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._chunks.append(self._piece(data, start, end))

    def on_part_end(self) -> None:
        disposition, params = parse_content_header(self._headers.get("content-disposition", ""))
        name = params.get("name")
        if disposition.lower() != "form-data" or not name:
            raise FormError("a part has no 'Content-Disposition: form-data; name=...' header")
        filename = params.get("filename")
        if filename is None and params.get("filename*"):
            try:
                encoding, _, value = email.utils.decode_rfc2231(params["filename*"])
                filename = unquote(value, encoding=encoding or "utf-8", errors="replace")
            except (LookupError, ValueError):
                filename = None
        declared = self._headers.get("content-type")
        declared_type = declared.split(";", 1)[0].strip().lower() if declared else None
        if len(self._chunks) == 1:
            data = self._chunks[0]
        else:
            data = memoryview(b"".join(self._chunks))
        self.parts.append(FormPart(name, filename, declared_type or None, data))

    def on_end(self) -> None:
        self.closed = True


def parse_form(body: Union[bytes, bytearray], content_type: str, max_parts: int) -> List[FormPart]:
    """Split a ``multipart/form-data`` body into its parts.

    Args:
        body: The whole request body.
        content_type: The request's Content-Type header (holds the boundary).
        max_parts: Most parts accepted; more is an error, raised when the part after the last one allowed
            starts (nothing of it is read).

    Returns:
        The parts in body order; the preamble and the epilogue are ignored.

    Raises:
        FormError: missing boundary, bad framing, part headers over :data:`MAX_HEADER_BYTES`, too many parts,
            a part without a ``name``, no closing boundary.
    """
    if not isinstance(body, (bytes, bytearray)):
        body = bytes(body)
    boundary = boundary_of(content_type)
    delimiter = b"--" + boundary
    if not body.startswith(delimiter):
        first = body.find(b"\r\n" + delimiter)
        if first < 0:
            raise FormError("no multipart boundary in the body")
        body = body[first + 2 :]  # skip the preamble (a copy; clients rarely send one)
    collector = _PartCollector(body, max_parts)
    callbacks = {
        name: getattr(collector, name)
        for name in (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_part_data",
            "on_part_end",
            "on_end",
        )
    }
    try:
        parser = MultipartParser(
            boundary,
            callbacks,  # type: ignore[arg-type]
            max_header_count=MAX_HEADER_BYTES // 4,  # header bytes are the limit; each line takes 4 or more
            max_header_size=MAX_HEADER_BYTES,
        )
        parser.write(body)
    except FormParserError as error:
        raise FormError(str(error)) from None
    if not collector.closed:
        raise FormError("multipart body ends without a closing boundary")
    return collector.parts
