"""What an upload is, decided by its content alone: file names and declared MIME types play no part.

Photos are identified by Pillow (:mod:`media.images`), voice notes by ``ffprobe`` (:mod:`media.ffmpeg`); both
modules own their format lists, limits checks and verdicts, and this module only puts them in order: an
image first (a header check costs microseconds), audio otherwise. :func:`sniff` answers "what is it";
:func:`inspect_upload` is the store's full check of an upload against its limits.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Tuple

from assistant.keys import AUDIO_ATTACHMENT, IMAGE_ATTACHMENT
from media.errors import AttachmentError
from media.ffmpeg import packet_duration_s, probe_audio
from media.images import IMAGE_MIME, identify_image, inspect_image
from media.limits import AttachmentLimits

__all__ = ["MediaInfo", "inspect_upload", "sniff"]


@dataclass(frozen=True)
class MediaInfo:
    """What the store records about an accepted upload.

    Attributes:
        type: ``"image"`` or ``"audio"``.
        mime: MIME type from the content, e.g. ``"image/jpeg"``, ``"audio/ogg"``.
        width: Photo width in pixels (photos only).
        height: Photo height in pixels (photos only).
        duration_s: Voice-note duration in seconds (audio only).
    """

    type: str
    mime: str
    width: Optional[int] = None
    height: Optional[int] = None
    duration_s: Optional[float] = None


def sniff(data: bytes) -> Tuple[str, str]:
    """Identify an upload from its content alone; the file name and declared MIME type play no part.

    Images are identified by Pillow from the header (pixels are not decoded): JPEG, PNG, WebP, GIF. Audio
    is identified by ``ffprobe`` (containers OGG, WebM/Matroska, MP4/M4A, 3GP, MP3, WAV, FLAC, AAC), with
    the verdicts of :func:`media.ffmpeg.probe_audio`.

    Args:
        data: The whole file.

    Returns:
        ``(type, mime)``, e.g. ``("image", "image/jpeg")`` or ``("audio", "audio/ogg")``.

    Raises:
        AttachmentError: ``empty`` for zero bytes, ``unsupported_type`` for anything else (text, PDF,
            video, unknown formats, audio FFmpeg cannot reliably identify, or audio when ffprobe is missing),
            ``damaged`` for an accepted audio container that does not read.
    """
    if not data:
        raise AttachmentError("empty", "zero bytes")
    fmt = identify_image(data)
    if fmt is not None:
        return IMAGE_ATTACHMENT, IMAGE_MIME[fmt]
    info = probe_audio(data, attachment_type=None)
    return AUDIO_ATTACHMENT, info.mime_type


def _audio_of(path: "os.PathLike[str]") -> MediaInfo:
    """Probe a stored audio file; its duration from the header or, failing that, from the packets."""
    info = probe_audio(path, attachment_type=None)
    duration = info.duration_s
    if duration is None:
        duration = packet_duration_s(path, attachment_type=None)
    return MediaInfo(AUDIO_ATTACHMENT, info.mime_type, duration_s=duration)


def inspect_upload(data: bytes, path: "os.PathLike[str]", limits: AttachmentLimits) -> MediaInfo:
    """Sniff the type of an upload and apply the type's byte, pixel and duration limits.

    Args:
        data: The upload's bytes (non-empty).
        path: A file holding the same bytes (``ffprobe`` reads it with the ``file`` protocol, which lets it
            see declared durations that a pipe hides).
        limits: The limits to apply.

    Returns:
        Type, MIME type and pixel size or duration.

    Raises:
        AttachmentError: ``too_large`` (bytes over the type's limit, or pixels), ``too_long`` (audio
            seconds), ``no_speech`` (audio without any samples), ``unsupported_type``, ``damaged``.
    """
    media: Optional[MediaInfo] = None
    if identify_image(data) is not None:
        media_type = IMAGE_ATTACHMENT
    else:
        media = _audio_of(path)
        media_type = AUDIO_ATTACHMENT
    limit = limits.max_bytes_for(media_type)
    if len(data) > limit:
        raise AttachmentError(
            "too_large", f"{len(data)} bytes > {limit} bytes", attachment_type=media_type, limits=limits
        )
    if media is None:
        image = inspect_image(data, limits)
        return MediaInfo(IMAGE_ATTACHMENT, image.mime_type, width=image.width, height=image.height)
    if media.duration_s is not None and media.duration_s > limits.audio_max_seconds:
        raise AttachmentError(
            "too_long",
            f"{media.duration_s:.1f} s > {limits.audio_max_seconds:g} s",
            attachment_type=AUDIO_ATTACHMENT,
            limits=limits,
        )
    if not media.duration_s:
        raise AttachmentError(
            "no_speech", "audio without samples (0 s)", attachment_type=AUDIO_ATTACHMENT, limits=limits
        )
    return media
