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


def test_ood_metrics_count_fallback_and_out_of_scope_as_declined_per_category() -> None:
    from benchmarks.eval_nlu import ood_metrics

    metrics = ood_metrics(
        ["weather", "weather", "mash", "mash"], ["out_of_scope", "delivery_period", "nlu_fallback", "nlu_fallback"]
    )
    assert metrics["declined_rate"] == 0.75
    assert metrics["fallback_rate"] == 0.5 and metrics["out_of_scope_rate"] == 0.25
    assert metrics["per_category"] == {"mash": {"n": 2, "declined_rate": 1.0},
                                       "weather": {"n": 2, "declined_rate": 0.5}}
    assert metrics["accepted_as"] == {"delivery_period": 1}


def test_the_ood_sets_cover_every_category_in_both_halves() -> None:
    from benchmarks.ood_data import CALIBRATION_FILE, REPORT_FILE, read_ood

    calibration, report = read_ood(CALIBRATION_FILE), read_ood(REPORT_FILE)
    assert len(calibration) + len(report) >= 300
    assert {c for c, _ in calibration} == {c for c, _ in report}
    assert not {t.lower() for _, t in calibration} & {t.lower() for _, t in report}


def test_target_lines_say_which_targets_are_met_and_which_are_not() -> None:
    from benchmarks.eval_nlu import target_lines

    metrics = {
        "accuracy": 0.91,
        "in_domain_rejected_rate": 0.08,
        "per_intent": {"a": {"f1": 0.95}, "b": {"f1": 0.70}},
        "ood": {"declined_rate": 0.93},
    }
    lines = target_lines(metrics)
    assert lines[0].startswith("accuracy, a fallback counted as a miss: 0.910") and lines[0].endswith(": met")
    assert lines[1].endswith("NOT met")  # 8 % declined > 5 %
    assert "0.700" in lines[2] and lines[2].endswith("NOT met")
    assert lines[3].endswith(": met")
    assert "not measured" in target_lines({"accuracy": 0.5, "in_domain_rejected_rate": 0.0, "per_intent": {}})[3]


def test_read_heldout_reads_every_yaml_file_of_the_folder(tmp_path) -> None:
    from benchmarks.eval_nlu import read_heldout

    (tmp_path / "a.yml").write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hello there\n')
    (tmp_path / "b.yml").write_text('version: "3.1"\nnlu:\n- intent: goodbye\n  examples: |\n    - see you\n')
    assert read_heldout(tmp_path) == (["hello there", "see you"], ["greet", "goodbye"])
    assert read_heldout(tmp_path / "missing") == ([], [])
