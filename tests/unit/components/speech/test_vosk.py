"""Tests for `components.speech.vosk`: the Vosk wrapper, with a stand-in `vosk` module."""
from __future__ import annotations

import numpy as np
import pytest

from components.speech.vosk import VoskRecognizer, load_vosk_model
from tests.unit.components.speech.fake_vosk import _FakeKaldiRecognizer, fake_vosk  # noqa: F401 (a fixture)

RATE = 16000  # Hz


def test_vosk_recognizer_keeps_every_segment(tmp_path, fake_vosk):
    recognizer = VoskRecognizer(tmp_path, language="en", chunk_s=0.5)
    pcm = np.zeros(int(2.2 * RATE), dtype=np.int16)  # 5 chunks of 0.5 s: segments close after chunks 2 and 4

    result = recognizer.recognize(pcm, RATE)

    assert result.text == "segment2 segment4 tail"
    assert result.n_words == 3
    assert result.confidence == pytest.approx((1.0 + 1.0 + 0.4) / 3)


def test_vosk_recognizers_are_reused_after_their_final_result(tmp_path, fake_vosk, monkeypatch):
    made = []

    class Counting(_FakeKaldiRecognizer):
        def __init__(self, model, sample_rate):
            super().__init__(model, sample_rate)
            made.append(self)

    monkeypatch.setattr(fake_vosk, "KaldiRecognizer", Counting)
    recognizer = VoskRecognizer(tmp_path)
    pcm = np.zeros(RATE, dtype=np.int16)
    for _ in range(3):
        recognizer.recognize(pcm, RATE)
    assert len(made) == 1 and made[0].words  # one warm recognizer, words switched on once

    recognizer.recognize(pcm, 8000)  # another sample rate needs its own recognizer
    assert len(made) == 2

    def explode(data):
        raise RuntimeError("kaldi fell over")

    monkeypatch.setattr(made[0], "AcceptWaveform", explode)
    with pytest.raises(RuntimeError):
        recognizer.recognize(pcm, RATE)
    recognizer.recognize(pcm, RATE)  # the broken one was not given back
    assert len(made) == 3

    short_lived = VoskRecognizer(tmp_path, max_uses=2)
    for _ in range(5):
        short_lived.recognize(pcm, RATE)
    assert len(made) == 3 + 3  # retired after 2 voice notes each: uses 1-2, 3-4, 5


def test_vosk_model_is_loaded_once_per_process(tmp_path, fake_vosk, monkeypatch):
    loads = []
    monkeypatch.setattr(fake_vosk, "Model", lambda path: loads.append(path) or object())
    first = load_vosk_model(tmp_path)
    second = VoskRecognizer(tmp_path)._model
    assert first is second and len(loads) == 1
    with pytest.raises(FileNotFoundError):
        load_vosk_model(tmp_path / "missing")
