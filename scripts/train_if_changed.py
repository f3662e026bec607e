"""Train the Rasa model only when its inputs changed.

The model is named after a SHA-256 over everything that shapes it: config.yml, domain.yml, data/, the custom
components, the pinned packages and any model directory or weight file a component's `model_path` or
`weights_path` names (a tuned encoder). When `models/assistant-<hash>.tar.gz` exists it is made the newest model
(so `rasa shell`/`rasa run` pick it) and nothing is trained. Otherwise `rasa train` runs; Rasa's own fingerprint cache
(.rasa/cache) then retrains only the graph nodes whose inputs changed.

With `--max-epochs N` every component and policy of the config is capped at N epochs (tests train this way, so
the test model has the same pipeline as the real one).

Usage: python scripts/train_if_changed.py [--config config.yml] [--out models] [--max-epochs N] [--force]
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("train")

INPUTS = ("config.yml", "domain.yml", "data", "components", "constraints.txt")


def model_fingerprint(config: Path, root: Path = ROOT) -> str:
    """Hash of the files that determine the trained model.

    Args:
        config: the Rasa config file used for training.
        root: project root.

    Returns:
        The first 12 hex digits of a SHA-256 over file names and contents.
    """
    digest = hashlib.sha256()
    paths: list[Path] = [config]
    for name in [*INPUTS[1:], *model_directories(config, root)]:
        path = root / name
        if path.is_dir():
            paths.extend(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        elif path.is_file():
            paths.append(path)
    for path in sorted(set(paths)):
        digest.update(str(path.relative_to(root) if path.is_relative_to(root) else path).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


#: Pipeline keys that name model files or directories outside the Rasa model (tuned encoders).
MODEL_FILE_KEYS = ("model_path", "weights_path")


def model_directories(config: Path, root: Path = ROOT) -> list[Path]:
    """The `model_path` directories and `weights_path` files the pipeline of `config` names (a tuned text or
    image encoder), relative paths taken from `root`; their files shape the model as much as the config does."""
    import yaml

    try:
        data = yaml.safe_load(config.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []  # rasa train reports a broken config itself
    found = []
    for item in data.get("pipeline") or []:
        for key in MODEL_FILE_KEYS:
            value = item.get(key) if isinstance(item, dict) else None
            if isinstance(value, str) and value.strip():
                found.append(root / Path(value).expanduser())
    return found


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


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yml")
    parser.add_argument("--out", default="models")
    parser.add_argument("--name", default="assistant", help="model file name prefix")
    parser.add_argument("--max-epochs", type=int, default=None, help="cap every `epochs` in the config")
    parser.add_argument("--force", action="store_true", help="train even if an up-to-date model exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    config = (ROOT / args.config).resolve()
    out = (ROOT / args.out).resolve()
    if args.max_epochs:
        config = capped_config(config, args.max_epochs, out)
    name = f"{args.name}-{model_fingerprint(config)}"
    model = out / f"{name}.tar.gz"
    if model.exists() and not args.force:
        os.utime(model)  # newest model wins in `rasa shell` / `rasa run`
        logger.info("Model is up to date: %s", model.relative_to(ROOT) if model.is_relative_to(ROOT) else model)
        return 0
    out.mkdir(parents=True, exist_ok=True)
    logger.info("Training %s (data, config, domain or components changed) ...", model.name)
    rasa = Path(sys.executable).with_name("rasa")
    cmd = [str(rasa), "train", "--config", str(config), "--domain", "domain.yml", "--data", "data",
           "--out", str(out), "--fixed-model-name", name]
    return subprocess.call(cmd, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
