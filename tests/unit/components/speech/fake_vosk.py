"""A stand-in `vosk` module for tests: no model, no Kaldi, segments closed on every second chunk."""
from __future__ import annotations

import json
import sys
import types

import pytest

from components.speech import vosk as vosk_module


class _FakeKaldiRecognizer:
    """Closes a segment on every second chunk, like Vosk does at pauses."""

    def __init__(self, model, sample_rate):
        self.sample_rate, self.chunks, self.words = sample_rate, 0, False

    def SetWords(self, enabled):  # noqa: N802 - Vosk's name
        self.words = enabled

    def AcceptWaveform(self, data):  # noqa: N802
        self.chunks += 1
        return self.chunks % 2 == 0

    def Result(self):  # noqa: N802
        word = f"segment{self.chunks}"
        return json.dumps({"text": word, "result": [{"word": word, "conf": 1.0}]})

    def FinalResult(self):  # noqa: N802
        return json.dumps({"text": "tail", "result": [{"word": "tail", "conf": 0.4}]})


@pytest.fixture
def fake_vosk(monkeypatch):
    module = types.SimpleNamespace(
        Model=lambda path: ("model", path),
        KaldiRecognizer=_FakeKaldiRecognizer,
        SetLogLevel=lambda level: None,
    )
    monkeypatch.setitem(sys.modules, "vosk", module)
    monkeypatch.setattr(vosk_module, "_VOSK_MODELS", {})
    return module
