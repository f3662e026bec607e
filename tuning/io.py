"""Files of the offline tuning steps (`make tune-text`, `make tune-images`): atomic model directories and
reports.

A tuned model is a directory (weights, tokenizer files, `tuning.json`). It is written into a staging directory
beside its target and swapped into place only when everything was written, so a failed or interrupted run
leaves the previous model intact and a reader never sees half a model.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Mapping, Optional

REPORT_FILE = "tuning.json"


@contextmanager
def staged_directory(out_dir: Path) -> Iterator[Path]:
    """Yields an empty directory beside `out_dir` to write a model into; on normal exit it replaces `out_dir`.

    On an exception the staging directory is removed and `out_dir` is left as it was.

    Raises:
        OSError: if the parent directory cannot be created or the swap fails.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        yield staging
        old = out_dir.with_name(f".{out_dir.name}-old")
        if old.exists():
            shutil.rmtree(old)
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(staging, out_dir)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_report(directory: Path, report: Dict[str, Any]) -> None:
    """Writes `report` as `directory/tuning.json` (UTF-8, indented)."""
    (Path(directory) / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def read_report(model_dir: Path) -> Optional[Dict[str, Any]]:
    """The `tuning.json` of a tuned model directory, or None (not tuned here, or unreadable)."""
    try:
        report = json.loads((Path(model_dir) / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


def report_matches(model_dir: Path, wanted: Mapping[str, Any]) -> bool:
    """Whether `model_dir`'s `tuning.json` exists and holds every key of `wanted` with the same value."""
    report = read_report(model_dir)
    return bool(report) and all(report.get(key) == value for key, value in wanted.items())


def check_settings(what: str, settings: Any, checks: Mapping[str, bool]) -> None:
    """Raises ValueError naming the first setting whose check is False.

    Raises:
        ValueError: `"<what>: invalid <name> = <value>"`.
    """
    for name, ok in checks.items():
        if not ok:
            raise ValueError(f"{what}: invalid {name} = {getattr(settings, name)!r}")


def finish_epoch(
    step: str,
    epoch: int,
    epochs: int,
    total_loss: float,
    correct: int,
    count: int,
    started: float,
    log: logging.Logger,
    progress: Optional[Callable[[str], None]] = None,
) -> Dict[str, float]:
    """The history entry of one epoch, announced as one line to `log` (INFO) and `progress`.

    Args:
        step: the tool's name in the line, e.g. "tune-text".
        epoch: this epoch (1-based); epochs: their number.
        total_loss: the sum over the epoch's examples of their loss; correct: examples predicted right;
            count: examples.
        started: `time.perf_counter()` when the tuning started.

    Returns:
        `{"epoch", "loss", "train_accuracy", "seconds"}` (mean loss and accuracy rounded to 5 places, seconds
        since `started` to 1).
    """
    entry = {
        "epoch": epoch,
        "loss": round(total_loss / count, 5),
        "train_accuracy": round(correct / count, 5),
        "seconds": round(time.perf_counter() - started, 1),
    }
    line = (f"{step} epoch {epoch}/{epochs}: loss {entry['loss']:.4f}, "
            f"training accuracy {entry['train_accuracy']:.4f}, {entry['seconds']:.0f} s")
    log.info(line)
    if progress is not None:
        progress(line)
    return entry
