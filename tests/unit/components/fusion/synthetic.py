"""Tiny synthetic messages and training data for the fusion classifier tests (no featurizer models loaded).

Every message gets hand-made sentence features: dense TEXT `(1, 16)`, sparse TEXT `(1, 40)` (two
"featurizers", so their concatenation is tested), dense `image` `(1, 12)`. Each intent and each sentiment has
its own direction in every space, so a tiny network separates them within a few epochs.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import scipy.sparse
from rasa.shared.nlu.constants import INTENT, METADATA, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.keys import IMAGE, SENTIMENT, SENTIMENT_LABELS
from components.fusion.features import FeatureReader, TrainingSet, training_set
from components.fusion.network import Architecture, FusionNetwork
from components.fusion_classifier import MultimodalFusionClassifier

INTENTS = ["greet", "track_order", "complaint"]
SENTIMENTS = list(SENTIMENT_LABELS)
DENSE, SPARSE_A, SPARSE_B, IMAGE_DIMS = 16, 25, 15, 12

RNG = np.random.default_rng(7)
DENSE_CENTRES = RNG.normal(size=(len(INTENTS), DENSE))
IMAGE_CENTRES = RNG.normal(size=(len(INTENTS), IMAGE_DIMS))
SENTIMENT_CENTRES = RNG.normal(size=(len(SENTIMENTS), DENSE)) * 0.8


def make_message(
    intent: Optional[str],
    sentiment: Optional[str] = None,
    *,
    seed: int = 0,
    text: str = "some words",
    with_dense: bool = True,
    with_sparse: bool = True,
    with_image: bool = False,
    metadata_scope: str = "example",
    **data: Any,
) -> Message:
    """A message whose features encode `intent` (and `sentiment`, in the dense text space) plus noise."""
    rng = np.random.default_rng(seed)
    message = Message(data={TEXT: text, **data})
    if intent:
        message.set(INTENT, intent)
    if sentiment:
        meta = {SENTIMENT: sentiment}
        message.set(METADATA, {metadata_scope: meta} if metadata_scope != "top" else meta)
    k = INTENTS.index(intent) if intent else int(rng.integers(len(INTENTS)))
    s = SENTIMENTS.index(sentiment.lower()) if sentiment else 1
    if with_dense:
        dense = DENSE_CENTRES[k] + SENTIMENT_CENTRES[s] + rng.normal(scale=0.3, size=DENSE)
        message.add_features(Features(dense[None].astype(np.float32), "sentence", TEXT, "dense_text"))
    if with_sparse:
        a = np.zeros((1, SPARSE_A), dtype=np.float32)
        a[0, [k * 5, k * 5 + 1, int(rng.integers(15, SPARSE_A))]] = 1.0
        b = np.zeros((1, SPARSE_B), dtype=np.float32)
        b[0, [s * 4, int(rng.integers(12, SPARSE_B))]] = 2.0
        message.add_features(Features(scipy.sparse.coo_matrix(a), "sentence", TEXT, "cv_word"))
        message.add_features(Features(scipy.sparse.coo_matrix(b), "sentence", TEXT, "cv_char"))
    if with_image:
        image = IMAGE_CENTRES[k] + rng.normal(scale=0.3, size=IMAGE_DIMS)
        message.add_features(Features(image[None].astype(np.float32), "sentence", IMAGE, "image_feat"))
    return message


def copy_message(message: Message) -> Message:
    """A copy with the same data and features, so two components can each write their outputs."""
    return Message(data=dict(message.data), features=list(message.features))


def training_data(n_per_intent: int = 30, with_image: bool = False, label_every: int = 2) -> TrainingData:
    """Intent examples; every `label_every`-th also carries a sentiment label (the rest have none)."""
    examples = []
    for i in range(n_per_intent * len(INTENTS)):
        intent = INTENTS[i % len(INTENTS)]
        sentiment = SENTIMENTS[(i // len(INTENTS)) % len(SENTIMENTS)] if i % label_every == 0 else None
        examples.append(make_message(intent, sentiment, seed=i, with_image=with_image and i % 2 == 0))
    return TrainingData(examples)


def counts_only_message(intent: Optional[str], seed: int) -> Message:
    """Dense text features that are pure noise; only the sparse counts tell the intent."""
    rng = np.random.default_rng(seed)
    k = INTENTS.index(intent) if intent else 0
    message = Message(data={TEXT: "words"})
    if intent:
        message.set(INTENT, intent)
    noise = rng.normal(size=(1, DENSE)).astype(np.float32)
    message.add_features(Features(noise, "sentence", TEXT, "dense_text"))
    counts = np.zeros((1, SPARSE_A), dtype=np.float32)
    counts[0, [k * 5, k * 5 + 1, int(rng.integers(15, SPARSE_A))]] = 1.0
    message.add_features(Features(scipy.sparse.coo_matrix(counts), "sentence", TEXT, "cv_word"))
    return message


#: The component's default config with a short training.
CONFIG = {**MultimodalFusionClassifier.get_default_config(), "epochs": 6, "batch_size": 16}
#: A small network: wide path, counts through the wide path only.
SMALL_ARCHITECTURE = Architecture(
    embedding_dimension=8, hidden_layer_sizes=(16,), dropout=0.5, wide_path=True,
    trunk_branches=("text_dense", "image"),
)


def labelled_examples(n_per_intent: int = 8) -> Tuple[TrainingSet, Dict[str, int]]:
    """`training_data(n_per_intent, with_image=True)` read as a training set, and the input widths."""
    examples = training_data(n_per_intent, with_image=True).training_examples
    result, dims = training_set(examples, FeatureReader.from_config(CONFIG), SENTIMENTS, SENTIMENT)
    assert result is not None
    return result, dims


def network_builder(
    examples: Tuple[TrainingSet, Dict[str, int]], architecture: Architecture = SMALL_ARCHITECTURE
) -> Callable[[], FusionNetwork]:
    """Builds fresh networks for `examples` (see `labelled_examples`)."""
    result, dims = examples
    return lambda: FusionNetwork(dims, len(result.intents), len(result.sentiment_labels), architecture)
