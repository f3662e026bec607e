"""Train the Rasa model only when its inputs changed.

First, when the text featurizer's `model_path` is the tuned encoder `models/text-encoder`, the encoder is
fine-tuned on the intents of data/ (`scripts/tune_text.py`; skipped when it is up to date with the data).

Then the catalog snapshot the ProductRecognizer reads (`shop.catalog_snapshot`; the pipeline's
`catalog_snapshot`, else CATALOG_SNAPSHOT, else var/catalog/snapshot.json) is refreshed from the shop database
when the database can be read (reading only the photos that are new or changed since the last snapshot);
otherwise the last snapshot is kept (without one, the recogniser uses the seed catalog).

The model is then named after a SHA-256 over everything that shapes it
(`assistant.training.model_fingerprint`): config.yml, domain.yml, data/, the custom components, the pinned
packages, any model directory or weight file a component's `model_path` or `weights_path` names (a tuned
encoder) and the catalog in the snapshot (`shop.catalog_snapshot.catalog_content`: not the photos' file
times). When `models/assistant-<hash>.tar.gz` exists it is made the newest model (so `rasa shell`/`rasa run`
pick it) and nothing is trained. Otherwise `rasa train` runs; Rasa's own fingerprint cache (.rasa/cache) then
retrains only the graph nodes whose inputs changed (after `make catalog-images`, the ProductRecognizer alone).

With `--max-epochs N` every component and policy of the config is capped at N epochs (tests train this way, so
the test model has the same pipeline as the real one).

Usage: python scripts/train_if_changed.py [--config config.yml] [--out models] [--max-epochs N] [--force]
"""
from __future__ import annotations

import _bootstrap  # noqa: F401  (the project root on sys.path: scripts/_bootstrap.py)

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

from assistant.paths import PROJECT_ROOT, project_path
from assistant.training import capped_config, model_fingerprint, pipeline_value

logger = logging.getLogger("train")

#: The folder under models/ that `make tune-text` writes and config.yml's text featurizer reads.
TUNED_TEXT_ENCODER = "text-encoder"


def refresh_catalog_snapshot(config: Path) -> bytes:
    """Writes the catalog snapshot the pipeline of `config` reads from the shop database (when readable).

    Returns:
        What the snapshot holds for the model name (`shop.catalog_snapshot.catalog_content`; a marker when
        there is no snapshot because the database never could be read).
    """
    from components.products import NAME as RECOGNIZER
    from shop.catalog_snapshot import catalog_content, refresh_snapshot, resolve_snapshot_path

    snapshot = resolve_snapshot_path(pipeline_value(config, RECOGNIZER, "catalog_snapshot"))
    written = refresh_snapshot(snapshot)
    if written:
        logger.info("Catalog snapshot written: %s", snapshot)
    return catalog_content(snapshot)


def ensure_tuned_encoder(config: Path) -> int:
    """Fine-tune the text encoder when the pipeline of `config` reads the tuned one and it is missing or stale.

    Returns:
        0 when the encoder is up to date, was tuned, or the pipeline does not use it; tune_text's exit code
        otherwise.
    """
    from assistant.paths import MODELS_DIR

    wanted = pipeline_value(config, "TransformerTextFeaturizer", "model_path")
    if wanted is None or project_path(wanted).resolve() != (MODELS_DIR / TUNED_TEXT_ENCODER).resolve():
        return 0
    import tune_text  # scripts/tune_text.py: skips the work when the tuned model matches the data

    return tune_text.main(["--out", str(MODELS_DIR / TUNED_TEXT_ENCODER)])


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="config.yml")
    parser.add_argument("--out", default="models")
    parser.add_argument("--name", default="assistant", help="model file name prefix")
    parser.add_argument("--max-epochs", type=int, default=None, help="cap every `epochs` in the config")
    parser.add_argument("--force", action="store_true", help="train even if an up-to-date model exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    config = project_path(args.config).resolve()
    out = project_path(args.out).resolve()
    if args.max_epochs:
        config = capped_config(config, args.max_epochs, out)
    tuned = ensure_tuned_encoder(config)
    if tuned != 0:
        return tuned
    catalog = refresh_catalog_snapshot(config)
    name = f"{args.name}-{model_fingerprint(config, catalog=catalog)}"
    model = out / f"{name}.tar.gz"
    if model.exists() and not args.force:
        os.utime(model)  # newest model wins in `rasa shell` / `rasa run`
        shown = model.relative_to(PROJECT_ROOT) if model.is_relative_to(PROJECT_ROOT) else model
        logger.info("Model is up to date: %s", shown)
        return 0
    out.mkdir(parents=True, exist_ok=True)
    logger.info("Training %s (data, config, domain, components or catalog changed) ...", model.name)
    rasa = Path(sys.executable).with_name("rasa")
    cmd = [str(rasa), "train", "--config", str(config), "--domain", "domain.yml", "--data", "data",
           "--out", str(out), "--fixed-model-name", name]
    return subprocess.call(cmd, cwd=PROJECT_ROOT)


if __name__ == "__main__":
    sys.exit(main())
