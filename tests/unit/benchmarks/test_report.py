"""Unit tests for `benchmarks.report`: the markdown report and its targets table from benchmark result files.

The result files are made up here (a benchmark is not part of `make test`); what is checked is how the report
reads them: every pipeline gets a row, and "target met" / "floor beaten" follow the best fusion variant.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import pytest

from benchmarks import report

MACHINE = {"cpu": "test CPU", "usable_cores": 2, "logical_cores": 2, "memory_gib": 4.0, "python": "3.10",
           "os": "Linux"}


def row(accuracy: float) -> Dict[str, object]:
    return {"accuracy": accuracy, "macro_f1": accuracy - 0.01, "train_s": 12.0, "ms_per_message": 9.5,
            "batch_ms_per_message": 2.5, "epochs": 10, "date": "2026-11-30 12:00 UTC",
            "load_average": {"before": [1.0], "after": [1.5]}, "predicted": ["a", "b"]}


def write_results(out: Path, pipelines: Dict[str, Dict[str, object]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = {"dataset": "banking77", "n_train": 8, "n_test": 2, "n_intents": 2, "machine": MACHINE,
            "test_labels": ["a", "b"], "pipelines": pipelines}
    (out / "intents_banking77.json").write_text(json.dumps(data))


def target_row(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("| banking77 | 94.0 %"))


@pytest.mark.parametrize(
    "pipelines, met, beaten",
    [
        ({"fusion": row(0.908), "floor": row(0.920)}, "no", "no"),
        ({"fusion": row(0.908), "fusion_tuned": row(0.935), "floor": row(0.920)}, "no", "yes"),
        ({"fusion": row(0.950), "fusion_tuned": row(0.935), "floor": row(0.920)}, "yes", "yes"),
        ({"fusion_tuned": row(0.941)}, "yes", "–"),
    ],
)
def test_targets_table_judges_the_best_fusion_variant(tmp_path: Path, pipelines, met: str, beaten: str) -> None:
    write_results(tmp_path, pipelines)
    assert report.main(["--out", str(tmp_path)]) == 0
    cells = [cell.strip() for cell in target_row((tmp_path / "report.md").read_text()).strip("|").split("|")]
    assert cells[-2:] == [met, beaten]
    if "fusion_tuned" in pipelines:
        assert f"{100 * pipelines['fusion_tuned']['accuracy']:.2f} %" in cells


def test_every_pipeline_gets_a_row_and_predictions_stay_out_of_the_summary(tmp_path: Path) -> None:
    pipelines = {name: row(0.9) for name in report.ORDER}
    write_results(tmp_path, pipelines)
    assert report.main(["--out", str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    for name in report.ORDER:
        assert f"| {report.PIPELINE_NAMES[name]} | 0.9000 |" in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert all("predicted" not in r for r in summary["banking77"]["pipelines"].values())
    assert "test_labels" not in summary["banking77"]


def test_no_results_is_an_error(tmp_path: Path) -> None:
    assert report.main(["--out", str(tmp_path)]) == 2
