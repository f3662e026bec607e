"""MultimodalFusionClassifier as a Rasa graph component, on tiny synthetic features (`fusion/synthetic.py`).

The parts (feature reading, network, training loop, stored files) have their own tests in
tests/unit/components/fusion/; these tests train, predict, persist and load through the component.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, METADATA, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.keys import IMAGE, SENTIMENT, TRANSCRIPT
from assistant.configuration import defaults_of
from components.fusion import MODALITIES
from components.fusion.features import sentiment_label_of
from components.fusion.persistence import META_FILE, WEIGHTS_FILE
from components.fusion_classifier import FusionClassifierConfig, MultimodalFusionClassifier
from tests.unit.components.fusion.synthetic import (
    DENSE,
    IMAGE_DIMS,
    INTENTS,
    SENTIMENTS,
    SPARSE_A,
    SPARSE_B,
    copy_message,
    counts_only_message,
    make_message,
    training_data,
)


@pytest.fixture
def make_classifier(model_storage, execution_context: ExecutionContext):
    context = dataclasses.replace(execution_context, node_name="fusion")

    def make(**overrides: Any) -> MultimodalFusionClassifier:
        config = {**MultimodalFusionClassifier.get_default_config(), "epochs": 40, "batch_size": 16,
                  "embedding_dimension": 16, "hidden_layer_sizes": [32], **overrides}
        return MultimodalFusionClassifier.create(config, model_storage, Resource("fusion"), context)

    return make


def load_again(classifier: MultimodalFusionClassifier, model_storage, execution_context):
    context = dataclasses.replace(execution_context, node_name="fusion")
    return MultimodalFusionClassifier.load(
        classifier.component_config, model_storage, Resource("fusion"), context
    )


def predict(classifier: MultimodalFusionClassifier, messages: List[Message]) -> List[Dict[str, Any]]:
    classifier.process(messages)
    return [m.as_dict(only_output_properties=True) for m in messages]


def same_ranking(a: List[Dict[str, Any]], b: List[Dict[str, Any]], atol: float = 1e-6) -> bool:
    """The same intents in the same order with confidences equal up to float32 rounding.

    Rows of one batch may take different BLAS code paths, so bit-for-bit equality is not promised.
    """
    return [r["name"] for r in a] == [r["name"] for r in b] and np.allclose(
        [r["confidence"] for r in a], [r["confidence"] for r in b], rtol=0.0, atol=atol
    )


def same_sentiment(a: Dict[str, Any], b: Dict[str, Any], atol: float = 1e-6) -> bool:
    return a["label"] == b["label"] and abs(a["confidence"] - b["confidence"]) <= atol


# ----------------------------------------------------------------------------------------------------- wiring
def test_registered_as_trainable_intent_classifier():
    registered = DefaultV1Recipe._registered_components[MultimodalFusionClassifier.__name__]
    assert DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER in registered.types
    assert registered.is_trainable


def test_default_config_is_the_config_model_and_validates():
    defaults = MultimodalFusionClassifier.get_default_config()
    # every key a field, every field a key, with the same defaults
    assert defaults == defaults_of(FusionClassifierConfig)
    for key, field in FusionClassifierConfig.__fields__.items():
        assert field.field_info.extra.get("valid"), f"`{key}` has no valid-values text"
    MultimodalFusionClassifier.validate_config(defaults)
    MultimodalFusionClassifier.validate_config({})  # missing keys take the defaults


@pytest.mark.parametrize(
    "key, value",
    [
        ("epochs", 0),
        ("epochs", 2.5),
        ("batch_size", True),
        ("dropout", 1.0),
        ("modality_dropout", -0.1),
        ("validation_split", 1.0),
        ("hidden_layer_sizes", [0]),
        ("hidden_layer_sizes", 128),
        ("learning_rate", 0),
        ("intent_loss_weight", -1),
        ("input_normalization", "zscore"),
        ("sentiment_labels", ["negative"]),
        ("sentiment_labels", ["Negative", "positive"]),
        ("sentiment_labels", ["neg", "neg"]),
        ("featurizers", "CountVectorsFeaturizer"),
        ("early_stopping_patience", 0),
        ("early_stopping_metric", "f1"),
        ("intent_head", "softmax"),
        ("cosine_scale", 0),
        ("label_smoothing", 1.0),
        ("label_smoothing", -0.1),
        ("refit_on_all_data", "yes"),
        ("ranking_length", -1),
        ("image_attribute", ""),
        ("random_seed", "42"),
        ("wide_path", "yes"),
        ("wide_learning_rate", 0),
        ("trunk_branches", "text_dense"),
        ("trunk_branches", ["text_dense", "audio"]),
        ("trunk_branches", ["image", "image"]),
    ],
)
def test_bad_config_names_the_key(key, value):
    config = {**MultimodalFusionClassifier.get_default_config(), key: value}
    with pytest.raises(InvalidConfigException, match=f"`{key}`"):
        MultimodalFusionClassifier.validate_config(config)


def test_unknown_config_key_is_refused():
    config = {**MultimodalFusionClassifier.get_default_config(), "epoch": 3}
    with pytest.raises(InvalidConfigException, match="'epoch'") as error:
        MultimodalFusionClassifier.validate_config(config)
    assert "valid keys are " + ", ".join(sorted(config.keys() - {"epoch"})) in str(error.value)


def test_a_bad_value_is_refused_with_the_valid_values():
    config = {**MultimodalFusionClassifier.get_default_config(), "intent_head": "softmax"}
    with pytest.raises(InvalidConfigException) as error:
        MultimodalFusionClassifier(config, None, Resource("fusion"), None)
    assert str(error.value) == (
        "MultimodalFusionClassifier: `intent_head` must be 'linear' or 'cosine', got 'softmax'."
    )


def test_both_loss_weights_zero_is_refused():
    config = {**MultimodalFusionClassifier.get_default_config(), "intent_loss_weight": 0}
    config["sentiment_loss_weight"] = 0
    with pytest.raises(InvalidConfigException, match="intent_loss_weight"):
        MultimodalFusionClassifier.validate_config(config)


# --------------------------------------------------------------------------------------------------- training
def test_train_then_process_predicts_intent_and_sentiment(make_classifier):
    classifier = make_classifier()
    classifier.train(training_data())
    tests = [make_message(INTENTS[i % 3], SENTIMENTS[(i // 3) % 3], seed=1000 + i) for i in range(18)]
    expected = [(m.get(INTENT), sentiment_label_of(m)) for m in tests]
    for m in tests:  # the labels must not leak into prediction
        m.set(INTENT, None)
        m.set(METADATA, None)
    outputs = predict(classifier, tests)
    intents = [o[INTENT]["name"] for o in outputs]
    sentiments = [o[SENTIMENT]["label"] for o in outputs]
    assert intents == [e[0] for e in expected]
    assert np.mean([s == e[1] for s, e in zip(sentiments, expected)]) >= 0.85
    first = outputs[0]
    assert 0.0 <= first[INTENT]["confidence"] <= 1.0
    assert [r["name"] for r in first[INTENT_RANKING_KEY]][0] == first[INTENT]["name"]
    assert set(first[SENTIMENT]) == {"label", "confidence"}
    assert classifier.intents == sorted(INTENTS)
    report = classifier.training_report
    assert report["validation_examples"] > 0 and report["val_intent_accuracy"] >= 0.9


def test_ranking_length_limits_the_ranking(make_classifier):
    classifier = make_classifier(ranking_length=2, epochs=5)
    classifier.train(training_data(10))
    (output,) = predict(classifier, [make_message(None, seed=5)])
    assert len(output[INTENT_RANKING_KEY]) == 2
    confidences = [r["confidence"] for r in output[INTENT_RANKING_KEY]]
    assert confidences == sorted(confidences, reverse=True)


def test_examples_without_sentiment_do_not_break_training(make_classifier):
    classifier = make_classifier(epochs=5)
    classifier.train(training_data(10, label_every=10_000))  # only example 0 has a sentiment
    classifier.train(training_data(10, label_every=1))
    no_sentiment = make_classifier(epochs=3)
    data = TrainingData([make_message(INTENTS[i % 3], seed=i) for i in range(12)])
    no_sentiment.train(data)
    (output,) = predict(no_sentiment, [make_message(None, seed=99)])
    assert output[INTENT]["name"] in INTENTS
    assert SENTIMENT not in output  # an untrained sentiment head predicts nothing


def test_sentiment_only_examples_train_the_sentiment_head(make_classifier):
    data = TrainingData([make_message(None, SENTIMENTS[i % 3], seed=i) for i in range(60)])
    classifier = make_classifier()
    classifier.train(data)
    tests = [make_message(None, SENTIMENTS[i % 3], seed=500 + i) for i in range(9)]
    expected = [sentiment_label_of(m) for m in tests]
    outputs = predict(classifier, tests)
    assert np.mean([o[SENTIMENT]["label"] == e for o, e in zip(outputs, expected)]) >= 0.8
    assert all(o[INTENT]["name"] is None for o in outputs)  # no intent head without intents


def test_training_is_deterministic_with_the_seed(make_classifier):
    data = training_data(12)
    first, second = make_classifier(epochs=6), make_classifier(epochs=6)
    first.train(data)
    second.train(data)
    tests = [make_message(None, seed=300 + i) for i in range(6)]
    a = predict(first, [copy_message(m) for m in tests])
    b = predict(second, tests)
    assert [o[INTENT_RANKING_KEY] for o in a] == [o[INTENT_RANKING_KEY] for o in b]
    assert [o[SENTIMENT] for o in a] == [o[SENTIMENT] for o in b]
    other = make_classifier(epochs=6, random_seed=3)
    other.train(data)
    c = predict(other, [copy_message(m) for m in tests])
    assert [o[INTENT_RANKING_KEY] for o in c] != [o[INTENT_RANKING_KEY] for o in b]


# ------------------------------------------------------------------------------------------------- modalities
def test_message_without_features_gets_no_intent(make_classifier):
    classifier = make_classifier(epochs=3)
    classifier.train(training_data(8))
    blank = make_message(None, text="   ")  # features present, but the text is blank: nothing to classify
    bare = Message(data={TEXT: "hello"})  # no features at all
    for output in predict(classifier, [blank, bare]):
        assert output[INTENT] == {"name": None, "confidence": 0.0}
        assert output[INTENT_RANKING_KEY] == []
        assert SENTIMENT not in output


def test_single_text_branch_is_enough(make_classifier):
    classifier = make_classifier()
    classifier.train(training_data())
    dense_only = make_message("complaint", seed=2024, with_sparse=False)
    sparse_only = make_message("complaint", seed=2025, with_dense=False)
    outputs = predict(classifier, [dense_only, sparse_only])
    assert [o[INTENT]["name"] for o in outputs] == ["complaint", "complaint"]


def test_image_seen_in_training_is_used(make_classifier):
    classifier = make_classifier()
    classifier.train(training_data(with_image=True))
    assert classifier._meta["seen"]["image"] and classifier._meta["dims"]["image"] == IMAGE_DIMS
    photo_only = make_message(
        "track_order", seed=77, text="", with_dense=False, with_sparse=False, with_image=True
    )
    (output,) = predict(classifier, [photo_only])
    assert output[INTENT]["name"] == "track_order"


def test_image_never_seen_in_training_is_ignored(make_classifier):
    classifier = make_classifier(epochs=10)
    classifier.train(training_data(12))
    assert classifier._meta["dims"]["image"] == 0
    text = make_message("greet", seed=11)
    with_photo = copy_message(text)
    with_photo.add_features(Features(np.ones((1, IMAGE_DIMS), np.float32), "sentence", IMAGE, "image_feat"))
    photo_only = make_message(None, text="", with_dense=False, with_sparse=False, with_image=True)
    a, b, c = predict(classifier, [text, with_photo, photo_only])
    assert same_ranking(a[INTENT_RANKING_KEY], b[INTENT_RANKING_KEY])  # the caption decides
    assert c[INTENT]["name"] is None  # a photo alone is left to the AttachmentRouter


def test_unseen_audio_indicator_changes_nothing(make_classifier):
    classifier = make_classifier(epochs=5)
    classifier.train(training_data(8))
    plain = make_message(None, seed=21)
    voice = Message(data={**plain.data, TRANSCRIPT: {"text": "some words", "confidence": 0.9}},
                    features=list(plain.features))
    a, b = predict(classifier, [plain, voice])
    assert same_ranking(a[INTENT_RANKING_KEY], b[INTENT_RANKING_KEY])
    assert same_sentiment(a[SENTIMENT], b[SENTIMENT])


def test_batched_and_single_predictions_agree(make_classifier):
    classifier = make_classifier(epochs=5, batch_size=4)
    classifier.train(training_data(8))
    tests = [make_message(None, seed=400 + i) for i in range(10)]
    copies = [copy_message(m) for m in tests]
    batched = predict(classifier, tests)
    single = [predict(classifier, [m])[0] for m in copies]
    for x, y in zip(batched, single):
        assert x[INTENT]["name"] == y[INTENT]["name"]
        assert x[INTENT]["confidence"] == pytest.approx(y[INTENT]["confidence"], abs=1e-6)


def test_feature_width_change_is_reported(make_classifier):
    from rasa.shared.exceptions import RasaException

    classifier = make_classifier(epochs=2)
    classifier.train(training_data(5))
    odd = Message(data={TEXT: "hi"})
    odd.add_features(Features(np.ones((1, DENSE + 1), np.float32), "sentence", TEXT, "dense_text"))
    with pytest.raises(RasaException, match="train the model again"):
        classifier.process([odd])


# ------------------------------------------------------------------------------------------------ persistence
def test_save_and_load_give_identical_outputs(make_classifier, model_storage, execution_context):
    classifier = make_classifier(epochs=8)
    classifier.train(training_data(10, with_image=True))
    loaded = load_again(classifier, model_storage, execution_context)
    tests = [make_message(None, seed=600 + i, with_image=i % 2 == 0) for i in range(8)]
    copies = [copy_message(m) for m in tests]
    assert predict(classifier, tests) == predict(loaded, copies)
    assert loaded.intents == classifier.intents and loaded.training_report == classifier.training_report


@pytest.mark.parametrize("metric", ["accuracy", "loss"])
def test_early_stopping_keeps_the_best_epoch_of_its_metric(make_classifier, metric):
    classifier = make_classifier(epochs=30, early_stopping_patience=3, early_stopping_metric=metric,
                                 validation_split=0.3)
    classifier.train(training_data(12))
    report = classifier.training_report
    assert 1 <= report["best_epoch"] <= report["epochs_run"] <= 30
    assert report["epochs_run"] - report["best_epoch"] <= 3  # stopped `patience` epochs after the best


def test_refit_on_all_data_trains_the_best_epoch_count_on_every_example(make_classifier):
    classifier = make_classifier(epochs=12, early_stopping_patience=4, validation_split=0.25,
                                 refit_on_all_data=True)
    data = training_data(12)
    classifier.train(data)
    report = classifier.training_report
    assert report["refit_epochs"] == report["best_epoch"]
    assert report["refit_examples"] == report["train_examples"] + report["validation_examples"]
    outputs = predict(classifier, [make_message(None, seed=900 + i) for i in range(20)])
    assert all(o[INTENT]["name"] in INTENTS for o in outputs)


def test_separate_sentiment_path_trains_saves_and_loads(make_classifier, model_storage, execution_context):
    classifier = make_classifier(epochs=8, sentiment_hidden_layer_sizes=[24])
    classifier.train(training_data(10))
    names = {name for name, _ in classifier._network.named_parameters()}
    assert "sentiment_trunk.0.weight" in names  # the sentiment head reads its own hidden layer
    assert tuple(classifier._network.sentiment_head.weight.shape) == (len(SENTIMENTS), 24)
    loaded = load_again(classifier, model_storage, execution_context)
    tests = [make_message(None, seed=700 + i) for i in range(6)]
    copies = [copy_message(m) for m in tests]
    assert predict(classifier, tests) == predict(loaded, copies)


def test_cosine_intent_head_learns_saves_and_loads(make_classifier, model_storage, execution_context):
    import torch

    classifier = make_classifier(intent_head="cosine", cosine_scale=10.0)
    classifier.train(training_data())
    head = classifier._network.intent_head
    assert tuple(head.weight.shape) == (len(INTENTS), 32)
    hidden = torch.randn(5, 32) * 100.0  # any hidden vector: the logits are cosines times the scale
    with torch.no_grad():
        assert float(head(hidden).abs().max()) <= 10.0 + 1e-4
    tests = [make_message(INTENTS[i % 3], seed=900 + i) for i in range(9)]
    expected = [m.get(INTENT) for m in tests]
    for m in tests:
        m.set(INTENT, None)
    copies = [copy_message(m) for m in tests]
    outputs = predict(classifier, tests)
    assert [o[INTENT]["name"] for o in outputs] == expected
    loaded = load_again(classifier, model_storage, execution_context)
    assert type(loaded._network.intent_head).__name__ == "CosineHead"
    reloaded = predict(loaded, copies)
    assert all(same_ranking(a[INTENT_RANKING_KEY], b[INTENT_RANKING_KEY]) for a, b in zip(outputs, reloaded))


def test_persisted_files_are_safetensors_and_json_only(make_classifier, model_storage, execution_context):
    from safetensors import safe_open

    classifier = make_classifier(epochs=2)
    classifier.train(training_data(5))
    with model_storage.read_from(Resource("fusion")) as directory:
        files = sorted(p.name for p in Path(directory).rglob("*") if p.is_file())
        assert files == sorted([WEIGHTS_FILE, META_FILE])
        weights = (Path(directory) / WEIGHTS_FILE).read_bytes()
        meta = json.loads((Path(directory) / META_FILE).read_text())
        with safe_open(str(Path(directory) / WEIGHTS_FILE), framework="pt") as handle:
            assert "sentiment_head.weight" in set(handle.keys())
    assert not weights.startswith(b"\x80")  # a pickle stream starts with the PROTO opcode
    assert b"PK\x03\x04" not in weights[:4]  # nor is it a torch.save zip archive
    assert meta["intents"] == sorted(INTENTS) and meta["sentiment_labels"] == SENTIMENTS
    assert meta["dims"] == {"text_dense": DENSE, "text_sparse": SPARSE_A + SPARSE_B, "image": 0}
    assert meta["config"]["epochs"] == 2


def test_untrained_component_loads_and_predicts_nothing(make_classifier, model_storage, execution_context):
    classifier = make_classifier()
    classifier.train(TrainingData([Message(data={TEXT: "no labels"})]))
    loaded = load_again(classifier, model_storage, execution_context)
    (output,) = predict(loaded, [make_message(None)])
    assert output[INTENT] == {"name": None, "confidence": 0.0}


# ----------------------------------------------------------------------------------------------- wide path
def test_without_the_wide_path_every_branch_must_reach_the_trunk():
    config = {**MultimodalFusionClassifier.get_default_config(), "wide_path": False}
    with pytest.raises(InvalidConfigException, match="`trunk_branches`"):
        MultimodalFusionClassifier.validate_config({**config, "trunk_branches": ["text_dense", "image"]})
    every_branch = ["text_dense", "text_sparse", "image"]
    MultimodalFusionClassifier.validate_config({**config, "trunk_branches": every_branch})


def test_counts_reach_the_heads_through_the_wide_path_only(make_classifier):
    classifier = make_classifier(trunk_branches=["text_dense", "image"], epochs=30, validation_split=0.0)
    data = TrainingData([counts_only_message(INTENTS[i % 3], seed=i) for i in range(60)])
    classifier.train(data)
    names = {name for name, _ in classifier._network.named_parameters()}
    assert "wide.sparse" in names and "projections.sparse_weight" not in names  # no projection of the counts
    tests = [counts_only_message(INTENTS[i % 3], seed=5000 + i) for i in range(12)]
    expected = [m.get(INTENT) for m in tests]
    outputs = predict(classifier, [Message(data={TEXT: "words"}, features=list(m.features)) for m in tests])
    assert [o[INTENT]["name"] for o in outputs] == expected


def test_wide_path_never_weights_a_modality_missing_from_training(make_classifier):
    classifier = make_classifier(epochs=6)
    classifier.train(training_data(8))  # text only: no image branch, no audio
    network = classifier._network
    assert "image" not in network.wide.dense  # no input, no weights
    audio = MODALITIES.index("audio")
    assert float(network.wide.indicators.weight.detach()[:, audio].abs().max()) == 0.0
    assert float(network.wide.indicators.weight.detach()[:, 0].abs().max()) > 0.0  # has_text was trained


def test_model_saved_before_the_wide_path_still_loads(make_classifier, model_storage, execution_context):
    every_branch = ["text_dense", "text_sparse", "image"]
    classifier = make_classifier(epochs=4, wide_path=False, trunk_branches=every_branch)
    classifier.train(training_data(6))
    with model_storage.read_from(Resource("fusion")) as directory:
        meta_path = Path(directory) / META_FILE
        meta = json.loads(meta_path.read_text())
        for key in ("wide_path", "trunk_branches"):  # what metadata of that time lacked
            del meta["architecture"][key]
        meta_path.write_text(json.dumps(meta))
    loaded = load_again(classifier, model_storage, execution_context)
    tests = [make_message(None, seed=800 + i) for i in range(5)]
    copies = [copy_message(m) for m in tests]
    assert predict(classifier, tests) == predict(loaded, copies)


def test_importing_the_component_does_not_import_torch():
    """Rasa imports every component of config.yml; torch loads only to train, predict or load."""
    import subprocess
    import sys

    from assistant.paths import PROJECT_ROOT

    code = "import sys, components.fusion_classifier; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, timeout=120).returncode == 0
