"""Choose the out-of-scope detector's thresholds on held-out data (`make calibrate-ood`).

Usage: ``python -m benchmarks.calibrate_ood [--out reports/ood-calibration] [--folds 5]
[--budget-familiarity 0.008] [--budget-similarity 0.005] [--budget-margin 0.002]``

1. The project's NLU examples (data/nlu.yml, data/nlu/*.yml, data/sentiment.yml; each text once) are
   tokenised with the pipeline's WhitespaceTokenizer and embedded with the TransformerTextFeaturizer's encoder
   and pooling (``encoders.text``); cross-fitting (:func:`components.scope.calibration.cross_fitted_signals`)
   scores each fold against the others: the in-domain held-out scores.
2. ``benchmarks/data/ood_calibration.tsv`` (hand-written, never trained on) is scored against all examples.
3. Each threshold is :func:`components.scope.calibration.choose_threshold` with its in-domain budget, in the
   order the detector applies them (familiarity on all messages; similarity on those left; margin on those
   left), so the budgets add up to the in-domain rate of the whole detector.

Writes ``thresholds.json`` (the values for config.yml's OutOfScopeDetector, with the rates they give) and
prints them.

The budgets (0.8 %, 0.5 %, 0.2 % of the held-out project examples) are small because real customers write
farther from the project's examples than its own held-out examples are: with 0.8 % / 2 % / 0.8 % (3.5 % of the
held-out examples) the detector declined 9.9 % of the Bitext customer messages (aggregate count only), with
these 2.5 %, while still declining 93 % of the calibration set. The report set (``ood_report.tsv``) is not read
here: ``make eval-nlu`` reports on it.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from assistant.paths import PROJECT_ROOT
from benchmarks.ood_data import CALIBRATION_FILE, project_examples, read_ood
from components.scope.calibration import choose_threshold, cross_fitted_signals
from components.scope.signals import Signals, Thresholds, Vocabulary, english_words, normalise_token, \
    top_k_similarity, verdict

logger = logging.getLogger("calibrate_ood")


def tokenize(texts: Sequence[str]) -> List[List[str]]:
    """Token texts of each message as the pipeline's WhitespaceTokenizer gives them."""
    from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
    from rasa.shared.nlu.training_data.message import Message

    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    return [[t.text for t in tokenizer.tokenize(Message({"text": text}), "text")] for text in texts]


def embed(texts: Sequence[str]):
    """``(float32 (n, 384) sentence embeddings, english words)`` with the featurizer's default encoder."""
    from encoders.text import SentencePooling, encode_sentences, load_model, resolve_model_path

    loaded = load_model(resolve_model_path(None))
    return encode_sentences(list(texts), loaded, SentencePooling()), english_words(loaded.tokenizer.get_vocab())


def calibrate(args: argparse.Namespace) -> Dict:
    """Run the procedure of the module docstring; returns the thresholds and their rates."""
    examples, extra = project_examples()
    ood = read_ood(args.ood)
    texts = [t for t, _ in examples]
    all_embeddings, english = embed(texts + [t for _, t in ood])
    embeddings, ood_embeddings = all_embeddings[: len(texts)], all_embeddings[len(texts):]
    tokens = tokenize(texts)
    is_oos = np.array([intent == "out_of_scope" for _, intent in examples])
    extra_words = extra["lookup"] + extra["synonyms"]
    fam, sim, oos_sim, _ = cross_fitted_signals(
        tokens, embeddings, is_oos, english, extra_words, k=args.k, folds=args.folds, typo_ratio=args.typo_ratio
    )
    inside = ~is_oos
    words = {normalise_token(t) for toks in tokens for t in toks} | {normalise_token(w) for w in extra_words}
    vocabulary = Vocabulary(frozenset(words), frozenset(english), args.typo_ratio)
    ood_fam = np.array([vocabulary.familiarity(t) for t in tokenize([t for _, t in ood])])
    ood_sim = top_k_similarity(ood_embeddings, embeddings[inside], args.k)
    ood_oos = top_k_similarity(ood_embeddings, embeddings[is_oos], args.k)

    familiarity = choose_threshold(fam[inside], ood_fam, args.budget_familiarity)
    left_in = inside & (fam >= familiarity.threshold)
    left_out = ood_fam >= familiarity.threshold
    similarity = choose_threshold(sim[left_in], ood_sim[left_out], args.budget_similarity)
    left_in &= sim >= similarity.threshold
    left_out &= ood_sim >= similarity.threshold
    margin = choose_threshold((sim - oos_sim)[left_in], (ood_sim - ood_oos)[left_out], args.budget_margin)
    thresholds = Thresholds(familiarity.threshold, similarity.threshold, margin.threshold)

    def rejected(f, s, o) -> List[bool]:
        return [verdict(Signals(a, b, c), thresholds) is not None for a, b, c in zip(f, s, o)]

    in_rejected = np.array(rejected(fam[inside], sim[inside], oos_sim[inside]))
    ood_rejected = np.array(rejected(ood_fam, ood_sim, ood_oos))
    per_category: Dict[str, float] = {}
    for category in sorted({c for c, _ in ood}):
        mask = np.array([c == category for c, _ in ood])
        per_category[category] = float(ood_rejected[mask].mean())
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "k": args.k,
        "folds": args.folds,
        "typo_ratio": args.typo_ratio,
        "min_familiarity": thresholds.min_familiarity,
        "min_similarity": thresholds.min_similarity,
        "min_margin": thresholds.min_margin,
        "budgets": {"familiarity": args.budget_familiarity, "similarity": args.budget_similarity,
                    "margin": args.budget_margin},
        "steps": {name: {"in_domain_rate": c.in_domain_rate, "ood_rate": c.ood_rate}
                  for name, c in (("familiarity", familiarity), ("similarity", similarity), ("margin", margin))},
        "in_domain_held_out": {"n": int(inside.sum()), "rejected_rate": float(in_rejected.mean())},
        "ood_calibration": {"n": len(ood), "rejected_rate": float(ood_rejected.mean()),
                            "per_category": per_category},
    }


def main(argv: List[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ood", type=Path, default=CALIBRATION_FILE)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "ood-calibration")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--typo-ratio", type=float, default=0.8)
    parser.add_argument("--budget-familiarity", type=float, default=0.008)
    parser.add_argument("--budget-similarity", type=float, default=0.005)
    parser.add_argument("--budget-margin", type=float, default=0.002)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = calibrate(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "thresholds.json").write_text(json.dumps(result, indent=2))
    logger.info(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
