"""Tests for `components.speech.config`: the SpeechRecognizer's keys through `assistant.configuration`."""
from __future__ import annotations

import pytest
from rasa.shared.exceptions import InvalidConfigException

from assistant.configuration import defaults_of, validate_config
from components.speech.config import SpeechRecognizerConfig
from components.speech_recognizer import SpeechRecognizer


def test_the_component_defaults_are_the_models():
    assert SpeechRecognizer.get_default_config() == defaults_of(SpeechRecognizerConfig)
    checked = validate_config("SpeechRecognizer", SpeechRecognizerConfig, {})
    assert (checked.sample_rate, checked.max_bytes, checked.silence_dbfs) == (16000, 20 * 1024 * 1024, -50.0)


def test_an_existing_model_directory_is_accepted(tmp_path):
    checked = SpeechRecognizer.validate_config({"model_dir": str(tmp_path), "language": "en"})
    assert checked.model_dir == str(tmp_path) and checked.language == "en"


def test_unknown_keys_are_refused_with_the_valid_ones():
    with pytest.raises(InvalidConfigException, match="unknown config key.*'max_secs'.*max_duration_s"):
        SpeechRecognizer({"max_secs": 10})


@pytest.mark.parametrize(
    "key, value, valid",
    [
        ("sample_rate", 4000, "a whole number of Hz from 8000 to 48000"),
        ("max_duration_s", 0, "a number of seconds above 0 and at most 3600"),
        ("silence_dbfs", 3.0, "a level in dBFS from -120 to 0"),
        ("model_dir", "/no/such/vosk-model", "an existing Vosk model directory"),
    ],
)
def test_errors_name_the_key_and_its_valid_values(key, value, valid):
    with pytest.raises(InvalidConfigException, match=f"SpeechRecognizer: `{key}` must be {valid}"):
        SpeechRecognizer.validate_config({key: value})
