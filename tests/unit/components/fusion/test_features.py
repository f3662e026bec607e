"""components.fusion.features: sentence features of Rasa messages as batch arrays, and the training labels."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg
import torch
from rasa.shared.exceptions import RasaException
from rasa.shared.nlu.constants import ACTION_NAME, INTENT, METADATA, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message

from assistant.keys import IMAGE, SENTIMENT, TRANSCRIPT
from components.fusion import BRANCHES, MODALITIES
from components.fusion.features import (
    ALL_SEEN,
    FeatureReader,
    l2_rows_dense,
    l2_rows_sparse,
    sentiment_label_of,
    to_torch,
    training_set,
)
from components.fusion_classifier import MultimodalFusionClassifier
from tests.unit.components.fusion.synthetic import (
    DENSE,
    IMAGE_DIMS,
    INTENTS,
    SENTIMENTS,
    SPARSE_A,
    SPARSE_B,
    make_message,
)

READER = FeatureReader.from_config(MultimodalFusionClassifier.get_default_config())
DIMS = {"text_dense": DENSE, "text_sparse": SPARSE_A + SPARSE_B, "image": IMAGE_DIMS}
TEXT_COL, IMAGE_COL, AUDIO_COL = (MODALITIES.index(m) for m in ("text", "image", "audio"))


# --------------------------------------------------------------------------------------------------- metadata
@pytest.mark.parametrize("scope", ["example", "intent", "top"])
def test_sentiment_label_is_read_from_every_metadata_scope(scope):
    assert sentiment_label_of(make_message("greet", "Positive", metadata_scope=scope)) == "positive"


def test_example_metadata_wins_over_intent_metadata():
    metadata = {"intent": {SENTIMENT: "neutral"}, "example": {SENTIMENT: "negative"}}
    message = Message(data={TEXT: "x", METADATA: metadata})
    assert sentiment_label_of(message) == "negative"


@pytest.mark.parametrize("metadata", [None, "negative", {"example": {SENTIMENT: "  "}}, {SENTIMENT: 3}])
def test_no_sentiment_label_without_a_non_blank_string(metadata):
    assert sentiment_label_of(Message(data={TEXT: "x", METADATA: metadata})) is None


def test_rasa_yaml_metadata_reaches_the_training_message(tmp_path: Path):
    from rasa.shared.nlu.training_data.loading import load_data

    path = tmp_path / "nlu.yml"
    path.write_text(
        'version: "3.1"\nnlu:\n- intent: complaint\n  metadata:\n    sentiment: negative\n  examples: |\n'
        "    - the eggs were broken\n- intent: thank_you\n  examples:\n"
        "  - text: thanks but the milk was sour\n"
        "    metadata:\n      sentiment: negative\n  - text: thanks a million\n"
    )
    data = load_data(str(path))
    labels = {m.get(TEXT): sentiment_label_of(m) for m in data.training_examples}
    assert labels == {"the eggs were broken": "negative", "thanks but the milk was sour": "negative",
                      "thanks a million": None}


# ---------------------------------------------------------------------------------------------- batch arrays
def test_input_dims_come_from_the_first_message_with_each_branch():
    text_only = make_message("greet", seed=1)
    photo_only = make_message(None, text="", with_dense=False, with_sparse=False, with_image=True)
    assert READER.input_dims([text_only]) == {**DIMS, "image": 0}
    assert READER.input_dims([text_only, photo_only]) == DIMS
    assert READER.input_dims([photo_only]) == {"text_dense": 0, "text_sparse": 0, "image": IMAGE_DIMS}


def test_collect_shapes_dtypes_masks_and_indicators():
    messages = [
        make_message("greet", seed=1),
        make_message("greet", seed=2, with_image=True, **{TRANSCRIPT: {"text": "some words"}}),
        make_message(None, text="", with_dense=False, with_sparse=False, with_image=True),
        make_message(None, text="   "),  # features, but a blank text: nothing to read
    ]
    batch = READER.collect(messages, DIMS, ALL_SEEN)
    assert len(batch) == 4
    assert batch.text_dense.shape == (4, DENSE) and batch.text_dense.dtype == np.float32
    assert batch.image.shape == (4, IMAGE_DIMS) and batch.image.dtype == np.float32
    assert scipy.sparse.isspmatrix_csr(batch.text_sparse)
    assert batch.text_sparse.shape == (4, SPARSE_A + SPARSE_B)
    assert batch.text_sparse.dtype == np.float32
    assert batch.present.dtype == bool and batch.indicators.dtype == np.float32
    assert batch.present.tolist() == [
        [True, True, False], [True, True, True], [False, False, True], [False, False, False]
    ]
    assert batch.indicators.tolist() == [[1, 0, 0], [1, 1, 1], [0, 1, 0], [0, 0, 0]]
    assert batch.usable.tolist() == [True, True, True, False]
    sub = batch.rows(np.array([2, 0]))
    assert sub.present.tolist() == [batch.present[2].tolist(), batch.present[0].tolist()]


def test_l2_normalisation_gives_unit_rows_and_keeps_absent_rows_zero():
    messages = [make_message("greet", seed=1, with_image=True), make_message(None, text="")]
    batch = READER.collect(messages, DIMS, ALL_SEEN)
    assert np.linalg.norm(batch.text_dense, axis=1) == pytest.approx([1.0, 0.0], abs=1e-6)
    assert np.linalg.norm(batch.image, axis=1) == pytest.approx([1.0, 0.0], abs=1e-6)
    assert scipy.sparse.linalg.norm(batch.text_sparse, axis=1) == pytest.approx([1.0, 0.0], abs=1e-6)
    raw = FeatureReader(None, IMAGE, "none").collect(messages, DIMS, ALL_SEEN)
    assert raw.text_dense[0] == pytest.approx(messages[0].get_dense_features(TEXT)[1].features[0])
    counts = scipy.sparse.csr_matrix(np.array([[2.0, 0.0, -2.0]], dtype=np.float32))
    expected = np.array([np.log1p(2.0), 0.0, -np.log1p(2.0)]) / (np.sqrt(2) * np.log1p(2.0))
    assert l2_rows_sparse(counts).toarray()[0] == pytest.approx(expected, abs=1e-6)
    assert l2_rows_dense(np.array([[3.0, 4.0]])).tolist() == [[pytest.approx(0.6), pytest.approx(0.8)]]


def test_a_modality_unseen_in_training_counts_as_absent():
    message = make_message("greet", seed=1, with_image=True, **{TRANSCRIPT: {"text": "some words"}})
    seen = {"text": True, "image": False, "audio": False}
    batch = READER.collect([message], DIMS, seen)
    assert batch.present[0].tolist() == [True, True, False]
    assert batch.indicators[0].tolist() == [1.0, 0.0, 0.0]
    assert not batch.image.any()


def test_only_the_named_featurizers_are_read():
    message = make_message("greet", seed=1)
    reader = FeatureReader(["cv_word"], IMAGE, "none")
    dims = reader.input_dims([message])
    assert dims == {"text_dense": 0, "text_sparse": SPARSE_A, "image": 0}


def test_a_changed_feature_width_is_reported():
    odd = Message(data={TEXT: "hi"})
    odd.add_features(Features(np.ones((1, DENSE + 1), np.float32), "sentence", TEXT, "dense_text"))
    message = "'text_dense' features have 17 dimensions.*train the model again"
    with pytest.raises(RasaException, match=message):
        READER.collect([odd], DIMS, ALL_SEEN)


def test_to_torch_gives_the_network_inputs():
    batch = READER.collect([make_message("greet", seed=1), make_message(None, text="")], DIMS, ALL_SEEN)
    inputs, present, indicators = to_torch(batch)
    assert set(inputs) == set(BRANCHES)
    assert inputs["text_sparse"].is_sparse and inputs["text_sparse"].shape == (2, SPARSE_A + SPARSE_B)
    assert torch.equal(inputs["text_sparse"].to_dense(), torch.from_numpy(batch.text_sparse.toarray()))
    assert inputs["text_dense"].dtype == torch.float32 and inputs["image"].shape == (2, IMAGE_DIMS)
    assert present.dtype == torch.float32 and present.tolist() == [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    assert indicators.dtype == torch.float32


# ---------------------------------------------------------------------------------------------- training set
def test_training_set_keeps_labelled_usable_examples_with_their_targets(caplog):
    story_message = Message(data={ACTION_NAME: "utter_greet"})
    unlabelled = make_message(None, seed=3)
    no_features = Message(data={TEXT: "hi", INTENT: "greet"})
    odd_label = make_message("complaint", seed=4)
    odd_label.set(METADATA, {"example": {SENTIMENT: "Furious"}})
    sentiment_only = make_message(None, "negative", seed=5)
    examples = [
        make_message("greet", "positive", seed=1), story_message, unlabelled, no_features, odd_label,
        sentiment_only, make_message("track_order", seed=2, **{TRANSCRIPT: {"text": "where"}}),
    ]
    with caplog.at_level(logging.INFO):
        result, dims = training_set(examples, READER, SENTIMENTS, SENTIMENT)
    assert "ignored sentiment labels outside" in caplog.text and "'furious': 1" in caplog.text
    assert "skipped 1 labelled examples without features" in caplog.text
    assert dims == {**DIMS, "image": 0}
    assert result.intents == ["complaint", "greet", "track_order"]
    assert result.intent_targets.tolist() == [1, 0, -1, 2]
    assert result.sentiment_targets.tolist() == [SENTIMENTS.index("positive"), -1, 0, -1]
    assert result.strata == ["greet\x00positive", "complaint\x00", "\x00negative", "track_order\x00"]
    assert result.seen == {"text": True, "image": False, "audio": True}
    assert result.sentiment_trained
    assert result.counts() == {
        "examples": 4, "intent_examples": 3, "sentiment_examples": 2,
        "sentiment_counts": {"negative": 1, "neutral": 0, "positive": 1},
    }


def test_unseen_audio_is_switched_off_in_the_training_inputs():
    messages = [make_message(intent, seed=n) for n, intent in enumerate(INTENTS)]
    result, _ = training_set(messages, READER, SENTIMENTS, SENTIMENT)
    assert result.seen["audio"] is False and not result.data.indicators[:, AUDIO_COL].any()
    assert not result.sentiment_trained


def test_no_training_set_without_labelled_features():
    result, _ = training_set([Message(data={TEXT: "no labels"})], READER, SENTIMENTS, SENTIMENT)
    assert result is None
