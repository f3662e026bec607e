"""benchmarks/eval_nlu.py: metrics of the real-data NLU evaluation."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import eval_nlu


def test_metrics_count_fallback_as_wrong_but_report_answered_accuracy() -> None:
    y_true = ["track_order", "track_order", "get_refund", "complaint"]
    y_pred = ["track_order", "nlu_fallback", "get_refund", "review"]
    metrics = eval_nlu.compute_metrics(y_true, y_pred)
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["fallback_rate"] == pytest.approx(0.25)
    assert metrics["accuracy_when_answered"] == pytest.approx(2 / 3)
    assert metrics["outside_label_set"] == {"nlu_fallback": 1, "review": 1}
    assert metrics["per_intent"]["track_order"]["recall"] == pytest.approx(0.5)


def test_read_dataset_needs_text_and_intent_columns(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("text,intent\nwhere is my parcel,track_order\n\"hi, there\",greet\n", encoding="utf-8")
    assert eval_nlu.read_dataset(path) == (["where is my parcel", "hi, there"], ["track_order", "greet"])
    (tmp_path / "bad.csv").write_text("message,label\nx,y\n", encoding="utf-8")
    with pytest.raises(KeyError):
        eval_nlu.read_dataset(tmp_path / "bad.csv")
