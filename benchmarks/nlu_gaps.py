"""A quick look at where the project's NLU data falls short on real messages, without training Rasa (`make nlu-gaps`).

Usage: `python -m benchmarks.nlu_gaps [--data CSV] [--nlu FILE ...] [--heldout FILE ...] [--out reports/nlu-gaps]`

A proxy of the trained classifier, fitted in about a minute: frozen all-MiniLM-L6-v2 sentence embeddings
(`benchmarks.bench_intents.minilm_embeddings`, cached under reports/) concatenated with TF-IDF character 1-4-grams,
then a scikit-learn LogisticRegression (C=10), trained on the project's NLU files (`assistant.paths.
nlu_training_files`), scored on a CSV of real customer messages (columns ``text``, ``intent``; default the Bitext
sample beside the project) and optionally on held-out Rasa YAML files of the project's own.

It prints, per intent of the CSV, recall, precision, F1 and support, and the most frequent confusions as
``true → predicted: count``. It never prints or stores the CSV's sentences: the evaluation set tells where the
training data has gaps, the sentences that fill them are written by hand. The figures are a proxy: `make
eval-nlu` on the trained model is the measure.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from assistant.paths import PROJECT_ROOT, nlu_training_files

logger = logging.getLogger("nlu_gaps")

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data" / "bitext" / "train.csv"
#: Confusions listed at most.
TOP_CONFUSIONS = 40


def fit_proxy(texts: Sequence[str], labels: Sequence[str], cache: Path):
    """Fit the proxy classifier.

    Args:
        texts: training texts.
        labels: their intents, same length.
        cache: folder for cached MiniLM embeddings.

    Returns:
        A callable mapping a list of texts to a list of predicted intents.
    """
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from benchmarks.bench_intents import minilm_embeddings

    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), min_df=2, sublinear_tf=True)
    sparse = chars.fit_transform([t.lower() for t in texts])
    dense = minilm_embeddings(list(texts), cache_dir=cache)
    features = hstack([sparse, csr_matrix(dense * 2.0)]).tocsr()
    model = LogisticRegression(C=10.0, max_iter=3000)
    model.fit(features, list(labels))

    def predict(batch: Sequence[str]) -> List[str]:
        x = hstack([chars.transform([t.lower() for t in batch]),
                    csr_matrix(minilm_embeddings(list(batch), cache_dir=cache) * 2.0)]).tocsr()
        return list(model.predict(x))

    return predict


def per_intent(y_true: Sequence[str], y_pred: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """Recall, precision, F1 and support per true intent (scikit-learn definitions)."""
    from sklearn.metrics import precision_recall_fscore_support

    labels = sorted(set(y_true))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {label: {"recall": float(r[i]), "precision": float(p[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, label in enumerate(labels)}


def report(name: str, y_true: Sequence[str], y_pred: Sequence[str]) -> Dict:
    """Print and return the accuracy, macro-F1, the per-intent table and the top confusions."""
    table = per_intent(y_true, y_pred)
    accuracy = float(np.mean([t == p for t, p in zip(y_true, y_pred)]))
    macro = float(np.mean([row["f1"] for row in table.values()]))
    confusions = Counter((t, p) for t, p in zip(y_true, y_pred) if t != p).most_common(TOP_CONFUSIONS)
    print(f"\n== {name}: {len(y_true)} messages, accuracy {accuracy:.1%}, macro-F1 {macro:.1%}")
    print(f"{'intent':28s} {'recall':>7s} {'prec':>7s} {'F1':>6s} {'n':>5s}")
    for label, row in sorted(table.items(), key=lambda item: item[1]["f1"]):
        print(f"{label:28s} {row['recall']:7.2f} {row['precision']:7.2f} {row['f1']:6.2f} {row['support']:5d}")
    print("top confusions (true → predicted: count)")
    for (t, p), n in confusions:
        print(f"  {t} → {p}: {n}")
    return {"accuracy": accuracy, "macro_f1": macro, "per_intent": table,
            "confusions": [[t, p, n] for (t, p), n in confusions]}


def read_csv(path: Path) -> Tuple[List[str], List[str]]:
    """(texts, intents) of a CSV with ``text`` and ``intent`` columns."""
    from benchmarks.eval_nlu import read_dataset

    return read_dataset(path)


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; returns the exit code."""
    from tuning.text import read_nlu_examples

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CSV of real messages (text,intent)")
    parser.add_argument("--nlu", type=Path, nargs="+", default=None, help="training files (default: the project's)")
    parser.add_argument("--heldout", type=Path, nargs="*", default=[], help="held-out Rasa NLU YAML files")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "nlu-gaps")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    files = args.nlu or nlu_training_files()
    texts, labels = read_nlu_examples(files)
    print(f"training on {len(texts)} examples, {len(set(labels))} intents from {len(files)} files")
    predict = fit_proxy(texts, labels, args.out / "cache")
    results = {}
    if args.data.is_file():
        eval_texts, eval_labels = read_csv(args.data)
        results["csv"] = report(args.data.name, eval_labels, predict(eval_texts))
    else:
        print(f"no CSV at {args.data}: skipped")
    for path in args.heldout:
        held_texts, held_labels = read_nlu_examples([path])
        results[path.name] = report(path.name, held_labels, predict(held_texts))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gaps.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
