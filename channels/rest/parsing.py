"""Request bodies of the REST channel turned into checked messages: JSON, multipart and URL-encoded forms.

A parsed request is an :class:`IncomingMessage` (sender, text, client metadata and :class:`Upload` objects
that are not stored yet); anything malformed is a :class:`~channels.rest.errors.ChannelError` (400, or 415
for another Content-Type) naming the fault. Decoding and storing the uploads is the attachment store's job;
the checks here are syntactic only (the body's size is capped before parsing, see ``channels.rest.body``).
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl

from assistant.keys import RESERVED_METADATA_KEYS
from channels.rest.errors import ChannelError
from channels.rest.forms import FormError, FormPart, parse_form
from channels.rest.settings import ChannelSettings
from media import AttachmentError
from media.schema import ID_RE

logger = logging.getLogger(__name__)

#: The JSON body's list of uploads (``{"sender", "message", "attachments": [...]}``): a field of the public
#: REST API (README, "REST"), which clients depend on. It spells the same word as the internal metadata key
#: ``assistant.keys.ATTACHMENTS`` but is not that key: renaming the key must not rename the HTTP field.
BODY_ATTACHMENTS = "attachments"
#: Form fields that hold files even when the client sent no file name.
FILE_FIELDS = frozenset({"files", "file", "files[]"})
#: Form fields read as text; any other field without a file name is ignored.
FORM_FIELDS = ("sender", "message", "metadata", "message_id")
#: Parts per multipart body; attachments beyond the store's limit are refused by count.
FORM_MAX_PARTS = 256
#: Longest ``sender`` in characters.
SENDER_MAX_CHARS = 128
#: A client's ``message_id`` (its idempotency key): 1-64 of these characters.
MESSAGE_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

_BASE64_STD_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_BASE64_URLSAFE_RE = re.compile(r"[A-Za-z0-9_-]*={0,2}")


@dataclass
class Upload:
    """One attachment of a request, before storing.

    Attributes:
        kind: ``"base64"`` (JSON ``data``), ``"bytes"`` (a multipart file) or ``"id"`` (an earlier upload).
        payload: The base64 text, the file bytes (``memoryview``), or the 64-hex id.
        name: The client's file name (display only; the store sanitises it).
        declared_mime: The MIME type the client claimed (never trusted).
        declared_type: The attachment type the client claimed, if any (never trusted).
    """

    kind: str
    payload: Any
    name: Optional[str] = None
    declared_mime: Optional[str] = None
    declared_type: Optional[str] = None


@dataclass
class IncomingMessage:
    """A parsed, validated request: who sent what."""

    sender: str
    text: Optional[str]
    metadata: Dict[str, Any] = field(default_factory=dict)
    uploads: List[Upload] = field(default_factory=list)
    #: The client's id for this message (its retries carry the same one), or ``None``.
    message_id: Optional[str] = None


def depth_exceeds(value: Any, max_depth: int) -> bool:
    """Whether nested dicts/lists in ``value`` go deeper than ``max_depth`` levels (no recursion)."""
    stack: List[Tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Sequence[Any] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def looks_like_base64(text: str) -> bool:
    """Whether ``text`` is syntactically base64 (standard or URL-safe alphabet, optional padding, whitespace
    and ``data:...;base64,`` prefix allowed). Decoding and storing is the store's job."""
    text = text.strip()
    if text[:5].lower() == "data:":
        header, comma, text = text.partition(",")
        if not comma or ";base64" not in header.lower():
            return False
    compact = "".join(text.split())
    if len(compact.rstrip("=")) % 4 == 1:
        return False
    return bool(_BASE64_STD_RE.fullmatch(compact) or _BASE64_URLSAFE_RE.fullmatch(compact))


class RequestParser:
    """Turns a request body into an :class:`IncomingMessage`, or raises :class:`ChannelError` (400/415).

    Args:
        settings: The channel's settings (text, metadata and form field limits).
        max_attachments: Most attachments per message (the store's limit).
    """

    def __init__(self, settings: ChannelSettings, max_attachments: int) -> None:
        self.settings = settings
        self.max_attachments = max_attachments

    def parse(self, content_type: str, body: bytes) -> IncomingMessage:
        """Parses a body by its Content-Type: JSON, ``multipart/form-data`` or a URL-encoded form.

        Raises:
            ChannelError: 400 for an empty or malformed body, 415 for any other Content-Type.
        """
        media_type = content_type.split(";", 1)[0].strip().lower()
        if not body:
            raise ChannelError(400, "invalid_request", "The request has no body.")
        if media_type == "application/json":
            return self.parse_json(body)
        if media_type == "multipart/form-data":
            return self.parse_form(body, content_type)
        if media_type == "application/x-www-form-urlencoded":
            return self.parse_urlencoded(body)
        raise ChannelError(
            415,
            "unsupported_media_type",
            "Send the message as application/json or multipart/form-data.",
            detail=f"Content-Type {media_type[:60]!r}",
        )

    # ---- fields --------------------------------------------------------------------------------------
    @staticmethod
    def check_sender(value: Any) -> str:
        """The ``sender`` field: the conversation id, 1-:data:`SENDER_MAX_CHARS` printable characters.

        Raises:
            ChannelError: 400 ``missing_sender`` when it is absent or empty, ``invalid_sender`` when it is not
                a string, too long, blank or has unprintable characters.
        """
        if value is None or value == "":
            raise ChannelError(400, "missing_sender", "Every message needs a 'sender' (the conversation id).")
        if not isinstance(value, str):
            raise ChannelError(400, "invalid_sender", "'sender' must be a string.")
        if len(value) > SENDER_MAX_CHARS or not value.isprintable() or not value.strip():
            raise ChannelError(
                400,
                "invalid_sender",
                f"'sender' must be 1-{SENDER_MAX_CHARS} printable characters.",
            )
        return value

    @staticmethod
    def check_message_id(value: Any) -> Optional[str]:
        """The optional ``message_id`` field: the client's idempotency key, ``None`` when absent or empty.

        A retry with the same sender and ``message_id`` is answered with the first reply, never handled twice.

        Raises:
            ChannelError: 400 ``invalid_message_id`` unless it is 1-64 characters of ``A-Z a-z 0-9 _ . : -``.
        """
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not MESSAGE_ID_RE.fullmatch(value):
            raise ChannelError(
                400, "invalid_message_id", "'message_id' must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', ':', '-'."
            )
        return value

    def check_text(self, value: Any) -> Optional[str]:
        """The ``message`` field: ``None`` when absent (a message of attachments only), else the text as sent.

        Raises:
            ChannelError: 400 ``invalid_message`` when it is not a string, ``message_too_long`` (with the
                friendly text for the customer) when it has more than ``max_text_chars`` characters.
        """
        if value is None:
            return None
        if not isinstance(value, str):
            raise ChannelError(400, "invalid_message", "'message' must be a string.")
        if len(value) > self.settings.max_text_chars:
            raise ChannelError(
                400,
                "message_too_long",
                f"That message is too long for me — please keep it under "
                f"{self.settings.max_text_chars:,} characters.",
            )
        return value

    def check_metadata(self, value: Any) -> Dict[str, Any]:
        """The client's metadata without the keys only the channel and the NLU components may set."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ChannelError(400, "invalid_metadata", "'metadata' must be a JSON object.")
        if depth_exceeds(value, self.settings.max_metadata_depth):
            raise ChannelError(
                400,
                "invalid_metadata",
                f"'metadata' is nested more than {self.settings.max_metadata_depth} levels deep.",
            )
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        if size > self.settings.max_metadata_bytes:
            raise ChannelError(
                400,
                "invalid_metadata",
                f"'metadata' is larger than {self.settings.max_metadata_bytes:,} bytes.",
            )
        dropped = RESERVED_METADATA_KEYS.intersection(value)
        if dropped:
            logger.info("Client metadata keys %s ignored (set by the channel only)", sorted(dropped))
        return {key: item for key, item in value.items() if key not in RESERVED_METADATA_KEYS}

    def check_count(self, count: int) -> None:
        """Refuses a request with more than ``max_attachments`` attachments as a whole.

        Raises:
            ChannelError: 400 ``too_many_attachments``, with the store's friendly ``too_many`` text.
        """
        if count > self.max_attachments:
            raise ChannelError(
                400,
                "too_many_attachments",
                AttachmentError("too_many", f"{count} attachments").user_message,
                detail=f"{count} attachments > {self.max_attachments}",
            )

    # ---- JSON ----------------------------------------------------------------------------------------
    def parse_json(self, body: bytes) -> IncomingMessage:
        """Parses ``{"sender", "message", "metadata"?, "attachments"?}``."""
        try:
            payload = json.loads(body)
        except RecursionError:
            raise ChannelError(400, "invalid_json", "The JSON body is nested too deeply.") from None
        except (ValueError, UnicodeDecodeError) as error:
            raise ChannelError(
                400, "invalid_json", "The request body is not valid JSON.", detail=str(error)[:120]
            ) from None
        if not isinstance(payload, dict):
            raise ChannelError(
                400, "invalid_request", "The JSON body must be an object with 'sender' and 'message'."
            )
        sender = self.check_sender(payload.get("sender"))
        text = self.check_text(payload.get("message"))
        metadata = self.check_metadata(payload.get("metadata"))
        items = payload.get(BODY_ATTACHMENTS)
        if items is None:
            items = []
        if not isinstance(items, list):
            raise ChannelError(400, "invalid_attachments", "'attachments' must be a list of objects.")
        self.check_count(len(items))
        uploads = [self._json_attachment(index, item) for index, item in enumerate(items)]
        return IncomingMessage(sender, text, metadata, uploads, self.check_message_id(payload.get("message_id")))

    @staticmethod
    def _json_attachment(index: int, item: Any) -> Upload:
        where = f"attachments[{index}]"
        if not isinstance(item, dict):
            raise ChannelError(400, "invalid_attachment", f"{where} must be an object.")
        if "url" in item:
            raise ChannelError(
                400,
                "url_not_supported",
                f"{where}: links are not accepted here — send the file itself as base64 'data', "
                "or the 'id' of an earlier upload.",
            )
        for key in ("type", "name", "mime_type"):
            if item.get(key) is not None and not isinstance(item[key], str):
                raise ChannelError(400, "invalid_attachment", f"{where}.{key} must be a string.")
        has_data, has_id = item.get("data") is not None, item.get("id") is not None
        if has_data == has_id:
            raise ChannelError(
                400, "invalid_attachment", f"{where} needs exactly one of 'data' (base64) and 'id'."
            )
        common = dict(
            name=item.get("name"), declared_mime=item.get("mime_type"), declared_type=item.get("type")
        )
        if has_id:
            attachment_id = item["id"]
            if not isinstance(attachment_id, str) or not ID_RE.fullmatch(attachment_id):
                raise ChannelError(
                    400,
                    "invalid_reference",
                    f"{where}.id must be the 64-character lower-case hex id of an earlier upload.",
                )
            return Upload("id", attachment_id, **common)
        data = item["data"]
        if not isinstance(data, str):
            raise ChannelError(400, "invalid_attachment", f"{where}.data must be a base64 string.")
        if not looks_like_base64(data):
            raise ChannelError(400, "invalid_base64", f"{where}.data is not valid base64.")
        return Upload("base64", data, **common)

    # ---- forms ---------------------------------------------------------------------------------------
    def parse_form(self, body: bytes, content_type: str) -> IncomingMessage:
        """Parses ``multipart/form-data`` with fields ``sender``, ``message``, ``metadata`` (JSON text) and
        file parts (any part with a file name, or named ``files``/``file``)."""
        try:
            parts = parse_form(body, content_type, max_parts=FORM_MAX_PARTS)
        except FormError as error:
            raise ChannelError(
                400, "invalid_form", "The request body is not valid multipart/form-data.", detail=str(error)
            ) from None
        values: Dict[str, str] = {}
        files: List[FormPart] = []
        for part in parts:
            if part.filename is not None or part.name in FILE_FIELDS:
                files.append(part)
            elif part.name in FORM_FIELDS and part.name not in values:
                values[part.name] = self._field_text(part.name, part.data)
        return self._from_form(values, files)

    def parse_urlencoded(self, body: bytes) -> IncomingMessage:
        """Parses ``application/x-www-form-urlencoded`` (``sender``, ``message``, ``metadata``; no files)."""
        try:
            pairs = parse_qsl(bytes(body).decode("utf-8"), keep_blank_values=True, max_num_fields=64)
        except (UnicodeDecodeError, ValueError) as error:
            raise ChannelError(
                400,
                "invalid_form",
                "The request body is not a valid URL-encoded form.",
                detail=str(error)[:120],
            ) from None
        values: Dict[str, str] = {}
        for name, value in pairs:
            if name in FORM_FIELDS and name not in values:
                values[name] = self._field_text(name, value.encode("utf-8"))
        return self._from_form(values, [])

    def _field_text(self, name: str, data: bytes) -> str:
        if len(data) > max(self.settings.max_text_chars * 4, self.settings.max_metadata_bytes):
            raise ChannelError(400, "invalid_form", f"The form field '{name}' is too large.")
        return bytes(data).decode("utf-8", errors="replace")

    def _from_form(self, values: Dict[str, str], files: List[FormPart]) -> IncomingMessage:
        sender = self.check_sender(values.get("sender"))
        text = self.check_text(values.get("message"))
        metadata: Dict[str, Any] = {}
        if values.get("metadata", "").strip():
            try:
                metadata_value = json.loads(values["metadata"])
            except RecursionError:
                raise ChannelError(400, "invalid_metadata", "'metadata' is nested too deeply.") from None
            except ValueError:
                raise ChannelError(400, "invalid_metadata", "'metadata' must be a JSON object.") from None
            metadata = self.check_metadata(metadata_value)
        self.check_count(len(files))
        uploads = [
            Upload("bytes", part.data, name=part.filename, declared_mime=part.content_type) for part in files
        ]
        return IncomingMessage(sender, text, metadata, uploads, self.check_message_id(values.get("message_id")))
