"""Unit tests for benchmarks/plots.py: the confusion matrix figure."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.plots import ConfusionStyle, figure_size, save_confusion_matrix


def test_a_confusion_matrix_png_is_written(tmp_path: Path) -> None:
    path = tmp_path / "confusion.png"
    save_confusion_matrix(["a", "b", "a"], ["a", "nlu_fallback", "b"], path, "title",
                          ConfusionStyle(figsize=(4, 3), fontsize=7, annotate_counts=True))
    assert path.read_bytes().startswith(b"\x89PNG")


def test_a_figure_without_size_is_sized_by_its_columns() -> None:
    assert figure_size(4) == (8, 6)  # at least 6 inches high, 2 more for the colour bar
    assert figure_size(21) == (0.45 * 21 + 2, 0.45 * 21)


@pytest.mark.parametrize("outside", [False, True])
def test_the_bench_report_figure_is_sized_by_the_plot_helper(tmp_path: Path, outside: bool) -> None:
    """`benchmarks.report.plot_confusion` draws exactly the figure of an explicit size it drew before the plot
    helper sized it: 0.45 inch per column ("other" included), at least 6, plus 2 for the colour bar."""
    from benchmarks.report import plot_confusion

    labels = [f"intent_{i}" for i in range(20)] * 2
    predicted = labels[1:] + ["nlu_fallback" if outside else labels[0]]
    data = {"test_labels": labels, "pipelines": {"fusion": {"predicted": predicted}}}
    assert plot_confusion(data, "fusion", tmp_path / "report.png", "title")
    columns = 20 + outside
    side = max(6, 0.45 * columns)
    save_confusion_matrix(labels, predicted, tmp_path / "explicit.png", "title",
                          ConfusionStyle(figsize=(side + 2, side), fontsize=7, annotate_counts=True))
    assert (tmp_path / "report.png").read_bytes() == (tmp_path / "explicit.png").read_bytes()
