"""Customer media: attachment references, content sniffing, FFmpeg, the upload store and the guarded fetcher.

Channels and NLU components both go through this package to turn what a client sent into checked bytes;
nothing in it imports Rasa, the channels or the components. The public API is re-exported here, so callers
write ``from media import AttachmentStore`` and do not depend on the module layout inside the package.
"""
from media.attachments import (
    DEFAULT_ATTACHMENT_DIR,
    ERROR_CODES,
    AttachmentError,
    AttachmentLimits,
    AttachmentRef,
    AttachmentStore,
    default_store,
    parse_attachments,
    sanitise_name,
    sniff,
)
from media.audio import (
    AUDIO_DEMUXERS,
    AudioInfo,
    DecodedAudio,
    decode_audio,
    ffmpeg_available,
    loudest_frame_dbfs,
    probe_audio,
)

__all__ = [
    "AUDIO_DEMUXERS",
    "DEFAULT_ATTACHMENT_DIR",
    "ERROR_CODES",
    "AttachmentError",
    "AttachmentLimits",
    "AttachmentRef",
    "AttachmentStore",
    "AudioInfo",
    "DecodedAudio",
    "decode_audio",
    "default_store",
    "ffmpeg_available",
    "loudest_frame_dbfs",
    "parse_attachments",
    "probe_audio",
    "sanitise_name",
    "sniff",
]
