"""Sentiment accuracy of the fusion classifier's sentiment head on airline tweets, plus a frozen-encoder floor.

Usage::

    python -m benchmarks.bench_sentiment [--data ../shared/data] [--epochs 100] [--limit N] [--out reports/bench]

Data: `sentiment/tweets_train.csv` (columns text, sentiment ∈ negative/neutral/positive; Twitter US airline
tweets, CC BY-NC-SA 4.0 — used here for evaluation and benchmarking only, never for the project's training
data). It is split once, stratified by sentiment, 80 % train / 20 % test (`--seed`).

The real component is exercised end to end: the train part is written as Rasa NLU YAML, every example under one
placeholder intent (`tweet`; Rasa needs an intent for an NLU example, and a one-intent head has zero loss) with
`metadata: {sentiment: <label>}`, exactly how data/sentiment.yml labels the project's own examples; the
project's text pipeline (`bench_intents.fusion_pipeline`) is trained with `rasa train nlu`; each test tweet is
parsed by the loaded model and the `sentiment.label` of the parse result is compared with the truth.

`fusion_tuned`: the same after fine-tuning MiniLM on the train part's sentiment labels
(`tuning.text`, `--tune-epochs` passes), classifier settings as in config.yml; its `train_s`
includes the tuning (`tune_s`); the tuned encoder is kept in `<out>/cache` and reused (`--retune`).

Floor: mean-pooled all-MiniLM-L6-v2 sentence embeddings (frozen) + LogisticRegression (C=10) on the same split.

Result: `<out>/sentiment.json` (accuracy, macro-F1 over the three classes, train s, ms/message, predictions).
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from benchmarks.bench_intents import (
    DEFAULT_DATA_DIR,
    DEFAULT_EPOCHS,
    DEFAULT_OUT,
    SEED,
    TUNED_FUSION,
    LoadedModel,
    code_state,
    fusion_pipeline,
    limit_per_class,
    load_average,
    machine,
    now_utc,
    quiet_logs,
    read_csv,
    run_floor,
    scores,
    split,
    time_single,
    train_nlu,
    tune_minilm,
    tuned_encoder_dir,
    write_config,
    write_nlu_yaml,
)

CSV = "sentiment/tweets_train.csv"
PLACEHOLDER_INTENT = "tweet"
logger = logging.getLogger("bench_sentiment")


def run_fusion(name: str, pipeline: List[Dict[str, Any]], work: Path, nlu: Path, test_texts: List[str],
               test_y: List[str], latency_sample: int, seed: int) -> Dict[str, Any]:
    """Trains one fusion pipeline on the sentiment-labelled NLU file and scores its `sentiment.label`."""
    config = work / f"config-{name}.yml"
    write_config(config, pipeline)
    train_s = train_nlu(config, nlu, work, name, work / f"train-{name}.log")
    logger.info("%s trained in %.0f s", name, train_s)
    model = LoadedModel(work / f"{name}.tar.gz")
    start = time.perf_counter()
    parsed = model.parse_batch(test_texts)
    batch_ms = 1000.0 * (time.perf_counter() - start) / max(len(test_texts), 1)
    predicted = [((p.get("sentiment") or {}).get("label")) or "None" for p in parsed]
    result: Dict[str, Any] = {"train_s": train_s, "batch_ms_per_message": batch_ms, "predicted": predicted,
                              "pipeline": pipeline}
    result.update(time_single(model, test_texts, latency_sample, seed))
    result.update(scores(test_y, predicted))
    result["load_average"] = {"before": [], "after": load_average()}
    return result


def run(data_dir: Path, out: Path, epochs: int, limit: Optional[int], seed: int, latency_sample: int,
        keep_work: bool, fusion_overrides: Optional[Dict[str, Any]] = None,
        tune_epochs: Optional[int] = None, retune: bool = False) -> Dict[str, Any]:
    """Split, train the fusion pipeline on sentiment labels (on frozen and on tuned MiniLM), score it and the
    floor; write sentiment.json."""
    texts, labels = read_csv(data_dir / CSV, "text", "sentiment")
    chosen = limit_per_class(labels, limit, seed)
    texts, labels = [texts[i] for i in chosen], [labels[i] for i in chosen]
    train, test = split(labels, seed)
    train_texts, train_y = [texts[i] for i in train], [labels[i] for i in train]
    test_texts, test_y = [texts[i] for i in test], [labels[i] for i in test]
    logger.info("tweets: %d train / %d test", len(train), len(test))
    results: Dict[str, Any] = {
        "dataset": "tweets", "csv": str(data_dir / CSV), "seed": seed, "limit_per_class": limit,
        "n_train": len(train), "n_test": len(test), "n_labels": len(set(labels)), "machine": machine(),
        "code": code_state(), "test_labels": test_y, "pipelines": {},
    }
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-sentiment-"))
    try:
        nlu = work / "train.yml"
        write_nlu_yaml(nlu, train_texts, [PLACEHOLDER_INTENT] * len(train_texts),
                       [{"sentiment": label} for label in train_y])
        for name in ("fusion", "fusion_tuned"):
            tuned_dir, tune_s, tuning = None, 0.0, None
            load_before = load_average()
            if name == "fusion_tuned":  # MiniLM fine-tuned on the train part's sentiment labels first
                tuned_dir = tuned_encoder_dir(out, "tweets", limit)
                tune_s, tuning = tune_minilm(train_texts, train_y, tuned_dir, tune_epochs, seed, not retune)
            overrides = fusion_overrides if tuned_dir is None else {**TUNED_FUSION, **(fusion_overrides or {})}
            result = run_fusion(name, fusion_pipeline(epochs, overrides, tuned_dir), work, nlu, test_texts,
                                test_y, latency_sample, seed)
            result.update({"epochs": epochs, "date": now_utc(), "tune_s": tune_s or None, "tuning": tuning,
                           "rasa_train_s": result["train_s"], "train_s": result["train_s"] + tune_s})
            result["load_average"]["before"] = load_before
            if tuned_dir is not None:
                result["pipeline"] = fusion_pipeline(epochs, overrides, Path("<cache>") / tuned_dir.name)
            results["pipelines"][name] = result
            logger.info("%s sentiment: accuracy %.4f, macro-F1 %.4f, %.1f ms/message", name, result["accuracy"],
                        result["macro_f1"], result["ms_per_message"])
            (out / "sentiment.json").write_text(json.dumps(results, indent=1))

        load_before = load_average()
        floor = run_floor(train_texts, train_y, test_texts, test_y, out / "cache")
        floor["load_average"] = {"before": load_before, "after": load_average()}
        floor["date"] = now_utc()
        results["pipelines"]["floor"] = floor
        logger.info("floor sentiment: accuracy %.4f, macro-F1 %.4f", floor["accuracy"], floor["macro_f1"])
        (out / "sentiment.json").write_text(json.dumps(results, indent=1))
    finally:
        if keep_work:
            logger.info("work directory kept: %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return results


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="dataset root (default ../shared/data)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="fusion epochs (config.yml: 100)")
    parser.add_argument("--limit", type=int, default=None, help="at most N tweets per sentiment (quick checks)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--latency-sample", type=int, default=200)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--keep-work", action="store_true")
    parser.add_argument("--tune-epochs", type=int, default=None, help="fine-tuning passes of `fusion_tuned`")
    parser.add_argument("--fusion-set", nargs="*", default=[], metavar="KEY=JSON",
                        help="override fusion classifier settings, e.g. dropout=0.3")
    parser.add_argument("--retune", action="store_true",
                        help="tune MiniLM again even when <out>/cache holds one tuned on the same data")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    quiet_logs()
    if not (args.data / CSV).is_file():
        logger.error("dataset not found: %s (pass --data)", args.data / CSV)
        return 2
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.fusion_set)}
    run(args.data, args.out, args.epochs, args.limit, args.seed, args.latency_sample, args.keep_work,
        overrides or None, args.tune_epochs, args.retune)
    return 0


if __name__ == "__main__":
    sys.exit(main())
