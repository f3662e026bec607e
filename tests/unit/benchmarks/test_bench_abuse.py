"""benchmarks/bench_abuse.py: its pure helpers (statistics, busy answers, the model, the payloads, the report);
the bench itself starts servers and is run by `make bench-abuse`, not here."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Dict

import pytest

from benchmarks import bench_abuse
from media import AttachmentError
from media.limits import AttachmentLimits


def test_latency_summary_gives_linear_percentiles_and_nothing_for_no_turns() -> None:
    summary = bench_abuse.latency_summary([float(ms) for ms in range(1, 101)])
    assert summary == {"n": 100, "p50_ms": 50.5, "p95_ms": 95.0, "max_ms": 100.0, "mean_ms": 50.5}
    assert bench_abuse.latency_summary([]) == {"n": 0, "p50_ms": None, "p95_ms": None, "max_ms": None,
                                               "mean_ms": None}


def test_the_ratio_is_p95_under_abuse_over_p95_idle() -> None:
    assert bench_abuse.p95_ratio({"p95_ms": 80.0}, {"p95_ms": 200.0}) == 2.5
    assert bench_abuse.p95_ratio({"p95_ms": None}, {"p95_ms": 200.0}) is None
    assert bench_abuse.p95_ratio({"p95_ms": 0.0}, {"p95_ms": 200.0}) is None


def test_busy_answers_are_the_domains_server_busy_response() -> None:
    texts = bench_abuse.busy_texts()
    assert texts and all("busy" in text for text in texts)
    assert bench_abuse.is_busy_answer([{"recipient_id": "api:x", "text": texts[0]}], texts)
    assert not bench_abuse.is_busy_answer([{"recipient_id": "api:x", "text": "Hi! How can I help?"}], texts)
    assert not bench_abuse.is_busy_answer([{"recipient_id": "api:x", "image": "https://x/y.png"}], texts)


def test_the_tally_counts_busy_answers_and_failures_apart() -> None:
    tally = bench_abuse.Tally([bench_abuse.Turn("text", 10.0), bench_abuse.Turn("text", 30.0, busy=True),
                               bench_abuse.Turn("text", 5000.0, error="HTTP 500")])
    summary = tally.summary()
    assert (summary["n"], summary["server_busy"], summary["errors"], summary["max_ms"]) == (2, 1, 1, 30.0)


def test_the_default_model_is_the_newest_trained_one_else_the_newest_test_model(tmp_path: Path) -> None:
    models, test_models = tmp_path / "models", tmp_path / "test-models"
    test_models.mkdir()
    assert bench_abuse.default_model(models, test_models) is None
    for name, mtime in (("test-old.tar.gz", 1_000), ("test-new.tar.gz", 2_000), ("other.tar.gz", 3_000)):
        (test_models / name).write_bytes(b"x")
        os.utime(test_models / name, (mtime, mtime))
    assert bench_abuse.default_model(models, test_models) == test_models / "test-new.tar.gz"
    models.mkdir()
    (models / "assistant-abc.tar.gz").write_bytes(b"x")
    os.utime(models / "assistant-abc.tar.gz", (500, 500))
    assert bench_abuse.default_model(models, test_models) == models / "assistant-abc.tar.gz"


def test_the_heaviest_photo_decodes_to_just_under_the_limit_and_is_accepted() -> None:
    from PIL import Image

    from media.images import decode_image, decoded_bytes

    limits = AttachmentLimits(image_max_decoded_bytes=2 * 2**20)  # small, so the test stays quick
    data = bench_abuse.heaviest_png(limits)
    with Image.open(io.BytesIO(data)) as image:
        size, mode = image.size, image.mode
    assert mode == "RGBA" and size[0] > size[1]
    bitmap = decoded_bytes(mode, size, "PNG")
    assert 0.99 * limits.image_max_decoded_bytes < bitmap <= limits.image_max_decoded_bytes
    assert len(data) < bitmap / 50  # small on the wire: the point of a decompression-heavy photo
    assert decode_image(data, limits.image_max_pixels, 256, limits).mode == "RGB"
    over = AttachmentLimits(image_max_decoded_bytes=bitmap - 1)
    with pytest.raises(AttachmentError) as refused:
        decode_image(data, over.image_max_pixels, 256, over)
    assert refused.value.code == "too_large"


def test_without_espeak_the_voice_note_is_a_wav_of_the_asked_length(monkeypatch: pytest.MonkeyPatch) -> None:
    import soundfile

    monkeypatch.setattr(bench_abuse.shutil, "which", lambda name: None)
    data, mime_type, name = bench_abuse.voice_note(1.5)
    info = soundfile.info(io.BytesIO(data))
    assert (mime_type, name, info.samplerate, info.channels) == ("audio/wav", "voice.wav", 16_000, 1)
    assert info.duration == pytest.approx(1.5, abs=0.01)


def _result(ratio: float) -> Dict[str, Any]:
    idle = {"n": 200, "p50_ms": 60.0, "p95_ms": 100.0, "max_ms": 140.0, "mean_ms": 65.0, "server_busy": 0,
            "errors": 0}
    abuse = {**idle, "p95_ms": 100.0 * ratio, "max_ms": 400.0}
    turns = {"sent": 9, "answered": 9, "server_busy": 4, "errors": 0, "p50_ms": 30.0, "p95_ms": 900.0}
    return {
        "date": "2026-12-05", "command": "python -m benchmarks.bench_abuse --out reports/bench-abuse",
        "quick": False, "model": "test-abc.tar.gz",
        "machine": {"cpu": "Test CPU", "logical_cores": 2, "usable_cores": 2, "python": "3.10.13", "os": "Linux"},
        "memory_gib": 7.8, "worker_pool": "text 2 workers + 30 queued, 10 s; media 1 + 4, 45 s",
        "senders": 20, "turns": 20, "abusers": 4, "warm_up_s": 30.0, "think_s": [2.0, 5.0],
        "photo": {"description": "a 138 KiB RGBA PNG decoding to 128 MiB", "bytes": 141_000},
        "voice_note": {"description": "a 118.5 s voice note (audio/ogg, 470 KiB)", "seconds": 118.5,
                       "bytes": 480_000},
        "idle": idle, "abuse": abuse, "ratio_p95": ratio, "target_ratio": 2.0, "target_met": ratio <= 2.0,
        "abuse_turns": {"photo": turns, "voice_note": {**turns, "server_busy": 5}},
        "peak_rss_mib": {"after_idle": 1500.0, "end": 1812.4},
        "load_1min": {"start": 0.5, "after_idle": 1.9, "end": 2.4},
    }


def test_the_report_is_written_as_json_and_a_markdown_table(tmp_path: Path) -> None:
    result = _result(1.5)
    bench_abuse.write_report(result, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8")) == result
    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "| idle | 60 | 100 | 140 | 200 | 0 | 0 |" in report
    assert "| under abuse | 60 | 150 | 400 | 200 | 0 | 0 |" in report
    assert "**1.50** (target ≤ 2: met)" in report
    assert "| voice note | 9 | 9 | 5 | 0 |" in report
    assert "1812 MiB at the end" in report and "Test CPU, 2/2 cores usable" in report
    assert "20 customers × 20 text turns per phase, 2–5 s apart; 4 abuse clients" in report
    assert "not met" in bench_abuse.format_report(_result(2.4))
