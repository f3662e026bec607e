"""Where the project lives on disk, and how relative paths in configuration are resolved.

Every relative path that a user writes in ``config.yml``, ``credentials.yml`` or an environment variable is
taken from the project root, not from the current directory, so ``rasa`` commands behave the same wherever
they are started.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

#: The project root: the folder that holds ``config.yml`` and the packages.
PROJECT_ROOT: Path = Path(__file__).resolve().parents[1]

#: Run-time state that is never committed (databases, uploads, logs, snapshots).
VAR_DIR: Path = PROJECT_ROOT / "var"

#: Trained models and tuned encoders (never committed).
MODELS_DIR: Path = PROJECT_ROOT / "models"

#: The assistant's training data and seed catalog.
DATA_DIR: Path = PROJECT_ROOT / "data"

#: Extra NLU files, one per group of intents (``data/nlu/*.yml``), trained with ``data/nlu.yml``.
NLU_DIR: Path = DATA_DIR / "nlu"


def nlu_training_files(data_dir: Path = DATA_DIR) -> list:
    """The NLU training files Rasa reads from ``data_dir``: ``nlu.yml``, ``nlu/*.yml`` (sorted), ``sentiment.yml``.

    Args:
        data_dir: The training-data folder (default: the project's ``data/``).

    Returns:
        The existing files as a list of :class:`pathlib.Path`, in that order.
    """
    candidates = [data_dir / "nlu.yml", *sorted((data_dir / "nlu").glob("*.yml")), data_dir / "sentiment.yml"]
    return [path for path in candidates if path.is_file()]


def project_path(path: Union[str, "os.PathLike[str]"]) -> Path:
    """Resolve ``path`` against the project root when it is relative.

    Args:
        path: An absolute path, or one relative to the project root (``~`` is expanded).

    Returns:
        The absolute path (not resolved through symlinks, not checked for existence).
    """
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else PROJECT_ROOT / candidate
