"""Reading Telegram updates: what one message becomes (pure functions; nothing here touches the network).

=========================================  =================================================================
update                                     what reaches Rasa (``UserMessage``)
=========================================  =================================================================
``message.text``                           the text (``/start`` becomes :data:`START_COMMAND_TEXT`; a
                                           ``@botname`` suffix on a command is dropped)
``message.photo`` (+ ``caption``)          caption (or ``""``) + the largest photo size that fits the limits
``message.voice`` / ``message.audio``      caption (or ``""``) + the audio file
``message.document``, image or audio       caption (or ``""``) + the file, when the content confirms it
``edited_message`` with text               the new text, as a new message; other edits are ignored
``callback_query`` (inline button)         the button's ``data``
stickers, PDFs, other documents, videos,   nothing; the customer gets ``channels.UNSUPPORTED_CONTENT_REPLY``
locations, contacts, polls, ...
service messages, other update types       nothing (acknowledged and ignored)
=========================================  =================================================================
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from typing import Any, List, Mapping, Optional, Tuple

from assistant.keys import AUDIO_ATTACHMENT, IMAGE_ATTACHMENT
from media import AttachmentError

#: Telegram sends ``/start`` when a customer opens the bot; Rasa receives this instead (the greet intent).
START_COMMAND_TEXT = "/greet"

#: Message fields that carry content this assistant cannot use; they get the polite reply.
UNSUPPORTED_FIELDS = (
    "sticker",
    "video",
    "video_note",
    "animation",
    "location",
    "venue",
    "contact",
    "poll",
    "dice",
    "game",
    "story",
    "invoice",
    "paid_media",
)
# Documents: declared image types worth downloading (the content still decides), and file extensions.
_DOCUMENT_IMAGE_MIMES = frozenset({"image/jpeg", "image/pjpeg", "image/png", "image/webp", "image/gif"})
_IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jfif", ".png", ".webp", ".gif"})
_AUDIO_EXTENSIONS = frozenset({".ogg", ".oga", ".opus", ".mp3", ".m4a", ".wav", ".flac", ".aac"})
_AUDIO_MIMES = frozenset({"application/ogg"})

_COMMAND_RE = re.compile(r"^/([A-Za-z0-9_]{1,64})(@[A-Za-z0-9_]{1,64})?(?=\s|$)")


@dataclass(frozen=True)
class TelegramFile:
    """A file announced in a message, before it is downloaded.

    Attributes:
        kind: ``"image"`` or ``"audio"``: what Telegram says it is; the content decides in the end.
        field: The message field it came from (``photo``, ``voice``, ``audio``, ``document``), for logs.
        file_id: Telegram's id for ``getFile``.
        file_size: Declared size in bytes, if Telegram gave one.
        name: Display name (``file_name`` of audio files and documents), if any.
        mime_type: Declared MIME type, if any.
    """

    kind: str
    field: str
    file_id: str
    file_size: Optional[int] = None
    name: Optional[str] = None
    mime_type: Optional[str] = None


@dataclass(frozen=True)
class MessagePlan:
    """What to do with one Telegram message.

    Exactly one of these holds: ``unsupported`` is set (polite reply), ``error`` is set (a file refused
    before download: reply with its message), or the message is passed on with ``text`` and ``file``
    (either may be empty; both empty means "nothing to do").
    """

    text: str = ""
    file: Optional[TelegramFile] = None
    unsupported: Optional[str] = None
    error: Optional[AttachmentError] = None


def as_int(value: Any) -> Optional[int]:
    """``value`` when it is an integer (not a bool), else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_str(value: Any) -> Optional[str]:
    """``value`` when it is a non-empty string, else ``None``."""
    return value if isinstance(value, str) and value else None


def chat_id(message: Any) -> Optional[int]:
    """``message.chat.id``, or ``None`` when the message has no usable chat."""
    if not isinstance(message, Mapping) or not isinstance(message.get("chat"), Mapping):
        return None
    return as_int(message["chat"].get("id"))


def _file_from(field: str, kind: str, item: Any) -> Optional[TelegramFile]:
    if not isinstance(item, Mapping) or as_str(item.get("file_id")) is None:
        return None
    mime = as_str(item.get("mime_type"))
    return TelegramFile(
        kind=kind,
        field=field,
        file_id=item["file_id"],
        file_size=as_int(item.get("file_size")),
        name=as_str(item.get("file_name")),
        mime_type=mime.lower() if mime else None,
    )


def select_photo(sizes: Any, image_max_bytes: int, image_max_pixels: int) -> TelegramFile:
    """The largest photo size whose declared bytes and pixels fit the limits.

    Args:
        sizes: ``message.photo``: a list of ``PhotoSize`` objects (``file_id``, ``file_size`` in bytes,
            ``width``/``height`` in pixels).
        image_max_bytes: Byte limit for photos.
        image_max_pixels: Pixel limit (width × height) for photos.

    Raises:
        AttachmentError: ``too_large`` when no size fits, ``invalid_reference`` when there is no usable size.
    """
    candidates: List[Tuple[int, int, TelegramFile]] = []
    too_big = 0
    for item in sizes if isinstance(sizes, list) else []:
        photo = _file_from("photo", IMAGE_ATTACHMENT, item)
        if photo is None:
            continue
        pixels = (as_int(item.get("width")) or 0) * (as_int(item.get("height")) or 0)
        if (photo.file_size or 0) > image_max_bytes or pixels > image_max_pixels:
            too_big += 1
            continue
        candidates.append((photo.file_size or 0, pixels, photo))
    if candidates:
        return max(candidates, key=lambda c: (c[1], c[0]))[2]
    if too_big:
        raise AttachmentError(
            "too_large", f"none of {too_big} photo sizes fits the limits", attachment_type=IMAGE_ATTACHMENT
        )
    raise AttachmentError(
        "invalid_reference", "photo without a usable size", attachment_type=IMAGE_ATTACHMENT
    )


def document_kind(document: TelegramFile) -> Optional[str]:
    """``"image"``, ``"audio"`` or ``None`` (not worth downloading) from the declared MIME type and name."""
    mime = document.mime_type or ""
    extension = os.path.splitext(document.name or "")[1].lower()
    undeclared = mime in ("", "application/octet-stream")
    if mime in _DOCUMENT_IMAGE_MIMES or (undeclared and extension in _IMAGE_EXTENSIONS):
        return IMAGE_ATTACHMENT
    if mime.startswith("audio/") or mime in _AUDIO_MIMES or (undeclared and extension in _AUDIO_EXTENSIONS):
        return AUDIO_ATTACHMENT
    return None


def command_text(text: str) -> str:
    """Telegram's bot commands as Rasa should see them: ``/start`` → :data:`START_COMMAND_TEXT`,
    ``/cmd@botname args`` → ``/cmd args``; any other text is returned unchanged."""
    match = _COMMAND_RE.match(text)
    if match is None:
        return text
    if match.group(1) == "start":
        return START_COMMAND_TEXT
    return f"/{match.group(1)}{text[match.end():]}"


def plan_message(message: Mapping[str, Any], image_max_bytes: int, image_max_pixels: int) -> MessagePlan:
    """Decide what one Telegram ``Message`` becomes (see the module docstring for the mapping).

    Args:
        message: The ``message`` (or ``edited_message``) object of an update.
        image_max_bytes: Byte limit for photos, used to pick a photo size.
        image_max_pixels: Pixel limit for photos, used to pick a photo size.
    """
    text = as_str(message.get("text"))
    if text is not None:
        return MessagePlan(text=command_text(text))
    caption = as_str(message.get("caption")) or ""
    if "photo" in message:
        try:
            photo = select_photo(message["photo"], image_max_bytes, image_max_pixels)
        except AttachmentError as error:
            return MessagePlan(error=error)
        return MessagePlan(text=caption, file=photo)
    for field in ("voice", "audio"):
        if field in message:
            audio = _file_from(field, AUDIO_ATTACHMENT, message[field])
            if audio is None:
                detail = f"{field} without a file_id"
                error = AttachmentError("invalid_reference", detail, attachment_type=AUDIO_ATTACHMENT)
                return MessagePlan(error=error)
            return MessagePlan(text=caption, file=audio)
    if "document" in message:
        document = _file_from("document", IMAGE_ATTACHMENT, message["document"])
        if document is None:
            return MessagePlan(unsupported="document")
        kind = document_kind(document)
        if kind is None:
            if (document.mime_type or "").startswith("image/"):  # HEIC, SVG, TIFF, ...: name the formats
                return MessagePlan(
                    error=AttachmentError("unsupported_type", f"document of type {document.mime_type}")
                )
            return MessagePlan(unsupported=f"document ({document.mime_type or 'no MIME type'})")
        return MessagePlan(text=caption, file=replace(document, kind=kind))
    for field in UNSUPPORTED_FIELDS:
        if field in message:
            return MessagePlan(unsupported=field)
    return MessagePlan()
