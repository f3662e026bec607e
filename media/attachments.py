"""Attachment references: schema, content-addressed store and guarded URL fetcher.

Every channel and NLU component goes through this module to turn what a client sent into bytes:

* :class:`AttachmentRef` is the reference carried in message metadata (never the bytes themselves).
* :func:`parse_attachments` reads references out of metadata of any shape without raising.
* :class:`AttachmentStore` keeps uploads under ``root/<id[:2]>/<id>`` where ``id`` is the SHA-256 of the
  content, plus a JSON sidecar ``<id>.json``; it also downloads platform-hosted files (:meth:`fetch_url`).
* :func:`sniff` tells images from audio by looking at the content only: Pillow identifies images (header
  only, no pixel decoding), ``ffprobe`` identifies audio. File names and declared MIME types are ignored.

Every rejection is an :class:`AttachmentError` carrying a machine-readable ``code`` and a ``user_message``
that can be sent to the customer as is; the store and :func:`parse_attachments` log one line per rejected
attachment.
"""
from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import io
import ipaddress
import json
import logging
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Literal, Mapping, Optional, Tuple, TypeVar, Union
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from pydantic import BaseModel, Extra, Field, ValidationError, root_validator, validator
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from assistant.paths import PROJECT_ROOT, VAR_DIR

logger = logging.getLogger(__name__)

__all__ = [
    "AttachmentError",
    "AttachmentLimits",
    "AttachmentRef",
    "AttachmentStore",
    "ERROR_CODES",
    "default_store",
    "parse_attachments",
    "sniff",
]

MiB = 1024 * 1024
DEFAULT_ATTACHMENT_DIR = VAR_DIR / "uploads"

AttachmentType = Literal["image", "audio"]

_ID_RE = re.compile(r"[0-9a-f]{64}")
_MIME_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_HOST_PATTERN_RE = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_HOSTNAME_RE = re.compile(r"[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)*")
_URL_FORBIDDEN_CHARS_RE = re.compile(r"[\s\\\x00-\x1f\x7f]")
_NAME_MAX_CHARS = 120
_URL_MAX_CHARS = 2048
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK_BYTES = 64 * 1024
_FFPROBE_TIMEOUT_S = 10.0

# Pillow plugins that may open an upload, and the MIME type of each format Pillow reports. Pillow's JPEG
# plugin reports multi-picture JPEGs from phone cameras as "MPO"; they are JPEG files.
_IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
_IMAGE_MIME = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
# FFmpeg demuxers that may open an upload (everything else, e.g. playlists that reference other files or
# URLs, is refused by ffprobe itself through -format_whitelist), and the MIME type each one maps to.
_AUDIO_DEMUXER_MIME = {
    "ogg": "audio/ogg",
    "matroska": "audio/webm",
    "webm": "audio/webm",
    "mov": "audio/mp4",
    "mp4": "audio/mp4",
    "m4a": "audio/mp4",
    "3gp": "audio/3gpp",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "aac": "audio/aac",
}
# ffprobe's probe score runs 1..100; at or below 25 FFmpeg itself warns "misdetection possible".
_AUDIO_MIN_PROBE_SCORE = 26

ERROR_CODES = (
    "too_large",
    "too_many",
    "unsupported_type",
    "damaged",
    "empty",
    "not_found",
    "forbidden_url",
    "fetch_failed",
    "invalid_reference",
    "no_speech",
    "too_long",
)


# --------------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------------
def _what(attachment_type: Optional[str]) -> str:
    return {"image": "photo", "audio": "voice note"}.get(attachment_type or "", "file")


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / MiB:g} MB"


def _default_user_message(code: str, attachment_type: Optional[str], limits: "AttachmentLimits") -> str:
    what = _what(attachment_type)
    if code == "too_large":
        if attachment_type == "image":
            return (
                f"That photo is too big for me — I can take photos up to {_mb(limits.image_max_bytes)} "
                f"and {limits.image_max_pixels / 1e6:g} megapixels. Could you send a smaller one?"
            )
        if attachment_type == "audio":
            return (
                f"That voice note is too big for me — I can take voice notes up to "
                f"{_mb(limits.audio_max_bytes)}. Could you send a shorter one?"
            )
        return (
            f"That file is too big for me — I can take photos up to {_mb(limits.image_max_bytes)} and "
            f"voice notes up to {_mb(limits.audio_max_bytes)}."
        )
    if code == "too_long":
        return (
            f"That voice note is longer than I can listen to ({limits.audio_max_seconds:g} seconds at most) "
            "— could you send a shorter one?"
        )
    messages = {
        "too_many": (
            f"I can look at up to {limits.max_attachments} attachments in one message — "
            "could you send the rest in another message?"
        ),
        "unsupported_type": (
            "I can read photos (JPEG, PNG, WebP, GIF) and voice notes up to "
            f"{_mb(limits.audio_max_bytes)} — could you send it in one of those formats?"
        ),
        "damaged": f"That file looks damaged — could you send the {what} again?",
        "empty": f"That {what} arrived empty — could you send it again?",
        "not_found": f"I couldn't find that {what} any more — could you send it again?",
        "forbidden_url": (
            "I can't open files from that link — could you attach the photo or voice note directly?"
        ),
        "fetch_failed": f"I couldn't download that {what} — could you try sending it again?",
        "invalid_reference": (
            "Something went wrong with that attachment on the way to me — could you send it again?"
        ),
        "no_speech": "I couldn't hear anything in that voice note — could you record it again?",
    }
    return messages[code]


class AttachmentError(Exception):
    """A rejected attachment.

    Attributes:
        code: One of :data:`ERROR_CODES` (e.g. ``"too_large"``), stable for programs and metrics.
        user_message: Friendly text for the customer that says what to do next.
        detail: Technical cause for the log; never contains file bytes, bot tokens or full URLs.
        attachment_type: ``"image"``, ``"audio"`` or ``None`` when the type is not known (yet).
    """

    def __init__(
        self,
        code: str,
        detail: str = "",
        *,
        user_message: Optional[str] = None,
        attachment_type: Optional[str] = None,
        limits: Optional["AttachmentLimits"] = None,
    ) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown attachment error code {code!r}; valid codes: {', '.join(ERROR_CODES)}")
        self.code = code
        self.detail = detail
        self.attachment_type = attachment_type
        self.user_message = user_message or _default_user_message(
            code, attachment_type, limits or AttachmentLimits()
        )
        self.logged = False
        super().__init__(code, detail)

    def __str__(self) -> str:
        kind = f" {self.attachment_type}" if self.attachment_type else ""
        return f"{self.code}{kind}: {self.detail}" if self.detail else f"{self.code}{kind}"

    def __repr__(self) -> str:
        return f"AttachmentError({self.code!r}, {self.detail!r})"

    def to_problem(self) -> Dict[str, Optional[str]]:
        """The ``attachment_problems`` entry for a message: ``{"type", "code", "message"}``."""
        return {"type": self.attachment_type, "code": self.code, "message": self.user_message}


def _log_rejection(error: AttachmentError) -> AttachmentError:
    """Log one line for a rejected attachment unless it was logged already; returns the error."""
    if not error.logged:
        logger.warning("Attachment rejected (%s)", error)
        error.logged = True
    return error


_F = TypeVar("_F", bound=Callable[..., Any])


def _logs_rejections(method: _F) -> _F:
    """Decorator for public store methods: every AttachmentError leaving them is logged exactly once."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except AttachmentError as error:
            raise _log_rejection(error)

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------------------
class AttachmentLimits(BaseModel):
    """Limits applied to every attachment. All sizes are in bytes, durations in seconds.

    Attributes:
        image_max_bytes: Largest photo file in bytes (default 10 MiB = 10,485,760 bytes).
        image_max_pixels: Largest photo in pixels, width × height, checked from the header before any
            decoding (default 40,000,000 = 40 megapixels). Pillow's own guard refuses more than about
            179 M pixels whatever this says.
        audio_max_bytes: Largest voice note file in bytes (default 20 MiB = 20,971,520 bytes).
        audio_max_seconds: Longest voice note in seconds (default 120 s).
        max_attachments: Most attachments read from one message; the rest are dropped with a ``too_many``
            problem (default 10).
        url_timeout_s: Wall-clock budget in seconds for one :meth:`AttachmentStore.fetch_url` call, all
            redirects and the whole body included (default 10 s).
        url_max_redirects: Most redirects followed by one fetch, each one re-checked (default 3).
        url_allowed_hosts: Host names a URL may point to: exact names (``api.telegram.org``) or
            ``*.domain`` for any sub-domain of ``domain`` (``*.fbcdn.net``). Default: the Messenger and
            Telegram file CDNs.
    """

    image_max_bytes: int = Field(10 * MiB, gt=0, description="bytes")
    image_max_pixels: int = Field(40_000_000, gt=0, description="pixels (width × height)")
    audio_max_bytes: int = Field(20 * MiB, gt=0, description="bytes")
    audio_max_seconds: float = Field(120.0, gt=0, description="seconds")
    max_attachments: int = Field(10, gt=0, description="attachments per message")
    url_timeout_s: float = Field(10.0, gt=0, description="seconds, whole fetch")
    url_max_redirects: int = Field(3, ge=0, description="redirects per fetch")
    url_allowed_hosts: Tuple[str, ...] = Field(
        ("*.fbcdn.net", "*.fbsbx.com", "api.telegram.org"),
        description="exact host names or *.domain patterns",
    )

    class Config:
        extra = Extra.forbid
        allow_mutation = False

    @validator("url_allowed_hosts", pre=True)
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part for part in value.replace(",", " ").split() if part)
        return value

    @validator("url_allowed_hosts", each_item=True)
    def _check_host_pattern(cls, value: str) -> str:
        pattern = value.strip().lower().rstrip(".")
        if not _HOST_PATTERN_RE.fullmatch(pattern):
            raise ValueError(
                f"{value!r} is not a host name or '*.domain' pattern (no scheme, port, path or bare '*')"
            )
        return pattern

    @property
    def max_upload_bytes(self) -> int:
        """The largest upload of any type, in bytes: what is accepted before the content type is known."""
        return max(self.image_max_bytes, self.audio_max_bytes)

    def max_bytes_for(self, attachment_type: str) -> int:
        """The byte limit for ``"image"`` or ``"audio"``."""
        return self.image_max_bytes if attachment_type == "image" else self.audio_max_bytes

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` (lower case, no port) matches :attr:`url_allowed_hosts`."""
        host = host.lower().rstrip(".")
        for pattern in self.url_allowed_hosts:
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]):
                    return True
            elif host == pattern:
                return True
        return False


def sanitise_name(name: Any) -> Optional[str]:
    """A display-only file name: last path component, no control or separator characters, ≤ 120 chars.

    Returns ``None`` for anything that is not a string or leaves nothing printable.
    """
    if not isinstance(name, str):
        return None
    text = unicodedata.normalize("NFC", name[:4096]).replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = text.strip().lstrip(".").strip()
    if len(text) > _NAME_MAX_CHARS:
        stem, ext = os.path.splitext(text)
        text = stem[: _NAME_MAX_CHARS - len(ext)] + ext if len(ext) <= 10 else text[:_NAME_MAX_CHARS]
    return text or None


def _normalise_mime(value: Any) -> Optional[str]:
    if not isinstance(value, str):
        return None
    mime = value.split(";", 1)[0].strip().lower()
    return mime if _MIME_RE.fullmatch(mime) else None


class AttachmentRef(BaseModel):
    """A reference to one attachment as carried in message metadata.

    Exactly one of ``id`` (an upload in the store) and ``url`` (a file hosted by the platform) is set.
    ``mime_type``, ``size`` and ``name`` are informative only when they come from a client: the store
    derives the real type from the content.

    Attributes:
        type: ``"image"`` or ``"audio"``.
        id: SHA-256 of the content, 64 lower-case hex characters.
        url: ``https://`` URL of a platform-hosted file (≤ 2048 characters).
        mime_type: MIME type without parameters, e.g. ``"image/jpeg"``; malformed values become ``None``.
        size: Size in bytes.
        name: Display name only (sanitised, never used as a path).
    """

    type: AttachmentType
    id: Optional[str] = None
    url: Optional[str] = None
    mime_type: Optional[str] = None
    size: Optional[int] = Field(None, ge=0, description="bytes")
    name: Optional[str] = None

    class Config:
        extra = Extra.ignore
        allow_mutation = False

    @validator("id")
    def _check_id(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not _ID_RE.fullmatch(value):
            raise ValueError("id must be 64 lower-case hex characters (a SHA-256)")
        return value

    @validator("url")
    def _check_url(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        if len(value) > _URL_MAX_CHARS or _URL_FORBIDDEN_CHARS_RE.search(value):
            raise ValueError("url is too long or contains whitespace, backslashes or control characters")
        parts = urlsplit(value)
        if parts.scheme.lower() != "https" or not parts.hostname:
            raise ValueError("url must be an https:// URL with a host")
        return value

    @validator("mime_type", pre=True)
    def _check_mime(cls, value: Any) -> Optional[str]:
        return _normalise_mime(value)

    @validator("name", pre=True)
    def _check_name(cls, value: Any) -> Optional[str]:
        return sanitise_name(value)

    @root_validator(skip_on_failure=True)
    def _exactly_one_source(cls, values: Dict[str, Any]) -> Dict[str, Any]:
        if (values.get("id") is None) == (values.get("url") is None):
            raise ValueError("exactly one of id and url must be given")
        return values

    def to_metadata(self) -> Dict[str, Any]:
        """The JSON-ready dict a channel puts in ``metadata["attachments"]`` (``None`` fields left out)."""
        return self.dict(exclude_none=True)


# --------------------------------------------------------------------------------------------------------
# Content sniffing
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Media:
    type: str
    mime: str
    width: Optional[int] = None  # pixels
    height: Optional[int] = None  # pixels
    duration_s: Optional[float] = None  # seconds


def _image_format_by_signature(data: bytes) -> Optional[str]:
    """The allowed Pillow format whose own signature check accepts ``data``'s first bytes, if any."""
    from PIL import Image

    Image.init()
    prefix = data[:64]
    for fmt in _IMAGE_FORMATS:
        entry = Image.OPEN.get(fmt)
        if entry is None:
            continue
        accept = entry[1]
        try:
            if accept is not None and accept(prefix) is True:
                return fmt
        except Exception:  # a plugin's signature check must never take the caller down
            continue
    return None


def _sniff_image(data: bytes) -> Optional[str]:
    """Pillow's format name for an allowed image format, or ``None`` when the content is not one."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=_IMAGE_FORMATS) as image:
            return image.format if image.format in _IMAGE_MIME else None
    except Exception:  # UnidentifiedImageError, DecompressionBombError, or a plugin choking on the header
        return _image_format_by_signature(data)


def _inspect_image(data: bytes, limits: AttachmentLimits) -> _Media:
    """Identify, check the pixel limit from the header, then decode (JPEG at 1/8 scale) to catch damage.

    Raises:
        AttachmentError: ``too_large`` (pixels), ``damaged`` or ``unsupported_type``.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=_IMAGE_FORMATS) as image:
            fmt = image.format or ""
            width, height = image.size
            if width * height > limits.image_max_pixels:
                raise AttachmentError(
                    "too_large",
                    f"{width}x{height} = {width * height} pixels > {limits.image_max_pixels} pixels",
                    attachment_type="image",
                    limits=limits,
                )
            if fmt in ("JPEG", "MPO"):
                image.draft(None, (1, 1))  # decode every block, but at 1/8 scale: same check, 1/64 memory
            image.load()
    except AttachmentError:
        raise
    except Image.DecompressionBombError as error:
        raise AttachmentError("too_large", f"pixel count: {error}", attachment_type="image", limits=limits)
    except UnidentifiedImageError:
        fmt = _image_format_by_signature(data)
        if fmt is None:
            raise AttachmentError("unsupported_type", "not an image", limits=limits) from None
        raise AttachmentError(
            "damaged",
            f"{fmt} signature but Pillow cannot read the header",
            attachment_type="image",
            limits=limits,
        ) from None
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, EOFError, struct.error ...
        raise AttachmentError(
            "damaged",
            f"image does not decode: {type(error).__name__}: {error}",
            attachment_type="image",
            limits=limits,
        ) from None
    return _Media("image", _IMAGE_MIME[fmt], width=width, height=height)


def _ffprobe_binary() -> Optional[str]:
    return shutil.which("ffprobe")


def _run_ffprobe(path: Path, entries_args: List[str]) -> subprocess.CompletedProcess:
    """Run ffprobe on a local file with protocols limited to ``file`` and demuxers to the audio allow-list."""
    binary = _ffprobe_binary()
    if binary is None:
        raise AttachmentError("unsupported_type", "ffprobe is not installed; audio cannot be identified")
    command = [
        binary,
        "-hide_banner",
        "-loglevel",
        "error",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        ",".join(_AUDIO_DEMUXER_MIME),
        *entries_args,
        "-i",
        f"file:{path}",
    ]
    try:
        return subprocess.run(
            command, capture_output=True, timeout=_FFPROBE_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise AttachmentError(
            "damaged", f"ffprobe took longer than {_FFPROBE_TIMEOUT_S:g} s", attachment_type="audio"
        ) from None
    except OSError as error:
        raise AttachmentError("unsupported_type", f"ffprobe could not run: {error}") from None


def _ffprobe_failure(stderr: bytes) -> AttachmentError:
    """Tell "an audio container we accept, but broken" (damaged) from "something else" (unsupported)."""
    text = re.sub(r"file:\S+?: ", "", stderr.decode("utf-8", "replace"))  # temp paths say nothing useful
    first_line = text.strip().splitlines()[0][:200] if text.strip() else "no output"
    for demuxer in re.findall(r"^\[([\w,]+) @", text, flags=re.MULTILINE):
        if any(name in _AUDIO_DEMUXER_MIME for name in demuxer.split(",")) and "not on whitelist" not in text:
            return AttachmentError("damaged", f"ffprobe: {first_line}", attachment_type="audio")
    return AttachmentError("unsupported_type", f"neither a supported image nor audio (ffprobe: {first_line})")


def _audio_duration_from_packets(path: Path) -> float:
    """Duration in seconds from the packet timestamps, for containers without a duration header."""
    result = _run_ffprobe(
        path, ["-select_streams", "a:0", "-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0"]
    )
    if result.returncode != 0:
        raise _ffprobe_failure(result.stderr)
    end = 0.0
    for line in result.stdout.decode("ascii", "replace").splitlines():
        fields = line.strip().strip(",").split(",")
        try:
            pts = float(fields[0])
            duration = float(fields[1]) if len(fields) > 1 and fields[1] not in ("", "N/A") else 0.0
        except (ValueError, IndexError):
            continue
        end = max(end, pts + duration)
    return end


def _probe_audio_file(path: Path) -> _Media:
    """Identify an audio file with ffprobe and measure its duration in seconds.

    Raises:
        AttachmentError: ``unsupported_type`` (not an accepted audio container, or video), ``damaged``.
    """
    result = _run_ffprobe(
        path,
        [
            "-show_entries",
            "format=format_name,duration,probe_score:stream=codec_type,codec_name,duration"
            ":stream_disposition=attached_pic",
            "-of",
            "json",
        ],
    )
    if result.returncode != 0:
        raise _ffprobe_failure(result.stderr)
    try:
        report = json.loads(result.stdout.decode("utf-8", "replace") or "{}")
    except ValueError:
        raise AttachmentError("damaged", "ffprobe printed unreadable JSON", attachment_type="audio") from None
    fmt = report.get("format") or {}
    demuxers = str(fmt.get("format_name", "")).split(",")
    mime = next((_AUDIO_DEMUXER_MIME[name] for name in demuxers if name in _AUDIO_DEMUXER_MIME), None)
    if mime is None:
        raise AttachmentError("unsupported_type", f"container {fmt.get('format_name')!r} is not accepted")
    try:
        score = int(fmt.get("probe_score", 0))
    except (TypeError, ValueError):
        score = 0
    if score < _AUDIO_MIN_PROBE_SCORE:
        raise AttachmentError("unsupported_type", f"{demuxers[0]} detected only with probe score {score}")
    streams = report.get("streams") or []
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    video = [
        s for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    if video:
        raise AttachmentError("unsupported_type", "the file contains video")
    if not audio:
        raise AttachmentError("unsupported_type", f"{demuxers[0]} container without an audio stream")
    if not audio[0].get("codec_name"):
        raise AttachmentError("damaged", "audio stream with an unknown codec", attachment_type="audio")
    try:
        duration = float(fmt["duration"])
    except (KeyError, TypeError, ValueError):
        duration = _audio_duration_from_packets(path)
    return _Media("audio", mime, duration_s=duration)


def _probe_audio_bytes(data: bytes) -> _Media:
    with tempfile.NamedTemporaryFile(prefix="attachment-probe-") as handle:
        handle.write(data)
        handle.flush()
        return _probe_audio_file(Path(handle.name))


def sniff(data: bytes) -> Tuple[str, str]:
    """Identify an upload from its content alone; the file name and declared MIME type play no part.

    Images are identified by Pillow from the header (pixels are not decoded): JPEG, PNG, WebP, GIF. Audio
    is identified by ``ffprobe`` (containers OGG, WebM/Matroska, MP4/M4A, 3GP, MP3, WAV, FLAC, AAC).

    Args:
        data: The whole file.

    Returns:
        ``(type, mime)``, e.g. ``("image", "image/jpeg")`` or ``("audio", "audio/ogg")``.

    Raises:
        AttachmentError: ``empty`` for zero bytes, ``unsupported_type`` for anything else (text, PDF,
            video, unknown formats, or audio when ffprobe is missing), ``damaged`` for an accepted audio
            container whose header is broken.
    """
    if not data:
        raise AttachmentError("empty", "zero bytes")
    fmt = _sniff_image(data)
    if fmt is not None:
        return "image", _IMAGE_MIME[fmt]
    media = _probe_audio_bytes(data)
    return media.type, media.mime


# --------------------------------------------------------------------------------------------------------
# URL safety
# --------------------------------------------------------------------------------------------------------
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def _is_public_address(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses (IPv4-in-IPv6 forms judged by the inner IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return False  # ::ffff:a.b.c.d never comes from a real AAAA record; refuse every mapped form
        embedded: Optional[ipaddress.IPv4Address] = address.sixtofour
        if address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not _is_public_address(embedded):
            return False
        if address.is_site_local:
            return False
    elif address in _CGNAT:
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _parse_ip(text: str) -> Optional[IPAddress]:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _resolve_public(host: str, port: int) -> List[str]:
    """Resolve ``host`` and return its addresses, refusing if any of them is not public.

    Raises:
        AttachmentError: ``forbidden_url`` for a private/loopback/link-local/... address,
            ``fetch_failed`` when the name does not resolve.
    """
    literal = _parse_ip(host.strip("[]"))
    if literal is not None:
        if not _is_public_address(literal):
            raise AttachmentError("forbidden_url", f"address {literal} is not public")
        return [str(literal)]
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as error:
        raise AttachmentError("fetch_failed", f"cannot resolve {host}: {error}") from None
    addresses: List[str] = []
    for info in infos:
        address = _parse_ip(str(info[4][0]))
        if address is None or not _is_public_address(address):
            raise AttachmentError("forbidden_url", f"{host} resolves to non-public address {info[4][0]}")
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise AttachmentError("fetch_failed", f"{host} resolves to no address")
    return addresses


def _redact(url: str) -> str:
    """Scheme and host only, for logs: Telegram file URLs carry the bot token in the path."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or '?'}/…"
    except ValueError:
        return "<unparseable url>"


def _checked_url(url: Any, limits: AttachmentLimits) -> Tuple[str, str, int]:
    """Validate a URL without touching the network; returns ``(normalised url, host, port)``.

    Raises:
        AttachmentError: ``forbidden_url`` for anything but ``https://`` to an allowed host on port 443.
    """
    if not isinstance(url, str) or not url or len(url) > _URL_MAX_CHARS:
        raise AttachmentError("forbidden_url", "not a URL string of at most 2048 characters")
    if _URL_FORBIDDEN_CHARS_RE.search(url):
        raise AttachmentError("forbidden_url", "URL contains whitespace, backslashes or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise AttachmentError("forbidden_url", f"unparseable URL: {error}") from None
    if parts.scheme.lower() != "https":
        raise AttachmentError("forbidden_url", f"scheme {parts.scheme or '(none)'!r} is not https")
    if "@" in parts.netloc:
        raise AttachmentError("forbidden_url", "URL carries credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise AttachmentError("forbidden_url", "URL has no host")
    if port not in (None, 443):
        raise AttachmentError("forbidden_url", f"port {port} is not 443")
    if _parse_ip(host) is not None:
        if not _is_public_address(_parse_ip(host)):  # type: ignore[arg-type]
            raise AttachmentError("forbidden_url", f"address {host} is not public")
        raise AttachmentError("forbidden_url", f"IP address {host} instead of an allowed host name")
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise AttachmentError("forbidden_url", "host is not a valid domain name") from None
    if not _HOSTNAME_RE.fullmatch(host):
        raise AttachmentError("forbidden_url", f"host {host!r} is not a valid domain name")
    if host == "localhost" or host.endswith(".localhost"):
        raise AttachmentError("forbidden_url", f"host {host} is local")
    if not limits.host_allowed(host):
        raise AttachmentError("forbidden_url", f"host {host} is not in url_allowed_hosts")
    normalised = urlunsplit(("https", host, parts.path or "/", parts.query, ""))
    return normalised, host, 443


class _PublicOnlyHTTPSConnection(HTTPSConnection):
    """urllib3 connection that resolves the host itself and connects only to a checked public address.

    The address is checked at connect time, so a DNS answer that changes between the check in
    :meth:`AttachmentStore.fetch_url` and the connection (DNS rebinding) cannot reach a private address.
    TLS still verifies the certificate against the host name.
    """

    def _new_conn(self) -> socket.socket:
        addresses = _resolve_public(self._dns_host.rstrip("."), self.port)
        last_error: Optional[OSError] = None
        for address in addresses:
            try:
                sock = urllib3_connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except socket.timeout as error:
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out: {error}") from error
            except OSError as error:
                last_error = error
                continue
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {last_error}")


class _PublicOnlyHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _PublicOnlyHTTPSConnection


class _PublicOnlyAdapter(HTTPAdapter):
    """Transport adapter whose HTTPS connections only ever reach public addresses."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"https": _PublicOnlyHTTPSConnectionPool}


class _RefusingAdapter(requests.adapters.BaseAdapter):
    """Mounted for ``http://``: plain HTTP never leaves the process."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        raise AttachmentError("forbidden_url", "plain http is refused")

    def close(self) -> None:
        pass


def make_guarded_session() -> requests.Session:
    """A requests session for platform files: no proxies or .netrc from the environment, no cookies,
    HTTPS connections only to public addresses, plain HTTP refused."""
    session = requests.Session()
    session.trust_env = False
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    session.mount("https://", _PublicOnlyAdapter(max_retries=0))
    session.mount("http://", _RefusingAdapter())
    session.headers.update({"Accept-Encoding": "identity", "User-Agent": "shop-assistant-attachments/1"})
    return session


# --------------------------------------------------------------------------------------------------------
# Store
# --------------------------------------------------------------------------------------------------------
class AttachmentStore:
    """Content-addressed upload store: ``root/<id[:2]>/<id>`` plus a JSON sidecar ``<id>.json``.

    ``id`` is the SHA-256 of the content (64 lower-case hex characters). The sidecar holds ``type``,
    ``mime_type``, ``size`` (bytes), ``name`` (sanitised), and ``width``/``height`` (pixels) or
    ``duration_s`` (seconds). Writes go to ``root/.tmp`` and are renamed into place, so readers never see
    a partial file, and saving the same content twice stores it once.

    Args:
        root: Directory of the store; created if missing. Resolved once (a symlinked root is fine).
        limits: Size, pixel, duration and URL limits; defaults to :class:`AttachmentLimits` defaults.
        session: requests session used by :meth:`fetch_url`; defaults to :func:`make_guarded_session`.
    """

    def __init__(
        self,
        root: Union[str, os.PathLike],
        limits: Optional[AttachmentLimits] = None,
        session: Optional[requests.Session] = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.limits = limits or AttachmentLimits()
        self._session = session
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "AttachmentStore":
        """Build a store from the environment.

        ``ATTACHMENT_DIR``: store directory (default ``<project root>/var/uploads``; a relative path is
        taken relative to the project root). ``ATTACHMENT_ALLOWED_HOSTS``: comma- or space-separated
        host patterns replacing the default allow-list.
        """
        env = os.environ if environ is None else environ
        root = Path(env.get("ATTACHMENT_DIR") or DEFAULT_ATTACHMENT_DIR)
        if not root.is_absolute():
            root = PROJECT_ROOT / root
        hosts = env.get("ATTACHMENT_ALLOWED_HOSTS")
        limits = AttachmentLimits(url_allowed_hosts=hosts) if hosts else AttachmentLimits()
        return cls(root, limits)

    @property
    def session(self) -> requests.Session:
        """The HTTP session used by :meth:`fetch_url` (created on first use)."""
        if self._session is None:
            self._session = make_guarded_session()
        return self._session

    def __repr__(self) -> str:
        return f"AttachmentStore({str(self.root)!r})"

    # ---- saving ------------------------------------------------------------------------------------------
    @_logs_rejections
    def save(
        self, data: bytes, name: Optional[str] = None, declared_mime: Optional[str] = None
    ) -> AttachmentRef:
        """Check and store one upload.

        Args:
            data: The file content.
            name: File name as the client gave it; kept (sanitised) for display only.
            declared_mime: MIME type the client claimed; only compared with the content and logged.

        Returns:
            The reference to put in message metadata, with the type and MIME type sniffed from the content.

        Raises:
            AttachmentError: ``empty``; ``too_large`` (bytes over the type's limit, or pixels);
                ``too_long`` (audio seconds); ``no_speech`` (audio without any samples);
                ``unsupported_type``; ``damaged``.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        if len(data) > self.limits.max_upload_bytes:
            raise AttachmentError(
                "too_large", f"{len(data)} bytes > {self.limits.max_upload_bytes} bytes", limits=self.limits
            )
        return self._save_chunks([bytes(data)], name, declared_mime, expected_size=None)

    @_logs_rejections
    def save_stream(
        self,
        chunks: Iterable[bytes],
        name: Optional[str] = None,
        declared_mime: Optional[str] = None,
        expected_size: Optional[int] = None,
    ) -> AttachmentRef:
        """Store an upload read chunk by chunk, refusing it as soon as it passes the size limit.

        At most ``max_upload_bytes`` plus one chunk is read from ``chunks`` and nothing is kept when the
        upload is refused, so a 1 GB body costs neither memory nor disk.

        Args:
            chunks: The body, e.g. a request stream; bytes-like chunks of any size.
            name: File name as the client gave it (display only).
            declared_mime: MIME type the client claimed (compared with the content, never trusted).
            expected_size: Declared length in bytes (e.g. Content-Length); refused before reading when it
                is over the limit.

        Returns:
            The stored reference.

        Raises:
            AttachmentError: as :meth:`save`.
        """
        if expected_size is not None and expected_size > self.limits.max_upload_bytes:
            raise AttachmentError(
                "too_large",
                f"declared {expected_size} bytes > {self.limits.max_upload_bytes} bytes",
                limits=self.limits,
            )
        return self._save_chunks(chunks, name, declared_mime, expected_size)

    @_logs_rejections
    def save_base64(
        self, text: Union[str, bytes], name: Optional[str] = None, declared_mime: Optional[str] = None
    ) -> AttachmentRef:
        """Decode a base64 upload (as the REST channel receives it) and store it.

        Accepts standard or URL-safe alphabets, missing padding, embedded whitespace and a
        ``data:<mime>;base64,`` prefix (whose MIME type is ignored). The encoded length is checked
        against the size limit before anything is decoded.

        Raises:
            AttachmentError: ``damaged`` when the text is not base64; otherwise as :meth:`save`.
        """
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("ascii")
            except UnicodeDecodeError:
                raise AttachmentError("damaged", "base64 payload is not ASCII", limits=self.limits) from None
        if not isinstance(text, str):
            raise AttachmentError("damaged", f"base64 payload is a {type(text).__name__}", limits=self.limits)
        # 4 characters encode 3 bytes; allow generous room for whitespace and a data: prefix.
        if len(text) > (self.limits.max_upload_bytes + 2) // 3 * 4 * 2 + 1024:
            raise AttachmentError("too_large", f"{len(text)} base64 characters", limits=self.limits)
        text = text.strip()
        if text[:5].lower() == "data:":
            header, comma, text = text.partition(",")
            if not comma or ";base64" not in header.lower():
                raise AttachmentError("damaged", "data: URL is not base64-encoded", limits=self.limits)
        compact = "".join(text.split())
        if len(compact) > (self.limits.max_upload_bytes + 2) // 3 * 4:
            raise AttachmentError(
                "too_large", f"{len(compact)} base64 characters decode to > limit", limits=self.limits
            )
        if "-" in compact or "_" in compact:
            compact = compact.replace("-", "+").replace("_", "/")
        compact += "=" * (-len(compact) % 4)
        try:
            data = base64.b64decode(compact.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError) as error:
            raise AttachmentError("damaged", f"invalid base64: {error}", limits=self.limits) from None
        return self.save(data, name=name, declared_mime=declared_mime)

    def _save_chunks(
        self,
        chunks: Iterable[bytes],
        name: Optional[str],
        declared_mime: Optional[str],
        expected_size: Optional[int],
    ) -> AttachmentRef:
        cap = self.limits.max_upload_bytes
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="upload-")
        tmp_path = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    if not isinstance(chunk, (bytes, bytearray, memoryview)):
                        raise TypeError(f"chunks must be bytes, not {type(chunk).__name__}")
                    size += len(chunk)
                    if size > cap:
                        raise AttachmentError(
                            "too_large", f"upload passed {cap} bytes while streaming", limits=self.limits
                        )
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            if size == 0:
                raise AttachmentError("empty", "zero bytes", limits=self.limits)
            if expected_size is not None and expected_size != size:
                logger.info("Upload declared %d bytes but sent %d bytes", expected_size, size)
            data = tmp_path.read_bytes()
            media = self._inspect(data, tmp_path)
            attachment_id = digest.hexdigest()
            self._install(tmp_path, attachment_id, media, size, sanitise_name(name))
        finally:
            tmp_path.unlink(missing_ok=True)
        declared = _normalise_mime(declared_mime)
        if declared and declared != media.mime:
            logger.info(
                "Declared MIME type %s differs from the content (%s); the content wins", declared, media.mime
            )
        return AttachmentRef(
            type=media.type, id=attachment_id, mime_type=media.mime, size=size, name=sanitise_name(name)
        )

    def _inspect(self, data: bytes, path: Path) -> _Media:
        """Sniff the type from the content and apply the type's byte, pixel and duration limits."""
        fmt = _sniff_image(data)
        if fmt is not None:
            media_type = "image"
        else:
            media = _probe_audio_file(path)
            media_type = "audio"
        limit = self.limits.max_bytes_for(media_type)
        if len(data) > limit:
            raise AttachmentError(
                "too_large",
                f"{len(data)} bytes > {limit} bytes",
                attachment_type=media_type,
                limits=self.limits,
            )
        if media_type == "image":
            return _inspect_image(data, self.limits)
        if media.duration_s is not None and media.duration_s > self.limits.audio_max_seconds:
            raise AttachmentError(
                "too_long",
                f"{media.duration_s:.1f} s > {self.limits.audio_max_seconds:g} s",
                attachment_type="audio",
                limits=self.limits,
            )
        if not media.duration_s:
            raise AttachmentError(
                "no_speech", "audio without samples (0 s)", attachment_type="audio", limits=self.limits
            )
        return media

    def _install(
        self, tmp_path: Path, attachment_id: str, media: _Media, size: int, name: Optional[str]
    ) -> None:
        shard = self._shard_dir(attachment_id)
        shard.mkdir(exist_ok=True)
        final = shard / attachment_id
        if not (final.is_file() and not final.is_symlink() and final.stat().st_size == size):
            os.replace(tmp_path, final)  # atomic on one file system; identical content may simply win twice
        sidecar = shard / f"{attachment_id}.json"
        if not sidecar.exists():
            info = {
                "id": attachment_id,
                "type": media.type,
                "mime_type": media.mime,
                "size": size,
                "name": name,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            if media.type == "image":
                info.update(width=media.width, height=media.height)
            else:
                info["duration_s"] = media.duration_s
            fd, sidecar_tmp = tempfile.mkstemp(dir=self._tmp, prefix="sidecar-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(info, handle, ensure_ascii=False)
                os.replace(sidecar_tmp, sidecar)
            finally:
                Path(sidecar_tmp).unlink(missing_ok=True)

    # ---- reading -----------------------------------------------------------------------------------------
    def _shard_dir(self, attachment_id: str) -> Path:
        shard = self.root / attachment_id[:2]
        if shard.is_symlink():
            raise AttachmentError("invalid_reference", f"shard directory {attachment_id[:2]} is a symlink")
        return shard

    def _checked_path(self, attachment_id: Any) -> Path:
        if not isinstance(attachment_id, str) or not _ID_RE.fullmatch(attachment_id):
            shown = repr(attachment_id[:80]) if isinstance(attachment_id, str) else _describe(attachment_id)
            raise AttachmentError("invalid_reference", f"id {shown} is not 64 lower-case hex characters")
        path = self._shard_dir(attachment_id) / attachment_id
        if path.is_symlink():
            raise AttachmentError("invalid_reference", f"{attachment_id} is a symlink")
        resolved = path.resolve()
        if resolved.parent.parent != self.root or resolved.name != attachment_id:
            raise AttachmentError("invalid_reference", f"{attachment_id} resolves outside the store")
        return resolved

    @_logs_rejections
    def path_for(self, attachment_id: str) -> Path:
        """The path of a stored upload, for tools that need a file (e.g. ffmpeg).

        Args:
            attachment_id: 64 lower-case hex characters; anything else (``../x``, absolute paths) is refused.

        Raises:
            AttachmentError: ``invalid_reference`` (bad id, symlink, path outside the store),
                ``not_found`` (no regular file with that id).
        """
        path = self._checked_path(attachment_id)
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            raise AttachmentError("not_found", f"no upload {attachment_id}") from None
        if not stat.S_ISREG(mode):
            raise AttachmentError("invalid_reference", f"{attachment_id} is not a regular file")
        return path

    @_logs_rejections
    def info(self, attachment_id: str) -> Dict[str, Any]:
        """The sidecar of a stored upload: ``type``, ``mime_type``, ``size`` (bytes), ``name`` and
        ``width``/``height`` (pixels) or ``duration_s`` (seconds).

        Raises:
            AttachmentError: as :meth:`path_for`.
        """
        path = self.path_for(attachment_id)
        sidecar = path.with_name(f"{attachment_id}.json")
        if sidecar.is_symlink() or not sidecar.is_file():
            raise AttachmentError("not_found", f"no sidecar for {attachment_id}")
        try:
            info = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise AttachmentError("damaged", f"sidecar of {attachment_id} unreadable: {error}") from None
        if not isinstance(info, dict):
            raise AttachmentError("damaged", f"sidecar of {attachment_id} is not an object")
        return info

    @_logs_rejections
    def ref_for(self, attachment_id: str) -> AttachmentRef:
        """A reference rebuilt from the store's own record (trustworthy type, MIME type and size)."""
        info = self.info(attachment_id)
        try:
            return AttachmentRef(
                type=info.get("type"),
                id=attachment_id,
                mime_type=info.get("mime_type"),
                size=info.get("size"),
                name=info.get("name"),
            )
        except ValidationError:
            raise AttachmentError("damaged", f"sidecar of {attachment_id} is invalid") from None

    @_logs_rejections
    def read(self, ref: Union[AttachmentRef, str]) -> bytes:
        """The bytes of an attachment.

        Args:
            ref: An :class:`AttachmentRef` or a bare id. A URL reference is fetched first
                (:meth:`fetch_url`). For a reference, the stored type must equal ``ref.type``.

        Returns:
            The content, verified against its SHA-256 id.

        Raises:
            AttachmentError: ``invalid_reference`` (bad id, escapes the store, type differs from the
                stored one), ``not_found``, ``damaged`` (content no longer matches its hash),
                ``too_large``, and for URL references everything :meth:`fetch_url` raises.
        """
        if isinstance(ref, AttachmentRef):
            if ref.id is None:
                fetched = self.fetch_url(ref.url)  # type: ignore[arg-type]
                if fetched.type != ref.type:
                    raise AttachmentError(
                        "invalid_reference",
                        f"URL declared {ref.type} but holds {fetched.type}",
                        attachment_type=ref.type,
                    )
                ref = fetched
            attachment_id = ref.id
            expected_type: Optional[str] = ref.type
        else:
            attachment_id, expected_type = ref, None
        path = self.path_for(attachment_id)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            raise AttachmentError("not_found", f"no upload {attachment_id}") from None
        except OSError as error:
            raise AttachmentError("invalid_reference", f"cannot open {attachment_id}: {error}") from None
        with os.fdopen(fd, "rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise AttachmentError("invalid_reference", f"{attachment_id} is not a regular file")
            if status.st_size > self.limits.max_upload_bytes:
                raise AttachmentError(
                    "too_large", f"stored file {attachment_id} is {status.st_size} bytes", limits=self.limits
                )
            data = handle.read(self.limits.max_upload_bytes + 1)
        if hashlib.sha256(data).hexdigest() != attachment_id:
            raise AttachmentError("damaged", f"content of {attachment_id} no longer matches its hash")
        if expected_type is not None:
            stored_type = self.info(attachment_id).get("type")
            if stored_type != expected_type:
                raise AttachmentError(
                    "invalid_reference",
                    f"reference says {expected_type} but {attachment_id} is {stored_type}",
                    attachment_type=expected_type,
                )
        return data

    # ---- fetching ----------------------------------------------------------------------------------------
    @_logs_rejections
    def fetch_url(self, url: str, name: Optional[str] = None) -> AttachmentRef:
        """Download a platform-hosted file (Messenger, Telegram) and store it.

        Every hop (the URL and up to ``url_max_redirects`` redirects, followed here, never by requests)
        must be ``https://`` on port 443 to a host in ``url_allowed_hosts`` whose DNS answers are all
        public addresses (no loopback, private, link-local incl. 169.254.169.254, CGNAT, multicast,
        unspecified, IPv6 ULA/link-local or IPv4-mapped forms); the connection itself is made only to a
        checked address. The body is streamed with the byte cap enforced while reading, and the whole
        fetch must finish within ``url_timeout_s`` seconds.

        Args:
            url: The file URL. It is never logged in full (Telegram URLs contain the bot token).
            name: Display name; defaults to the last path segment of the URL.

        Returns:
            The stored reference (``id`` set, ``url`` not kept).

        Raises:
            AttachmentError: ``forbidden_url``, ``fetch_failed`` (DNS, connection, timeout, HTTP status,
                too many redirects), ``too_large`` (declared or streamed bytes), and everything
                :meth:`save` raises.
        """
        limits = self.limits
        deadline = time.monotonic() + limits.url_timeout_s
        current, host, port = _checked_url(url, limits)
        display_name = name if name is not None else urlsplit(current).path.rsplit("/", 1)[-1]
        for _hop in range(limits.url_max_redirects + 1):
            _resolve_public(host, port)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AttachmentError("fetch_failed", f"timed out after {limits.url_timeout_s:g} s")
            try:
                response = self.session.get(
                    current, stream=True, allow_redirects=False, timeout=(remaining, remaining)
                )
            except AttachmentError:
                raise
            except requests.Timeout:
                raise AttachmentError("fetch_failed", f"{_redact(current)} timed out") from None
            except (requests.RequestException, OSError, ValueError) as error:
                raise AttachmentError(
                    "fetch_failed", f"{_redact(current)}: {type(error).__name__}"
                ) from None
            try:
                if response.status_code in _REDIRECT_STATUSES:
                    location = response.headers.get("Location")
                    if not location:
                        raise AttachmentError(
                            "fetch_failed", f"redirect without Location from {_redact(current)}"
                        )
                    current, host, port = _checked_url(urljoin(current, location), limits)
                    continue
                if response.status_code != 200:
                    raise AttachmentError(
                        "fetch_failed", f"{_redact(current)} answered HTTP {response.status_code}"
                    )
                return self._save_response(response, display_name, deadline)
            finally:
                response.close()
        raise AttachmentError("fetch_failed", f"more than {limits.url_max_redirects} redirects")

    def _save_response(
        self, response: requests.Response, name: Optional[str], deadline: float
    ) -> AttachmentRef:
        cap = self.limits.max_upload_bytes
        declared = response.headers.get("Content-Length")
        declared_size: Optional[int] = None
        if declared is not None:
            try:
                declared_size = int(declared)
            except ValueError:
                declared_size = None
            if declared_size is not None and declared_size > cap:
                raise AttachmentError(
                    "too_large", f"Content-Length {declared_size} bytes > {cap} bytes", limits=self.limits
                )

        def body() -> Iterable[bytes]:
            try:
                for chunk in response.iter_content(_CHUNK_BYTES):
                    if time.monotonic() > deadline:
                        raise AttachmentError(
                            "fetch_failed", f"body not received within {self.limits.url_timeout_s:g} s"
                        )
                    yield chunk
            except requests.RequestException as error:
                raise AttachmentError("fetch_failed", f"body: {type(error).__name__}") from None

        content_type = response.headers.get("Content-Type")
        return self._save_chunks(body(), name, content_type, None)


@functools.lru_cache(maxsize=None)
def default_store() -> AttachmentStore:
    """The process-wide store built by :meth:`AttachmentStore.from_env` on first use."""
    return AttachmentStore.from_env()


# --------------------------------------------------------------------------------------------------------
# Metadata parsing
# --------------------------------------------------------------------------------------------------------
def _describe(value: Any) -> str:
    """A short, recursion-free description of client data for logs."""
    return type(value).__name__


def parse_attachments(
    metadata: Any, limits: Optional[AttachmentLimits] = None
) -> Tuple[List[AttachmentRef], List[AttachmentError]]:
    """Read attachment references from message metadata of any shape, never raising.

    ``None``, strings, lists and mappings without ``"attachments"`` carry no attachments. A single
    attachment object instead of a list is accepted. Only the first ``max_attachments`` items are looked
    at (never the rest, never nested values), so huge or deeply nested input costs nothing. Declared sizes
    over the type's byte limit and URLs to hosts outside the allow-list are rejected here, before any
    download.

    Args:
        metadata: ``message.get("metadata")`` as a channel delivered it.
        limits: Limits to apply; defaults to :class:`AttachmentLimits` defaults.

    Returns:
        ``(refs, problems)``: valid references in message order, and one :class:`AttachmentError` per
        rejected item (``too_many`` once for the dropped extra items). Each problem is logged once.
    """
    limits = limits or AttachmentLimits()
    refs: List[AttachmentRef] = []
    problems: List[AttachmentError] = []
    try:
        if not isinstance(metadata, Mapping):
            if metadata is not None:
                logger.debug("Message metadata is a %s, not a mapping: no attachments", _describe(metadata))
            return refs, problems
        items = metadata.get("attachments")
        if items is None:
            return refs, problems
        if isinstance(items, Mapping):
            items = [items]
        if not isinstance(items, (list, tuple)):
            problems.append(
                AttachmentError(
                    "invalid_reference", f"attachments is a {_describe(items)}, not a list", limits=limits
                )
            )
            return refs, problems
        if len(items) > limits.max_attachments:
            problems.append(
                AttachmentError(
                    "too_many",
                    f"{len(items)} attachments > {limits.max_attachments}; extra ones ignored",
                    limits=limits,
                )
            )
            items = items[: limits.max_attachments]
        for index, item in enumerate(items):
            try:
                refs.append(_parse_one(item, index, limits))
            except AttachmentError as error:
                problems.append(error)
    except Exception as error:  # the contract is "never raises": any surprise becomes a problem
        problems.append(
            AttachmentError(
                "invalid_reference", f"unreadable metadata: {type(error).__name__}", limits=limits
            )
        )
    for problem in problems:
        _log_rejection(problem)
    return refs, problems


def _parse_one(item: Any, index: int, limits: AttachmentLimits) -> AttachmentRef:
    if not isinstance(item, Mapping):
        raise AttachmentError(
            "invalid_reference", f"attachment {index} is a {_describe(item)}", limits=limits
        )
    declared_type = item.get("type")
    known_type = declared_type if declared_type in ("image", "audio") else None
    if "type" in item and known_type is None:
        shown = repr(declared_type[:40]) if isinstance(declared_type, str) else _describe(declared_type)
        raise AttachmentError("unsupported_type", f"attachment {index} has type {shown}", limits=limits)
    try:
        ref = AttachmentRef.parse_obj(item if isinstance(item, dict) else dict(item))
    except ValidationError as error:
        fields = ", ".join(".".join(str(part) for part in e["loc"]) for e in error.errors())
        raise AttachmentError(
            "invalid_reference",
            f"attachment {index} invalid ({fields})",
            attachment_type=known_type,
            limits=limits,
        ) from None
    if ref.size is not None and ref.size > limits.max_bytes_for(ref.type):
        raise AttachmentError(
            "too_large",
            f"attachment {index} declares {ref.size} bytes > {limits.max_bytes_for(ref.type)} bytes",
            attachment_type=ref.type,
            limits=limits,
        )
    if ref.url is not None:
        try:
            _checked_url(ref.url, limits)
        except AttachmentError as error:
            raise AttachmentError(
                "forbidden_url",
                f"attachment {index}: {error.detail}",
                attachment_type=ref.type,
                limits=limits,
            ) from None
    return ref
