"""`MultimodalFusionClassifier`: intent and sentiment of a message from its text, image and audio signals.

One small torch network reads what the featurizers put on the message and predicts two things at once:

- the intent (softmax over the intents of the training data), written as `intent` and `intent_ranking` exactly
  like DIET does, so FallbackClassifier, AttachmentRouter and the policies need no change;
- the sentiment (`negative` / `neutral` / `positive` by default), written as `sentiment: {"label",
  "confidence"}` into the parse result, where policies and actions read it (`UserUttered.parse_data`,
  `tracker.latest_message`).

Inputs per message: the dense and sparse TEXT sentence features, the image sentence feature and the
has_text / has_image / has_audio indicators (see `components.fusion.features`).

Training data: every NLU example with an intent, a sentiment label, or both. The sentiment label is read from
the example's metadata (`metadata: {sentiment: negative}` on an example or on its intent in Rasa NLU YAML;
Rasa exposes both as `message.get("metadata") == {"intent": {...}, "example": {...}}`, the example's value
wins); a top-level `{"sentiment": ...}` in a programmatically built message's metadata is accepted too. Each
head's cross-entropy is averaged over the examples that have its label only, so intent-only data
(data/nlu.yml) and sentiment-labelled data train their heads side by side; the loss is
`intent_loss_weight * CE(intent) + sentiment_loss_weight * CE(sentiment)`. (Rasa counts a text without an
intent as a story message, so sentiment-only examples are still written under some intent in YAML.)

This module is the Rasa graph component (registration, configuration, train / process / persist / load); the
feature reading, the network, running it, the training loop and the stored files live in `components.fusion`.
torch is imported only when the component trains, predicts or loads.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Text, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.featurizers.featurizer import Featurizer
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.keys import IMAGE, SENTIMENT, SENTIMENT_LABELS
from assistant.configuration import (
    Choice,
    ComponentConfig,
    ConfigError,
    Flag,
    Integer,
    Integers,
    Names,
    Number,
    TextValue,
    defaults_of,
    validate_config,
)
from components.fusion import (
    BRANCHES,
    EARLY_STOPPING_METRICS,
    IMAGE_BRANCH,
    INTENT_HEADS,
    NAME,
    NORMALIZATIONS,
    TEXT_DENSE,
    persistence,
)
from components.fusion.features import FeatureReader, training_set

if TYPE_CHECKING:  # hints only; Rasa never resolves these
    from components.fusion.network import FusionNetwork

logger = logging.getLogger(__name__)

_LAYERS = "a list of positive integers (units per layer), e.g. [256]"
_PROBABILITY = "a probability from 0 to below 1"
_FRACTION = "a fraction from 0 to below 1"
_LABELS = "a list of at least 2 distinct, lower-case, non-empty labels"


def _one_of(values: tuple) -> str:
    return " or ".join(map(repr, values)) if len(values) == 2 else "one of " + ", ".join(map(repr, values))


class FusionClassifierConfig(ComponentConfig):
    """The MultimodalFusionClassifier's config keys: defaults, valid values, and each key's meaning and unit
    in its comment (`MultimodalFusionClassifier.get_default_config` returns the defaults)."""

    #: Names (node names or `alias`) of the featurizers whose TEXT sentence features are used (list of str);
    #: [] uses every featurizer's, e.g. MiniLM + CountVectors word/char + regex.
    featurizers: Any = Names([], valid="a list of featurizer names ([] for all)")
    #: Message attribute that holds the image sentence feature (str; ImageFeaturizer writes "image").
    image_attribute: str = TextValue(IMAGE, valid="a non-empty string")
    #: Width of each input branch's projection and absent embedding (units).
    embedding_dimension: int = Integer(128, ge=1, valid="an integer >= 1")
    #: Input branches projected into the fused input of the hidden layers (list of "text_dense",
    #: "text_sparse", "image"). The count vectors' vocabulary is large: through a projection they over-fit
    #: within a few epochs, so by default they reach the heads through the wide path only.
    trunk_branches: Any = Names(
        [TEXT_DENSE, IMAGE_BRANCH],
        choices=BRANCHES,
        distinct=True,
        valid=f"a list of distinct branch names out of {', '.join(map(repr, BRANCHES))}",
    )
    #: Add a linear map from every branch's normalised input and the modality indicators straight to both
    #: heads' logits, next to the hidden layers (bool; "wide and deep", see `fusion.network`).
    wide_path: bool = Flag(True)
    #: Adam step size of the wide path (float > 0); its inputs have unit norm, so its weights must grow larger
    #: than the hidden layers' and it needs a larger step to get there in a few epochs.
    wide_learning_rate: float = Number(0.01, gt=0, valid="a positive number")
    #: Hidden layers after the fusion, shared by both heads (list of units per layer; [] feeds the heads
    #: directly).
    hidden_layer_sizes: Any = Integers([256], ge=1, valid=_LAYERS)
    #: Hidden layers of the sentiment head's own path from the fused input (list of units per layer); [] puts
    #: the sentiment head on the shared layers.
    sentiment_hidden_layer_sizes: Any = Integers([], ge=1, valid=_LAYERS)
    #: Intent head: "linear" (affine layer) or "cosine" (scaled cosine between the last hidden vector and a
    #: learned vector per intent; see `fusion.network.CosineHead`).
    intent_head: str = Choice("linear", *INTENT_HEADS, valid=_one_of(INTENT_HEADS))
    #: Scale of the cosine head's logits, i.e. its inverse softmax temperature (float > 0).
    cosine_scale: float = Number(20.0, gt=0, valid="a positive number")
    #: Dropout on the fused input and after each hidden layer (probability, 0..1 exclusive). With the wide
    #: path beside it the trunk over-fits first; 0.5 was best of 0.2 / 0.3 / 0.5 on BANKING77 (a split of its
    #: train part) and on the project's own data.
    dropout: float = Number(0.5, ge=0, lt=1, valid=_PROBABILITY)
    #: While training, each present modality of an example (text, image) is replaced by its absent embedding
    #: with this probability; one always stays (probability, 0..1 exclusive).
    modality_dropout: float = Number(0.1, ge=0, lt=1, valid=_PROBABILITY)
    #: Input scaling per message: "l2" divides dense features by their L2 norm and sparse counts are
    #: log(1 + count)-compressed, then L2-normalised; "none" passes features on as they come.
    input_normalization: str = Choice("l2", *NORMALIZATIONS, valid=_one_of(NORMALIZATIONS))
    #: Weight of the intent cross-entropy in the total loss (non-negative float, unitless).
    intent_loss_weight: float = Number(1.0, ge=0, valid="a non-negative number")
    #: Weight of the sentiment cross-entropy in the total loss (non-negative float, unitless).
    sentiment_loss_weight: float = Number(0.5, ge=0, valid="a non-negative number")
    #: Metadata key of an example's sentiment label (str); see `sentiment_label_of`.
    sentiment_key: str = TextValue(SENTIMENT, valid="a non-empty string")
    #: Sentiment classes of the sentiment head, in output order (list of ≥ 2 distinct lower-case str);
    #: training labels outside this list are ignored with a warning.
    sentiment_labels: Any = Names(list(SENTIMENT_LABELS), distinct=True, min_items=2, valid=_LABELS)
    #: Adam step size (float > 0).
    learning_rate: float = Number(0.001, gt=0, valid="a positive number")
    #: Adam L2 weight decay (float ≥ 0).
    weight_decay: float = Number(0.0, ge=0, valid="a non-negative number")
    #: Examples per mini-batch, in training and prediction (count).
    batch_size: int = Integer(64, ge=1, valid="an integer >= 1")
    #: Most passes over the training examples (count); early stopping may end training sooner.
    epochs: int = Integer(100, ge=1, valid="an integer >= 1")
    #: Share of the examples held out, stratified by label, for early stopping (fraction, 0 ≤ x < 1; 0 trains
    #: for all `epochs` without validation).
    validation_split: float = Number(0.1, ge=0, lt=1, valid=_FRACTION)
    #: Epochs without a better validation score before training stops (count ≥ 1).
    early_stopping_patience: int = Integer(10, ge=1, valid="an integer >= 1")
    #: What "better" means: "accuracy" = a higher validation accuracy (the heads' accuracies weighted like
    #: their losses), ties broken by a lower validation loss; "loss" = a lower validation loss. The loss
    #: minimum usually comes epochs before the accuracy stops rising.
    early_stopping_metric: str = Choice(
        "accuracy", *EARLY_STOPPING_METRICS, valid=_one_of(EARLY_STOPPING_METRICS)
    )
    #: Label smoothing of both cross-entropies while training (fraction of the target mass spread over all
    #: classes, 0 ≤ x < 1; Szegedy et al. 2016, "Rethinking the Inception Architecture").
    label_smoothing: float = Number(0.0, ge=0, lt=1, valid=_FRACTION)
    #: After early stopping picked the best epoch count on the validation split, train a fresh network on all
    #: examples (validation part included) for that many epochs (bool; doubles training time).
    refit_on_all_data: bool = Flag(False)
    #: Intents listed in `intent_ranking` (count; 0 lists all).
    ranking_length: int = Integer(10, ge=0, valid="an integer >= 0")
    #: Seed of python's `random`, numpy and torch: initialisation, split, shuffling, dropout (int).
    random_seed: int = Integer(42, valid="an integer")
    #: torch intra-op CPU threads while this component trains or predicts (count; the previous setting is
    #: restored afterwards); 0 leaves torch's setting. The network is small: one thread is usually fastest,
    #: and far faster than several on a busy machine.
    num_threads: int = Integer(1, ge=0, valid="an integer >= 0")

    def check(self) -> None:
        """Rules across keys: something to learn; every branch reaches a head; labels in lower case."""
        if self.intent_loss_weight == 0 and self.sentiment_loss_weight == 0:
            raise ConfigError(
                "intent_loss_weight", "positive when `sentiment_loss_weight` is 0 (nothing to learn)"
            )
        if not self.wide_path and set(self.trunk_branches) != set(BRANCHES):
            raise ConfigError(
                "trunk_branches", "every branch when `wide_path` is false (a branch would reach no head)"
            )
        if not all(label == label.strip().lower() for label in self.sentiment_labels):
            raise ConfigError("sentiment_labels", _LABELS)


# ------------------------------------------------------------------------------------------ component
@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class MultimodalFusionClassifier(GraphComponent, IntentClassifier):
    """Multi-task intent + sentiment classifier over text (dense + sparse), image and audio signals.

    Missing modalities: each input branch has a *learned "absent" embedding* that stands in for the branch's
    projection when the message lacks it (no image, blank text), and the three modality indicators are inputs
    too. A learned embedding is used rather than zeros + mask because zeros are a real input here: a blank
    text gets all-zero MiniLM features from TransformerTextFeaturizer, and a projection of zeros is its bias,
    shared with every real input; the absent embedding gives "nothing there" its own trained point, learned
    from exactly the examples that lack the branch. A modality that no training example had (photos and voice
    notes: data/*.yml is text only) is treated as absent at prediction time too, because its projection and
    indicator weights were never trained; a captioned photo is then classified from its caption, and a photo
    alone gets no intent (AttachmentRouter names it). `modality_dropout` hides present modalities at random
    while training multimodal data, so that each modality is also learned without the other. The wide path
    (`wide_path`, see `components.fusion.network`) reads every branch's input directly, with zeros where a
    branch is absent; the indicators carry "absent" there, and its weights for a never-seen modality stay
    zero.

    Training: Adam (the wide path with its own step size and no L2 penalty), mini-batches of `batch_size`,
    cross-entropy per head (optionally label-smoothed), a validation split stratified by (intent, sentiment
    label), early stopping after `early_stopping_patience` epochs without a better validation score
    (`early_stopping_metric`: accuracy with the loss as tie-break, or the loss; the best epoch's weights are
    kept), optionally a refit on all examples for the best epoch count (`refit_on_all_data`), explicit seeds
    (python, numpy, torch) and `num_threads` torch CPU threads.

    Output per message (`process`): `intent {"name", "confidence"}` and `intent_ranking` (top
    `ranking_length`, softmax probabilities), plus `sentiment {"label", "confidence"}` when the sentiment head
    was trained. A message without any usable input (blank text and no image) gets
    `intent {"name": None, "confidence": 0.0}` and an empty ranking, as DIET does, so FallbackClassifier and
    AttachmentRouter decide.

    Persistence (`model_storage.write_to`): the network's state_dict as safetensors
    (`fusion_classifier.safetensors`; no pickle) and `fusion_classifier.json` with the label maps, feature
    widths, modalities seen in training, architecture, config and a training report (epochs, validation
    accuracy).
    """

    @classmethod
    def required_components(cls) -> List[Type]:
        """Featurizers must run first: the classifier reads their sentence features."""
        return [Featurizer]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config: `FusionClassifierConfig`'s defaults (each key's meaning and unit
        is in its comment there; Rasa's base classes add no defaults)."""
        return defaults_of(FusionClassifierConfig)

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Checks every key of the config (`FusionClassifierConfig`); unknown keys (typos) are refused.

        Raises:
            InvalidConfigException: naming the key and its valid values.
        """
        validate_config(NAME, FusionClassifierConfig, config)

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        network: Optional["FusionNetwork"] = None,
        meta: Optional[Dict[Text, Any]] = None,
    ) -> None:
        """Validates the config; `network` and `meta` are given by `load` for a trained component.

        Raises:
            InvalidConfigException: for an invalid config.
        """
        self.validate_config(config)
        self.component_config = config
        self._model_storage = model_storage
        self._resource = resource
        self._execution_context = execution_context
        self._network = network
        self._meta: Dict[Text, Any] = meta or {}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "MultimodalFusionClassifier":
        """Creates a new, untrained component."""
        return cls(config, model_storage, resource, execution_context)

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages this component imports."""
        return ["torch", "safetensors"]

    # ------------------------------------------------------------------ properties
    @property
    def intents(self) -> List[Text]:
        """Intent labels in output order (empty before training)."""
        return list(self._meta.get("intents", []))

    @property
    def sentiment_labels(self) -> List[Text]:
        """Sentiment labels in output order, as trained (the config's before training)."""
        return list(self._meta.get("sentiment_labels", self.component_config["sentiment_labels"]))

    @property
    def training_report(self) -> Dict[Text, Any]:
        """What training measured: epochs run, best epoch, validation loss and accuracies, example counts."""
        return dict(self._meta.get("training", {}))

    # ------------------------------------------------------------------ training
    def train(self, training_data: TrainingData) -> Resource:
        """Trains the network on the NLU examples that have an intent and/or a sentiment label.

        Returns:
            The component's resource (persisted weights and metadata); nothing is persisted when no example
            has a label and usable features.
        """
        from assistant.torch_runtime import torch_threads
        from components.fusion.network import Architecture, FusionNetwork
        from components.fusion.training import TrainingSettings, train_network

        config = self.component_config
        with torch_threads(int(config["num_threads"])):
            examples, dims = training_set(
                training_data.training_examples,
                FeatureReader.from_config(config),
                list(config["sentiment_labels"]),
                config["sentiment_key"],
            )
            if examples is None:
                return self._resource
            architecture = Architecture.from_json(config)

            def build() -> FusionNetwork:
                n_intents, n_sentiments = len(examples.intents), len(examples.sentiment_labels)
                return FusionNetwork(dims, n_intents, n_sentiments, architecture)

            network, report = train_network(build, examples, TrainingSettings.from_config(config))
        report.update(examples.counts())
        self._network = network
        self._meta = {
            "format_version": persistence.FORMAT_VERSION,
            "intents": examples.intents,
            "sentiment_labels": examples.sentiment_labels,
            "sentiment_trained": examples.sentiment_trained,
            "dims": dims,
            "seen": examples.seen,
            "architecture": architecture.to_json(),
            "config": dict(config),
            "training": report,
        }
        logger.info(
            "%s trained: %d intents, sentiment %s, %d epochs (best %s), validation intent accuracy %s, "
            "sentiment accuracy %s.",
            NAME,
            len(examples.intents),
            "yes" if examples.sentiment_trained else "no",
            report["epochs_run"],
            report["best_epoch"],
            report.get("val_intent_accuracy"),
            report.get("val_sentiment_accuracy"),
        )
        self.persist()
        return self._resource

    # ------------------------------------------------------------------ prediction
    def process(self, messages: List[Message]) -> List[Message]:
        """Sets `intent`, `intent_ranking` and `sentiment` on each message (see the class docstring)."""
        if self._network is None or not messages:
            for message in messages:
                self._set_no_intent(message)
            return messages
        from assistant.torch_runtime import torch_threads
        from components.fusion.inference import predict_logits

        data = FeatureReader.from_config(self.component_config).collect(
            messages, self._meta["dims"], self._meta["seen"]
        )
        usable = data.usable
        rows = np.flatnonzero(usable)
        intent_probs = sentiment_probs = None
        if len(rows):
            with torch_threads(int(self.component_config["num_threads"])):
                batch_size = int(self.component_config["batch_size"])
                logits = predict_logits(self._network, data.rows(rows), batch_size)
            intent_probs = None if logits[0] is None else logits[0].softmax(dim=1).numpy()
            sentiment_probs = logits[1].softmax(dim=1).numpy()
        position = {row: i for i, row in enumerate(rows)}
        for index, message in enumerate(messages):
            if not usable[index]:
                self._set_no_intent(message)
                continue
            i = position[index]
            if intent_probs is None:
                self._set_no_intent(message)
            else:
                self._set_intent(message, intent_probs[i])
            if self._meta.get("sentiment_trained") and sentiment_probs is not None:
                best = int(np.argmax(sentiment_probs[i]))
                message.set(
                    SENTIMENT,
                    {"label": self.sentiment_labels[best], "confidence": float(sentiment_probs[i][best])},
                    add_to_output=True,
                )
        return messages

    @staticmethod
    def _set_no_intent(message: Message) -> None:
        message.set(INTENT, {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0}, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [], add_to_output=True)

    def _set_intent(self, message: Message, probabilities: np.ndarray) -> None:
        order = np.argsort(-probabilities, kind="stable")
        length = int(self.component_config["ranking_length"])
        if length > 0:
            order = order[:length]
        intents = self.intents
        ranking = [
            {INTENT_NAME_KEY: intents[i], PREDICTED_CONFIDENCE_KEY: float(probabilities[i])} for i in order
        ]
        message.set(INTENT, dict(ranking[0]), add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)

    # ------------------------------------------------------------------ persistence
    def persist(self) -> None:
        """Writes the weights (safetensors) and the metadata (JSON) to the component's resource."""
        if self._network is not None:
            persistence.save(self._model_storage, self._resource, self._network, self._meta)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "MultimodalFusionClassifier":
        """Loads the trained component; an untrained one when the resource holds no model.

        Raises:
            RasaException: if the stored files are of an unknown format version or do not match each other.
        """
        stored = persistence.load(model_storage, resource)
        if stored is None:
            return cls(config, model_storage, resource, execution_context)
        network = persistence.restore_network(stored)
        return cls(config, model_storage, resource, execution_context, network=network, meta=stored.meta)
