"""The row-normalised confusion matrix every intent benchmark draws (`make bench`, `make eval-nlu`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

#: Column of the predictions outside the true label set (e.g. `nlu_fallback`).
OTHER = "other"
#: A figure sized by its columns (`ConfusionStyle.figsize` None): the matrix is `CELL_INCHES` per column and
#: at least `MIN_SIDE_INCHES` high, plus `COLORBAR_INCHES` of width for the colour bar.
CELL_INCHES = 0.45
MIN_SIDE_INCHES = 6
COLORBAR_INCHES = 2


@dataclass(frozen=True)
class ConfusionStyle:
    """How the figure looks: tick label size (points), figure size (inches; None: sized by the number of
    columns, see `figure_size`), axis labels, and whether the off-diagonal counts are written into their
    cells."""

    fontsize: int
    figsize: Optional[Tuple[float, float]] = None
    xlabel: str = "predicted"
    ylabel: str = "true"
    annotate_counts: bool = False


def figure_size(columns: int) -> Tuple[float, float]:
    """(width, height) in inches of a figure sized by its number of matrix columns ("other" included)."""
    side = max(MIN_SIDE_INCHES, CELL_INCHES * columns)
    return side + COLORBAR_INCHES, side


def save_confusion_matrix(
    y_true: Sequence[str], y_pred: Sequence[str], path: Path, title: str, style: ConfusionStyle
) -> None:
    """Saves a PNG (110 dpi) of the confusion matrix over the true labels, each row divided by its count.

    Predictions outside the true label set are grouped in one column "other" (scikit-learn's
    `confusion_matrix` on the sorted true labels plus "other"). A `style` without `figsize` gets
    `figure_size` of the column count.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.metrics import confusion_matrix

    labels = sorted(set(y_true))
    predicted = [p if p in set(labels) else OTHER for p in y_pred]
    columns = labels + ([OTHER] if OTHER in predicted else [])
    counts = confusion_matrix(y_true, predicted, labels=columns).astype(float)[: len(labels)]
    matrix = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=style.figsize or figure_size(len(columns)))
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    if style.annotate_counts:
        for i in range(counts.shape[0]):
            for j in range(counts.shape[1]):
                if counts[i, j] and i != j:
                    ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7, color="crimson")
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels(columns, rotation=90, fontsize=style.fontsize)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=style.fontsize)
    ax.set_xlabel(style.xlabel)
    ax.set_ylabel(style.ylabel)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
