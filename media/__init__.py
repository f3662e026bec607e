"""Customer media: attachment references, content sniffing, FFmpeg, the upload store and the guarded fetcher.

Channels and NLU components both go through this package to turn what a client sent into checked bytes;
nothing in it imports Rasa, the channels or the components. The public API is re-exported here, so callers
write ``from media import AttachmentStore`` and do not depend on the module layout inside the package:

* :mod:`media.limits` — :class:`AttachmentLimits` (bytes, pixels, seconds, count, URL allow-list);
* :mod:`media.errors` — :class:`AttachmentError`, :data:`ERROR_CODES`, the friendly texts,
  :func:`log_rejection` and :func:`merge_problems`;
* :mod:`media.schema` — :class:`AttachmentRef`, :func:`parse_attachments`, :func:`sanitise_name`;
* :mod:`media.images` — photo formats, identification, pixel-limit and damage checks, :func:`decode_image`;
* :mod:`media.ffmpeg` — the one ``ffprobe``/``ffmpeg`` runner: demuxers, :func:`probe_audio`,
  :func:`decode_audio`;
* :mod:`media.audio` — decoded PCM (:class:`DecodedAudio`) and :func:`loudest_frame_dbfs`;
* :mod:`media.sniff` — :func:`sniff`: what an upload is, by content only;
* :mod:`media.urls`, :mod:`media.fetch` — public-address checks and the guarded downloader;
* :mod:`media.store` — :class:`AttachmentStore`, :func:`default_store`.
"""
from media.audio import DecodedAudio, loudest_frame_dbfs
from media.errors import ERROR_CODES, AttachmentError, log_rejection, merge_problems
from media.ffmpeg import (
    AUDIO_DEMUXER_MIME,
    AUDIO_DEMUXERS,
    AudioInfo,
    decode_audio,
    ffmpeg_available,
    probe_audio,
)
from media.images import IMAGE_FORMATS, IMAGE_MIME, decode_image
from media.limits import AttachmentLimits
from media.schema import AttachmentRef, parse_attachments, sanitise_name
from media.sniff import sniff
from media.store import DEFAULT_ATTACHMENT_DIR, AttachmentStore, default_store

__all__ = [
    "AUDIO_DEMUXERS",
    "AUDIO_DEMUXER_MIME",
    "DEFAULT_ATTACHMENT_DIR",
    "ERROR_CODES",
    "IMAGE_FORMATS",
    "IMAGE_MIME",
    "AttachmentError",
    "AttachmentLimits",
    "AttachmentRef",
    "AttachmentStore",
    "AudioInfo",
    "DecodedAudio",
    "decode_audio",
    "decode_image",
    "default_store",
    "ffmpeg_available",
    "log_rejection",
    "loudest_frame_dbfs",
    "merge_problems",
    "parse_attachments",
    "probe_audio",
    "sanitise_name",
    "sniff",
]
