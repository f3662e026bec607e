"""Offline speech recognition with Vosk (Kaldi TDNN models by Alpha Cephei, Apache-2.0).

:class:`Recognizer` is what the SpeechRecognizer needs (Vosk in production, fakes in tests);
:class:`VoskRecognizer` implements it on a model that :func:`load_vosk_model` loads once per process.
The ``vosk`` package is imported on first use only.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Protocol

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["Recognition", "Recognizer", "VoskRecognizer", "load_vosk_model"]


@dataclass(frozen=True)
class Recognition:
    """What a recogniser heard.

    Attributes:
        text: The words, separated by single spaces; ``""`` when nothing was recognised.
        confidence: Mean of the per-word confidences (0..1); 0.0 without words.
        n_words: Number of recognised words.
    """

    text: str
    confidence: float
    n_words: int


class Recognizer(Protocol):
    """Anything that turns 16-bit mono PCM into words (Vosk in production, fakes in tests)."""

    language: Optional[str]

    def recognize(self, pcm: np.ndarray, sample_rate: int) -> Recognition:
        """Transcribe ``pcm`` (``int16``, shape ``(n_samples,)``) sampled at ``sample_rate`` Hz."""
        ...


_VOSK_MODELS: Dict[str, Any] = {}
_VOSK_MODELS_LOCK = threading.Lock()


def load_vosk_model(model_dir: Path) -> Any:
    """The ``vosk.Model`` for ``model_dir``, loaded on first use and then shared by the whole process.

    Loading a small model takes about a second and ~100-300 MB of memory; it is never done per message.
    Vosk's own (Kaldi) logging is switched off.

    Raises:
        FileNotFoundError: ``model_dir`` is not a directory.
        RuntimeError: Vosk cannot load the model (incomplete or not a Vosk model).
    """
    key = str(Path(model_dir).resolve())
    with _VOSK_MODELS_LOCK:
        model = _VOSK_MODELS.get(key)
        if model is not None:
            return model
        if not Path(key).is_dir():
            raise FileNotFoundError(f"Vosk model directory {key} does not exist")
        import vosk

        vosk.SetLogLevel(-1)
        started = time.perf_counter()
        try:
            model = vosk.Model(key)
        except Exception as error:  # vosk raises a bare Exception("Failed to create a model")
            raise RuntimeError(f"Vosk could not load the model in {key}: {error}") from None
        logger.info("Loaded Vosk model %s in %.1f s.", key, time.perf_counter() - started)
        _VOSK_MODELS[key] = model
        return model


class VoskRecognizer:
    """Offline speech recognition with Vosk (Kaldi TDNN models by Alpha Cephei, Apache-2.0).

    The model is shared by the process. A ``KaldiRecognizer`` holds the decoding state of one utterance at a
    time, so each call takes one from a small pool of idle recognizers and gives it back after
    ``FinalResult()``. Vosk starts every utterance after a final result with a fresh feature pipeline (no
    speaker adaptation carried over from the previous customer), but keeps its decoding-graph cache: for
    the small models, whose graph is composed on the fly (``HCLr.fst`` + ``Gr.fst``), a warm recognizer
    decodes several times faster than a new one.

    That cache only grows (by ~150 MB over the first dozen voice notes, then slowly), so a recognizer is
    retired after ``max_uses`` voice notes and at most ``pool_size`` idle ones are kept.

    PCM is fed in ``chunk_s`` pieces; every segment Vosk closes at a pause is collected, so long voice notes
    keep all their words.

    Args:
        model_dir: A Vosk model directory.
        language: Language code reported with transcripts (informational).
        chunk_s: Seconds of audio per ``AcceptWaveform`` call.
        pool_size: Most idle recognizers kept.
        max_uses: Voice notes one recognizer decodes before it is dropped (bounds its cache's memory).

    Raises:
        FileNotFoundError, RuntimeError: as :func:`load_vosk_model`.
    """

    def __init__(
        self,
        model_dir: Path,
        language: Optional[str] = None,
        chunk_s: float = 0.5,
        pool_size: int = 2,
        max_uses: int = 200,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.language = language
        self._chunk_s = chunk_s
        self._pool_size = pool_size
        self._max_uses = max_uses
        self._model = load_vosk_model(self.model_dir)
        self._idle: Dict[int, List[List[Any]]] = {}  # sample rate -> [[KaldiRecognizer, uses], ...]
        self._idle_lock = threading.Lock()

    def _take(self, sample_rate: int) -> List[Any]:
        with self._idle_lock:
            idle = self._idle.get(sample_rate)
            if idle:
                return idle.pop()
        import vosk

        recognizer = vosk.KaldiRecognizer(self._model, float(sample_rate))
        recognizer.SetWords(True)
        return [recognizer, 0]

    def _give_back(self, sample_rate: int, entry: List[Any]) -> None:
        entry[1] += 1
        if entry[1] >= self._max_uses:
            return
        with self._idle_lock:
            idle = self._idle.setdefault(sample_rate, [])
            if len(idle) < self._pool_size:
                idle.append(entry)

    def recognize(self, pcm: np.ndarray, sample_rate: int) -> Recognition:
        """Transcribe mono ``int16`` PCM, shape ``(n_samples,)``, at ``sample_rate`` Hz.

        Vosk resamples internally when ``sample_rate`` differs from the model's (16 kHz for the small models).

        Returns:
            The words of all segments and their mean confidence (Vosk's per-word MBR posteriors, 0..1).

        Raises:
            Exception: whatever Vosk raises; the recognizer that failed is not reused.
        """
        entry = self._take(sample_rate)
        recognizer = entry[0]
        data = np.ascontiguousarray(pcm, dtype="<i2").tobytes()
        step = max(1, int(self._chunk_s * sample_rate)) * 2  # bytes: 2 per int16 sample
        segments: List[Dict[str, Any]] = []
        for start in range(0, len(data), step):
            if recognizer.AcceptWaveform(data[start : start + step]):
                segments.append(json.loads(recognizer.Result()))
        segments.append(json.loads(recognizer.FinalResult()))
        # Only a recognizer that reached its final result goes back (a failed one is dropped with the error).
        self._give_back(sample_rate, entry)
        words = [word for segment in segments for word in segment.get("result", [])]
        texts = [str(segment.get("text", "")).strip() for segment in segments]
        text = " ".join(t for t in texts if t)
        confidences = [float(word.get("conf", 0.0)) for word in words]
        confidence = float(np.mean(confidences)) if confidences else 0.0
        return Recognition(text=text, confidence=confidence, n_words=len(words))
