"""Unit tests for benchmarks/plots.py: the confusion matrix figure."""
from __future__ import annotations

from pathlib import Path

from benchmarks.plots import ConfusionStyle, save_confusion_matrix


def test_a_confusion_matrix_png_is_written(tmp_path: Path) -> None:
    path = tmp_path / "confusion.png"
    save_confusion_matrix(["a", "b", "a"], ["a", "nlu_fallback", "b"], path, "title",
                          ConfusionStyle(figsize=(4, 3), fontsize=7, annotate_counts=True))
    assert path.read_bytes().startswith(b"\x89PNG")
