"""components.fusion.inference: the batched forward pass."""
from __future__ import annotations

import pytest
import torch

from assistant.keys import SENTIMENT
from components.fusion.features import FeatureReader, training_set
from components.fusion.inference import predict_logits
from components.fusion.network import FusionNetwork
from tests.unit.components.fusion.synthetic import (
    CONFIG,
    SENTIMENTS,
    SMALL_ARCHITECTURE,
    labelled_examples,
    make_message,
    network_builder,
)


@pytest.fixture(scope="module")
def examples():
    return labelled_examples()


def test_predict_logits_is_the_same_in_any_batch_size_and_keeps_no_graph(examples):
    result, _ = examples
    network = network_builder(examples)().eval()
    small, large = predict_logits(network, result.data, 3), predict_logits(network, result.data, 1000)
    assert torch.allclose(small[0], large[0], atol=1e-6) and torch.allclose(small[1], large[1], atol=1e-6)
    assert small[0].shape == (len(result.data), len(result.intents)) and not small[0].requires_grad


def test_predict_logits_without_an_intent_head():
    reader = FeatureReader.from_config(CONFIG)
    messages = [make_message(None, SENTIMENTS[i % 3], seed=i) for i in range(6)]
    result, dims = training_set(messages, reader, SENTIMENTS, SENTIMENT)
    network = FusionNetwork(dims, 0, len(SENTIMENTS), SMALL_ARCHITECTURE).eval()
    intent, sentiment = predict_logits(network, result.data, 4)
    assert intent is None and sentiment.shape == (6, len(SENTIMENTS))
