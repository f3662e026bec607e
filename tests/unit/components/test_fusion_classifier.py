"""MultimodalFusionClassifier on tiny synthetic features (no featurizer models are loaded).

Every message gets hand-made sentence features: dense TEXT `(1, 16)`, sparse TEXT `(1, 40)` (two
"featurizers", so their concatenation is tested), dense `image` `(1, 12)`. Each intent and each sentiment has
its own direction in every space, so a tiny network separates them within a few epochs.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pytest
import scipy.sparse
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.fusion_classifier import (
    META_FILE,
    SENTIMENT,
    WEIGHTS_FILE,
    MultimodalFusionClassifier,
    masked_cross_entropy,
    sentiment_label_of,
    stratified_split,
)

INTENTS = ["greet", "track_order", "complaint"]
SENTIMENTS = ["negative", "neutral", "positive"]
DENSE, SPARSE_A, SPARSE_B, IMAGE = 16, 25, 15, 12

RNG = np.random.default_rng(7)
DENSE_CENTRES = RNG.normal(size=(len(INTENTS), DENSE))
IMAGE_CENTRES = RNG.normal(size=(len(INTENTS), IMAGE))
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
        message.set("metadata", {metadata_scope: meta} if metadata_scope != "top" else meta)
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
        image = IMAGE_CENTRES[k] + rng.normal(scale=0.3, size=IMAGE)
        message.add_features(Features(image[None].astype(np.float32), "sentence", "image", "image_feat"))
    return message


def copy_message(message: Message) -> Message:
    """A copy with the same data and features, so two components can each write their outputs."""
    return Message(data=dict(message.data), features=list(message.features))


def training_set(n_per_intent: int = 30, with_image: bool = False, label_every: int = 2) -> TrainingData:
    """Intent examples; every `label_every`-th also carries a sentiment label (the rest have none)."""
    examples = []
    for i in range(n_per_intent * len(INTENTS)):
        intent = INTENTS[i % len(INTENTS)]
        sentiment = SENTIMENTS[(i // len(INTENTS)) % len(SENTIMENTS)] if i % label_every == 0 else None
        examples.append(make_message(intent, sentiment, seed=i, with_image=with_image and i % 2 == 0))
    return TrainingData(examples)


@pytest.fixture
def model_storage(tmp_path: Path):
    """A `LocalModelStorage` whose directory exists (trainable components write into it)."""
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    path = tmp_path / "model-storage"
    path.mkdir()
    return LocalModelStorage(path)


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


def test_default_config_is_valid_and_documented():
    import inspect

    MultimodalFusionClassifier.validate_config(MultimodalFusionClassifier.get_default_config())
    source = inspect.getsource(MultimodalFusionClassifier.get_default_config)
    for key in MultimodalFusionClassifier.get_default_config():
        assert f'"{key}"' in source
    # one comment block per key
    assert source.count("#") >= len(MultimodalFusionClassifier.get_default_config())


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
    with pytest.raises(InvalidConfigException, match="'epoch'"):
        MultimodalFusionClassifier.validate_config(config)


def test_both_loss_weights_zero_is_refused():
    config = {**MultimodalFusionClassifier.get_default_config(), "intent_loss_weight": 0}
    config["sentiment_loss_weight"] = 0
    with pytest.raises(InvalidConfigException, match="intent_loss_weight"):
        MultimodalFusionClassifier.validate_config(config)


# --------------------------------------------------------------------------------------------------- metadata
@pytest.mark.parametrize("scope", ["example", "intent", "top"])
def test_sentiment_label_is_read_from_every_metadata_scope(scope):
    assert sentiment_label_of(make_message("greet", "Positive", metadata_scope=scope)) == "positive"


def test_example_metadata_wins_over_intent_metadata():
    metadata = {"intent": {SENTIMENT: "neutral"}, "example": {SENTIMENT: "negative"}}
    message = Message(data={TEXT: "x", "metadata": metadata})
    assert sentiment_label_of(message) == "negative"


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


# --------------------------------------------------------------------------------------------------- training
def test_train_then_process_predicts_intent_and_sentiment(make_classifier):
    classifier = make_classifier()
    classifier.train(training_set())
    tests = [make_message(INTENTS[i % 3], SENTIMENTS[(i // 3) % 3], seed=1000 + i) for i in range(18)]
    expected = [(m.get(INTENT), sentiment_label_of(m)) for m in tests]
    for m in tests:  # the labels must not leak into prediction
        m.set(INTENT, None)
        m.set("metadata", None)
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
    classifier.train(training_set(10))
    (output,) = predict(classifier, [make_message(None, seed=5)])
    assert len(output[INTENT_RANKING_KEY]) == 2
    confidences = [r["confidence"] for r in output[INTENT_RANKING_KEY]]
    assert confidences == sorted(confidences, reverse=True)


def test_examples_without_sentiment_do_not_break_training(make_classifier):
    classifier = make_classifier(epochs=5)
    classifier.train(training_set(10, label_every=10_000))  # only example 0 has a sentiment
    classifier.train(training_set(10, label_every=1))
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


def test_masked_cross_entropy_ignores_unlabelled_rows():
    import torch

    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]], requires_grad=True)
    targets = torch.tensor([0, -1, -1])
    loss = masked_cross_entropy(logits, targets)
    expected = torch.nn.functional.cross_entropy(logits[:1], targets[:1])
    assert torch.isclose(loss, expected)
    loss.backward()
    assert torch.all(logits.grad[1:] == 0)
    none = masked_cross_entropy(logits, torch.tensor([-1, -1, -1]))
    assert float(none) == 0.0 and none.requires_grad


def test_modality_dropout_hides_whole_modalities_and_never_everything():
    import torch

    from components.fusion_classifier import _drop_modalities

    generator = torch.Generator().manual_seed(0)
    text_only = torch.tensor([[1.0, 1.0, 0.0]] * 200)
    assert torch.equal(_drop_modalities(text_only, 0.5, generator), text_only)
    both = torch.tensor([[1.0, 1.0, 1.0]] * 400)
    dropped = _drop_modalities(both, 0.5, generator)
    rows = {tuple(row.tolist()) for row in dropped}
    assert rows == {(1.0, 1.0, 1.0), (1.0, 1.0, 0.0), (0.0, 0.0, 1.0)}  # text branches go together


def test_stratified_split_holds_out_every_label():
    strata = ["a"] * 20 + ["b"] * 10 + ["c"]
    train, val = stratified_split(strata, 0.2, seed=1)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(strata)))
    held = [strata[i] for i in val]
    assert held.count("a") == 4 and held.count("b") == 2 and "c" not in held
    assert stratified_split(strata, 0.0, seed=1)[1].size == 0


def test_training_is_deterministic_with_the_seed(make_classifier):
    data = training_set(12)
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
    classifier.train(training_set(8))
    blank = make_message(None, text="   ")  # features present, but the text is blank: nothing to classify
    bare = Message(data={TEXT: "hello"})  # no features at all
    for output in predict(classifier, [blank, bare]):
        assert output[INTENT] == {"name": None, "confidence": 0.0}
        assert output[INTENT_RANKING_KEY] == []
        assert SENTIMENT not in output


def test_single_text_branch_is_enough(make_classifier):
    classifier = make_classifier()
    classifier.train(training_set())
    dense_only = make_message("complaint", seed=2024, with_sparse=False)
    sparse_only = make_message("complaint", seed=2025, with_dense=False)
    outputs = predict(classifier, [dense_only, sparse_only])
    assert [o[INTENT]["name"] for o in outputs] == ["complaint", "complaint"]


def test_image_seen_in_training_is_used(make_classifier):
    classifier = make_classifier()
    classifier.train(training_set(with_image=True))
    assert classifier._meta["seen"]["image"] and classifier._meta["dims"]["image"] == IMAGE
    photo_only = make_message(
        "track_order", seed=77, text="", with_dense=False, with_sparse=False, with_image=True
    )
    (output,) = predict(classifier, [photo_only])
    assert output[INTENT]["name"] == "track_order"


def test_image_never_seen_in_training_is_ignored(make_classifier):
    classifier = make_classifier(epochs=10)
    classifier.train(training_set(12))
    assert classifier._meta["dims"]["image"] == 0
    text = make_message("greet", seed=11)
    with_photo = copy_message(text)
    with_photo.add_features(Features(np.ones((1, IMAGE), np.float32), "sentence", "image", "image_feat"))
    photo_only = make_message(None, text="", with_dense=False, with_sparse=False, with_image=True)
    a, b, c = predict(classifier, [text, with_photo, photo_only])
    assert same_ranking(a[INTENT_RANKING_KEY], b[INTENT_RANKING_KEY])  # the caption decides
    assert c[INTENT]["name"] is None  # a photo alone is left to the AttachmentRouter


def test_unseen_audio_indicator_changes_nothing(make_classifier):
    classifier = make_classifier(epochs=5)
    classifier.train(training_set(8))
    plain = make_message(None, seed=21)
    voice = Message(data={**plain.data, "transcript": {"text": "some words", "confidence": 0.9}},
                    features=list(plain.features))
    a, b = predict(classifier, [plain, voice])
    assert same_ranking(a[INTENT_RANKING_KEY], b[INTENT_RANKING_KEY])
    assert same_sentiment(a[SENTIMENT], b[SENTIMENT])


def test_batched_and_single_predictions_agree(make_classifier):
    classifier = make_classifier(epochs=5, batch_size=4)
    classifier.train(training_set(8))
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
    classifier.train(training_set(5))
    odd = Message(data={TEXT: "hi"})
    odd.add_features(Features(np.ones((1, DENSE + 1), np.float32), "sentence", TEXT, "dense_text"))
    with pytest.raises(RasaException, match="train the model again"):
        classifier.process([odd])


# ------------------------------------------------------------------------------------------------ persistence
def test_save_and_load_give_identical_outputs(make_classifier, model_storage, execution_context):
    classifier = make_classifier(epochs=8)
    classifier.train(training_set(10, with_image=True))
    loaded = load_again(classifier, model_storage, execution_context)
    tests = [make_message(None, seed=600 + i, with_image=i % 2 == 0) for i in range(8)]
    copies = [copy_message(m) for m in tests]
    assert predict(classifier, tests) == predict(loaded, copies)
    assert loaded.intents == classifier.intents and loaded.training_report == classifier.training_report


@pytest.mark.parametrize("metric", ["accuracy", "loss"])
def test_early_stopping_keeps_the_best_epoch_of_its_metric(make_classifier, metric):
    classifier = make_classifier(epochs=30, early_stopping_patience=3, early_stopping_metric=metric,
                                 validation_split=0.3)
    classifier.train(training_set(12))
    report = classifier.training_report
    assert 1 <= report["best_epoch"] <= report["epochs_run"] <= 30
    assert report["epochs_run"] - report["best_epoch"] <= 3  # stopped `patience` epochs after the best


def test_label_smoothing_spreads_the_target_mass():
    import torch

    logits = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    targets = torch.tensor([0, -1])
    plain = float(masked_cross_entropy(logits, targets))
    smoothed = float(masked_cross_entropy(logits, targets, 0.3))
    # the unlabelled row is ignored either way; smoothing penalises the over-confident logit
    assert smoothed > plain > 0
    expected = float(torch.nn.functional.cross_entropy(logits[:1], targets[:1], label_smoothing=0.3))
    assert smoothed == pytest.approx(expected)


def test_refit_on_all_data_trains_the_best_epoch_count_on_every_example(make_classifier):
    classifier = make_classifier(epochs=12, early_stopping_patience=4, validation_split=0.25,
                                 refit_on_all_data=True)
    data = training_set(12)
    classifier.train(data)
    report = classifier.training_report
    assert report["refit_epochs"] == report["best_epoch"]
    assert report["refit_examples"] == report["train_examples"] + report["validation_examples"]
    outputs = predict(classifier, [make_message(None, seed=900 + i) for i in range(20)])
    assert all(o[INTENT]["name"] in INTENTS for o in outputs)


def test_separate_sentiment_path_trains_saves_and_loads(make_classifier, model_storage, execution_context):
    classifier = make_classifier(epochs=8, sentiment_hidden_layer_sizes=[24])
    classifier.train(training_set(10))
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
    classifier.train(training_set())
    head = classifier._network.intent_head
    assert tuple(head.weight.shape) == (len(INTENTS), 32)
    hidden = torch.randn(5, 32) * 100.0  # any hidden vector: the logits are cosines times the scale
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
    classifier.train(training_set(5))
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
    MultimodalFusionClassifier.validate_config({**config, "trunk_branches": ["text_dense", "text_sparse", "image"]})


def counts_only_message(intent: Optional[str], seed: int) -> Message:
    """Dense text features that are pure noise; only the sparse counts tell the intent."""
    rng = np.random.default_rng(seed)
    k = INTENTS.index(intent) if intent else 0
    message = Message(data={TEXT: "words"})
    if intent:
        message.set(INTENT, intent)
    message.add_features(Features(rng.normal(size=(1, DENSE)).astype(np.float32), "sentence", TEXT, "dense_text"))
    counts = np.zeros((1, SPARSE_A), dtype=np.float32)
    counts[0, [k * 5, k * 5 + 1, int(rng.integers(15, SPARSE_A))]] = 1.0
    message.add_features(Features(scipy.sparse.coo_matrix(counts), "sentence", TEXT, "cv_word"))
    return message


def test_counts_reach_the_heads_through_the_wide_path_only(make_classifier):
    classifier = make_classifier(trunk_branches=["text_dense", "image"], epochs=30, validation_split=0.0)
    data = TrainingData([counts_only_message(INTENTS[i % 3], seed=i) for i in range(60)])
    classifier.train(data)
    names = {name for name, _ in classifier._network.named_parameters()}
    assert "wide_sparse" in names and "sparse_weight" not in names  # no projection of the counts
    tests = [counts_only_message(INTENTS[i % 3], seed=5000 + i) for i in range(12)]
    expected = [m.get(INTENT) for m in tests]
    outputs = predict(classifier, [Message(data={TEXT: "words"}, features=list(m.features)) for m in tests])
    assert [o[INTENT]["name"] for o in outputs] == expected


def test_wide_path_never_weights_a_modality_missing_from_training(make_classifier):
    classifier = make_classifier(epochs=6)
    classifier.train(training_set(8))  # text only: no image branch, no audio
    network = classifier._network
    assert "image" not in network.wide_dense  # no input, no weights
    from components.fusion_classifier import MODALITIES

    audio = MODALITIES.index("audio")
    assert float(network.wide_indicators.weight[:, audio].abs().max()) == 0.0
    assert float(network.wide_indicators.weight[:, 0].abs().max()) > 0.0  # has_text was trained


def test_model_saved_before_the_wide_path_still_loads(make_classifier, model_storage, execution_context):
    classifier = make_classifier(epochs=4, wide_path=False, trunk_branches=["text_dense", "text_sparse", "image"])
    classifier.train(training_set(6))
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
