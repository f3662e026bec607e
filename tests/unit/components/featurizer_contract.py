"""A reusable contract that every dense featurizer of this project must pass.

How to use it: subclass `FeaturizerContract` in a `test_*.py` module and provide the fixtures marked
"must override" below. Everything else has a default that fits a non-trainable Rasa featurizer.

```python
class TestMyFeaturizer(FeaturizerContract):
    @pytest.fixture
    def featurizer_class(self):
        return MyFeaturizer

    @pytest.fixture
    def featurizer_config(self, tiny_model_dir):      # only what differs from get_default_config()
        return {"model_path": str(tiny_model_dir)}

    @pytest.fixture
    def attribute(self):
        return "image"

    @pytest.fixture
    def expected_dims(self):
        return 1280

    @pytest.fixture
    def feature_types(self):                          # this featurizer emits no sequence features
        return (FEATURE_TYPE_SENTENCE,)

    @pytest.fixture
    def message_with_input(self):
        return Message(data={"text": "", "metadata": {...}})

    @pytest.fixture
    def message_without_input(self):
        return Message(data={"text": "hello"})
```

What the contract checks:
- the class is a registered MESSAGE_FEATURIZER and its default config validates;
- dense features of the expected kinds, `float32`, finite, `(n_rows, expected_dims)` with one row per token
  for sequence features and one row for sentence features, tagged with the component's name as origin;
- no features for a message without input (for `process` and `process_training_data`);
- features that other featurizers added before are kept untouched;
- `process_training_data` and `process` give the same features;
- a featurizer rebuilt the way Rasa rebuilds it for inference (`create` from the same config for non-trainable
  components, `train` + `load` through the model storage for trainable ones) gives the same features;
- a batch mixing messages with and without input works, and batching does not change any message's features.

Fixtures are re-used from `tests/conftest.py`: `model_storage`, `execution_context`.
Messages from fixtures are deep-copied before every use, so fixtures may return one shared instance.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type

import numpy as np
import pytest

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, FEATURE_TYPE_SEQUENCE
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

# Tolerances. Rebuilding the same model must give the same numbers; batching (padding) may move the last bits.
SAME_MODEL_ATOL = 1e-6
BATCHING_ATOL = 1e-5
BATCHING_RTOL = 1e-4

PREVIOUS_ORIGIN = "previous_featurizer"
PREVIOUS_DIMS = 7

FeaturizerFactory = Callable[[Optional[Dict[str, Any]]], GraphComponent]


def fresh(message: Message) -> Message:
    """A deep copy of `message`, so that one test's features never leak into another's input."""
    return copy.deepcopy(message)


class FeaturizerContract:
    """Base class for featurizer tests; see the module docstring. Not collected by pytest on its own."""

    # ------------------------------------------------------------------ must override
    @pytest.fixture
    def featurizer_class(self) -> Type[GraphComponent]:
        """The component class under test."""
        raise NotImplementedError("override the `featurizer_class` fixture")

    @pytest.fixture
    def attribute(self) -> str:
        """The message attribute the features describe (`"text"`, `"image"`, ...)."""
        raise NotImplementedError("override the `attribute` fixture")

    @pytest.fixture
    def expected_dims(self) -> int:
        """The feature width (number of columns) the featurizer emits with `featurizer_config`."""
        raise NotImplementedError("override the `expected_dims` fixture")

    @pytest.fixture
    def message_with_input(self) -> Message:
        """A message the featurizer must add features to (tokenized already, if it needs tokens)."""
        raise NotImplementedError("override the `message_with_input` fixture")

    @pytest.fixture
    def message_without_input(self) -> Message:
        """A message the featurizer must leave without features (e.g. empty text, no image)."""
        raise NotImplementedError("override the `message_without_input` fixture")

    # ------------------------------------------------------------------ may override
    @pytest.fixture
    def featurizer_config(self) -> Dict[str, Any]:
        """Config keys that differ from `get_default_config()` in the tests (e.g. a tiny model's path)."""
        return {}

    @pytest.fixture
    def other_messages_with_input(self, message_with_input: Message) -> List[Message]:
        """More messages with input, different from `message_with_input`, for the batch tests.

        They must differ in content (Rasa's `TrainingData` drops duplicate messages).
        """
        return []

    @pytest.fixture
    def feature_types(self) -> Tuple[str, ...]:
        """Which feature kinds the featurizer emits for `attribute`."""
        return (FEATURE_TYPE_SEQUENCE, FEATURE_TYPE_SENTENCE)

    @pytest.fixture
    def expected_sequence_length(self, attribute: str) -> Callable[[Message], int]:
        """Number of sequence-feature rows expected for a message; default: its tokens for `attribute`."""

        def length(message: Message) -> int:
            tokens_key = TOKENS_NAMES.get(attribute)
            return len(message.get(tokens_key) or []) if tokens_key else 1

        return length

    @pytest.fixture
    def node_name(self) -> str:
        """The graph node name Rasa would give the component; it becomes the features' origin."""
        return "featurizer_under_test"

    @pytest.fixture
    def expected_origin(self, node_name: str) -> str:
        """The origin the added features must carry (the node name, unless the config sets an alias)."""
        return node_name

    @pytest.fixture
    def resource(self, node_name: str) -> Resource:
        """The resource the component is created with (and persists to, if trainable)."""
        return Resource(node_name)

    @pytest.fixture
    def component_execution_context(
        self, execution_context: ExecutionContext, node_name: str
    ) -> ExecutionContext:
        """The shared execution context with the node name set, as a `GraphNode` does."""
        return dataclasses.replace(execution_context, node_name=node_name)

    @pytest.fixture
    def full_config(
        self, featurizer_class: Type[GraphComponent], featurizer_config: Dict[str, Any]
    ) -> Callable[[Optional[Dict[str, Any]]], Dict[str, Any]]:
        """Merges defaults, `featurizer_config` and per-test overrides, as Rasa does before `create`."""

        def merge(overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
            return {**featurizer_class.get_default_config(), **featurizer_config, **(overrides or {})}

        return merge

    @pytest.fixture
    def create_featurizer(
        self,
        featurizer_class: Type[GraphComponent],
        full_config: Callable[[Optional[Dict[str, Any]]], Dict[str, Any]],
        model_storage: ModelStorage,
        resource: Resource,
        component_execution_context: ExecutionContext,
    ) -> FeaturizerFactory:
        """`create_featurizer(config_overrides=None)` → a component built with `featurizer_class.create`."""

        def create(overrides: Optional[Dict[str, Any]] = None) -> GraphComponent:
            return featurizer_class.create(
                full_config(overrides), model_storage, resource, component_execution_context
            )

        return create

    @pytest.fixture
    def training_data_for_persistence(
        self, message_with_input: Message, other_messages_with_input: List[Message]
    ) -> TrainingData:
        """What a trainable featurizer is trained on before the save→load test."""
        return TrainingData([fresh(m) for m in [message_with_input, *other_messages_with_input]])

    @pytest.fixture
    def rebuild_featurizer(
        self,
        featurizer_class: Type[GraphComponent],
        full_config: Callable[[Optional[Dict[str, Any]]], Dict[str, Any]],
        create_featurizer: FeaturizerFactory,
        model_storage: ModelStorage,
        resource: Resource,
        component_execution_context: ExecutionContext,
        training_data_for_persistence: TrainingData,
    ) -> Callable[[GraphComponent], GraphComponent]:
        """`rebuild_featurizer(trained)` → the component as Rasa rebuilds it for inference.

        Non-trainable components are created again from the same config (Rasa calls `create`, not `load`,
        for them); trainable ones are trained, persisted to `model_storage` and `load`-ed from it.
        """
        registered = DefaultV1Recipe._registered_components.get(featurizer_class.__name__)

        def rebuild(featurizer: GraphComponent) -> GraphComponent:
            if registered is None or not registered.is_trainable:
                return create_featurizer(None)
            featurizer.train(training_data_for_persistence)  # type: ignore[attr-defined]
            return featurizer_class.load(
                full_config(None), model_storage, resource, component_execution_context
            )

        return rebuild

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def features_from(message: Message, attribute: str, origin: str) -> Dict[str, Features]:
        """This featurizer's dense features for `attribute`, keyed by feature type."""
        found: Dict[str, Features] = {}
        for feature in message.features:
            if feature.attribute == attribute and feature.origin == origin:
                assert feature.type not in found, f"two {feature.type} features from {origin}"
                found[feature.type] = feature
        return found

    def assert_same_features(
        self,
        first: Message,
        second: Message,
        attribute: str,
        origin: str,
        atol: float = SAME_MODEL_ATOL,
        rtol: float = 0.0,
    ) -> None:
        a = self.features_from(first, attribute, origin)
        b = self.features_from(second, attribute, origin)
        assert a.keys() == b.keys()
        for kind in a:
            np.testing.assert_allclose(a[kind].features, b[kind].features, atol=atol, rtol=rtol)

    # ------------------------------------------------------------------ the contract
    def test_registered_as_message_featurizer(self, featurizer_class: Type[GraphComponent]) -> None:
        registered = DefaultV1Recipe._registered_components.get(featurizer_class.__name__)
        assert registered is not None, "register the class with @DefaultV1Recipe.register"
        assert DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER in registered.types
        assert issubclass(featurizer_class, GraphComponent)

    def test_default_config_validates(
        self,
        featurizer_class: Type[GraphComponent],
        full_config: Callable[[Optional[Dict[str, Any]]], Dict[str, Any]],
    ) -> None:
        assert isinstance(featurizer_class.get_default_config(), dict)
        validate = getattr(featurizer_class, "validate_config", None)
        if validate is not None:
            validate(full_config(None))

    def test_features_have_expected_shapes_and_dtype(
        self,
        create_featurizer: FeaturizerFactory,
        message_with_input: Message,
        attribute: str,
        expected_dims: int,
        feature_types: Sequence[str],
        expected_sequence_length: Callable[[Message], int],
        expected_origin: str,
    ) -> None:
        message = fresh(message_with_input)
        [processed] = create_featurizer(None).process([message])

        features = self.features_from(processed, attribute, expected_origin)
        assert set(features) == set(feature_types)
        for kind, feature in features.items():
            matrix = feature.features
            assert feature.is_dense()
            assert isinstance(matrix, np.ndarray)
            assert matrix.dtype == np.float32
            assert np.isfinite(matrix).all()
            rows = expected_sequence_length(processed) if kind == FEATURE_TYPE_SEQUENCE else 1
            assert matrix.shape == (rows, expected_dims)

    def test_no_features_without_input(
        self,
        create_featurizer: FeaturizerFactory,
        message_without_input: Message,
        attribute: str,
        expected_origin: str,
    ) -> None:
        featurizer = create_featurizer(None)
        [processed] = featurizer.process([fresh(message_without_input)])
        assert not self.features_from(processed, attribute, expected_origin)

        data = featurizer.process_training_data(TrainingData([fresh(message_without_input)]))
        assert len(data.training_examples) == 1
        for example in data.training_examples:
            assert not self.features_from(example, attribute, expected_origin)

    def test_existing_features_are_kept(
        self,
        create_featurizer: FeaturizerFactory,
        message_with_input: Message,
        attribute: str,
        expected_origin: str,
        feature_types: Sequence[str],
    ) -> None:
        message = fresh(message_with_input)
        previous = np.arange(PREVIOUS_DIMS, dtype=np.float32).reshape(1, PREVIOUS_DIMS)
        message.add_features(Features(previous.copy(), FEATURE_TYPE_SENTENCE, attribute, PREVIOUS_ORIGIN))

        [processed] = create_featurizer(None).process([message])

        kept = self.features_from(processed, attribute, PREVIOUS_ORIGIN)
        assert list(kept) == [FEATURE_TYPE_SENTENCE]
        np.testing.assert_array_equal(kept[FEATURE_TYPE_SENTENCE].features, previous)
        assert set(self.features_from(processed, attribute, expected_origin)) == set(feature_types)

    def test_process_training_data_and_process_agree(
        self,
        create_featurizer: FeaturizerFactory,
        message_with_input: Message,
        message_without_input: Message,
        other_messages_with_input: List[Message],
        attribute: str,
        expected_origin: str,
    ) -> None:
        originals = [message_with_input, message_without_input, *other_messages_with_input]
        featurizer = create_featurizer(None)

        training_data = TrainingData([fresh(m) for m in originals])
        returned = featurizer.process_training_data(training_data)
        assert returned is training_data or isinstance(returned, TrainingData)
        assert len(returned.training_examples) == len(originals)

        for trained, original in zip(returned.training_examples, originals):
            [inferred] = featurizer.process([fresh(original)])
            self.assert_same_features(
                trained, inferred, attribute, expected_origin, atol=BATCHING_ATOL, rtol=BATCHING_RTOL
            )

    def test_rebuilt_featurizer_gives_same_features(
        self,
        create_featurizer: FeaturizerFactory,
        rebuild_featurizer: Callable[[GraphComponent], GraphComponent],
        message_with_input: Message,
        attribute: str,
        expected_origin: str,
    ) -> None:
        featurizer = create_featurizer(None)
        rebuilt = rebuild_featurizer(featurizer)

        [before] = featurizer.process([fresh(message_with_input)])
        [after] = rebuilt.process([fresh(message_with_input)])
        assert self.features_from(before, attribute, expected_origin)
        self.assert_same_features(before, after, attribute, expected_origin)

    def test_mixed_batch(
        self,
        create_featurizer: FeaturizerFactory,
        message_with_input: Message,
        message_without_input: Message,
        other_messages_with_input: List[Message],
        attribute: str,
        expected_origin: str,
        feature_types: Sequence[str],
    ) -> None:
        featurizer = create_featurizer(None)
        with_input = [message_with_input, *other_messages_with_input]
        batch = [fresh(message_without_input)]
        for message in with_input:
            batch += [fresh(message), fresh(message_without_input)]

        processed = featurizer.process(batch)
        assert len(processed) == len(batch)
        assert all(a is b for a, b in zip(processed, batch)), "process returns the same messages, in order"

        for position, message in enumerate(processed):
            features = self.features_from(message, attribute, expected_origin)
            if position % 2 == 0:
                assert not features
            else:
                assert set(features) == set(feature_types)
                [alone] = featurizer.process([fresh(with_input[position // 2])])
                self.assert_same_features(
                    message, alone, attribute, expected_origin, atol=BATCHING_ATOL, rtol=BATCHING_RTOL
                )
