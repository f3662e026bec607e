"""Unit tests of scripts/tune_text.py (`make tune-text`): tunes once, then reports up to date.

The encoder is the tiny random BERT of tests/unit/encoders/tiny_bert.py, tuned for one epoch.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import tune_text  # scripts/ is on sys.path (conftest.py)
from tests.unit.encoders.tiny_bert import build_tiny_bert
from tests.unit.tuning.test_text import TINY_TEXTS
from tuning.text import TuningConfig, is_up_to_date, read_nlu_examples


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert-cli"))


def test_cli_tunes_once_then_reports_up_to_date(tiny_model_dir: Path, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    nlu = tmp_path / "nlu.yml"
    lines = "".join(f"    - {t}\n" for t in TINY_TEXTS[:4])
    refunds = "".join(f"    - {t}\n" for t in TINY_TEXTS[4:])
    nlu.write_text(f'version: "3.1"\nnlu:\n- intent: order_status\n  examples: |\n{lines}'
                   f"- intent: refund_status\n  examples: |\n{refunds}", encoding="utf-8")
    out = tmp_path / "encoder"
    argv = ["--data", str(nlu), "--out", str(out), "--base", str(tiny_model_dir), "--epochs", "1",
            "--batch-size", "4", "--num-threads", "1"]
    assert tune_text.main(argv) == 0
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level("INFO", logger="tune-text"):
        assert tune_text.main(argv) == 0
    assert "up to date" in caplog.text
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    assert tune_text.main(argv + ["--data", str(tmp_path / "missing.yml")]) == 2

    texts, intents = read_nlu_examples([nlu])
    same = TuningConfig(epochs=1, batch_size=4, num_threads=1)
    assert is_up_to_date(out, texts, intents, same, tiny_model_dir)
    assert not is_up_to_date(out, texts, intents[::-1], same, tiny_model_dir)  # other labels
    assert not is_up_to_date(out, texts, intents, TuningConfig(epochs=2, batch_size=4, num_threads=1),
                             tiny_model_dir)
    assert not is_up_to_date(out, texts, intents, same, tmp_path / "other-base")
    assert not is_up_to_date(tmp_path / "nothing", texts, intents, same, tiny_model_dir)
