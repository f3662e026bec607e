"""Offline fine-tuning of the sentence encoder on the shop's intents (`make tune-text`).

The frozen all-MiniLM-L6-v2 was trained for general sentence similarity; a shop's intents draw finer lines
("where is my refund" vs "cancel my refund"). This module fine-tunes the encoder once, on CPU, on labelled
examples (the project's NLU data, or a benchmark's training part), and writes a Hugging Face model directory
that `TransformerTextFeaturizer` loads through `model_path` (config.yml). Rasa then trains its classifiers on
the tuned features as usual; nothing is downloaded and nothing is pickled.

Objective: the encoder's sentence embedding as the featurizer computes it by default (`encoders.text.
pool_sentences` with `SentencePooling()`: attention-masked mean, L2-normalised) goes into a cosine-softmax
classifier, `logits = scale * normalize(e) @ normalize(W).T` (normalised softmax, Wang et al. 2017,
"NormFace"; a fixed scale of 20 as in sentence-transformers' MultipleNegativesRankingLoss), trained with
cross-entropy, AdamW and a linear warm-up / linear decay schedule (Devlin et al. 2019). Because the head works
on cosines, the tuned embeddings cluster by intent in the geometry every downstream consumer uses
(L2-normalised features, cosine similarity). The head is thrown away; only the encoder is saved.

Output directory: `config.json` and `model.safetensors` (`save_pretrained`), the tokenizer files, and
`tuning.json` (base model, labels, data digest, hyper-parameters, the pooling, per-epoch loss and training
accuracy, seconds). The directory is written beside the target and renamed into place, so a failed run leaves
the old one intact.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from encoders.text import SentencePooling, pool_sentences, quiet_transformers
from assistant.torch_runtime import seed_everything, torch_threads
from tuning.io import (  # noqa: F401 (REPORT_FILE, read_report: re-exported)
    REPORT_FILE,
    check_settings,
    finish_epoch,
    read_report,
    report_matches,
    staged_directory,
    write_report,
)

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
#: The sentence embedding that is tuned: the featurizer's default (attention-masked mean, L2-normalised), the
#: geometry the cosine-softmax head trains for. Recorded in `tuning.json` under "pooling".
POOLING = SentencePooling()


@dataclass
class TuningConfig:
    """Hyper-parameters of `fine_tune` (defaults: what BANKING77 and the project data were tuned with).

    Attributes:
        epochs: passes over the examples (count).
        batch_size: examples per optimiser step (count).
        learning_rate: peak AdamW step size of the encoder (float > 0).
        head_learning_rate: AdamW step size of the cosine classifier (float > 0; it starts from random).
        weight_decay: AdamW decoupled weight decay (float >= 0).
        warmup_fraction: share of the steps with a linearly rising step size (fraction, 0..1).
        scale: cosine-softmax scale, i.e. inverse temperature (float > 0).
        max_length: word pieces per example, special tokens included (count; longer texts are truncated).
        seed: seed of python's `random`, numpy and torch (int).
        num_threads: torch CPU threads (count; 0 = all cores).
    """

    epochs: int = 4
    batch_size: int = 32
    learning_rate: float = 5e-5
    head_learning_rate: float = 5e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    scale: float = 20.0
    max_length: int = 64
    seed: int = 42
    num_threads: int = 0

    def validate(self) -> None:
        """Raises ValueError naming the first invalid field."""
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 2,
            "learning_rate": self.learning_rate > 0,
            "head_learning_rate": self.head_learning_rate > 0,
            "weight_decay": self.weight_decay >= 0,
            "warmup_fraction": 0 <= self.warmup_fraction < 1,
            "scale": self.scale > 0,
            "max_length": self.max_length >= 8,
            "num_threads": self.num_threads >= 0,
        }
        check_settings("tuning", self, checks)


def data_digest(texts: Sequence[str], labels: Sequence[str]) -> str:
    """SHA-256 (hex) over the (text, label) pairs in order: names the data a tuned model was made from."""
    digest = hashlib.sha256()
    for text, label in zip(texts, labels):
        digest.update(text.encode("utf-8") + b"\x00" + label.encode("utf-8") + b"\x01")
    return digest.hexdigest()


def is_up_to_date(out_dir: Path, texts: Sequence[str], labels: Sequence[str], config: "TuningConfig",
                  base_model_dir: Path) -> bool:
    """Whether `out_dir` holds an encoder tuned from the same (text, label) pairs, settings and base model."""
    wanted = {"data_sha256": data_digest(texts, labels), "config": asdict(config),
              "base_model": str(base_model_dir)}
    return report_matches(out_dir, wanted)


def read_nlu_examples(paths: Sequence[Path]) -> Tuple[List[str], List[str]]:
    """(texts, intents) of every NLU example with a non-blank text and an intent in the Rasa YAML files.

    Entity annotations are resolved to their plain text by Rasa's reader (`[#10045](order_number)` →
    "#10045").

    Raises:
        FileNotFoundError: if a path does not exist.
        rasa.shared.exceptions.YamlException: for invalid YAML.
    """
    from rasa.shared.nlu.constants import INTENT, TEXT
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    texts: List[str] = []
    intents: List[str] = []
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"tuning: no such NLU file: {path}")
        data = RasaYAMLReader().read(path)
        for message in data.intent_examples:
            text, intent = message.get(TEXT), message.get(INTENT)
            if isinstance(text, str) and text.strip() and intent:
                texts.append(text)
                intents.append(str(intent))
    return texts, intents


def fine_tune(
    texts: Sequence[str],
    labels: Sequence[str],
    base_model_dir: Path,
    out_dir: Path,
    config: Optional[TuningConfig] = None,
    progress: Optional[Callable[[str], None]] = None,
) -> Dict[str, Any]:
    """Fine-tunes the encoder in `base_model_dir` to tell `labels` apart and saves it to `out_dir`.

    Args:
        texts: the examples (str; at least 2 distinct labels among them).
        labels: one label per text (str).
        base_model_dir: a Hugging Face encoder directory with a fast tokenizer (e.g. the packaged MiniLM).
        out_dir: where the tuned model directory goes (replaced atomically when the run succeeds).
        config: hyper-parameters (`TuningConfig()` when None).
        progress: called with one line per epoch (e.g. `print`); the module logger gets them too.

    Returns:
        The report written to `out_dir/tuning.json`: base model, labels, data digest, config, per-epoch mean
        loss and training accuracy, examples, optimiser steps and seconds.

    Raises:
        ValueError: for mismatched lengths, fewer than 2 labels, or an invalid config.
        OSError: if the model cannot be read or the output not written.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    quiet_transformers()
    config = config or TuningConfig()
    config.validate()
    if len(texts) != len(labels):
        raise ValueError(f"tuning: {len(texts)} texts but {len(labels)} labels")
    label_names = sorted(set(labels))
    if len(label_names) < 2:
        raise ValueError("tuning: at least 2 different labels are needed")
    label_index = {name: i for i, name in enumerate(label_names)}
    targets = torch.tensor([label_index[label] for label in labels], dtype=torch.long)

    started = time.perf_counter()
    with torch_threads(config.num_threads):
        seed_everything(config.seed)
        tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir), local_files_only=True, use_fast=True)
        encoder = AutoModel.from_pretrained(str(base_model_dir), local_files_only=True)
        encoder.train()
        hidden_size = int(encoder.config.hidden_size)
        head = torch.nn.Parameter(torch.randn(len(label_names), hidden_size) * 0.02)
        encoded = tokenizer(list(texts), truncation=True, max_length=config.max_length)
        input_ids: List[List[int]] = encoded["input_ids"]

        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
        decay_params = [p for n, p in encoder.named_parameters() if not any(k in n for k in no_decay)]
        other_params = [p for n, p in encoder.named_parameters() if any(k in n for k in no_decay)]
        optimizer = torch.optim.AdamW(
            [
                {"params": decay_params, "lr": config.learning_rate, "weight_decay": config.weight_decay},
                {"params": other_params, "lr": config.learning_rate, "weight_decay": 0.0},
                {"params": [head], "lr": config.head_learning_rate, "weight_decay": 0.0},
            ]
        )
        steps_per_epoch = math.ceil(len(texts) / config.batch_size)
        total_steps = steps_per_epoch * config.epochs
        warmup_steps = int(config.warmup_fraction * total_steps)

        def schedule(step: int) -> float:
            if step < warmup_steps:
                return (step + 1) / max(1, warmup_steps)
            return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        generator = torch.Generator().manual_seed(config.seed)
        history: List[Dict[str, float]] = []
        for epoch in range(1, config.epochs + 1):
            order = torch.randperm(len(texts), generator=generator).tolist()
            total_loss, correct = 0.0, 0
            for start in range(0, len(order), config.batch_size):
                rows = order[start : start + config.batch_size]
                batch = tokenizer.pad({"input_ids": [input_ids[i] for i in rows]}, return_tensors="pt")
                mask = batch["attention_mask"]
                hidden = encoder(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state
                embedding = pool_sentences(hidden, mask, POOLING)
                logits = config.scale * embedding @ torch.nn.functional.normalize(head, dim=1).T
                batch_targets = targets[rows]
                loss = torch.nn.functional.cross_entropy(logits, batch_targets)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(list(encoder.parameters()) + [head], 1.0)
                optimizer.step()
                scheduler.step()
                total_loss += float(loss.detach()) * len(rows)
                correct += int((logits.argmax(dim=1) == batch_targets).sum())
            history.append(finish_epoch("tune-text", epoch, config.epochs, total_loss, correct, len(texts),
                                        started, logger, progress))
        encoder.eval()
        report = {
            "format_version": FORMAT_VERSION,
            "base_model": str(base_model_dir),
            "labels": label_names,
            "examples": len(texts),
            "data_sha256": data_digest(texts, labels),
            "config": asdict(config),
            "optimizer_steps": total_steps,
            "history": history,
            "seconds": round(time.perf_counter() - started, 1),
            "objective": "cosine-softmax cross-entropy over mean-pooled, L2-normalised embeddings",
            "pooling": asdict(POOLING),
        }
        _save(encoder, tokenizer, report, out_dir)
        return report


def _save(encoder: Any, tokenizer: Any, report: Dict[str, Any], out_dir: Path) -> None:
    """Writes the model directory next to `out_dir`, then swaps it into place (`staged_directory`)."""
    with staged_directory(out_dir) as staging:
        encoder.save_pretrained(str(staging), safe_serialization=True)
        tokenizer.save_pretrained(str(staging))
        write_report(staging, report)
        if any(p.suffix in (".bin", ".pt", ".pth", ".pkl") for p in staging.iterdir()):
            raise OSError("tuning: refusing to keep pickled weights; expected safetensors only")
