"""Latency and memory of `TransformerTextFeaturizer` on realistic customer-support messages.

Usage: `python -m benchmarks.bench_text_featurizer [-n 200] [--data ../shared/data] [--model-path DIR]`.

Messages are sampled (seed 0) from `<data>/bitext/train.csv` (Bitext customer-support utterances,
CDLA-Sharing-1.0); when that file is absent a small built-in list is cycled instead. Each message is tokenized
first (Rasa's WhitespaceTokenizer, not timed); the figure is the latency this component adds to one user
turn, i.e. one `process([message])` call, as at inference. Batch throughput (`process_training_data`, as at
training) and the model load time are reported too.

Peak RSS comes from `resource.getrusage(RUSAGE_SELF).ru_maxrss`: it is the whole process's peak (Python, Rasa,
TensorFlow imported by Rasa, torch, the model), and it never goes down, so when several benchmarks run in one
process (`make bench-encoders`) each later figure includes the earlier ones.
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from assistant.paths import PROJECT_ROOT
from benchmarks.machine import machine_description, peak_rss_mib

DEFAULT_DATA_DIR = PROJECT_ROOT.parent / "shared" / "data"
WARM_UP_MESSAGES = 5
SEED = 0

logger = logging.getLogger(__name__)

FALLBACK_MESSAGES = [
    "where is my order 45172?",
    "my parcel hasn't arrived yet and it's been two weeks",
    "I want to return the bananas I bought yesterday, they were rotten",
    "can I get a refund for order #A-10293",
    "do you sell oat milk",
    "how much are the organic apples",
    "I need to change my shipping address to 12 Baker Street, London",
    "talk to a human please",
    "the delivery guy left my package at the wrong door 😡",
    "cancel order 45172 and 45173",
    "what payment methods do you accept? can I pay with PayPal",
    "hi",
]




def load_messages(n_messages: int, data_dir: Optional[Path] = None) -> List[str]:
    """`n_messages` texts sampled with seed 0 from bitext/train.csv, or the built-in list cycled."""
    path = Path(data_dir or DEFAULT_DATA_DIR) / "bitext" / "train.csv"
    texts: List[str] = []
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as handle:
            texts = [row["text"] for row in csv.DictReader(handle) if row.get("text", "").strip()]
    else:
        logger.warning("%s not found; using %d built-in messages", path, len(FALLBACK_MESSAGES))
    if not texts:
        return [FALLBACK_MESSAGES[i % len(FALLBACK_MESSAGES)] for i in range(n_messages)]
    rng = random.Random(SEED)
    return rng.sample(texts, n_messages) if n_messages <= len(texts) else rng.choices(texts, k=n_messages)




def run(
    n_messages: int = 200,
    data_dir: Optional[Path] = None,
    model_path: Optional[str] = None,
    num_threads: int = 0,
) -> Dict[str, Any]:
    """Measures the featurizer; returns the figures as a flat dict (times in ms/s, memory in MiB).

    Args:
        n_messages: messages to time one by one (after `WARM_UP_MESSAGES` untimed ones).
        data_dir: folder holding `bitext/train.csv` (default `../shared/data`).
        model_path: the component's `model_path` (None: the packaged all-MiniLM-L6-v2).
        num_threads: the component's `num_threads` (torch intra-op threads; 0 = torch's default).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from components.text_featurizer import TransformerTextFeaturizer

    texts = load_messages(n_messages + WARM_UP_MESSAGES, data_dir)
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())

    def tokenized(text: str) -> Message:
        message = Message(data={"text": text})
        tokenizer.process([message])
        return message

    rss_before_load = peak_rss_mib()
    config = {
        **TransformerTextFeaturizer.get_default_config(),
        "model_path": model_path,
        "num_threads": num_threads,
    }
    started = time.perf_counter()
    featurizer = TransformerTextFeaturizer(config, "bench_text_featurizer")
    load_s = time.perf_counter() - started

    import torch

    featurizer.process([tokenized(t) for t in texts[:WARM_UP_MESSAGES]])
    latencies_ms = []
    n_tokens = []
    for text in texts[WARM_UP_MESSAGES:]:
        message = tokenized(text)
        started = time.perf_counter()
        featurizer.process([message])
        latencies_ms.append((time.perf_counter() - started) * 1000)
        n_tokens.append(len(message.get("text_tokens") or []))

    batch = TrainingData([tokenized(t) for t in texts[WARM_UP_MESSAGES:]])
    started = time.perf_counter()
    featurizer.process_training_data(batch)
    batch_s = time.perf_counter() - started

    return {
        "component": "TransformerTextFeaturizer",
        "model": str(featurizer._model_dir),
        "dims": featurizer.dims,
        "n_messages": n_messages,
        "mean_tokens": float(np.mean(n_tokens)),
        "p50_ms": float(np.percentile(latencies_ms, 50)),
        "p95_ms": float(np.percentile(latencies_ms, 95)),
        "max_ms": float(np.max(latencies_ms)),
        "batch_size": config["batch_size"],
        "batch_messages_per_s": n_messages / batch_s,
        "load_s": load_s,
        "peak_rss_before_load_mib": rss_before_load,
        "peak_rss_mib": peak_rss_mib(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0],
        **machine_description(),
    }


def format_table(result: Dict[str, Any]) -> str:
    """The figures as a small aligned two-column table."""
    rows = [
        ("machine", f"{result['cpu']}, {result['usable_cores']}/{result['logical_cores']} cores usable, "
                    f"torch threads {result['torch_threads']}, "
                    f"load average {result['load_average_1min']:.1f}"),
        ("model", f"{result['model']} (dims {result['dims']})"),
        ("messages", f"{result['n_messages']} (mean {result['mean_tokens']:.1f} tokens)"),
        ("latency p50 / p95 / max",
         f"{result['p50_ms']:.1f} / {result['p95_ms']:.1f} / {result['max_ms']:.1f} ms per message "
         f"(process, 1 message)"),
        ("batch throughput", f"{result['batch_messages_per_s']:.0f} messages/s "
                             f"(process_training_data, batch_size {result['batch_size']})"),
        ("model load", f"{result['load_s']:.2f} s"),
        ("peak RSS", f"{result['peak_rss_mib']:.0f} MiB (before model load: "
                     f"{result['peak_rss_before_load_mib']:.0f} MiB)"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--n-messages", type=int, default=200, help="messages to time (count)")
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA_DIR, help="datasets folder (default ../shared/data)"
    )
    parser.add_argument("--model-path", default=None, help="model directory (default: packaged MiniLM)")
    parser.add_argument("--num-threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = run(args.n_messages, args.data, args.model_path, args.num_threads)
    sys.stdout.write(format_table(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
