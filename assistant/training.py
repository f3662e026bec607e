"""What names a trained Rasa model, and a config with capped epochs (`make train`, tests, benchmarks).

`scripts/train_if_changed.py` names the model after `model_fingerprint`: a SHA-256 over everything that shapes
it (config, domain, data, the custom components, the pinned packages, any model directory or weight file the
pipeline names, and the catalog in the snapshot the ProductRecognizer builds its index from). Tests and
benchmarks train with every `epochs` capped (`capped_config`), so their model has the same pipeline as the
real one.

Nothing here imports Rasa or the project's other packages.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Dict, List, Optional

from assistant.paths import PROJECT_ROOT

#: Files and folders (relative to the project root) whose content shapes the model, besides the config: the
#: training data and domain, the graph's code (components and what they import: encoders, media, assistant and
#: the shop modules that read the catalog snapshot) and the pinned packages.
INPUTS = (
    "domain.yml",
    "data",
    "components",
    "encoders",
    "media",
    "assistant",
    "shop/catalog_snapshot.py",
    "shop/catalog_photos.py",
    "shop/matching.py",
    "shop/seed.py",
    "constraints.txt",
)
#: Pipeline keys that name model files or directories outside the Rasa model (tuned encoders).
MODEL_FILE_KEYS = ("model_path", "weights_path")


def pipeline(config: Path) -> List[Dict[str, Any]]:
    """The `pipeline` items of a Rasa config that are mappings; [] for an unreadable or broken config (rasa
    train reports that itself)."""
    import yaml

    try:
        data = yaml.safe_load(config.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []
    items = data.get("pipeline") if isinstance(data, dict) else None
    return [item for item in items or [] if isinstance(item, dict)]


def pipeline_value(config: Path, component: str, key: str) -> Optional[str]:
    """The string value of `key` on the first pipeline component whose name ends with `component` (e.g.
    "ProductRecognizer"), or None when it is not set."""
    for item in pipeline(config):
        if str(item.get("name", "")).endswith(component):
            value = item.get(key)
            return value if isinstance(value, str) and value.strip() else None
    return None


def model_directories(config: Path, root: Path = PROJECT_ROOT) -> List[Path]:
    """The `model_path` directories and `weights_path` files the pipeline of `config` names (a tuned text
    or image encoder), relative paths taken from `root`; their files shape the model as much as the config
    does."""
    found = []
    for item in pipeline(config):
        for key in MODEL_FILE_KEYS:
            value = item.get(key)
            if isinstance(value, str) and value.strip():
                found.append(root / Path(value).expanduser())
    return found


def model_fingerprint(config: Path, root: Path = PROJECT_ROOT, catalog: Optional[bytes] = None) -> str:
    """Hash of the files that determine the trained model.

    Args:
        config: the Rasa config file used for training.
        root: project root.
        catalog: what the catalog snapshot the ProductRecognizer reads holds for the model
            (`shop.catalog_snapshot.catalog_content`: its catalog, or a fixed marker when there is no
            snapshot, in which case the recogniser uses the seed catalog of data/). None: left out.

    Returns:
        The first 12 hex digits of a SHA-256 over file names and contents.
    """
    digest = hashlib.sha256()
    paths: List[Path] = [config]
    for name in [*INPUTS, *model_directories(config, root)]:
        path = root / name
        if path.is_dir():
            paths.extend(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        elif path.is_file():
            paths.append(path)
    for path in sorted(set(paths)):
        digest.update(str(path.relative_to(root) if path.is_relative_to(root) else path).encode())
        digest.update(path.read_bytes())
    if catalog is not None:
        digest.update(b"catalog snapshot")
        digest.update(catalog)
    return digest.hexdigest()[:12]


def capped_config(config: Path, max_epochs: int, out_dir: Path) -> Path:
    """Write a copy of a Rasa config whose `epochs` values are at most `max_epochs`.

    Returns:
        Path of the written copy (``out_dir/config.max<N>.yml``).
    """
    import yaml

    data = yaml.safe_load(config.read_text())
    for section in ("pipeline", "policies"):
        for item in data.get(section) or []:
            if isinstance(item, dict) and "epochs" in item:
                item["epochs"] = min(int(item["epochs"]), max_epochs)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"config.max{max_epochs}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
