"""Decoded voice notes: mono 16-bit PCM and the signal measures taken on it.

:class:`DecodedAudio` is what :func:`media.ffmpeg.decode_audio` returns; :func:`loudest_frame_dbfs` is the
level the SpeechRecognizer compares with its silence threshold. Nothing here runs a program or parses a
container.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # hints only
    from media.ffmpeg import AudioInfo

__all__ = ["PCM_DTYPE", "DecodedAudio", "loudest_frame_dbfs"]

#: Sample type of decoded voice notes: signed 16-bit, full scale ±32768.
PCM_DTYPE = np.int16
#: RMS of a full-scale square wave, the 0 dBFS reference for ``int16`` samples.
FULL_SCALE = 32768.0


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
    info: "AudioInfo"

    @property
    def n_samples(self) -> int:
        """Number of samples in ``pcm``."""
        return int(self.pcm.shape[0])

    @property
    def duration_s(self) -> float:
        """Duration of the decoded audio in seconds (``n_samples / sample_rate``)."""
        return self.n_samples / float(self.sample_rate)


def loudest_frame_dbfs(pcm: np.ndarray, sample_rate: int, frame_s: float = 0.03) -> float:
    """Level of the loudest frame, in dBFS (0 dBFS = RMS of a full-scale square wave, 32768).

    Looking at the loudest short frame instead of the whole clip keeps two seconds of speech in two minutes
    of silence from being averaged away. Formula: ``20 · log10(max_frame RMS / 32768)``; the last frame is
    zero-padded.

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
    return 20.0 * math.log10(loudest / FULL_SCALE) if loudest > 0 else float("-inf")
