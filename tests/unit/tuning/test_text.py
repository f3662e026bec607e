"""Unit tests for `tuning.text` (offline fine-tuning of the sentence encoder); the CLI: tests/unit/scripts.

Most tests tune the tiny random BERT of `tiny_bert`; one tunes the real packaged all-MiniLM-L6-v2 on a handful
of confusable shop requests and checks that the intents drift apart in its embedding space.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import List, Sequence

import numpy as np
import pytest

from encoders.text import SentencePooling, load_model, pool_sentences, resolve_model_path
from tuning.text import (
    POOLING,
    REPORT_FILE,
    TuningConfig,
    data_digest,
    fine_tune,
    is_up_to_date,
    read_nlu_examples,
    read_report,
)
from tests.unit.encoders.tiny_bert import build_tiny_bert

PROJECT_ROOT = Path(__file__).resolve().parents[3]

# Two intents the tiny vocabulary can spell; words overlap so that the encoder has to learn which ones matter.
TINY_TEXTS = ["where is my order", "where is the order", "my order please", "the order is where",
              "where is my refund", "where is the refund", "my refund please", "the refund is where"]
TINY_LABELS = ["order_status"] * 4 + ["refund_status"] * 4


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert-tuning"))


def embed(model_dir: Path, texts: Sequence[str]) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings `float32 (n, hidden)` as the featurizer computes them."""
    import torch

    loaded = load_model(model_dir.resolve())
    batch = loaded.tokenizer(list(texts), padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = loaded.model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=1).numpy()


def class_margin(vectors: np.ndarray, labels: Sequence[str]) -> float:
    """Mean cosine within an intent minus mean cosine across intents (higher: intents further apart)."""
    labels_arr = np.asarray(labels)
    same = labels_arr[:, None] == labels_arr[None, :]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    cosines = vectors @ vectors.T
    return float(cosines[same & off_diagonal].mean() - cosines[~same].mean())


def tune_tiny(model_dir: Path, out: Path, **overrides) -> dict:
    config = TuningConfig(**{"epochs": 20, "batch_size": 4, "learning_rate": 1e-3, "head_learning_rate": 1e-2,
                             "num_threads": 1, **overrides})
    return fine_tune(TINY_TEXTS, TINY_LABELS, model_dir, out, config)


# ---------------------------------------------------------------------------------------------- tiny model
def test_tuning_writes_a_loadable_safetensors_model_and_a_report(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    report = tune_tiny(tiny_model_dir, out)

    names = {p.name for p in out.iterdir()}
    assert "model.safetensors" in names and "config.json" in names and REPORT_FILE in names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))]
    assert read_report(out) == json.loads(json.dumps(report))
    assert report["labels"] == ["order_status", "refund_status"]
    assert report["examples"] == len(TINY_TEXTS)
    assert report["data_sha256"] == data_digest(TINY_TEXTS, TINY_LABELS)
    assert report["optimizer_steps"] == 20 * 2
    assert [entry["epoch"] for entry in report["history"]] == list(range(1, 21))
    # the featurizer's loader reads it like any model directory, with the base model's width
    assert embed(out, ["where is my order"]).shape == (1, 32)
    assert resolve_model_path(str(out)) == out.resolve()


def test_tuning_learns_the_intents(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    report = tune_tiny(tiny_model_dir, out)
    history = report["history"]
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["train_accuracy"] == 1.0
    assert class_margin(embed(out, TINY_TEXTS), TINY_LABELS) > class_margin(
        embed(tiny_model_dir, TINY_TEXTS), TINY_LABELS
    )


def test_tuning_is_reproducible_with_a_seed(tiny_model_dir: Path, tmp_path: Path) -> None:
    first = tune_tiny(tiny_model_dir, tmp_path / "a", epochs=2)
    second = tune_tiny(tiny_model_dir, tmp_path / "b", epochs=2)
    assert [h["loss"] for h in first["history"]] == [h["loss"] for h in second["history"]]
    np.testing.assert_allclose(embed(tmp_path / "a", TINY_TEXTS), embed(tmp_path / "b", TINY_TEXTS), atol=1e-6)


def test_failed_save_keeps_the_previous_model(tiny_model_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "tuned"
    tune_tiny(tiny_model_dir, out, epochs=1)
    before = (out / "model.safetensors").read_bytes()

    import transformers

    def broken_save(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", broken_save)
    with pytest.raises(OSError, match="disk full"):
        tune_tiny(tiny_model_dir, out, epochs=1, seed=7)
    assert (out / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tuned"]  # no staging directory left behind


@pytest.mark.parametrize(
    "texts, labels, config, message",
    [
        (["a", "b"], ["x"], TuningConfig(), "2 texts but 1 labels"),
        (["a", "b"], ["x", "x"], TuningConfig(), "at least 2 different labels"),
        (["a", "b"], ["x", "y"], TuningConfig(epochs=0), "invalid epochs"),
        (["a", "b"], ["x", "y"], TuningConfig(warmup_fraction=1.0), "invalid warmup_fraction"),
        (["a", "b"], ["x", "y"], TuningConfig(max_length=4), "invalid max_length"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(tiny_model_dir: Path, tmp_path: Path, texts: List[str],
                                                   labels: List[str], config: TuningConfig, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fine_tune(texts, labels, tiny_model_dir, tmp_path / "out", config)
    assert not (tmp_path / "out").exists()


def test_the_report_records_the_pooling_and_older_reports_stay_valid(tiny_model_dir: Path,
                                                                     tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    config = TuningConfig(epochs=1, batch_size=4, num_threads=1)
    report = fine_tune(TINY_TEXTS, TINY_LABELS, tiny_model_dir, out, config)
    assert report["pooling"] == {"mode": "mean", "normalize": True} == dataclasses.asdict(POOLING)
    assert POOLING == SentencePooling()
    assert is_up_to_date(out, TINY_TEXTS, TINY_LABELS, config, tiny_model_dir)
    # a tuning.json written before the pooling was recorded is still read as up to date
    older = {key: value for key, value in read_report(out).items() if key != "pooling"}
    (out / REPORT_FILE).write_text(json.dumps(older), encoding="utf-8")
    assert is_up_to_date(out, TINY_TEXTS, TINY_LABELS, config, tiny_model_dir)


def test_the_tuned_embedding_is_the_featurizers_pooling(tiny_model_dir: Path) -> None:
    """What the head trains on is `pool_sentences` with the default pooling, as `embed` computes it here."""
    import torch

    loaded = load_model(tiny_model_dir.resolve())
    batch = loaded.tokenizer(TINY_TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = loaded.model(**batch).last_hidden_state
    pooled = pool_sentences(hidden, batch["attention_mask"], POOLING).numpy()
    np.testing.assert_allclose(pooled, embed(tiny_model_dir, TINY_TEXTS), atol=1e-6)


# ---------------------------------------------------------------------------------------------- data
def test_read_nlu_examples_resolves_entity_annotations(tmp_path: Path) -> None:
    nlu = tmp_path / "nlu.yml"
    nlu.write_text(
        'version: "3.1"\nnlu:\n- intent: order_status\n  examples: |\n    - where is order [10045](order_number)\n'
        "    - status of my order\n- intent: greet\n  examples: |\n    - hi\n",
        encoding="utf-8",
    )
    texts, intents = read_nlu_examples([nlu])
    assert sorted(zip(texts, intents)) == [("hi", "greet"), ("status of my order", "order_status"),
                                           ("where is order 10045", "order_status")]
    with pytest.raises(FileNotFoundError):
        read_nlu_examples([tmp_path / "missing.yml"])


def test_project_data_has_enough_examples_per_intent_to_tune() -> None:
    texts, intents = read_nlu_examples([PROJECT_ROOT / "data/nlu.yml", PROJECT_ROOT / "data/sentiment.yml"])
    counts = {intent: intents.count(intent) for intent in set(intents)}
    assert len(counts) >= 10
    assert min(counts.values()) >= 5, {k: v for k, v in counts.items() if v < 5}


# ---------------------------------------------------------------------------------------------- real weights
def test_real_minilm_tuning_pulls_confusable_intents_apart(tmp_path: Path) -> None:
    """The shipped all-MiniLM-L6-v2, two intents that share most words: one short tuning run separates them."""
    orders = ["where is my order", "my order has not arrived", "track my order please", "when will my order come",
              "has my order shipped yet", "order still not here", "status of my order", "is my order on its way"]
    refunds = ["where is my refund", "my refund has not arrived", "track my refund please",
               "when will my refund come", "has my refund been sent yet", "refund still not here",
               "status of my refund", "is my refund on its way"]
    texts, labels = orders + refunds, ["order_status"] * 8 + ["refund_status"] * 8
    base = resolve_model_path(None)
    out = tmp_path / "tuned"
    report = fine_tune(texts, labels, base, out,
                       TuningConfig(epochs=3, batch_size=8, learning_rate=1e-4, num_threads=1))
    assert report["history"][-1]["loss"] < report["history"][0]["loss"]
    before, after = class_margin(embed(base, texts), labels), class_margin(embed(out, texts), labels)
    assert after > before + 0.05, (before, after)
    assert embed(out, ["hello"]).shape == (1, 384)
