"""Attachment references as message metadata carries them, and reading them out of metadata of any shape.

A channel never puts file bytes into a message: it stores the upload and sends a reference,
``metadata["attachments"] = [{"type": "image" | "audio", "id": "<sha256>", "mime_type", "size", "name"}]``, or
for platform-hosted files ``{"type", "url": "https://..."}``. :class:`AttachmentRef` is one such reference;
:func:`parse_attachments` reads them from whatever a client sent, without raising.
"""
from __future__ import annotations

import logging
import os
import re
import unicodedata
from typing import Any, Dict, List, Literal, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from pydantic import BaseModel, Extra, Field, ValidationError, root_validator, validator

from assistant.keys import ATTACHMENT_TYPES, ATTACHMENTS, AUDIO_ATTACHMENT, IMAGE_ATTACHMENT
from media.errors import AttachmentError, log_rejection
from media.limits import AttachmentLimits
from media.urls import URL_FORBIDDEN_CHARS_RE, URL_MAX_CHARS, checked_url

logger = logging.getLogger(__name__)

__all__ = ["AttachmentRef", "AttachmentType", "ID_RE", "normalise_mime", "parse_attachments", "sanitise_name"]

#: ``"image"`` or ``"audio"`` (:data:`assistant.keys.ATTACHMENT_TYPES`).
AttachmentType = Literal[IMAGE_ATTACHMENT, AUDIO_ATTACHMENT]  # type: ignore[valid-type]

#: An upload id: the SHA-256 of the content, 64 lower-case hex characters.
ID_RE = re.compile(r"[0-9a-f]{64}")
_MIME_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_NAME_MAX_CHARS = 120


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


def normalise_mime(value: Any) -> Optional[str]:
    """``"image/jpeg"`` for ``"Image/JPEG; q=1"``: lower case, parameters dropped; ``None`` when malformed."""
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

    Raises:
        pydantic.ValidationError: for an unknown type, a malformed id or URL, a negative size, or not
            exactly one of ``id`` and ``url``.
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
        if value is not None and not ID_RE.fullmatch(value):
            raise ValueError("id must be 64 lower-case hex characters (a SHA-256)")
        return value

    @validator("url")
    def _check_url(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        if len(value) > URL_MAX_CHARS or URL_FORBIDDEN_CHARS_RE.search(value):
            raise ValueError("url is too long or contains whitespace, backslashes or control characters")
        parts = urlsplit(value)
        if parts.scheme.lower() != "https" or not parts.hostname:
            raise ValueError("url must be an https:// URL with a host")
        return value

    @validator("mime_type", pre=True)
    def _check_mime(cls, value: Any) -> Optional[str]:
        return normalise_mime(value)

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


def describe(value: Any) -> str:
    """A short, recursion-free description of client data for logs: its type name."""
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
                logger.debug("Message metadata is a %s, not a mapping: no attachments", describe(metadata))
            return refs, problems
        items = metadata.get(ATTACHMENTS)
        if items is None:
            return refs, problems
        if isinstance(items, Mapping):
            items = [items]
        if not isinstance(items, (list, tuple)):
            problems.append(
                AttachmentError(
                    "invalid_reference", f"attachments is a {describe(items)}, not a list", limits=limits
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
        log_rejection(problem)
    return refs, problems


def _parse_one(item: Any, index: int, limits: AttachmentLimits) -> AttachmentRef:
    if not isinstance(item, Mapping):
        raise AttachmentError("invalid_reference", f"attachment {index} is a {describe(item)}", limits=limits)
    declared_type = item.get("type")
    known_type = declared_type if declared_type in ATTACHMENT_TYPES else None
    if "type" in item and known_type is None:
        shown = repr(declared_type[:40]) if isinstance(declared_type, str) else describe(declared_type)
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
            checked_url(ref.url, limits)
        except AttachmentError as error:
            raise AttachmentError(
                "forbidden_url",
                f"attachment {index}: {error.detail}",
                attachment_type=ref.type,
                limits=limits,
            ) from None
    return ref
