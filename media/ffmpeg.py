"""FFmpeg for voice notes: the one place that runs ``ffprobe`` and ``ffmpeg`` (https://ffmpeg.org).

Customers' voice notes arrive as OGG/Opus (Telegram, WhatsApp exports), WebM/Opus (a browser's
MediaRecorder), MP3, M4A/AAC (phones), FLAC or WAV at any sample rate and channel count. Nothing here parses
a container by hand: ``ffprobe`` says what the bytes are (:func:`probe_audio`) and ``ffmpeg`` decodes,
down-mixes and resamples them (:func:`decode_audio`). The upload store's sniffing and the SpeechRecognizer's
decoding both call :func:`probe_audio`, so an upload gets the same verdict in both places.

Both tools are confined to the upload:

* ``-protocol_whitelist`` allows only the input pipe or the one file, and ``-format_whitelist`` allows only
  the audio demuxers of :data:`AUDIO_DEMUXER_MIME`, so playlists or concat scripts that would open other files
  or URLs are refused by FFmpeg itself;
* the decoder output is capped at ``max_duration_s`` seconds with ``-t`` (ten minutes of silence costs the
  decoding of the first two), and every run has a wall-clock timeout after which the child is killed.

Input: a file path (the store's freshly written upload) is read with the ``file`` protocol. Bytes normally
go through the child's stdin. MP4/M4A/3GP files whose index (``moov`` box) sits after the samples, as phones
write them, cannot be demuxed from a pipe once they pass a few megabytes, so bytes that start with an
ISO-BMFF ``ftyp`` box are handed over as a seekable in-memory file (``memfd``, Linux) or, where that does not
exist, a private temporary file that is removed straight after.

Errors are :class:`media.errors.AttachmentError`: ``empty`` (zero bytes), ``too_large`` (over ``max_bytes``),
``unsupported_type`` (the content is no accepted audio, e.g. a JPEG named ``.ogg``, or FFmpeg is missing) and
``damaged`` (an accepted audio container that cannot be read or decoded, or a tool that times out). A
well-formed file without any samples is *not* an error here: it decodes to zero samples and the caller decides
what that means.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from assistant.keys import AUDIO_ATTACHMENT
from media.audio import PCM_DTYPE, DecodedAudio
from media.errors import AttachmentError

logger = logging.getLogger(__name__)

__all__ = [
    "AUDIO_DEMUXERS",
    "AUDIO_DEMUXER_MIME",
    "MIN_PROBE_SCORE",
    "UNAVAILABLE_MESSAGE",
    "AudioInfo",
    "AudioSource",
    "decode_audio",
    "ffmpeg_available",
    "packet_duration_s",
    "probe_audio",
]

#: FFmpeg demuxers a voice note may be opened with (container families, not file extensions), in the order
#: their MIME type is looked up, and the MIME type the store records for each.
AUDIO_DEMUXER_MIME: Mapping[str, str] = {
    "ogg": "audio/ogg",  # Ogg: Opus (Telegram voice notes), Vorbis, FLAC-in-Ogg
    "matroska": "audio/webm",  # Matroska/WebM: Opus from browsers' MediaRecorder
    "webm": "audio/webm",
    "mov": "audio/mp4",  # ISO-BMFF: M4A/MP4 (AAC, ALAC), 3GP/3G2 (AMR)
    "mp4": "audio/mp4",
    "m4a": "audio/mp4",
    "3gp": "audio/3gpp",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "aac": "audio/aac",  # raw ADTS AAC
}
#: The demuxer names alone (``-format_whitelist``).
AUDIO_DEMUXERS: Tuple[str, ...] = tuple(AUDIO_DEMUXER_MIME)
#: Lowest accepted probe score. FFmpeg scores its container guess 1..100 and, at 25 or below, warns
#: "misdetection possible": it could not reliably identify the container.
MIN_PROBE_SCORE = 26
#: Wall-clock limit for one ``ffprobe`` run, in seconds.
PROBE_TIMEOUT_S = 10.0
#: Friendly text when a voice note cannot be handled because FFmpeg is missing or cannot start.
UNAVAILABLE_MESSAGE = "I can't listen to voice notes right now — could you type your message?"

#: The upload: bytes, or the path of a file holding them.
AudioSource = Union[bytes, bytearray, memoryview, "os.PathLike[str]"]

# Magic numbers of the accepted containers (offset, bytes): WAV (RIFF/RIFX/RF64/BW64), Ogg, FLAC, MP3 with an
# ID3v2 tag, Matroska/WebM (EBML), ISO-BMFF (ftyp box). Content that starts with one of them was meant to be
# a voice note of an accepted kind; when FFmpeg cannot read it, it is damaged rather than something else.
_CONTAINER_SIGNATURES: Tuple[Tuple[int, bytes], ...] = (
    (0, b"RIFF"),
    (0, b"RIFX"),
    (0, b"RF64"),
    (0, b"BW64"),
    (0, b"OggS"),
    (0, b"fLaC"),
    (0, b"ID3"),
    (0, b"\x1a\x45\xdf\xa3"),
    (4, b"ftyp"),
)
_HEAD_BYTES = 16
_BYTES_PER_SAMPLE = 2  # s16le
_TRUNCATION_MARGIN_S = 0.5  # decode this much past the cap to learn whether anything was cut
_DEMUXER_IN_LOG = re.compile(r"^\[([\w,]+) @ ", flags=re.MULTILINE)
_LOG_PREFIX = re.compile(r"\[([\w,]+) @ 0x[0-9a-f]+\] ")
_FILE_PREFIX = re.compile(r"file:\S+?: ")  # temporary paths say nothing useful in a log line
_PROBE_ENTRIES = (
    "format=format_name,duration,probe_score"
    ":stream=codec_type,codec_name,sample_rate,channels:stream_disposition=attached_pic"
)


@dataclass(frozen=True)
class AudioInfo:
    """What ``ffprobe`` found in an upload.

    Attributes:
        format_name: FFmpeg demuxer name(s), e.g. ``"ogg"`` or ``"mov,mp4,m4a,3gp,3g2,mj2"``.
        codec_name: Codec of the first audio stream, e.g. ``"opus"``, ``"aac"``, ``"pcm_s16le"``.
        sample_rate: Stored sample rate in Hz, ``None`` when not reported.
        channels: Stored channel count, ``None`` when not reported.
        duration_s: Duration in seconds as the container declares it; ``None`` when the container does not
            say so up front (Ogg, WAV and MP3 read from a pipe usually do not; see :func:`packet_duration_s`).
    """

    format_name: str
    codec_name: str
    sample_rate: Optional[int]
    channels: Optional[int]
    duration_s: Optional[float]

    @property
    def mime_type(self) -> str:
        """The MIME type of the container: that of the first accepted demuxer named in ``format_name``."""
        names = self.format_name.split(",")
        return next(AUDIO_DEMUXER_MIME[name] for name in names if name in AUDIO_DEMUXER_MIME)


# --------------------------------------------------------------------------------------------------------
# Running the tools
# --------------------------------------------------------------------------------------------------------
def ffmpeg_available() -> bool:
    """Whether both ``ffmpeg`` and ``ffprobe`` are on ``PATH``."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def _unavailable(detail: str, attachment_type: Optional[str]) -> AttachmentError:
    """``unsupported_type``: the tool is missing or cannot start (voice-note wording if audio is expected)."""
    message = UNAVAILABLE_MESSAGE if attachment_type == AUDIO_ATTACHMENT else None
    return AttachmentError("unsupported_type", detail, user_message=message, attachment_type=attachment_type)


def _tool(name: str, attachment_type: Optional[str]) -> str:
    """The path of ``ffprobe`` / ``ffmpeg``.

    Raises:
        AttachmentError: ``unsupported_type`` when it is not installed.
    """
    path = shutil.which(name)
    if path is None:
        raise _unavailable(
            f"{name} is not installed; audio cannot be identified or decoded (install ffmpeg, e.g. "
            "`make sysdeps`)",
            attachment_type,
        )
    return path


def _is_path(source: AudioSource) -> bool:
    return isinstance(source, (str, os.PathLike))


def _head(source: AudioSource) -> bytes:
    """The first bytes of the upload (for the container signatures); ``b""`` when the file is unreadable."""
    if not _is_path(source):
        return bytes(source[:_HEAD_BYTES])
    try:
        with open(source, "rb") as handle:  # type: ignore[arg-type]
            return handle.read(_HEAD_BYTES)
    except OSError:
        return b""


@contextlib.contextmanager
def _ffmpeg_input(source: AudioSource) -> Iterator[Tuple[List[str], Optional[bytes], Tuple[int, ...]]]:
    """The input options, stdin bytes and inherited descriptors that hand ``source`` to an FFmpeg tool.

    Yields:
        ``(options, stdin_bytes, pass_fds)``: ``options`` end with ``-i <input>``.
    """
    if _is_path(source):
        path = os.fspath(source)  # type: ignore[arg-type]
        yield ["-protocol_whitelist", "file", "-i", f"file:{path}"], None, ()
        return
    data = bytes(source)
    if data[4:8] != b"ftyp":  # only ISO-BMFF may keep its index after the samples
        yield ["-protocol_whitelist", "pipe", "-i", "pipe:0"], data, ()
        return
    if hasattr(os, "memfd_create") and os.path.isdir("/dev/fd"):
        fd = os.memfd_create("voice-note", os.MFD_CLOEXEC)
        try:
            with os.fdopen(os.dup(fd), "wb", closefd=True) as handle:
                handle.write(data)
            os.lseek(fd, 0, os.SEEK_SET)
            yield ["-protocol_whitelist", "file", "-i", f"file:/dev/fd/{fd}"], None, (fd,)
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="voice-note-") as directory:  # pragma: no cover - non-Linux
        path = os.path.join(directory, "input")
        with open(path, "wb") as handle:
            handle.write(data)
        yield ["-protocol_whitelist", "file", "-i", f"file:{path}"], None, ()


def _run(
    tool: str,
    arguments: Sequence[str],
    source: AudioSource,
    timeout_s: float,
    attachment_type: Optional[str],
    input_arguments: Sequence[str] = (),
) -> subprocess.CompletedProcess:
    """Run ``ffprobe`` or ``ffmpeg`` on ``source`` with the demuxer whitelist and a wall-clock timeout.

    Args:
        tool: ``"ffprobe"`` or ``"ffmpeg"``.
        arguments: Everything after the input (entries to show, output options).
        source: The upload (see :data:`AudioSource`).
        timeout_s: Wall-clock limit in seconds; the child is killed when it runs over.
        attachment_type: The type the caller expects (``"audio"``, or ``None`` when sniffing).
        input_arguments: Options placed before the input (they apply to its demuxer and decoder).

    Returns:
        The finished process with ``stdout`` and ``stderr`` as bytes (its return code is not checked).

    Raises:
        AttachmentError: ``unsupported_type`` when the tool is missing or cannot be started, ``damaged``
            (``attachment_type="audio"``) on timeout.
    """
    binary = _tool(tool, attachment_type)
    with _ffmpeg_input(source) as (input_options, stdin_bytes, pass_fds):
        command = [
            binary, "-hide_banner", "-loglevel", "error",
            *input_arguments,
            "-format_whitelist", ",".join(AUDIO_DEMUXERS),
            *input_options,
            *arguments,
        ]
        try:
            return subprocess.run(
                command,
                input=stdin_bytes,
                stdin=None if stdin_bytes is not None else subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout_s,
                pass_fds=pass_fds,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise AttachmentError(
                "damaged", f"{tool} took longer than {timeout_s:g} s", attachment_type=AUDIO_ATTACHMENT
            ) from None
        except OSError as error:
            raise _unavailable(f"{tool} could not run: {error}", attachment_type) from None


def _first_line(stderr: bytes) -> str:
    """The first line of an FFmpeg error log, without object addresses (``[wav @ 0x55f2...]``) or paths."""
    text = _LOG_PREFIX.sub(r"\1: ", stderr.decode("utf-8", "replace"))
    text = _FILE_PREFIX.sub("", text).strip()
    return text.splitlines()[0][:200] if text else "no message"


# --------------------------------------------------------------------------------------------------------
# Probing
# --------------------------------------------------------------------------------------------------------
def _probe_failure(stderr: bytes, head: bytes, attachment_type: Optional[str]) -> AttachmentError:
    """The verdict on content ``ffprobe`` refused: "accepted audio, but broken" or "something else".

    * ``unsupported_type`` when FFmpeg recognised a container that is not on the whitelist (a JPEG, a
      playlist, a concat script, a video container);
    * ``damaged`` (``attachment_type="audio"``) when an accepted demuxer reported the error, or the content
      starts with an accepted container's magic number (a RIFF header full of noise, a cut-off Ogg file);
    * ``unsupported_type`` otherwise (text, PDF, zeros: nothing suggests audio).
    """
    text = stderr.decode("utf-8", "replace")
    demuxers = [name for match in _DEMUXER_IN_LOG.findall(text) for name in match.split(",")]
    if "not on whitelist" in text:
        shown = demuxers[0] if demuxers else "unknown"
        return AttachmentError(
            "unsupported_type", f"content is {shown}, not audio", attachment_type=attachment_type
        )
    signature = any(head[offset : offset + len(magic)] == magic for offset, magic in _CONTAINER_SIGNATURES)
    if signature or any(name in AUDIO_DEMUXER_MIME for name in demuxers):
        return AttachmentError("damaged", f"ffprobe: {_first_line(stderr)}", attachment_type=AUDIO_ATTACHMENT)
    return AttachmentError(
        "unsupported_type",
        f"neither a supported image nor audio (ffprobe: {_first_line(stderr)})",
        attachment_type=attachment_type,
    )


def _optional_int(value: object) -> Optional[int]:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _optional_seconds(value: object) -> Optional[float]:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _check_size(data: AudioSource, max_bytes: Optional[int], attachment_type: Optional[str]) -> None:
    if _is_path(data):
        return
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"audio must be bytes or a path, not {type(data).__name__}")
    if len(data) == 0:
        raise AttachmentError("empty", "zero bytes", attachment_type=attachment_type)
    if max_bytes is not None and len(data) > max_bytes:
        raise AttachmentError(
            "too_large", f"{len(data)} bytes > {max_bytes} bytes", attachment_type=attachment_type
        )


def probe_audio(
    data: AudioSource,
    max_bytes: Optional[int] = None,
    timeout_s: float = PROBE_TIMEOUT_S,
    attachment_type: Optional[str] = AUDIO_ATTACHMENT,
) -> AudioInfo:
    """Identify an upload as audio from its content (never its name) with ``ffprobe``: one verdict per input.

    Accepted: a container of :data:`AUDIO_DEMUXER_MIME` that FFmpeg identifies with a probe score of at least
    :data:`MIN_PROBE_SCORE` and that holds an audio stream with a known codec and no video (cover art is
    fine). The verdicts on everything else:

    * a probe score at or below 25 is ``unsupported_type``: FFmpeg itself could not reliably identify the
      container (it warns "misdetection possible"), so the bytes were not identified as accepted audio — a
      few stray MPEG audio frames, or noise that happens to look like one. (Before one runner served both,
      the decoder called this ``damaged``; "damaged" is kept for content that *was* identified as an accepted
      container and then does not read.)
    * a container FFmpeg does not accept (see :func:`_probe_failure`), video, or no audio stream:
      ``unsupported_type``;
    * an accepted container that does not read (an accepted demuxer reports the error, or the content carries
      the container's magic number), an audio stream with an unknown codec, unreadable output, or a timeout:
      ``damaged`` (``attachment_type="audio"``).

    Args:
        data: The whole file as bytes, or the path of a file holding it.
        max_bytes: Largest accepted file in bytes (bytes input only); ``None`` for no limit here.
        timeout_s: Wall-clock limit for ``ffprobe`` in seconds.
        attachment_type: The type the caller expects: ``"audio"`` (a voice-note reference) or ``None`` (the
            store sniffing an upload of unknown type). Errors other than ``damaged`` carry it.

    Returns:
        The container, codec and declared duration.

    Raises:
        AttachmentError: ``empty``, ``too_large``, ``unsupported_type`` (as above, or FFmpeg missing) or
            ``damaged`` (as above).
        TypeError: ``data`` is neither bytes nor a path.
    """
    _check_size(data, max_bytes, attachment_type)
    source = data if _is_path(data) else bytes(data)
    arguments = ["-show_entries", _PROBE_ENTRIES, "-of", "json"]
    result = _run("ffprobe", arguments, source, timeout_s, attachment_type)
    if result.returncode != 0:
        raise _probe_failure(result.stderr, _head(source), attachment_type)
    try:
        report = json.loads(result.stdout.decode("utf-8", "replace") or "{}")
    except ValueError:
        raise AttachmentError(
            "damaged", "ffprobe printed unreadable JSON", attachment_type=AUDIO_ATTACHMENT
        ) from None
    fmt = report.get("format") or {}
    format_name = str(fmt.get("format_name") or "")
    if not set(format_name.split(",")) & set(AUDIO_DEMUXERS):
        raise AttachmentError(
            "unsupported_type",
            f"container {format_name or 'unknown'!r} is not accepted",
            attachment_type=attachment_type,
        )
    score = _optional_int(fmt.get("probe_score")) or 0
    if score < MIN_PROBE_SCORE:
        raise AttachmentError(
            "unsupported_type",
            f"{format_name} detected only with probe score {score} (misdetection possible)",
            attachment_type=attachment_type,
        )
    streams = report.get("streams") or []
    video = [
        s for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if video:
        raise AttachmentError(
            "unsupported_type", f"{format_name} file contains video", attachment_type=attachment_type
        )
    if not audio:
        raise AttachmentError(
            "unsupported_type", f"{format_name} file has no audio stream", attachment_type=attachment_type
        )
    stream = audio[0]
    if not stream.get("codec_name"):
        raise AttachmentError(
            "damaged", "audio stream with an unknown codec", attachment_type=AUDIO_ATTACHMENT
        )
    return AudioInfo(
        format_name=format_name,
        codec_name=str(stream["codec_name"]),
        sample_rate=_optional_int(stream.get("sample_rate")),
        channels=_optional_int(stream.get("channels")),
        duration_s=_optional_seconds(fmt.get("duration")),
    )


def packet_duration_s(
    data: AudioSource, timeout_s: float = PROBE_TIMEOUT_S, attachment_type: Optional[str] = AUDIO_ATTACHMENT
) -> float:
    """Duration in seconds from the packet timestamps of the first audio stream (no decoding).

    For containers that declare no duration up front, e.g. WebM written live by a browser: the end of the last
    packet, ``max(pts + duration)``.

    Args:
        data: The whole file as bytes, or the path of a file holding it (probed first with
            :func:`probe_audio`).
        timeout_s: Wall-clock limit for ``ffprobe`` in seconds.
        attachment_type: As :func:`probe_audio`.

    Returns:
        Seconds; 0.0 when no packet carries a timestamp.

    Raises:
        AttachmentError: as :func:`probe_audio` when ``ffprobe`` fails.
    """
    source = data if _is_path(data) else bytes(data)
    arguments = ["-select_streams", "a:0", "-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0"]
    result = _run("ffprobe", arguments, source, timeout_s, attachment_type)
    if result.returncode != 0:
        raise _probe_failure(result.stderr, _head(source), attachment_type)
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


# --------------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------------
def decode_audio(
    data: bytes,
    sample_rate: int = 16000,
    max_duration_s: float = 120.0,
    max_bytes: Optional[int] = None,
    timeout_s: float = 30.0,
) -> DecodedAudio:
    """Decode any accepted voice-note format to mono ``int16`` PCM at ``sample_rate``.

    The file is first identified with :func:`probe_audio`; ``ffmpeg`` then decodes the first audio stream,
    averages the channels to mono and resamples (libswresample). At most ``max_duration_s`` seconds are
    returned; a longer source is cut (``truncated=True``), and the rest is never decoded.

    Args:
        data: The whole file (any container in :data:`AUDIO_DEMUXERS`).
        sample_rate: Output sample rate in Hz (Vosk models expect 16000).
        max_duration_s: Longest audio returned, in seconds.
        max_bytes: Largest accepted file in bytes; ``None`` for no limit here.
        timeout_s: Wall-clock limit in seconds for the decoder (the probe has its own, shorter, limit).

    Returns:
        The samples, ``int16`` of shape ``(n_samples,)`` with ``n_samples <= max_duration_s * sample_rate``.
        ``n_samples`` is 0 for a well-formed file without samples (e.g. a WAV header alone).

    Raises:
        AttachmentError: as :func:`probe_audio` (``attachment_type="audio"``); ``damaged`` when ``ffmpeg``
            fails without producing samples or runs past ``timeout_s``.
        ValueError: for a non-positive ``sample_rate`` or ``max_duration_s``.
    """
    if sample_rate <= 0 or max_duration_s <= 0:
        raise ValueError("sample_rate (Hz) and max_duration_s (s) must be positive")
    data = bytes(data)
    info = probe_audio(data, max_bytes=max_bytes, timeout_s=min(timeout_s, PROBE_TIMEOUT_S))
    max_samples = int(round(max_duration_s * sample_rate))
    output_options = [
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-t", f"{max_duration_s + _TRUNCATION_MARGIN_S:.3f}",
        "-ac", "1", "-ar", str(int(sample_rate)),
        "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1",
    ]
    # One decoder thread (an input option): a voice note is short, and the server decodes several at once.
    result = _run("ffmpeg", output_options, data, timeout_s, AUDIO_ATTACHMENT, ["-nostats", "-threads", "1"])
    raw = result.stdout[: len(result.stdout) - len(result.stdout) % _BYTES_PER_SAMPLE]
    if result.returncode != 0:
        if not raw:
            raise AttachmentError(
                "damaged", f"ffmpeg: {_first_line(result.stderr)}", attachment_type=AUDIO_ATTACHMENT
            )
        logger.info("Voice note decoded only in part (%s)", _first_line(result.stderr))
    pcm = np.frombuffer(raw, dtype="<i2").astype(PCM_DTYPE, copy=False)
    truncated = pcm.shape[0] > max_samples
    if truncated:
        pcm = pcm[:max_samples]
    return DecodedAudio(
        pcm=np.ascontiguousarray(pcm), sample_rate=int(sample_rate), truncated=truncated, info=info
    )
