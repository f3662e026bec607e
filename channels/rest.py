"""`MultimodalRestInput`: the REST API for text, photos and voice notes, and the web chat page.

Rasa mounts it under ``/webhooks/multimodal/`` when credentials.yml names
``channels.rest.MultimodalRestInput``:

- ``GET  /`` health, ``{"status": "ok"}``;
- ``POST /webhook`` one user message as ``application/json``, ``multipart/form-data`` or a URL-encoded form;
  the answer is the bot's messages as Rasa's REST channel gives them (a JSON list of ``{"recipient_id",
  "text", "buttons", "image", "custom", "attachment"}``);
- ``GET  /files/<id>`` a stored upload by its SHA-256 id, with its stored MIME type;
- ``GET  /chat`` the web chat page (``chat.js`` and ``chat.css`` beside it);
- ``GET  /widget.js`` the one-script-tag embed: a floating button that opens the chat page in an iframe.

Uploads are checked and stored by :class:`media.attachments.AttachmentStore`; the message that reaches
Rasa carries references only: ``metadata = {"attachments": [ref.to_metadata(), ...]}``. Attachments that the
store refuses (damaged, too large, not a photo or voice note, unknown id) do not fail a message that still has
text or another good attachment: they are listed in ``metadata["attachment_problems"]`` as ``{"type", "code",
"message"}`` and the channel puts their friendly message first in the reply. A message left with nothing
usable is answered by the channel itself (HTTP 200, the friendly message as a bot message). Malformed requests
get a 4xx answer ``{"error": {"code", "message"}}``.

Configuration (credentials.yml, every key optional; secrets are never written there)::

    channels.rest.MultimodalRestInput:
      token_env: CHAT_API_TOKEN     # env variable holding the bearer token; unset or empty = no auth
      max_body_bytes: 33554432      # bytes per request, checked from Content-Length and while reading
      upload_rate_per_minute: 20    # attachments per minute per sender; 0 = off
      upload_burst: 20              # attachments a sender may send at once after being idle
      address_rate_per_minute: 120  # attachments per minute per client address (all senders); 0 = off
      address_burst: 60
"""
from __future__ import annotations

import asyncio
import functools
import hmac
import html
import inspect
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Optional, Sequence, Text, Tuple
from urllib.parse import parse_qsl

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.multipart import MultipartError, Part, parse_multipart
from channels.ratelimit import TokenBucketLimiter
from media import (
    AttachmentError,
    AttachmentRef,
    AttachmentStore,
    default_store,
    sanitise_name,
)

logger = logging.getLogger(__name__)

CHANNEL_NAME = "multimodal"
WEB_DIR = Path(__file__).resolve().parent / "web"
MiB = 1024 * 1024

#: Metadata keys that only the channel and the NLU components may set; a client's values are dropped.
RESERVED_METADATA_KEYS = frozenset({"attachments", "attachment_problems", "transcript", "image_labels"})
#: Form fields that hold files even when the client sent no file name.
FILE_FIELDS = frozenset({"files", "file", "files[]"})

_ID_RE = re.compile(r"[0-9a-f]{64}")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BASE64_STD_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_BASE64_URLSAFE_RE = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_SENDER_MAX_CHARS = 128
_FORM_FIELDS = ("sender", "message", "metadata")
_FORM_MAX_PARTS = 256  # parts per multipart body; attachments beyond the store's limit are refused by count
_STREAM_CHUNK_BYTES = 64 * 1024
_PROBLEM_PREFIX_NAME_CHARS = 60

#: MIME types the store produces, and so the only ones a stored file is served with.
SERVED_MIME_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "audio/ogg",
        "audio/webm",
        "audio/mp4",
        "audio/3gpp",
        "audio/mpeg",
        "audio/wav",
        "audio/flac",
        "audio/aac",
    }
)

#: The web chat's static files: URL path (below the channel prefix) -> (file in channels/web/, Content-Type).
WEB_FILES: Dict[str, Tuple[str, str]] = {
    "chat": ("index.html", "text/html; charset=utf-8"),
    "chat.js": ("chat.js", "text/javascript; charset=utf-8"),
    "chat.css": ("chat.css", "text/css; charset=utf-8"),
    "widget.js": ("widget.js", "text/javascript; charset=utf-8"),
}


# --------------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChannelSettings:
    """What credentials.yml may set for the channel (all optional).

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
            ``max_attachments``.
        address_rate_per_minute: Attachments per minute granted to each client address, whatever sender ids
            it uses (default 120; sender ids are chosen by the client). Behind a reverse proxy every client
            has the proxy's address unless Sanic is told to trust forwarded headers (``PROXIES_COUNT``): raise
            this or set it to ``0`` there.
        address_burst: The address's bucket size in attachments (default 60); at least ``max_attachments``.
        web_chat: Whether the chat page and widget are served (default true).
        frame_ancestors: CSP ``frame-ancestors`` sources allowed to embed the chat page in an iframe
            (default ``*``: any site may embed the widget; e.g. ``'self' https://shop.example``).
    """

    token_env: Optional[str] = "CHAT_API_TOKEN"
    max_body_bytes: int = 32 * MiB
    max_text_chars: int = 20_000
    max_metadata_bytes: int = 16 * 1024
    max_metadata_depth: int = 10
    upload_rate_per_minute: float = 20.0
    upload_burst: int = 20
    address_rate_per_minute: float = 120.0
    address_burst: int = 60
    web_chat: bool = True
    frame_ancestors: str = "*"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "ChannelSettings":
        """Builds and checks settings from the channel's credentials.yml section.

        Raises:
            RasaException: naming the key and its valid values for an unknown key or a bad value.
        """
        credentials = dict(credentials or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(credentials) - set(known))
        if unknown:
            raise RasaException(
                f"Unknown key(s) {', '.join(unknown)} for {MultimodalRestInput.__name__} in credentials.yml; "
                f"valid keys: {', '.join(known)}"
            )
        settings = cls(**credentials)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raises RasaException naming the first invalid key."""

        def bad(key: str, valid: str) -> RasaException:
            return RasaException(
                f"{MultimodalRestInput.__name__}: '{key}' is {getattr(self, key)!r}; it must be {valid}"
            )

        if self.token_env not in (None, "") and not (
            isinstance(self.token_env, str) and _ENV_NAME_RE.fullmatch(self.token_env)
        ):
            raise bad("token_env", "an environment variable name such as CHAT_API_TOKEN (not the token)")
        for key, minimum in (
            ("max_body_bytes", 1024),
            ("max_text_chars", 1),
            ("max_metadata_bytes", 2),
            ("max_metadata_depth", 1),
            ("upload_burst", 1),
            ("address_burst", 1),
        ):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise bad(key, f"an integer >= {minimum}")
        for key in ("upload_rate_per_minute", "address_rate_per_minute"):
            rate = getattr(self, key)
            if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate < 0 or math.isnan(rate):
                raise bad(key, "a number >= 0 (attachments per minute; 0 = no limit)")
        if not isinstance(self.web_chat, bool):
            raise bad("web_chat", "true or false")
        if not isinstance(self.frame_ancestors, str) or not self.frame_ancestors.strip() or re.search(
            r"[;,\r\n\x00]", self.frame_ancestors
        ):
            raise bad("frame_ancestors", "CSP sources separated by spaces, e.g. 'self' https://shop.example")


# --------------------------------------------------------------------------------------------------------
# Request parsing
# --------------------------------------------------------------------------------------------------------
class ChannelError(Exception):
    """A refused request: answered with ``status`` and ``{"error": {"code", "message"}}``.

    Attributes:
        status: HTTP status code (4xx).
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


@dataclass
class Upload:
    """One attachment of a request, before storing.

    Attributes:
        kind: ``"base64"`` (JSON ``data``), ``"bytes"`` (a multipart file) or ``"id"`` (an earlier upload).
        payload: The base64 text, the file bytes, or the 64-hex id.
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


def _depth_exceeds(value: Any, max_depth: int) -> bool:
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
    """Turns a request body into an :class:`IncomingMessage`, or raises :class:`ChannelError` (400)."""

    def __init__(self, settings: ChannelSettings, max_attachments: int) -> None:
        self.settings = settings
        self.max_attachments = max_attachments

    # ---- fields --------------------------------------------------------------------------------------
    @staticmethod
    def check_sender(value: Any) -> str:
        if value is None or value == "":
            raise ChannelError(400, "missing_sender", "Every message needs a 'sender' (the conversation id).")
        if not isinstance(value, str):
            raise ChannelError(400, "invalid_sender", "'sender' must be a string.")
        if len(value) > _SENDER_MAX_CHARS or not value.isprintable() or not value.strip():
            raise ChannelError(
                400,
                "invalid_sender",
                f"'sender' must be 1-{_SENDER_MAX_CHARS} printable characters.",
            )
        return value

    def check_text(self, value: Any) -> Optional[str]:
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
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ChannelError(400, "invalid_metadata", "'metadata' must be a JSON object.")
        if _depth_exceeds(value, self.settings.max_metadata_depth):
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
        items = payload.get("attachments")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise ChannelError(400, "invalid_attachments", "'attachments' must be a list of objects.")
        self.check_count(len(items))
        uploads = [self._json_attachment(index, item) for index, item in enumerate(items)]
        return IncomingMessage(sender, text, metadata, uploads)

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
            if not isinstance(attachment_id, str) or not _ID_RE.fullmatch(attachment_id):
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

    # ---- multipart -----------------------------------------------------------------------------------
    def parse_form(self, body: bytes, content_type: str) -> IncomingMessage:
        """Parses ``multipart/form-data`` with fields ``sender``, ``message``, ``metadata`` (JSON text) and
        file parts (any part with a file name, or named ``files``/``file``)."""
        try:
            parts = parse_multipart(body, content_type, max_parts=_FORM_MAX_PARTS)
        except MultipartError as error:
            raise ChannelError(
                400, "invalid_form", "The request body is not valid multipart/form-data.", detail=str(error)
            ) from None
        values: Dict[str, str] = {}
        files: List[Part] = []
        for part in parts:
            if part.filename is not None or part.name in FILE_FIELDS:
                files.append(part)
            elif part.name in _FORM_FIELDS and part.name not in values:
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
            if name in _FORM_FIELDS and name not in values:
                values[name] = self._field_text(name, value.encode("utf-8"))
        return self._from_form(values, [])

    def _field_text(self, name: str, data: bytes) -> str:
        if len(data) > max(self.settings.max_text_chars * 4, self.settings.max_metadata_bytes):
            raise ChannelError(400, "invalid_form", f"The form field '{name}' is too large.")
        return bytes(data).decode("utf-8", errors="replace")

    def _from_form(self, values: Dict[str, str], files: List[Part]) -> IncomingMessage:
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
        return IncomingMessage(sender, text, metadata, uploads)


# --------------------------------------------------------------------------------------------------------
# The channel
# --------------------------------------------------------------------------------------------------------
def _chunks(data: memoryview, size: int = _STREAM_CHUNK_BYTES) -> Iterator[memoryview]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _bot_text(recipient_id: str, text: str) -> Dict[str, Any]:
    return {"recipient_id": recipient_id, "text": text}


class MultimodalRestInput(InputChannel):
    """REST channel for text, photos and voice notes; also serves the web chat page and widget.

    Args:
        settings: Channel settings (see :class:`ChannelSettings`).
        store: Upload store; defaults to :func:`media.attachments.default_store` (``ATTACHMENT_DIR``).
        environ: Where the bearer token is looked up (default ``os.environ``, read per request).
    """

    @classmethod
    def name(cls) -> Text:
        """URL prefix and ``input_channel`` of the messages: ``multimodal``."""
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "MultimodalRestInput":
        """Builds the channel from its credentials.yml section (may be empty)."""
        return cls(ChannelSettings.from_credentials(credentials))

    def __init__(
        self,
        settings: Optional[ChannelSettings] = None,
        store: Optional[AttachmentStore] = None,
        environ: Optional[Dict[str, str]] = None,
    ) -> None:
        self.settings = settings or ChannelSettings()
        self.settings.validate()
        self._store = store
        self._environ = environ
        limits = self.store.limits
        for rate_key, burst_key in (
            ("upload_rate_per_minute", "upload_burst"),
            ("address_rate_per_minute", "address_burst"),
        ):
            burst = getattr(self.settings, burst_key)
            if getattr(self.settings, rate_key) > 0 and burst < limits.max_attachments:
                raise RasaException(
                    f"{type(self).__name__}: '{burst_key}' is {burst}; it must be at least max_attachments "
                    f"({limits.max_attachments}) or a full message could never be sent"
                )
        self.parser = RequestParser(self.settings, limits.max_attachments)
        self.sender_limiter = TokenBucketLimiter(
            self.settings.upload_rate_per_minute, self.settings.upload_burst
        )
        self.address_limiter = TokenBucketLimiter(
            self.settings.address_rate_per_minute, self.settings.address_burst
        )

    @property
    def store(self) -> AttachmentStore:
        """The upload store (the process-wide default unless one was given)."""
        if self._store is None:
            self._store = default_store()
        return self._store

    # ---- auth, limits --------------------------------------------------------------------------------
    def expected_token(self) -> Optional[str]:
        """The bearer token POSTs need, or ``None`` when auth is off (variable unset or empty)."""
        if not self.settings.token_env:
            return None
        environ = os.environ if self._environ is None else self._environ
        return environ.get(self.settings.token_env) or None

    def check_auth(self, request: Request) -> None:
        token = self.expected_token()
        if token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ChannelError(
                401,
                "unauthorized",
                "This endpoint needs 'Authorization: Bearer <token>'.",
                detail="missing or wrong bearer token",
                headers={"WWW-Authenticate": 'Bearer realm="multimodal"'},
            )

    def check_rate(self, request: Request, sender: str, count: int) -> None:
        client = request.remote_addr or request.ip or "unknown"
        wait = max(
            self.sender_limiter.retry_after(sender, count), self.address_limiter.retry_after(client, count)
        )
        if wait <= 0:  # both have the tokens (no await in between: nothing else can spend them meanwhile)
            wait = self.sender_limiter.take_all((sender,), count)
            wait += self.address_limiter.take_all((client,), count)
        if wait > 0:
            seconds = max(1, math.ceil(min(wait, 3600)))
            raise ChannelError(
                429,
                "rate_limited",
                f"You're sending photos and voice notes faster than I can look at them — "
                f"please wait {seconds} seconds and try again.",
                detail=f"{count} attachment(s) from sender {sender[:40]!r} / {client}",
                headers={"Retry-After": str(seconds)},
            )

    # ---- body ----------------------------------------------------------------------------------------
    def _too_large(self, detail: str) -> ChannelError:
        limits = self.store.limits
        return ChannelError(
            413,
            "too_large",
            f"That upload is too big for me — I can take photos up to {limits.image_max_bytes / MiB:g} MB "
            f"and voice notes up to {limits.audio_max_bytes / MiB:g} MB.",
            detail=detail,
        )

    async def read_body(self, request: Request) -> bytearray:
        """Reads the request body, refusing it (413) as soon as it passes ``max_body_bytes``.

        The declared Content-Length is checked before a byte is read, so a 1 GB upload costs nothing.
        """
        cap = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise ChannelError(400, "invalid_request", "Content-Length is not a number.")
            if int(declared) > cap:
                raise self._too_large(f"Content-Length {int(declared)} bytes > {cap} bytes")
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
                    raise self._too_large(f"body passed {cap} bytes while reading")
        if len(body) > cap:
            raise self._too_large(f"body of {len(body)} bytes > {cap} bytes")
        return body

    def parse(self, request: Request, body: bytes) -> IncomingMessage:
        content_type = request.headers.get("content-type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if not body:
            raise ChannelError(400, "invalid_request", "The request has no body.")
        if media_type == "application/json":
            return self.parser.parse_json(body)
        if media_type == "multipart/form-data":
            return self.parser.parse_form(body, content_type)
        if media_type == "application/x-www-form-urlencoded":
            return self.parser.parse_urlencoded(body)
        raise ChannelError(
            415,
            "unsupported_media_type",
            "Send the message as application/json or multipart/form-data.",
            detail=f"Content-Type {media_type[:60]!r}",
        )

    # ---- storing -------------------------------------------------------------------------------------
    def _store_one(self, upload: Upload) -> AttachmentRef:
        store = self.store
        if upload.kind == "id":
            return store.ref_for(upload.payload)
        if upload.kind == "base64":
            return store.save_base64(upload.payload, name=upload.name, declared_mime=upload.declared_mime)
        data: memoryview = upload.payload
        return store.save_stream(
            _chunks(data), name=upload.name, declared_mime=upload.declared_mime, expected_size=len(data)
        )

    async def store_uploads(
        self, uploads: Sequence[Upload]
    ) -> Tuple[List[AttachmentRef], List[Tuple[Upload, AttachmentError]]]:
        """Stores every upload (in a worker thread: the store hashes, writes and runs ffprobe).

        Returns:
            The stored references in request order, and the refused uploads with their errors.
        """
        loop = asyncio.get_running_loop()
        refs: List[AttachmentRef] = []
        problems: List[Tuple[Upload, AttachmentError]] = []
        for upload in uploads:
            try:
                ref = await loop.run_in_executor(None, functools.partial(self._store_one, upload))
            except AttachmentError as error:
                problems.append((upload, error))
                continue
            if upload.declared_type and upload.declared_type != ref.type:
                logger.info(
                    "Attachment declared as %.20s is %s by its content; the content wins",
                    upload.declared_type,
                    ref.type,
                )
            refs.append(ref)
        return refs, problems

    @staticmethod
    def problem_replies(
        sender: str, problems: Sequence[Tuple[Upload, AttachmentError]], n_uploads: int
    ) -> List[Dict[str, Any]]:
        """One bot message per distinct problem; names the file when the message had several."""
        seen = set()
        replies = []
        for upload, error in problems:
            text = error.user_message
            name = (upload.name or "").strip()
            if n_uploads > 1 and name:
                shown = sanitise_name(name) or ""
                if shown:
                    text = f"About “{shown[:_PROBLEM_PREFIX_NAME_CHARS]}”: {text}"
            if text not in seen:
                seen.add(text)
                replies.append(_bot_text(sender, text))
        return replies

    # ---- the webhook ---------------------------------------------------------------------------------
    async def handle_post(
        self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> HTTPResponse:
        """The whole POST: auth, size, parse, rate limit, store, hand to Rasa, collect the replies."""
        body_read = False
        try:
            self.check_auth(request)
            body = await self.read_body(request)
            body_read = True
            incoming = self.parse(request, body)
            if incoming.uploads:
                self.check_rate(request, incoming.sender, len(incoming.uploads))
        except ChannelError as error:
            logger.warning(
                "Multimodal request refused (%s %s): %s",
                error.status,
                error.code,
                error.detail or error.message,
            )
            if not body_read:
                self._stop_reading(request)
            return error.to_response()

        refs, problems = await self.store_uploads(incoming.uploads)
        del body  # the request's bytes are not needed any more
        replies = self.problem_replies(incoming.sender, problems, len(incoming.uploads))
        has_text = bool((incoming.text or "").strip())
        if problems and not has_text and not refs:
            return response.json(replies)

        metadata = dict(incoming.metadata)
        if refs:
            metadata["attachments"] = [ref.to_metadata() for ref in refs]
        if problems:
            metadata["attachment_problems"] = [error.to_problem() for _, error in problems]
        collector = CollectingOutputChannel()
        message = UserMessage(
            incoming.text or "",  # photo/voice-only: Rasa's NLU components need a string, never None
            collector,
            incoming.sender,
            input_channel=self.name(),
            metadata=metadata or None,
        )
        try:
            await on_new_message(message)
        except asyncio.CancelledError:
            logger.error("Multimodal message from %.40s timed out in the bot", incoming.sender)
            if not collector.messages:
                return self._internal_error()
        except Exception:
            logger.exception("Multimodal message from %.40s failed in the bot", incoming.sender)
            if not collector.messages:
                return self._internal_error()
        return response.json(replies + collector.messages)

    @staticmethod
    def _stop_reading(request: Request) -> None:
        """Answer without reading the rest of a refused body: Sanic would otherwise drain up to its own
        ``REQUEST_MAX_SIZE`` (100 MB) after the response. The connection is closed instead."""
        stream = request.stream
        if stream is not None and hasattr(stream, "request_max_size"):
            stream.request_max_size = 0
            stream.keep_alive = False

    @staticmethod
    def _internal_error() -> HTTPResponse:
        return ChannelError(
            500, "internal_error", "Sorry, something went wrong on my side — please try again in a moment."
        ).to_response()

    # ---- files and the web page ----------------------------------------------------------------------
    async def serve_file(self, file_id: str) -> HTTPResponse:
        """A stored upload by id, with its stored MIME type; 404 for anything else."""
        not_found = ChannelError(404, "not_found", "No such file.")
        if not _ID_RE.fullmatch(file_id or ""):
            logger.info("File request refused: not an upload id")
            return not_found.to_response()
        loop = asyncio.get_running_loop()
        try:
            info = await loop.run_in_executor(None, self.store.info, file_id)
            data = await loop.run_in_executor(None, self.store.read, file_id)
        except AttachmentError:
            return not_found.to_response()
        mime = info.get("mime_type")
        if mime not in SERVED_MIME_TYPES:
            mime = "application/octet-stream"
        return response.raw(
            data,
            content_type=mime,
            headers={
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "Cache-Control": "private, max-age=31536000, immutable",
                "Content-Disposition": "inline",
            },
        )

    def _page_headers(self, path: str) -> Dict[str, str]:
        headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
        if path == "chat":
            headers["Content-Security-Policy"] = (
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data: https:; "
                "media-src 'self' blob:; connect-src 'self'; form-action 'none'; base-uri 'none'; "
                f"frame-ancestors {self.settings.frame_ancestors}"
            )
            headers["Referrer-Policy"] = "no-referrer"
        if path == "widget.js":
            headers["Cross-Origin-Resource-Policy"] = "cross-origin"
        return headers

    @staticmethod
    def load_web_files() -> Dict[str, bytes]:
        """The static files of the web chat, read once (a fixed list: no path from a request is ever used)."""
        return {path: (WEB_DIR / filename).read_bytes() for path, (filename, _) in WEB_FILES.items()}

    # ---- blueprint -----------------------------------------------------------------------------------
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The channel's routes (see the module docstring)."""
        module = inspect.getmodule(self)
        bp = Blueprint(f"multimodal_webhook_{type(self).__name__}", module.__name__ if module else None)

        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        async def receive(request: Request) -> HTTPResponse:
            return await self.handle_post(request, on_new_message)

        async def get_file(request: Request, file_id: str) -> HTTPResponse:
            return await self.serve_file(file_id)

        bp.add_route(health, "/", methods=["GET"], name="health")
        bp.add_route(receive, "/webhook", methods=["POST"], name="receive", stream=True)
        bp.add_route(get_file, "/files/<file_id:str>", methods=["GET"], name="file")

        if self.settings.web_chat:
            web_files = self.load_web_files()

            def static_handler(path: str) -> Callable[[Request], Awaitable[HTTPResponse]]:
                content_type = WEB_FILES[path][1]
                body = web_files[path]

                async def handler(request: Request) -> HTTPResponse:
                    data = body
                    if path == "chat":
                        # Links in the page are made absolute to this prefix, whatever the trailing slash.
                        base = request.path.rstrip("/")
                        base = base[: base.rfind("/") + 1]
                        data = body.replace(b"__BASE__", html.escape(base, quote=True).encode("utf-8"))
                    return response.raw(data, content_type=content_type, headers=self._page_headers(path))

                return handler

            for index, path in enumerate(WEB_FILES):
                bp.add_route(static_handler(path), f"/{path}", methods=["GET"], name=f"web_{index}")
        return bp
