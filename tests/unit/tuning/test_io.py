"""Unit tests for tuning/io.py: the staged, atomically swapped model directory and its `tuning.json`."""
from __future__ import annotations

from pathlib import Path

import pytest

from tuning.io import check_settings, read_report, report_matches, staged_directory, write_report


def test_staged_directory_keeps_the_previous_model_when_writing_fails(tmp_path: Path) -> None:
    out = tmp_path / "model"
    with staged_directory(out) as staging:
        (staging / "weights").write_text("v1")
    assert (out / "weights").read_text() == "v1"
    with pytest.raises(RuntimeError):
        with staged_directory(out) as staging:
            (staging / "weights").write_text("half")
            raise RuntimeError("disk full")
    assert (out / "weights").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    with staged_directory(out) as staging:
        (staging / "weights").write_text("v2")
    assert (out / "weights").read_text() == "v2" and sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_reports_are_written_read_and_matched_key_by_key(tmp_path: Path) -> None:
    assert read_report(tmp_path) is None
    write_report(tmp_path, {"data_sha256": "d", "config": {"epochs": 3}, "history": []})
    assert read_report(tmp_path) == {"data_sha256": "d", "config": {"epochs": 3}, "history": []}
    assert report_matches(tmp_path, {"data_sha256": "d", "config": {"epochs": 3}})
    assert not report_matches(tmp_path, {"data_sha256": "d", "config": {"epochs": 4}})
    assert not report_matches(tmp_path / "absent", {})
    (tmp_path / "tuning.json").write_text("[1, 2]")
    assert read_report(tmp_path) is None


def test_check_settings_names_the_first_invalid_setting() -> None:
    class Settings:
        epochs = 0
        scale = 20.0

    check_settings("tuning", Settings(), {"scale": True})
    with pytest.raises(ValueError, match=r"tuning: invalid epochs = 0"):
        check_settings("tuning", Settings(), {"scale": True, "epochs": False})
