"""Intent accuracy of three Rasa pipelines on public customer-support data, plus a frozen-encoder floor.

Usage::

    python -m benchmarks.bench_intents [--data ../shared/data] [--datasets banking77 bitext]
        [--pipelines stock_diet diet_minilm fusion floor] [--epochs 100] [--limit N] [--out reports/bench]
    python -m benchmarks.bench_intents --project-cv [--folds 3] [--cv-epochs 30]

Datasets (read from `--data`, never copied into the project):

- `banking77/train.csv` (columns text, category; 77 intents; CC BY 4.0);
- `bitext/train.csv` (columns text, intent; 27 intents; CDLA-Sharing-1.0).

Each dataset is split once, stratified by intent, 80 % train / 20 % test with `--seed` (scikit-learn
`train_test_split`); the test part is never seen in training (no early stopping on it either). The train part is
written as Rasa NLU YAML by Rasa's own writer (`TrainingData.nlu_as_yaml`, which quotes and escapes any text) into
a temporary directory, and each pipeline is trained with `rasa train nlu` in a subprocess, with its own empty
training cache (`RASA_CACHE_DIRECTORY`), so nothing is reused between pipelines or runs. Pipelines:

- `stock_diet`: WhitespaceTokenizer, CountVectorsFeaturizer (words), CountVectorsFeaturizer (char_wb 1-4),
  DIETClassifier — stock Rasa;
- `diet_minilm`: the same plus the project's TransformerTextFeaturizer (all-MiniLM-L6-v2) into DIET;
- `fusion`: the text part of the project's config.yml with MultimodalFusionClassifier for intents (see
  `fusion_pipeline`; the speech and image components, the entity-only DIET, the entity extractors and
  FallbackClassifier are left out: they are no-ops or change nothing on unlabelled plain text, and the
  fallback would replace low-confidence predictions by `nlu_fallback`, which is not a classifier error);
- `fusion_tuned`: `fusion` on a MiniLM fine-tuned on the same train part first (`tuning.text`, what
  `make tune-text` does with the project's data; `--tune-epochs` passes), classifier settings as in config.yml
  (`TUNED_FUSION`); its `train_s` includes the tuning, also reported alone as `tune_s`. The tuned encoder is
  kept in `<out>/cache/text-encoder-<dataset>` and reused while the train part and tuning settings are the
  same; `tune_s` is then the seconds of the run that tuned it (`--retune` tunes again);
- `floor`: mean-pooled, L2-normalised all-MiniLM-L6-v2 sentence embeddings (frozen) + scikit-learn
  LogisticRegression (C=10, lbfgs), fitted on the same train part.

Measured per pipeline: accuracy and macro-F1 on the test part (scikit-learn), training wall time in seconds
(the whole `rasa train nlu` process, start-up included), and inference time:

- `ms_per_message`: one `Agent.parse_message` call per message, as a deployed bot runs, over a sample of
  `--latency-sample` test messages (after 5 warm-up calls);
- `batch_ms_per_message`: all test messages through the loaded model's graph in batches of 64
  (`graph_runner.run` with a list of messages, the same graph `parse_message` runs); predictions for the
  metrics come from this path.

The machine is shared: the load average before and after each step is recorded so figures can be judged.

`--project-cv` runs `rasa test nlu --cross-validation` on the project's own data (data/nlu.yml and
data/sentiment.yml) with config.yml, every `epochs` capped at `--cv-epochs`
(`assistant.training.capped_config`), and records the intent accuracy and macro-F1 Rasa writes into its
report.

Results: `<out>/intents_<dataset>.json` (and `<out>/project_cv.json`); `python -m benchmarks.report` turns
them into `<out>/report.md` with plots.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from assistant.paths import PROJECT_ROOT

DEFAULT_DATA_DIR = PROJECT_ROOT.parent / "shared" / "data"
DEFAULT_OUT = PROJECT_ROOT / "reports" / "bench"
DATASETS = {
    # name: (relative CSV path, label column)
    "banking77": ("banking77/train.csv", "category"),
    "bitext": ("bitext/train.csv", "intent"),
}
PIPELINES = ("stock_diet", "diet_minilm", "fusion", "fusion_tuned", "floor")
DEFAULT_EPOCHS = 100  # config.yml: DIETClassifier and MultimodalFusionClassifier `epochs`
BATCH = 64  # messages per graph run on the batched path
SEED = 42
#: Fusion classifier settings of `fusion_tuned` on top of config.yml's: none, so the row shows what a shop gets
#: from `make tune-text` with config.yml as it is. (Before the wide path, the classifier had to read the tuned
#: embedding alone with a cosine head; with it, all features and the affine head did as well or better on
#: cached BANKING77 features: 93.3 % vs 92.9 %.)
TUNED_FUSION: Dict[str, Any] = {}

logger = logging.getLogger("bench_intents")


# ------------------------------------------------------------------------------------------ environment
def subprocess_env() -> Dict[str, str]:
    """Environment of the `rasa` subprocesses: quiet, offline, project importable."""
    env = dict(os.environ)
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        TF_CPP_MIN_LOG_LEVEL="3",
        TF_ENABLE_ONEDNN_OPTS="0",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONWARNINGS="ignore",
        SQLALCHEMY_SILENCE_UBER_WARNING="1",
    )
    # One TensorFlow thread pool of one thread each (Rasa reads these): on a small shared machine more threads
    # only fight over the cores. Set them in the environment to override.
    env.setdefault("TF_INTER_OP_PARALLELISM_THREADS", "1")
    env.setdefault("TF_INTRA_OP_PARALLELISM_THREADS", "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH", "")]))
    return env


def quiet_logs() -> None:
    """Keep Rasa, TensorFlow and transformers to errors in this process."""
    for key, value in subprocess_env().items():
        if key != "PYTHONPATH":
            os.environ.setdefault(key, value)
    for noisy in ("rasa", "tensorflow", "absl", "transformers", "matplotlib", "components", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    import structlog  # Rasa's processor logs every parse through structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def machine() -> Dict[str, Any]:
    """CPU model, logical/usable cores, memory (GiB), Python and OS of this machine."""
    from benchmarks.machine import machine_description, total_memory_gib

    return {**machine_description(), "memory_gib": total_memory_gib()}


def load_average() -> List[float]:
    """The 1/5/15-minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# ------------------------------------------------------------------------------------------ data
def read_csv(path: Path, text_column: str, label_column: str) -> Tuple[List[str], List[str]]:
    """(texts, labels) of a CSV; rows with a blank text or label are skipped.

    Raises:
        FileNotFoundError: if the CSV does not exist.
    """
    texts: List[str] = []
    labels: List[str] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            text, label = (row.get(text_column) or "").strip(), (row.get(label_column) or "").strip()
            if text and label:
                texts.append(text)
                labels.append(label)
    return texts, labels


def limit_per_class(labels: Sequence[str], limit: Optional[int], seed: int) -> np.ndarray:
    """Indices of at most `limit` examples per label (all when `limit` is None), chosen with `seed`."""
    index = np.arange(len(labels))
    if not limit:
        return index
    rng = np.random.default_rng(seed)
    keep: List[int] = []
    by_label: Dict[str, List[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    for label in sorted(by_label):
        members = np.array(by_label[label])
        rng.shuffle(members)
        keep.extend(members[:limit].tolist())
    return np.array(sorted(keep))


def split(labels: Sequence[str], seed: int, test_size: float = 0.2) -> Tuple[np.ndarray, np.ndarray]:
    """Stratified (train, test) indices; `test_size` of every label goes to test."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    train, test = train_test_split(index, test_size=test_size, stratify=list(labels), random_state=seed)
    return np.sort(train), np.sort(test)


def write_nlu_yaml(
    path: Path,
    texts: Sequence[str],
    intents: Sequence[str],
    example_metadata: Optional[Sequence[Dict[str, Any]]] = None,
) -> None:
    """Rasa NLU YAML of the examples, written by Rasa (`TrainingData.nlu_as_yaml`, safe quoting)."""
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    messages = [
        Message.build(
            text=text,
            intent=intent,
            example_metadata=None if example_metadata is None else example_metadata[i],
        )
        for i, (text, intent) in enumerate(zip(texts, intents))
    ]
    path.write_text(TrainingData(training_examples=messages).nlu_as_yaml(), encoding="utf-8")


# ------------------------------------------------------------------------------------------ pipelines
def stock_pipeline(epochs: int) -> List[Dict[str, Any]]:
    """Stock Rasa: whitespace tokens, word + char_wb 1-4 count vectors, DIET."""
    return [
        {"name": "WhitespaceTokenizer"},
        {"name": "CountVectorsFeaturizer"},
        {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
        {"name": "DIETClassifier", "epochs": epochs, "constrain_similarities": True, "random_seed": SEED},
    ]


def minilm_pipeline(epochs: int) -> List[Dict[str, Any]]:
    """Stock Rasa plus the project's MiniLM featurizer (sequence + sentence features) into DIET."""
    pipeline = stock_pipeline(epochs)
    pipeline.insert(
        3,
        {
            "name": "components.text_featurizer.TransformerTextFeaturizer",
            "max_length": 128,
            "batch_size": 32,
            "num_threads": 1,
        },
    )
    return pipeline


def fusion_pipeline(
    epochs: int, fusion_overrides: Optional[Dict[str, Any]] = None, text_model_path: Optional[Path] = None
) -> List[Dict[str, Any]]:
    """The text components of config.yml with MultimodalFusionClassifier deciding the intent.

    Kept as in config.yml: TextSanitizer, WhitespaceTokenizer, RegexFeaturizer, LexicalSyntacticFeaturizer,
    both CountVectorsFeaturizers, TransformerTextFeaturizer and the fusion classifier's settings (epochs
    replaced by `epochs`). Left out: SpeechRecognizer and ImageFeaturizer (no audio or images here), the
    entity-only DIET, RegexEntityExtractor and EntitySynonymMapper (no entities in the data),
    FallbackClassifier and AttachmentRouter (they relabel, they do not classify). `text_model_path` replaces the
    text featurizer's `model_path` (a tuned encoder directory).
    """
    import yaml

    config = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))
    keep = (
        "components.text_sanitizer.TextSanitizer",
        "WhitespaceTokenizer",
        "RegexFeaturizer",
        "LexicalSyntacticFeaturizer",
        "CountVectorsFeaturizer",
        "components.text_featurizer.TransformerTextFeaturizer",
        "components.fusion_classifier.MultimodalFusionClassifier",
    )
    pipeline = [dict(item) for item in config["pipeline"] if item.get("name") in keep]
    for item in pipeline:
        if item["name"].endswith("MultimodalFusionClassifier"):
            item["epochs"] = epochs
            item.update(fusion_overrides or {})
        if item["name"].endswith("TransformerTextFeaturizer") and text_model_path is not None:
            item["model_path"] = str(text_model_path)
    return pipeline


def write_config(path: Path, pipeline: List[Dict[str, Any]]) -> None:
    import yaml

    config = {"recipe": "default.v1", "language": "en", "assistant_id": "bench", "pipeline": pipeline,
              "policies": []}
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def train_nlu(config: Path, nlu: Path, out_dir: Path, name: str, log: Path) -> float:
    """Runs `rasa train nlu` in a subprocess with a fresh cache; returns its wall time in seconds.

    Raises:
        RuntimeError: if training fails (the tail of its log is in the message).
    """
    env = subprocess_env()
    env["RASA_CACHE_DIRECTORY"] = str(out_dir / f"cache-{name}")
    rasa = Path(sys.executable).with_name("rasa")
    cmd = [str(rasa), "train", "nlu", "--config", str(config), "--nlu", str(nlu), "--out", str(out_dir),
           "--fixed-model-name", name]
    start = time.perf_counter()
    with log.open("w") as handle:
        code = subprocess.call(cmd, cwd=PROJECT_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"rasa train nlu failed ({code}) for {name}:\n{tail}")
    return seconds


# ------------------------------------------------------------------------------------------ inference
class LoadedModel:
    """A trained Rasa model, parsed one message at a time (`parse_message`) or in batches (graph run)."""

    def __init__(self, model_path: Path) -> None:
        from rasa.core.agent import Agent

        self.agent = Agent.load(str(model_path))

    def parse_one(self, text: str) -> Dict[str, Any]:
        return asyncio.run(self.agent.parse_message(text))

    def parse_batch(self, texts: Sequence[str], batch_size: int = BATCH) -> List[Dict[str, Any]]:
        """Parse results (output properties only) of `texts`, `batch_size` messages per graph run."""
        from rasa.core.channels.channel import UserMessage
        from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER

        processor = self.agent.processor
        target = processor.model_metadata.nlu_target
        results: List[Dict[str, Any]] = []
        for start in range(0, len(texts), batch_size):
            messages = [UserMessage(text) for text in texts[start : start + batch_size]]
            outputs = processor.graph_runner.run(
                inputs={PLACEHOLDER_MESSAGE: messages, PLACEHOLDER_TRACKER: None}, targets=[target]
            )[target]
            results.extend(message.as_dict(only_output_properties=True) for message in outputs)
        return results


def time_single(model: LoadedModel, texts: Sequence[str], sample: int, seed: int) -> Dict[str, float]:
    """Per-message `parse_message` latency (ms) over `sample` texts, after 5 warm-up calls."""
    rng = np.random.default_rng(seed)
    chosen = [texts[i] for i in rng.choice(len(texts), size=min(sample, len(texts)), replace=False)]
    for text in chosen[:5]:
        model.parse_one(text)
    times = []
    for text in chosen:
        start = time.perf_counter()
        model.parse_one(text)
        times.append(1000.0 * (time.perf_counter() - start))
    return {
        "ms_per_message": float(np.mean(times)),
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
        "latency_messages": len(times),
    }


def intent_of(parse: Dict[str, Any]) -> str:
    return ((parse.get("intent") or {}).get("name")) or "None"


def scores(y_true: Sequence[str], y_pred: Sequence[str]) -> Dict[str, float]:
    """Accuracy and macro-F1 (over the true labels; scikit-learn)."""
    from sklearn.metrics import accuracy_score, f1_score

    labels = sorted(set(y_true))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
    }


# ------------------------------------------------------------------------------------------ frozen floor
def minilm_embeddings(
    texts: Sequence[str], cache_dir: Optional[Path] = None, num_threads: int = 2
) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embeddings `float32 (n, 384)`: the featurizer's default pooling
    (attention-masked mean over the word pieces, L2-normalised; `encoders.text.encode_sentences` with
    `SentencePooling()`), the first 128 word pieces of each text, 64 texts per forward pass.

    This is how sentence-transformers pools all-MiniLM-L6-v2. Embeddings are cached in `cache_dir` under a
    hash of the texts (the cache lives in reports/, never in the repository).
    """
    import hashlib

    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    cached = cache_dir / f"minilm-{key}.npy" if cache_dir else None
    if cached is not None and cached.is_file():
        return np.load(cached)
    import torch

    from encoders.text import SentencePooling, encode_sentences, load_model, resolve_model_path

    loaded = load_model(resolve_model_path(None))
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        vectors = encode_sentences(texts, loaded, SentencePooling(), max_length=128, batch_size=64)
    finally:
        torch.set_num_threads(previous)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.save(cached, vectors)
    return vectors


def minilm_embeddings_store(texts: Sequence[str], vectors: np.ndarray, cache_dir: Path) -> None:
    """Stores embeddings under the key `minilm_embeddings` looks them up by."""
    import hashlib

    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(cache_dir / f"minilm-{key}.npy", vectors)


def code_state() -> Dict[str, Any]:
    """The commit and whether the files that shape the results differ from it (several developers share the
    checkout; a benchmark runs whatever is in the working tree)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                                  timeout=30).stdout.rstrip("\n")
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = git("status", "--porcelain", "--", "components", "config.yml").splitlines()
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "uncommitted": [line[3:] for line in dirty]}


def run_floor(
    train_texts: Sequence[str], train_y: Sequence[str], test_texts: Sequence[str], test_y: Sequence[str],
    cache_dir: Path,
) -> Dict[str, Any]:
    """Frozen MiniLM + LogisticRegression: scores, training time and per-message inference time.

    `train_s` is embedding the train part + fitting, always measured (the cache is not read for it);
    `batch_ms_per_message` embeds the test part in batches of 64 + predicts; `ms_per_message` embeds and predicts
    one message at a time (up to 200 test messages). Only the scores may come from cached embeddings.
    """
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    x_train = minilm_embeddings(train_texts, None)
    classifier = LogisticRegression(C=10.0, max_iter=3000)
    classifier.fit(x_train, list(train_y))
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    x_test = minilm_embeddings(test_texts, None)
    predicted = list(classifier.predict(x_test))
    batch_ms = 1000.0 * (time.perf_counter() - start) / max(len(test_texts), 1)
    if cache_dir is not None:  # for later studies on the same split
        for texts_, vectors in ((train_texts, x_train), (test_texts, x_test)):
            minilm_embeddings_store(texts_, vectors, cache_dir)
    sample = list(test_texts[:200])
    times = []
    for text in sample:
        t0 = time.perf_counter()
        classifier.predict(minilm_embeddings([text], None, num_threads=1))
        times.append(1000.0 * (time.perf_counter() - t0))
    result = {"train_s": train_s, "batch_ms_per_message": batch_ms, "ms_per_message": float(np.mean(times)),
              "p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
              "latency_messages": len(times), "predicted": predicted,
              "note": "train_s = embedding the train part + LogisticRegression(C=10) fit"}
    result.update(scores(test_y, predicted))
    return result


# ------------------------------------------------------------------------------------------ one dataset
def tune_minilm(texts: Sequence[str], labels: Sequence[str], out_dir: Path, tune_epochs: Optional[int],
                seed: int, reuse: bool = True) -> Tuple[float, Dict[str, Any]]:
    """Fine-tunes the packaged MiniLM on (texts, labels) into `out_dir` with `tuning.text.fine_tune`
    (`TuningConfig` defaults, `tune_epochs` passes when given). Returns (seconds, {config, history, reused}).

    With `reuse`, an encoder already in `out_dir` that was tuned from the same pairs, settings and base model
    (`tuning.text.is_up_to_date`) is used as it is, and the seconds are those its tuning took then.
    """
    from encoders.text import resolve_model_path
    from tuning.text import TuningConfig, fine_tune, is_up_to_date, read_report

    config = TuningConfig(seed=seed) if tune_epochs is None else TuningConfig(epochs=tune_epochs, seed=seed)
    base = resolve_model_path(None)
    if reuse and is_up_to_date(out_dir, list(texts), list(labels), config, base):
        report = read_report(out_dir) or {}
        logger.info("  reusing the MiniLM tuned on the same data in %s (%.0f s then)", out_dir,
                    report.get("seconds", 0.0))
        return float(report.get("seconds", 0.0)), {"config": report.get("config"),
                                                    "history": report.get("history"), "reused": True}
    start = time.perf_counter()
    report = fine_tune(list(texts), list(labels), base, out_dir, config)
    tune_s = time.perf_counter() - start
    logger.info("  MiniLM tuned in %.0f s", tune_s)
    return tune_s, {"config": report["config"], "history": report["history"], "reused": False}


def tuned_encoder_dir(out: Path, dataset: str, limit: Optional[int]) -> Path:
    """Where the benchmarks keep the MiniLM tuned on one dataset's train part: `<out>/cache/text-encoder-...`."""
    return out / "cache" / (f"text-encoder-{dataset}" + (f"-limit{limit}" if limit else ""))


def run_tuned_fusion(
    work: Path, train_yaml: Path, train_texts: Sequence[str], train_y: Sequence[str], test_texts: Sequence[str],
    test_y: Sequence[str], epochs: int, fusion_overrides: Optional[Dict[str, Any]], tune_epochs: Optional[int],
    latency_sample: int, seed: int, tuned: Path, reuse: bool = True,
) -> Dict[str, Any]:
    """Fine-tunes MiniLM on the train part (`tuning.text`) into `tuned` (or reuses the encoder there,
    see `tune_minilm`), then trains and scores `fusion` on it."""
    load_before = load_average()
    tune_s, tuning = tune_minilm(train_texts, train_y, tuned, tune_epochs, seed, reuse)
    overrides = {**TUNED_FUSION, **(fusion_overrides or {})}
    result = run_rasa_pipeline("fusion_tuned", fusion_pipeline(epochs, overrides, tuned), work, train_yaml,
                               test_texts, test_y, latency_sample, seed)
    result["pipeline"] = fusion_pipeline(epochs, overrides, Path("<cache>") / tuned.name)
    result.update({"tune_s": tune_s, "rasa_train_s": result["train_s"], "train_s": tune_s + result["train_s"],
                   "tuning": tuning})
    result["load_average"]["before"] = load_before
    return result


def run_rasa_pipeline(
    name: str, pipeline: List[Dict[str, Any]], work: Path, train_yaml: Path, test_texts: Sequence[str],
    test_y: Sequence[str], latency_sample: int, seed: int,
) -> Dict[str, Any]:
    """Train one pipeline with `rasa train nlu`, then score and time it on the test texts."""
    config = work / f"config-{name}.yml"
    write_config(config, pipeline)
    load_before = load_average()
    train_s = train_nlu(config, train_yaml, work, name, work / f"train-{name}.log")
    logger.info("  %s trained in %.0f s", name, train_s)
    model = LoadedModel(work / f"{name}.tar.gz")
    start = time.perf_counter()
    parsed = model.parse_batch(list(test_texts))
    batch_ms = 1000.0 * (time.perf_counter() - start) / max(len(test_texts), 1)
    predicted = [intent_of(p) for p in parsed]
    result: Dict[str, Any] = {"train_s": train_s, "batch_ms_per_message": batch_ms, "predicted": predicted,
                              "pipeline": pipeline}
    result.update(time_single(model, test_texts, latency_sample, seed))
    result.update(scores(test_y, predicted))
    result["load_average"] = {"before": load_before, "after": load_average()}
    sentiments = [((p.get("sentiment") or {}).get("label")) for p in parsed]
    if any(sentiments):
        result["sentiment_predicted"] = sentiments
    return result


def run_dataset(
    dataset: str, data_dir: Path, out: Path, pipelines: Sequence[str], epochs: int, limit: Optional[int],
    seed: int, latency_sample: int, keep_work: bool, fusion_overrides: Optional[Dict[str, Any]] = None,
    tune_epochs: Optional[int] = None, retune: bool = False,
) -> Dict[str, Any]:
    """Split one dataset, run every requested pipeline on it and write `<out>/intents_<dataset>.json`.

    `fusion_tuned` keeps its tuned MiniLM in `tuned_encoder_dir` and reuses it on the next run unless the data,
    the tuning settings or `retune` say otherwise."""
    relative, label_column = DATASETS[dataset]
    texts, labels = read_csv(data_dir / relative, "text", label_column)
    chosen = limit_per_class(labels, limit, seed)
    texts, labels = [texts[i] for i in chosen], [labels[i] for i in chosen]
    train, test = split(labels, seed)
    train_texts, train_y = [texts[i] for i in train], [labels[i] for i in train]
    test_texts, test_y = [texts[i] for i in test], [labels[i] for i in test]
    logger.info("%s: %d train / %d test examples, %d intents", dataset, len(train), len(test), len(set(labels)))

    path = out / f"intents_{dataset}.json"
    results: Dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    # Keep earlier pipelines' results only when they came from the same split and settings.
    settings = {"dataset": dataset, "csv": str(data_dir / relative), "seed": seed, "limit_per_class": limit,
                "n_train": len(train), "n_test": len(test), "n_intents": len(set(labels))}
    if {k: results.get(k) for k in settings} != settings:
        results = {}
    results.update(settings)
    results.setdefault("pipelines", {})
    results["machine"] = machine()
    results["code"] = code_state()
    results["test_labels"] = test_y

    work = Path(tempfile.mkdtemp(prefix=f"bench-{dataset}-"))
    try:
        train_yaml = work / "train.yml"
        write_nlu_yaml(train_yaml, train_texts, train_y)
        builders = {"stock_diet": stock_pipeline, "diet_minilm": minilm_pipeline,
                    "fusion": lambda e: fusion_pipeline(e, fusion_overrides)}
        for name in pipelines:
            logger.info("%s / %s ...", dataset, name)
            if name == "floor":
                load_before = load_average()
                result = run_floor(train_texts, train_y, test_texts, test_y, out / "cache")
                result["load_average"] = {"before": load_before, "after": load_average()}
            elif name == "fusion_tuned":
                result = run_tuned_fusion(work, train_yaml, train_texts, train_y, test_texts, test_y, epochs,
                                          fusion_overrides, tune_epochs, latency_sample, seed,
                                          tuned_encoder_dir(out, dataset, limit), not retune)
            else:
                result = run_rasa_pipeline(name, builders[name](epochs), work, train_yaml, test_texts, test_y,
                                           latency_sample, seed)
            result["date"] = now_utc()
            result["epochs"] = None if name == "floor" else epochs
            results["pipelines"][name] = result
            logger.info("  %s: accuracy %.4f, macro-F1 %.4f, train %.0f s, %.1f ms/message (batched %.1f)",
                        name, result["accuracy"], result["macro_f1"], result["train_s"], result["ms_per_message"],
                        result["batch_ms_per_message"])
            out.mkdir(parents=True, exist_ok=True)
            if path.is_file():  # another run may have added pipelines meanwhile
                latest = json.loads(path.read_text())
                if {k: latest.get(k) for k in settings} == settings:
                    for other, value in latest.get("pipelines", {}).items():
                        results["pipelines"].setdefault(other, value)
            path.write_text(json.dumps(results, indent=1))
    finally:
        if keep_work:
            logger.info("work directory kept: %s", work)
        else:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    return results


# ------------------------------------------------------------------------------------------ project CV
def run_project_cv(out: Path, folds: int, cv_epochs: int) -> Dict[str, Any]:
    """`rasa test nlu --cross-validation` on the project's NLU files (`assistant.paths.nlu_training_files`)."""
    from assistant.training import capped_config

    work = Path(tempfile.mkdtemp(prefix="bench-cv-"))
    config = capped_config(PROJECT_ROOT / "config.yml", cv_epochs, work)
    from assistant.paths import nlu_training_files

    data = nlu_training_files()
    # `--nlu` takes one path: merge the files with Rasa's reader and writer.
    from rasa.shared.nlu.training_data.loading import load_data

    merged = load_data(str(data[0]))
    for extra in data[1:]:
        merged = merged.merge(load_data(str(extra)))
    nlu = work / "nlu.yml"
    nlu.write_text(merged.nlu_as_yaml(), encoding="utf-8")
    results_dir = out / "project_cv"
    env = subprocess_env()
    env["RASA_CACHE_DIRECTORY"] = str(work / "cache")
    rasa = Path(sys.executable).with_name("rasa")
    cmd = [str(rasa), "test", "nlu", "--nlu", str(nlu), "--config", str(config), "--cross-validation",
           "--folds", str(folds), "--out", str(results_dir)]
    logger.info("project cross-validation: %s", " ".join(cmd))
    load_before = load_average()
    start = time.perf_counter()
    log = out / "project_cv.log"
    out.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        code = subprocess.call(cmd, cwd=PROJECT_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"rasa test nlu failed ({code}); see {log}")
    report = json.loads((results_dir / "intent_report.json").read_text())
    result = {
        "data": [str(p.relative_to(PROJECT_ROOT)) for p in data],
        "examples": len(merged.intent_examples),
        "intents": len(merged.intents),
        "folds": folds,
        "epochs_cap": cv_epochs,
        "seconds": seconds,
        "accuracy": report.get("accuracy"),
        "macro_f1": (report.get("macro avg") or {}).get("f1-score"),
        "weighted_f1": (report.get("weighted avg") or {}).get("f1-score"),
        "printed_summary": [line for line in log.read_text(errors="replace").splitlines()
                            if "Intent evaluation results" in line or line.strip().startswith(("test ", "train "))
                            or "Accuracy:" in line or "F1-score:" in line][:40],
        "report_dir": str(results_dir),
        "load_average": {"before": load_before, "after": load_average()},
        "machine": machine(),
        "code": code_state(),
        "date": now_utc(),
    }
    (out / "project_cv.json").write_text(json.dumps(result, indent=1))
    logger.info("project CV (%d folds, epochs ≤ %d): accuracy %s, macro-F1 %s, %.0f s", folds, cv_epochs,
                result["accuracy"], result["macro_f1"], seconds)
    return result


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="dataset root (default ../shared/data)")
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=["bitext", "banking77"])
    parser.add_argument("--pipelines", nargs="+", choices=PIPELINES, default=list(PIPELINES))
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="DIET and fusion epochs (config.yml: 100)")
    parser.add_argument("--limit", type=int, default=None, help="at most N examples per intent (quick checks)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--latency-sample", type=int, default=200, help="messages timed one by one")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary models and logs")
    parser.add_argument("--fusion-set", nargs="*", default=[], metavar="KEY=JSON",
                        help="override fusion classifier settings, e.g. dropout=0.3 (recorded in the results)")
    parser.add_argument("--tune-epochs", type=int, default=None,
                        help="fine-tuning passes of `fusion_tuned` (default: tuning.text.TuningConfig)")
    parser.add_argument("--retune", action="store_true",
                        help="tune MiniLM again even when <out>/cache holds one tuned on the same data")
    parser.add_argument("--project-cv", action="store_true", help="cross-validate config.yml on data/ instead")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--cv-epochs", type=int, default=30, help="cap of every `epochs` in the CV config")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    quiet_logs()

    if args.project_cv:
        run_project_cv(args.out, args.folds, args.cv_epochs)
        return 0
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.fusion_set)}
    for dataset in args.datasets:
        csv_path = args.data / DATASETS[dataset][0]
        if not csv_path.is_file():
            logger.error("dataset not found: %s (pass --data)", csv_path)
            return 2
        run_dataset(dataset, args.data, args.out, args.pipelines, args.epochs, args.limit, args.seed,
                    args.latency_sample, args.keep_work, overrides or None, args.tune_epochs, args.retune)
    return 0


if __name__ == "__main__":
    sys.exit(main())
