"""Rejected attachments: :class:`AttachmentError`, its codes and the friendly text a customer is sent.

Every rejection in the media package is an :class:`AttachmentError` carrying a machine-readable ``code`` and a
``user_message`` that can be sent to the customer as is. Each rejected attachment is logged once, as one
warning line naming the code and the cause (:func:`log_rejection`, :func:`logs_rejections`). Callers that
learn the type later re-word an untyped error with :meth:`AttachmentError.with_type`, and a message's
``attachment_problems`` list grows with :func:`merge_problems` (one entry per distinct problem).
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, TypeVar

from assistant.keys import AUDIO_ATTACHMENT, IMAGE_ATTACHMENT
from media.limits import MiB, AttachmentLimits

logger = logging.getLogger(__name__)

__all__ = ["ERROR_CODES", "AttachmentError", "log_rejection", "logs_rejections", "merge_problems"]

#: Every ``AttachmentError.code``, stable for programs and metrics.
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


def _what(attachment_type: Optional[str]) -> str:
    return {IMAGE_ATTACHMENT: "photo", AUDIO_ATTACHMENT: "voice note"}.get(attachment_type or "", "file")


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / MiB:g} MB"


def default_user_message(code: str, attachment_type: Optional[str], limits: AttachmentLimits) -> str:
    """The friendly text for ``code``: what went wrong with the photo / voice note / file, and what to do.

    Args:
        code: One of :data:`ERROR_CODES`.
        attachment_type: ``"image"``, ``"audio"`` or ``None`` (the text then says "file").
        limits: The limits quoted in the text (sizes in MB, megapixels, seconds, attachments per message).

    Raises:
        KeyError: for a code outside :data:`ERROR_CODES`.
    """
    what = _what(attachment_type)
    if code == "too_large":
        if attachment_type == IMAGE_ATTACHMENT:
            return (
                f"That photo is too big for me — I can take photos up to {_mb(limits.image_max_bytes)} "
                f"and {limits.image_max_pixels / 1e6:g} megapixels. Could you send a smaller one?"
            )
        if attachment_type == AUDIO_ATTACHMENT:
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

    Args:
        code: One of :data:`ERROR_CODES`.
        detail: Technical cause for the log.
        user_message: Text for the customer; by default the friendly text of ``code``.
        attachment_type: ``"image"``, ``"audio"`` or ``None``.
        limits: Limits quoted in the default user message (default: :class:`AttachmentLimits` defaults).

    Attributes:
        code: One of :data:`ERROR_CODES` (e.g. ``"too_large"``), stable for programs and metrics.
        user_message: Friendly text for the customer that says what to do next.
        detail: Technical cause for the log; never contains file bytes, bot tokens or full URLs.
        attachment_type: ``"image"``, ``"audio"`` or ``None`` when the type is not known (yet).
        logged: Whether the rejection has been logged already (it is logged once).

    Raises:
        ValueError: for a code outside :data:`ERROR_CODES`.
    """

    def __init__(
        self,
        code: str,
        detail: str = "",
        *,
        user_message: Optional[str] = None,
        attachment_type: Optional[str] = None,
        limits: Optional[AttachmentLimits] = None,
    ) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown attachment error code {code!r}; valid codes: {', '.join(ERROR_CODES)}")
        self.code = code
        self.detail = detail
        self.attachment_type = attachment_type
        self.user_message = user_message or default_user_message(
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

    def with_type(self, attachment_type: str, limits: Optional[AttachmentLimits] = None) -> AttachmentError:
        """This error re-worded for an attachment of type ``attachment_type``, for a caller that knows it.

        The store cannot always tell what a missing or unreadable file was (``not_found`` says "file"); the
        channel or component that expected a photo or a voice note re-words it. An error that already has a
        type is returned as it is.

        Args:
            attachment_type: ``"image"`` or ``"audio"``.
            limits: Limits quoted in the re-worded default user message (default: :class:`AttachmentLimits`
                defaults).

        Returns:
            ``self`` when :attr:`attachment_type` is set; otherwise a new error with the same code and detail,
            the given type, that type's default user message, and the same :attr:`logged` flag (a rejection
            logged before re-wording is not logged again).
        """
        if self.attachment_type is not None:
            return self
        typed = AttachmentError(self.code, self.detail, attachment_type=attachment_type, limits=limits)
        typed.logged = self.logged
        return typed


def merge_problems(
    existing: Optional[Iterable[Mapping[str, Any]]], errors: Iterable[AttachmentError]
) -> List[Mapping[str, Any]]:
    """A message's ``attachment_problems`` with ``errors`` added, one entry per distinct problem, in order.

    Problems without a type (``too_many``, a malformed item) concern every component that reads attachments,
    so each of them reports them; an entry equal to one already present is not added again.

    Args:
        existing: The message's current ``attachment_problems`` (``None`` when it has none); not modified.
        errors: The rejections to add, as :meth:`AttachmentError.to_problem` entries.

    Returns:
        A new list: ``existing`` followed by the entries of ``errors`` that were not in it yet.
    """
    problems: List[Mapping[str, Any]] = list(existing or ())
    for error in errors:
        entry = error.to_problem()
        if entry not in problems:
            problems.append(entry)
    return problems


def log_rejection(
    error: AttachmentError,
    redact: Callable[[str], str] = str,
    logger: Optional[logging.Logger] = None,
) -> AttachmentError:
    """Log one warning line for a rejected attachment unless it was logged already; returns the error.

    Args:
        error: The rejection; its :attr:`AttachmentError.logged` flag is set, so it is logged once.
        redact: Applied to the logged text (Telegram removes its bot token from it).
        logger: The logger of the module that refused the attachment (default: ``media.errors``'s).
    """
    if not error.logged:
        (logger or logging.getLogger(__name__)).warning("Attachment rejected (%s)", redact(str(error)))
        error.logged = True
    return error


_F = TypeVar("_F", bound=Callable[..., Any])


def logs_rejections(method: _F) -> _F:
    """Decorator for public store methods: every AttachmentError leaving them is logged exactly once."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except AttachmentError as error:
            raise log_rejection(error)

    return wrapper  # type: ignore[return-value]
