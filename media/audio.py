"""Voice-note decoding: any common audio container → 16 kHz mono int16 PCM, done by FFmpeg.

Customers' voice notes arrive as OGG/Opus (Telegram, WhatsApp exports), WebM/Opus (a browser's
MediaRecorder), MP3, M4A/AAC (phones), FLAC or WAV at any sample rate and channel count. Nothing here parses a
container by hand: ``ffprobe`` says what the bytes are and ``ffmpeg`` decodes, down-mixes and resamples them.

Both tools read the upload from memory and are confined to it:

* ``-protocol_whitelist`` allows only the input pipe (or the in-memory file below), and ``-format_whitelist``
  allows only the audio demuxers in :data:`AUDIO_DEMUXERS`, so playlists or concat scripts that would open
  other files or URLs are refused by FFmpeg itself;
* the decoder output is capped at ``max_duration_s`` seconds with ``-t`` (ten minutes of silence costs the
  decoding of the first two), and every run has a wall-clock timeout.

The input normally goes through the child's stdin. MP4/M4A/3GP files whose index (``moov`` box) sits after the
samples, as phones write them, cannot be demuxed from a pipe once they pass a few megabytes, so files that
start with an ISO-BMFF ``ftyp`` box are handed over as a seekable in-memory file (``memfd``, Linux) or, where
that does not exist, a private temporary file that is removed straight after.

Errors are :class:`media.attachments.AttachmentError` with ``attachment_type="audio"``:
``empty`` (zero bytes), ``too_large`` (over ``max_bytes``), ``unsupported_type`` (the content is something
other than audio, e.g. a JPEG named ``.ogg``, or FFmpeg is missing) and ``damaged`` (an audio container that
does not decode, or a decoder that times out). A well-formed file without any samples is *not* an error here:
it decodes to zero samples and the caller decides what that means.
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
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from media.attachments import AttachmentError

logger = logging.getLogger(__name__)

#: FFmpeg demuxers a voice note may be opened with (container families, not file extensions).
AUDIO_DEMUXERS: Tuple[str, ...] = (
    "ogg",  # Ogg: Opus (Telegram voice notes), Vorbis, FLAC-in-Ogg
    "matroska",  # Matroska/WebM: Opus from browsers' MediaRecorder
    "webm",
    "mov",  # ISO-BMFF: M4A/MP4 (AAC, ALAC), 3GP/3G2 (AMR)
    "mp4",
    "m4a",
    "3gp",
    "mp3",
    "wav",
    "flac",
    "aac",  # raw ADTS AAC
)

PCM_DTYPE = np.int16
_BYTES_PER_SAMPLE = 2  # s16le
_PROBE_MIN_SCORE = 26  # FFmpeg's probe score is 1..100; at 25 or below it warns "misdetection possible"
_PROBE_TIMEOUT_S = 10.0
_TRUNCATION_MARGIN_S = 0.5  # decode this much past the cap to learn whether anything was cut
_DEMUXER_IN_LOG = re.compile(r"^\[([\w,]+) @ ", flags=re.MULTILINE)


@dataclass(frozen=True)
class AudioInfo:
    """What ``ffprobe`` found in an upload.

    Attributes:
        format_name: FFmpeg demuxer name(s), e.g. ``"ogg"`` or ``"mov,mp4,m4a,3gp,3g2,mj2"``.
        codec_name: Codec of the first audio stream, e.g. ``"opus"``, ``"aac"``, ``"pcm_s16le"``.
        sample_rate: Stored sample rate in Hz, ``None`` when not reported.
        channels: Stored channel count, ``None`` when not reported.
        duration_s: Duration in seconds as the container declares it; ``None`` when the container does not
            say so up front (Ogg, WAV and MP3 read from a pipe usually do not).
    """

    format_name: str
    codec_name: str
    sample_rate: Optional[int]
    channels: Optional[int]
    duration_s: Optional[float]


@dataclass(frozen=True)
class DecodedAudio:
    """A decoded voice note.

    Attributes:
        pcm: Mono samples, ``int16`` (full scale ±32768), shape ``(n_samples,)``.
        sample_rate: Sample rate of ``pcm`` in Hz.
        truncated: ``True`` when the source was longer than the cap and only its start was decoded.
        info: The ``ffprobe`` report of the source.
    """

    pcm: np.ndarray
    sample_rate: int
    truncated: bool
    info: AudioInfo

    @property
    def n_samples(self) -> int:
        """Number of samples in ``pcm``."""
        return int(self.pcm.shape[0])

    @property
    def duration_s(self) -> float:
        """Duration of the decoded audio in seconds (``n_samples / sample_rate``)."""
        return self.n_samples / float(self.sample_rate)


def ffmpeg_available() -> bool:
    """Whether both ``ffmpeg`` and ``ffprobe`` are on ``PATH``."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise AttachmentError(
            "unsupported_type",
            f"{name} is not installed; voice notes cannot be decoded (install ffmpeg, e.g. `make sysdeps`)",
            user_message="I can't listen to voice notes right now — could you type your message?",
            attachment_type="audio",
        )
    return path


def _needs_seekable_input(data: bytes) -> bool:
    """ISO-BMFF (MP4/M4A/3GP/MOV) starts with an ``ftyp`` box; its index may follow the samples."""
    return data[4:8] == b"ftyp"


@contextlib.contextmanager
def _ffmpeg_input(data: bytes) -> Iterator[Tuple[List[str], Optional[bytes], Tuple[int, ...]]]:
    """The input options, stdin bytes and inherited descriptors that hand ``data`` to an FFmpeg tool.

    Yields:
        ``(options, stdin_bytes, pass_fds)``: ``options`` end with ``-i <input>``.
    """
    if not _needs_seekable_input(data):
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


def _run(command: Sequence[str], stdin_bytes: Optional[bytes], pass_fds: Tuple[int, ...], timeout_s: float,
         what: str) -> subprocess.CompletedProcess:
    """Run an FFmpeg tool with a wall-clock timeout; the child is killed when it runs over.

    Raises:
        AttachmentError: ``damaged`` on timeout, ``unsupported_type`` when the tool cannot be started.
    """
    try:
        return subprocess.run(
            list(command),
            input=stdin_bytes,
            stdin=None if stdin_bytes is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
            pass_fds=pass_fds,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AttachmentError(
            "damaged", f"{what} took longer than {timeout_s:g} s", attachment_type="audio"
        ) from None
    except OSError as error:
        raise AttachmentError(
            "unsupported_type", f"{what} could not run: {error}", attachment_type="audio"
        ) from None


_LOG_PREFIX = re.compile(r"\[([\w,]+) @ 0x[0-9a-f]+\] ")


def _first_line(stderr: bytes) -> str:
    """The first line of an FFmpeg error log, without the object address (``[wav @ 0x55f2...]``)."""
    text = _LOG_PREFIX.sub(r"\1: ", stderr.decode("utf-8", "replace")).strip()
    return text.splitlines()[0][:200] if text else "no message"


def _probe_failure(stderr: bytes) -> AttachmentError:
    """Tell "not audio at all" (a JPEG named .ogg) from "audio, but broken" (a RIFF/WAVE full of noise)."""
    text = stderr.decode("utf-8", "replace")
    demuxers = [name for match in _DEMUXER_IN_LOG.findall(text) for name in match.split(",")]
    if "not on whitelist" in text:
        shown = demuxers[0] if demuxers else "unknown"
        return AttachmentError(
            "unsupported_type", f"content is {shown}, not audio", attachment_type="audio"
        )
    return AttachmentError("damaged", f"ffprobe: {_first_line(stderr)}", attachment_type="audio")


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


def _check_size(data: bytes, max_bytes: Optional[int]) -> None:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"audio must be bytes, not {type(data).__name__}")
    if len(data) == 0:
        raise AttachmentError("empty", "zero bytes", attachment_type="audio")
    if max_bytes is not None and len(data) > max_bytes:
        raise AttachmentError(
            "too_large", f"{len(data)} bytes > {max_bytes} bytes", attachment_type="audio"
        )


def probe_audio(
    data: bytes, max_bytes: Optional[int] = None, timeout_s: float = _PROBE_TIMEOUT_S
) -> AudioInfo:
    """Identify an upload as audio from its content (never its name) with ``ffprobe``.

    Args:
        data: The whole file.
        max_bytes: Largest accepted file in bytes; ``None`` for no limit here.
        timeout_s: Wall-clock limit for ``ffprobe`` in seconds.

    Returns:
        The container, codec and declared duration.

    Raises:
        AttachmentError: ``empty``, ``too_large``, ``unsupported_type`` (not an accepted audio container, a
            container without audio, video, or FFmpeg missing) or ``damaged`` (an audio container that
            cannot be read, or ``ffprobe`` timing out).
    """
    data = bytes(data)
    _check_size(data, max_bytes)
    ffprobe = _binary("ffprobe")
    with _ffmpeg_input(data) as (input_options, stdin_bytes, pass_fds):
        command = [
            ffprobe, "-hide_banner", "-loglevel", "error",
            "-format_whitelist", ",".join(AUDIO_DEMUXERS),
            *input_options,
            "-show_entries",
            "format=format_name,duration,probe_score:stream=codec_type,codec_name,sample_rate,channels"
            ":stream_disposition=attached_pic",
            "-of", "json",
        ]
        result = _run(command, stdin_bytes, pass_fds, timeout_s, "ffprobe")
    if result.returncode != 0:
        raise _probe_failure(result.stderr)
    try:
        report = json.loads(result.stdout.decode("utf-8", "replace") or "{}")
    except ValueError:
        raise AttachmentError("damaged", "ffprobe printed unreadable JSON", attachment_type="audio") from None
    fmt = report.get("format") or {}
    format_name = str(fmt.get("format_name") or "")
    if not set(format_name.split(",")) & set(AUDIO_DEMUXERS):
        raise AttachmentError(
            "unsupported_type",
            f"container {format_name or 'unknown'!r} is not accepted",
            attachment_type="audio",
        )
    score = _optional_int(fmt.get("probe_score")) or 0
    if score < _PROBE_MIN_SCORE:
        raise AttachmentError(
            "damaged", f"{format_name} recognised only with probe score {score}", attachment_type="audio"
        )
    streams = report.get("streams") or []
    video = [
        s for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if video:
        raise AttachmentError(
            "unsupported_type", f"{format_name} file contains video", attachment_type="audio"
        )
    if not audio:
        raise AttachmentError(
            "unsupported_type", f"{format_name} file has no audio stream", attachment_type="audio"
        )
    stream = audio[0]
    if not stream.get("codec_name"):
        raise AttachmentError("damaged", "audio stream with an unknown codec", attachment_type="audio")
    return AudioInfo(
        format_name=format_name,
        codec_name=str(stream["codec_name"]),
        sample_rate=_optional_int(stream.get("sample_rate")),
        channels=_optional_int(stream.get("channels")),
        duration_s=_optional_seconds(fmt.get("duration")),
    )


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
        AttachmentError: as :func:`probe_audio`; ``damaged`` when ``ffmpeg`` fails without producing
            samples or runs past ``timeout_s``.
        ValueError: for a non-positive ``sample_rate`` or ``max_duration_s``.
    """
    if sample_rate <= 0 or max_duration_s <= 0:
        raise ValueError("sample_rate (Hz) and max_duration_s (s) must be positive")
    data = bytes(data)
    info = probe_audio(data, max_bytes=max_bytes, timeout_s=min(timeout_s, _PROBE_TIMEOUT_S))
    ffmpeg = _binary("ffmpeg")
    max_samples = int(round(max_duration_s * sample_rate))
    with _ffmpeg_input(data) as (input_options, stdin_bytes, pass_fds):
        command = [
            ffmpeg, "-hide_banner", "-nostats", "-loglevel", "error", "-threads", "1",
            "-format_whitelist", ",".join(AUDIO_DEMUXERS),
            *input_options,
            "-map", "0:a:0", "-vn", "-sn", "-dn",
            "-t", f"{max_duration_s + _TRUNCATION_MARGIN_S:.3f}",
            "-ac", "1", "-ar", str(int(sample_rate)),
            "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1",
        ]
        result = _run(command, stdin_bytes, pass_fds, timeout_s, "ffmpeg")
    raw = result.stdout[: len(result.stdout) - len(result.stdout) % _BYTES_PER_SAMPLE]
    if result.returncode != 0:
        if not raw:
            raise AttachmentError("damaged", f"ffmpeg: {_first_line(result.stderr)}", attachment_type="audio")
        logger.info("Voice note decoded only in part (%s)", _first_line(result.stderr))
    pcm = np.frombuffer(raw, dtype="<i2").astype(PCM_DTYPE, copy=False)
    truncated = pcm.shape[0] > max_samples
    if truncated:
        pcm = pcm[:max_samples]
    return DecodedAudio(
        pcm=np.ascontiguousarray(pcm), sample_rate=int(sample_rate), truncated=truncated, info=info
    )


def loudest_frame_dbfs(pcm: np.ndarray, sample_rate: int, frame_s: float = 0.03) -> float:
    """Level of the loudest frame, in dBFS (0 dBFS = RMS of a full-scale square wave, 32768).

    Looking at the loudest short frame instead of the whole clip keeps two seconds of speech in two minutes
    of silence from being averaged away.

    Args:
        pcm: Mono ``int16`` samples, shape ``(n_samples,)``.
        sample_rate: Sample rate of ``pcm`` in Hz.
        frame_s: Frame length in seconds.

    Returns:
        ``-inf`` for no samples or digital silence, otherwise a value ≤ 0.
    """
    if pcm.size == 0:
        return float("-inf")
    frame = max(1, int(round(frame_s * sample_rate)))
    n_frames = math.ceil(pcm.shape[0] / frame)
    padded = np.zeros(n_frames * frame, dtype=np.float64)
    padded[: pcm.shape[0]] = pcm
    rms = np.sqrt(np.mean(np.square(padded.reshape(n_frames, frame)), axis=1))
    loudest = float(rms.max())
    return 20.0 * math.log10(loudest / 32768.0) if loudest > 0 else float("-inf")
