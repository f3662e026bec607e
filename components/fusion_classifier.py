"""`MultimodalFusionClassifier`: intent and sentiment of a message from its text, image and audio signals.

One small torch network reads what the featurizers put on the message and predicts two things at once:

- the intent (softmax over the intents of the training data), written as `intent` and `intent_ranking` exactly
  like DIET does, so FallbackClassifier, AttachmentRouter and the policies need no change;
- the sentiment (`negative` / `neutral` / `positive` by default), written as `sentiment: {"label",
  "confidence"}` into the parse result, where policies and actions read it (`UserUttered.parse_data`,
  `tracker.latest_message`).

Inputs per message (all sentence-level features; sequence features are not used):

- `text_dense`: the dense TEXT sentence features (TransformerTextFeaturizer, MiniLM), `float32 (1, 384)`;
- `text_sparse`: the sparse TEXT sentence features of every sparse featurizer, concatenated by Rasa
  (CountVectorsFeaturizer word + char n-grams, RegexFeaturizer), `scipy.sparse (1, vocabulary)`;
- `image`: the dense sentence features of the `image` attribute (ImageFeaturizer, EfficientNet-Lite0),
  `float32 (1, 1280)`;
- indicators `float32 (3,)`: has_text (non-blank text with features), has_image (image features), has_audio
  (`transcript` set by the SpeechRecognizer).

Training data: every NLU example with an intent, a sentiment label, or both. The sentiment label is read from
the example's metadata (`metadata: {sentiment: negative}` on an example or on its intent in Rasa NLU YAML;
Rasa exposes both as `message.get("metadata") == {"intent": {...}, "example": {...}}`, the example's value
wins); a top-level `{"sentiment": ...}` in a programmatically built message's metadata is accepted too. Each
head's cross-entropy is averaged over the examples that have its label only, so intent-only data
(data/nlu.yml) and sentiment-labelled data train their heads side by side; the loss is
`intent_loss_weight * CE(intent) + sentiment_loss_weight * CE(sentiment)`. (Rasa counts a text without an
intent as a story message, so sentiment-only examples are still written under some intent in YAML.)
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Text, Tuple, Type

import numpy as np
import scipy.sparse

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.featurizers.featurizer import Featurizer
from rasa.shared.exceptions import InvalidConfigException, RasaException
from rasa.shared.nlu.constants import (
    ACTION_NAME,
    ACTION_TEXT,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    METADATA,
    METADATA_EXAMPLE,
    METADATA_INTENT,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

if TYPE_CHECKING:  # hints of private helpers only; Rasa never resolves these
    import torch

logger = logging.getLogger(__name__)

#: Key of the sentiment prediction in the parse result.
SENTIMENT = "sentiment"
#: Key set by the SpeechRecognizer when a voice note was transcribed.
TRANSCRIPT = "transcript"
#: Input branches, in the order of the `present` mask columns.
BRANCHES = ("text_dense", "text_sparse", "image")
#: Modality indicators, in the order of the indicator columns.
MODALITIES = ("text", "image", "audio")
VALID_NORMALIZATION = ("l2", "none")

WEIGHTS_FILE = "fusion_classifier.safetensors"
META_FILE = "fusion_classifier.json"
FORMAT_VERSION = 1
_NAME = "MultimodalFusionClassifier"


# ----------------------------------------------------------------------------------------- feature collection
@dataclass
class _Batch:
    """Model inputs of n messages, as numpy/scipy arrays (converted to torch per mini-batch).

    Attributes:
        text_dense: `float32 (n, d_text)`; zero rows where the branch is absent.
        text_sparse: `csr_matrix float32 (n, vocabulary)`; empty rows where absent.
        image: `float32 (n, d_image)`; zero rows where absent.
        present: `bool (n, 3)`, one column per entry of `BRANCHES`.
        indicators: `float32 (n, 3)`, has_text / has_image / has_audio.
    """

    text_dense: np.ndarray
    text_sparse: scipy.sparse.csr_matrix
    image: np.ndarray
    present: np.ndarray
    indicators: np.ndarray

    @property
    def usable(self) -> np.ndarray:
        """`bool (n,)`: messages with at least one input branch (the others get no intent)."""
        return self.present.any(axis=1)

    def rows(self, index: np.ndarray) -> "_Batch":
        """The sub-batch of the rows in `index`."""
        return _Batch(
            self.text_dense[index],
            self.text_sparse[index],
            self.image[index],
            self.present[index],
            self.indicators[index],
        )


def _has_text(message: Message) -> bool:
    text = message.get(TEXT)
    return isinstance(text, str) and bool(text.strip())


def _sentence_row(features: Any) -> Any:
    """The single sentence row of a `Features` object (dense `(d,)` array or sparse `(1, d)` matrix)."""
    if features is None:
        return None
    values = features.features
    if scipy.sparse.issparse(values):
        return values.tocsr()[-1:]
    return np.asarray(values, dtype=np.float32).reshape(-1, values.shape[-1])[-1]


def _l2_rows_dense(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


def _l2_rows_sparse(matrix: scipy.sparse.csr_matrix) -> scipy.sparse.csr_matrix:
    matrix = matrix.copy()
    matrix.data = np.log1p(np.abs(matrix.data)) * np.sign(matrix.data)  # compress counts, keep sign
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    scale = 1.0 / np.maximum(norms, 1e-12)
    return scipy.sparse.diags(scale.astype(np.float32)) @ matrix


def sentiment_label_of(message: Message, key: Text = SENTIMENT) -> Optional[Text]:
    """The sentiment label a training example carries in its metadata, lower-cased, or None.

    Looked up in this order: example-level metadata (`metadata["example"][key]`), intent-level metadata
    (`metadata["intent"][key]`), then `metadata[key]`. Rasa's YAML reader puts the `metadata:` of an example
    and of its intent block under `"example"` and `"intent"` (`Message.build`).
    """
    metadata = message.get(METADATA)
    if not isinstance(metadata, dict):
        return None
    for scope in (metadata.get(METADATA_EXAMPLE), metadata.get(METADATA_INTENT), metadata):
        if isinstance(scope, dict):
            value = scope.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip().lower()
    return None


# ------------------------------------------------------------------------------------------ network
def _build_network(
    dims: Dict[Text, int],
    embedding_dimension: int,
    hidden_layer_sizes: Sequence[int],
    dropout: float,
    n_intents: int,
    n_sentiments: int,
    sentiment_hidden_layer_sizes: Sequence[int] = (),
    intent_head: Text = "linear",
    cosine_scale: float = 20.0,
    trunk_branches: Sequence[Text] = BRANCHES,
    wide_path: bool = False,
) -> "torch.nn.Module":
    """The fusion network (imported lazily: torch is only loaded when the component is used).

    Each branch with `dims[branch] > 0` gets a projection to `embedding_dimension` units followed by a
    LayerNorm (so the scale of a featurizer's output does not matter); the sparse branch multiplies the
    sparse batch with its weight (`torch.sparse.mm`), never densifying the vocabulary. An absent branch is
    replaced by that branch's learned "absent" embedding. The branch embeddings and the three modality
    indicators are concatenated (the fused input) and go through `hidden_layer_sizes` Linear → ReLU → Dropout
    layers (the shared trunk) into the intent head (`n_intents` logits; none when 0). The sentiment head
    (`n_sentiments` logits) reads the shared trunk when `sentiment_hidden_layer_sizes` is empty, otherwise its
    own Linear → ReLU → Dropout layers on the fused input. `intent_head` "linear" is an affine layer; "cosine"
    scores each intent by the cosine between the hidden vector and the intent's weight vector, times
    `cosine_scale` (normalised softmax: Wang et al. 2017, "NormFace"), the geometry the sentence encoder and a
    `make tune-text` encoder were trained in.

    Only the branches in `trunk_branches` are projected into the fused input. With `wide_path`, a linear map from
    every branch's input (as `_collect` normalised it; zeros where absent) and the indicators straight to both
    heads' logits is added to the heads' outputs ("wide and deep", Cheng et al. 2016, "Wide & Deep Learning
    for Recommender Systems"). Its weights start at zero, so a branch or modality never seen in training keeps
    a zero weight there too. On sentence embeddings and count vectors this linear path generalises better than
    the projections (a multinomial logistic regression on the same features beats a trunk that sees them
    only through a 128-unit projection), and the trunk adds what is not linear, e.g. text and photo together.
    The wide path's parameters are the ones whose names start with `wide_` (they get their own step size).
    """
    import torch
    from torch import nn

    class CosineHead(nn.Module):
        """`logits = scale * normalize(x) @ normalize(weight).T`; `weight` `float32 (n_classes, width)`."""

        def __init__(self, width: int, n_classes: int) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(n_classes, width) * 0.02)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            normalize = torch.nn.functional.normalize
            return cosine_scale * normalize(x, dim=1) @ normalize(self.weight, dim=1).T

    class FusionNetwork(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.branches = [name for name in BRANCHES if dims.get(name, 0) > 0 and name in trunk_branches]
            self.wide_branches = [name for name in BRANCHES if dims.get(name, 0) > 0] if wide_path else []
            self.n_intents = n_intents
            outputs = n_intents + n_sentiments
            self.wide_dense = nn.ModuleDict(
                {
                    name: nn.Linear(dims[name], outputs, bias=False)
                    for name in self.wide_branches
                    if name != "text_sparse"
                }
            )
            if "text_sparse" in self.wide_branches:
                self.wide_sparse = nn.Parameter(torch.zeros(dims["text_sparse"], outputs))
            self.wide_indicators = nn.Linear(len(MODALITIES), outputs) if wide_path else None
            for name, parameter in self.named_parameters():
                if name.startswith("wide_"):
                    nn.init.zeros_(parameter)
            self.dense_projections = nn.ModuleDict(
                {
                    name: nn.Linear(dims[name], embedding_dimension)
                    for name in self.branches
                    if name != "text_sparse"
                }
            )
            if "text_sparse" in self.branches:
                self.sparse_weight = nn.Parameter(torch.empty(dims["text_sparse"], embedding_dimension))
                self.sparse_bias = nn.Parameter(torch.zeros(embedding_dimension))
                nn.init.normal_(self.sparse_weight, std=0.02)
            self.norms = nn.ModuleDict({name: nn.LayerNorm(embedding_dimension) for name in self.branches})
            self.absent = nn.ParameterDict(
                {name: nn.Parameter(torch.randn(embedding_dimension) * 0.02) for name in self.branches}
            )
            self.input_dropout = nn.Dropout(dropout)
            fused_width = embedding_dimension * len(self.branches) + len(MODALITIES)
            self.trunk, width = self._mlp(fused_width, hidden_layer_sizes)
            self.intent_head: Optional[nn.Module] = None
            if n_intents > 0:
                self.intent_head = CosineHead(width, n_intents) if intent_head == "cosine" else nn.Linear(
                    width, n_intents
                )
            self.sentiment_trunk: Optional[nn.Module] = None
            if sentiment_hidden_layer_sizes:
                self.sentiment_trunk, sentiment_width = self._mlp(fused_width, sentiment_hidden_layer_sizes)
            else:
                sentiment_width = width
            self.sentiment_head = nn.Linear(sentiment_width, n_sentiments)

        @staticmethod
        def _mlp(width: int, sizes: Sequence[int]) -> Tuple[nn.Module, int]:
            layers: List[nn.Module] = []
            for size in sizes:
                layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
                width = size
            if layers:
                # A modality never seen in training keeps a zero weight, so switching its indicator on cannot
                # move the prediction by an amount nothing was trained for.
                with torch.no_grad():
                    first: nn.Linear = layers[0]  # type: ignore[assignment]
                    first.weight[:, -len(MODALITIES) :] = 0.0
            return nn.Sequential(*layers), width

        def forward(
            self,
            inputs: Dict[str, "torch.Tensor"],
            present: "torch.Tensor",
            indicators: "torch.Tensor",
        ) -> Tuple[Optional["torch.Tensor"], "torch.Tensor"]:
            parts = []
            for name in self.branches:
                if name == "text_sparse":
                    projected = torch.sparse.mm(inputs[name], self.sparse_weight) + self.sparse_bias
                else:
                    projected = self.dense_projections[name](inputs[name])
                projected = self.norms[name](projected)
                mask = present[:, BRANCHES.index(name)].unsqueeze(1)
                parts.append(mask * projected + (1.0 - mask) * self.absent[name])
            fused = self.input_dropout(torch.cat(parts + [indicators], dim=1))
            hidden = self.trunk(fused)
            intent_logits = self.intent_head(hidden) if self.intent_head is not None else None
            sentiment_hidden = hidden if self.sentiment_trunk is None else self.sentiment_trunk(fused)
            sentiment_logits = self.sentiment_head(sentiment_hidden)
            if self.wide_indicators is not None:
                wide = self.wide_indicators(indicators)
                for name in self.wide_branches:
                    mask = present[:, BRANCHES.index(name)].unsqueeze(1)
                    if name == "text_sparse":
                        wide = wide + mask * torch.sparse.mm(inputs[name], self.wide_sparse)
                    else:
                        wide = wide + mask * self.wide_dense[name](inputs[name])
                if intent_logits is not None:
                    intent_logits = intent_logits + wide[:, : self.n_intents]
                sentiment_logits = sentiment_logits + wide[:, self.n_intents :]
            return intent_logits, sentiment_logits

    return FusionNetwork()


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
    (`wide_path`, see `_build_network`) reads every branch's input directly, with zeros where a branch is
    absent; the indicators carry "absent" there, and its weights for a never-seen modality stay zero.

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
        """The component's default config; each key's unit is in its comment."""
        return {
            # Names (node names or `alias`) of the featurizers whose TEXT sentence features are used
            # (list of str); [] uses every featurizer's, e.g. MiniLM + CountVectors word/char + regex.
            "featurizers": [],
            # Message attribute that holds the image sentence feature (str; ImageFeaturizer writes "image").
            "image_attribute": "image",
            # Width of each input branch's projection and absent embedding (units).
            "embedding_dimension": 128,
            # Input branches projected into the fused input of the hidden layers (list of "text_dense",
            # "text_sparse", "image"). The count vectors' vocabulary is large: through a projection they
            # over-fit within a few epochs, so by default they reach the heads through the wide path only.
            "trunk_branches": ["text_dense", "image"],
            # Add a linear map from every branch's normalised input and the modality indicators straight to
            # both heads' logits, next to the hidden layers (bool; "wide and deep", see `_build_network`).
            "wide_path": True,
            # Adam step size of the wide path (float > 0); its inputs have unit norm, so its weights must
            # grow larger than the hidden layers' and it needs a larger step to get there in a few epochs.
            "wide_learning_rate": 0.01,
            # Hidden layers after the fusion, shared by both heads (list of units per layer; [] feeds the
            # heads directly).
            "hidden_layer_sizes": [256],
            # Hidden layers of the sentiment head's own path from the fused input (list of units per layer);
            # [] puts the sentiment head on the shared layers.
            "sentiment_hidden_layer_sizes": [],
            # Intent head: "linear" (affine layer) or "cosine" (scaled cosine between the last hidden vector
            # and a learned vector per intent; see `_build_network`).
            "intent_head": "linear",
            # Scale of the cosine head's logits, i.e. its inverse softmax temperature (float > 0).
            "cosine_scale": 20.0,
            # Dropout on the fused input and after each hidden layer (probability, 0..1 exclusive). With the
            # wide path beside it the trunk over-fits first; 0.5 was best of 0.2 / 0.3 / 0.5 on BANKING77
            # (a split of its train part) and on the project's own data.
            "dropout": 0.5,
            # While training, each present modality of an example (text, image) is replaced by its absent
            # embedding with this probability; one always stays (probability, 0..1 exclusive).
            "modality_dropout": 0.1,
            # Input scaling per message: "l2" divides dense features by their L2 norm and sparse counts are
            # log(1 + count)-compressed, then L2-normalised; "none" passes features on as they come.
            "input_normalization": "l2",
            # Weight of the intent cross-entropy in the total loss (non-negative float, unitless).
            "intent_loss_weight": 1.0,
            # Weight of the sentiment cross-entropy in the total loss (non-negative float, unitless).
            "sentiment_loss_weight": 0.5,
            # Metadata key of an example's sentiment label (str); see `sentiment_label_of`.
            "sentiment_key": SENTIMENT,
            # Sentiment classes of the sentiment head, in output order (list of ≥ 2 distinct lower-case str);
            # training labels outside this list are ignored with a warning.
            "sentiment_labels": ["negative", "neutral", "positive"],
            # Adam step size (float > 0).
            "learning_rate": 0.001,
            # Adam L2 weight decay (float ≥ 0).
            "weight_decay": 0.0,
            # Examples per mini-batch, in training and prediction (count).
            "batch_size": 64,
            # Most passes over the training examples (count); early stopping may end training sooner.
            "epochs": 100,
            # Share of the examples held out, stratified by label, for early stopping (fraction, 0 ≤ x < 1;
            # 0 trains for all `epochs` without validation).
            "validation_split": 0.1,
            # Epochs without a better validation score before training stops (count ≥ 1).
            "early_stopping_patience": 10,
            # What "better" means: "accuracy" = a higher validation accuracy (the heads' accuracies weighted
            # like their losses), ties broken by a lower validation loss; "loss" = a lower validation loss.
            # The loss minimum usually comes epochs before the accuracy stops rising.
            "early_stopping_metric": "accuracy",
            # Label smoothing of both cross-entropies while training (fraction of the target mass spread
            # over all classes, 0 ≤ x < 1; Szegedy et al. 2016, "Rethinking the Inception Architecture").
            "label_smoothing": 0.0,
            # After early stopping picked the best epoch count on the validation split, train a fresh network
            # on all examples (validation part included) for that many epochs (bool; doubles training time).
            "refit_on_all_data": False,
            # Intents listed in `intent_ranking` (count; 0 lists all).
            "ranking_length": 10,
            # Seed of python's `random`, numpy and torch: initialisation, split, shuffling, dropout (int).
            "random_seed": 42,
            # torch intra-op CPU threads while this component trains or predicts (count; the previous setting
            # is restored afterwards); 0 leaves torch's setting. The network is small: one thread is usually
            # fastest, and far faster than several on a busy machine.
            "num_threads": 1,
        }

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Checks every key of the config; unknown keys are refused too (they are usually typos).

        Raises:
            InvalidConfigException: naming the key and its valid values.
        """
        defaults = cls.get_default_config()
        unknown = sorted(set(config) - set(defaults))
        if unknown:
            raise InvalidConfigException(
                f"{_NAME}: unknown config key(s) {', '.join(map(repr, unknown))}; valid keys are "
                f"{', '.join(sorted(defaults))}."
            )

        def fail(key: str, expected: str) -> None:
            raise InvalidConfigException(f"{_NAME}: `{key}` must be {expected}, got {config.get(key)!r}.")

        def is_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_number(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        for key, minimum in (
            ("embedding_dimension", 1),
            ("batch_size", 1),
            ("epochs", 1),
            ("early_stopping_patience", 1),
            ("ranking_length", 0),
            ("num_threads", 0),
        ):
            if not is_int(config.get(key)) or config[key] < minimum:
                fail(key, f"an integer >= {minimum}")
        if not is_int(config.get("random_seed")):
            fail("random_seed", "an integer")
        for key in ("hidden_layer_sizes", "sentiment_hidden_layer_sizes"):
            sizes = config.get(key)
            if not isinstance(sizes, (list, tuple)) or not all(is_int(s) and s >= 1 for s in sizes):
                fail(key, "a list of positive integers (units per layer), e.g. [256]")
        for key in ("dropout", "modality_dropout"):
            if not is_number(config.get(key)) or not 0.0 <= config[key] < 1.0:
                fail(key, "a probability from 0 to below 1")
        if not is_number(config.get("validation_split")) or not 0.0 <= config["validation_split"] < 1.0:
            fail("validation_split", "a fraction from 0 to below 1")
        if config.get("intent_head") not in ("linear", "cosine"):
            fail("intent_head", "'linear' or 'cosine'")
        if not is_number(config.get("cosine_scale")) or config["cosine_scale"] <= 0:
            fail("cosine_scale", "a positive number")
        if config.get("early_stopping_metric") not in ("accuracy", "loss"):
            fail("early_stopping_metric", "'accuracy' or 'loss'")
        if not is_number(config.get("label_smoothing")) or not 0.0 <= config["label_smoothing"] < 1.0:
            fail("label_smoothing", "a fraction from 0 to below 1")
        if not isinstance(config.get("refit_on_all_data"), bool):
            fail("refit_on_all_data", "true or false")
        for key in ("intent_loss_weight", "sentiment_loss_weight", "weight_decay"):
            if not is_number(config.get(key)) or config[key] < 0:
                fail(key, "a non-negative number")
        if config["intent_loss_weight"] == 0 and config["sentiment_loss_weight"] == 0:
            fail("intent_loss_weight", "positive when `sentiment_loss_weight` is 0 (nothing to learn)")
        for key in ("learning_rate", "wide_learning_rate"):
            if not is_number(config.get(key)) or config[key] <= 0:
                fail(key, "a positive number")
        if not isinstance(config.get("wide_path"), bool):
            fail("wide_path", "true or false")
        trunk = config.get("trunk_branches")
        if (
            not isinstance(trunk, (list, tuple))
            or not all(isinstance(b, str) and b in BRANCHES for b in trunk)
            or len(set(trunk)) != len(trunk)
        ):
            fail("trunk_branches", f"a list of distinct branch names out of {', '.join(map(repr, BRANCHES))}")
        if not config["wide_path"] and set(trunk) != set(BRANCHES):
            fail("trunk_branches", "every branch when `wide_path` is false (a branch would reach no head)")
        if config.get("input_normalization") not in VALID_NORMALIZATION:
            fail("input_normalization", f"one of {', '.join(map(repr, VALID_NORMALIZATION))}")
        featurizers = config.get("featurizers")
        if not isinstance(featurizers, (list, tuple)) or not all(isinstance(f, str) for f in featurizers):
            fail("featurizers", "a list of featurizer names ([] for all)")
        for key in ("image_attribute", "sentiment_key"):
            if not isinstance(config.get(key), str) or not config[key].strip():
                fail(key, "a non-empty string")
        labels = config.get("sentiment_labels")
        if (
            not isinstance(labels, (list, tuple))
            or len(labels) < 2
            or not all(isinstance(x, str) and x and x == x.strip().lower() for x in labels)
            or len(set(labels)) != len(labels)
        ):
            fail("sentiment_labels", "a list of at least 2 distinct, lower-case, non-empty labels")

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        network: Optional["torch.nn.Module"] = None,
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

    # ------------------------------------------------------------------ features
    def _collect(self, messages: Sequence[Message], dims: Dict[Text, int], seen: Dict[Text, bool]) -> _Batch:
        """Reads the model inputs of `messages` (see `_Batch`).

        Args:
            messages: the messages.
            dims: input width per branch; a branch of width 0 is absent for every message.
            seen: per modality, whether training had it; an unseen modality counts as absent.

        Raises:
            RasaException: if a message's feature width differs from `dims` (the pipeline changed since
                training).
        """
        featurizers = list(self.component_config["featurizers"]) or None
        image_attribute = self.component_config["image_attribute"]
        n = len(messages)
        text_dense = np.zeros((n, dims.get("text_dense", 0)), dtype=np.float32)
        image = np.zeros((n, dims.get("image", 0)), dtype=np.float32)
        sparse_rows: List[scipy.sparse.csr_matrix] = []
        empty_sparse = scipy.sparse.csr_matrix((1, dims.get("text_sparse", 0)), dtype=np.float32)
        present = np.zeros((n, len(BRANCHES)), dtype=bool)
        indicators = np.zeros((n, len(MODALITIES)), dtype=np.float32)

        def check(branch: str, width: int) -> None:
            if width != dims[branch]:
                raise RasaException(
                    f"{_NAME}: the '{branch}' features have {width} dimensions, the model was trained with "
                    f"{dims[branch]}. The featurizers changed since training; train the model again."
                )

        for i, message in enumerate(messages):
            sparse_row = empty_sparse
            has_text = _has_text(message)
            if has_text and dims.get("text_dense", 0):
                row = _sentence_row(message.get_dense_features(TEXT, featurizers)[1])
                if row is not None:
                    check("text_dense", row.shape[0])
                    text_dense[i] = row
                    present[i, 0] = True
            if has_text and dims.get("text_sparse", 0):
                row = _sentence_row(message.get_sparse_features(TEXT, featurizers)[1])
                if row is not None:
                    check("text_sparse", row.shape[1])
                    sparse_row = row.astype(np.float32)
                    present[i, 1] = True
            if dims.get("image", 0) and seen.get("image", False):
                row = _sentence_row(message.get_dense_features(image_attribute)[1])
                if row is not None:
                    check("image", row.shape[0])
                    image[i] = row
                    present[i, 2] = True
            sparse_rows.append(sparse_row)
            indicators[i, 0] = float(present[i, 0] or present[i, 1])
            indicators[i, 1] = float(present[i, 2])
            indicators[i, 2] = float(bool(message.get(TRANSCRIPT)) and seen.get("audio", False))

        text_sparse = (
            scipy.sparse.vstack(sparse_rows, format="csr", dtype=np.float32)
            if sparse_rows
            else scipy.sparse.csr_matrix((0, dims.get("text_sparse", 0)), dtype=np.float32)
        )
        if self.component_config["input_normalization"] == "l2":
            text_dense = _l2_rows_dense(text_dense)
            image = _l2_rows_dense(image)
            text_sparse = _l2_rows_sparse(text_sparse).tocsr()
        return _Batch(text_dense, text_sparse, image, present, indicators)

    @staticmethod
    def _input_dims(
        messages: Sequence[Message], featurizers: Optional[List[Text]], image_attribute: Text
    ) -> Dict[Text, int]:
        """Input width per branch, from the first training message that has the branch (0: none has it)."""
        dims = {name: 0 for name in BRANCHES}
        for message in messages:
            if _has_text(message):
                if not dims["text_dense"]:
                    row = _sentence_row(message.get_dense_features(TEXT, featurizers)[1])
                    dims["text_dense"] = 0 if row is None else int(row.shape[0])
                if not dims["text_sparse"]:
                    row = _sentence_row(message.get_sparse_features(TEXT, featurizers)[1])
                    dims["text_sparse"] = 0 if row is None else int(row.shape[1])
            if not dims["image"]:
                row = _sentence_row(message.get_dense_features(image_attribute)[1])
                dims["image"] = 0 if row is None else int(row.shape[0])
            if all(dims.values()):
                break
        return dims

    @staticmethod
    def _to_torch(batch: _Batch) -> Tuple[Dict[str, "torch.Tensor"], "torch.Tensor", "torch.Tensor"]:
        import torch

        coo = batch.text_sparse.tocoo()
        indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        with warnings.catch_warnings():  # torch warns once that it skips index checks; scipy's are valid
            warnings.filterwarnings("ignore", message="Sparse invariant checks")
            sparse = torch.sparse_coo_tensor(
                indices, torch.from_numpy(coo.data.astype(np.float32)), size=coo.shape
            ).coalesce()
        inputs = {
            "text_dense": torch.from_numpy(batch.text_dense),
            "text_sparse": sparse,
            "image": torch.from_numpy(batch.image),
        }
        return inputs, torch.from_numpy(batch.present.astype(np.float32)), torch.from_numpy(batch.indicators)

    # ------------------------------------------------------------------ training
    def train(self, training_data: TrainingData) -> Resource:
        """Trains the network on the NLU examples that have an intent and/or a sentiment label.

        Returns:
            The component's resource (persisted weights and metadata); nothing is persisted when no example
            has a label and usable features.
        """
        with torch_threads(int(self.component_config["num_threads"])):
            return self._train(training_data)

    def _train(self, training_data: TrainingData) -> Resource:
        import torch

        config = self.component_config
        seed = int(config["random_seed"])
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

        sentiment_labels = list(config["sentiment_labels"])
        examples: List[Message] = []
        intent_names: List[Optional[str]] = []
        sentiments: List[Optional[str]] = []
        unknown_sentiments: Dict[str, int] = {}
        for message in training_data.training_examples:
            if message.get(ACTION_NAME) or message.get(ACTION_TEXT):
                continue  # messages Rasa builds from stories and the domain
            intent = message.get(INTENT) if message.get(TEXT) else None
            sentiment = sentiment_label_of(message, config["sentiment_key"])
            if sentiment is not None and sentiment not in sentiment_labels:
                unknown_sentiments[sentiment] = unknown_sentiments.get(sentiment, 0) + 1
                sentiment = None
            if not intent and sentiment is None:
                continue
            examples.append(message)
            intent_names.append(intent or None)
            sentiments.append(sentiment)
        if unknown_sentiments:
            logger.warning(
                "%s: ignored sentiment labels outside %s: %s.", _NAME, sentiment_labels, unknown_sentiments
            )

        featurizers = list(config["featurizers"]) or None
        dims = self._input_dims(examples, featurizers, config["image_attribute"])
        seen_all = {"text": True, "image": True, "audio": True}
        data = self._collect(examples, dims, seen_all)
        keep = np.flatnonzero(data.usable)
        if len(keep) < len(examples):
            skipped = len(examples) - len(keep)
            logger.info("%s: skipped %d labelled examples without features.", _NAME, skipped)
        if len(keep) == 0:
            logger.warning("%s: no labelled examples with features; the classifier stays untrained.", _NAME)
            return self._resource
        data = data.rows(keep)
        intent_names = [intent_names[i] for i in keep]
        sentiments = [sentiments[i] for i in keep]
        seen = {
            "text": bool(data.indicators[:, 0].any()),
            "image": bool(data.present[:, 2].any()),
            "audio": bool(any(examples[i].get(TRANSCRIPT) for i in keep)),
        }
        if not seen["audio"]:
            data.indicators[:, 2] = 0.0

        intents = sorted({name for name in intent_names if name})
        intent_index = {name: i for i, name in enumerate(intents)}
        sentiment_index = {name: i for i, name in enumerate(sentiment_labels)}
        intent_targets = np.array([intent_index[n] if n else -1 for n in intent_names], dtype=np.int64)
        sentiment_targets = np.array([sentiment_index[s] if s else -1 for s in sentiments], dtype=np.int64)
        sentiment_trained = int((sentiment_targets >= 0).sum()) > 0
        if len(intents) == 1:
            logger.warning("%s: only one intent (%r) in the training data.", _NAME, intents[0])

        strata = [f"{n or ''}\x00{s or ''}" for n, s in zip(intent_names, sentiments)]
        train_idx, val_idx = stratified_split(strata, float(config["validation_split"]), seed)

        def new_network() -> "torch.nn.Module":
            return _build_network(
                dims,
                int(config["embedding_dimension"]),
                list(config["hidden_layer_sizes"]),
                float(config["dropout"]),
                len(intents),
                len(sentiment_labels),
                list(config["sentiment_hidden_layer_sizes"]),
                config["intent_head"],
                float(config["cosine_scale"]),
                list(config["trunk_branches"]),
                bool(config["wide_path"]),
            )

        network = new_network()
        report = self._fit(network, data, intent_targets, sentiment_targets, train_idx, val_idx)
        if config["refit_on_all_data"] and len(val_idx) > 0:
            # The same seed again: the refit starts from the same initialisation and shuffling stream.
            torch.manual_seed(seed)
            network = new_network()
            all_idx = np.sort(np.concatenate([train_idx, val_idx]))
            refit = self._fit(
                network, data, intent_targets, sentiment_targets, all_idx, np.array([], dtype=np.int64),
                epochs=int(report["best_epoch"]),
            )
            report.update({"refit_epochs": refit["epochs_run"], "refit_examples": int(len(all_idx))})
        report.update(
            {
                "examples": int(len(keep)),
                "intent_examples": int((intent_targets >= 0).sum()),
                "sentiment_examples": int((sentiment_targets >= 0).sum()),
                "sentiment_counts": {
                    label: int((sentiment_targets == i).sum()) for i, label in enumerate(sentiment_labels)
                },
            }
        )
        self._network = network.eval()
        self._meta = {
            "format_version": FORMAT_VERSION,
            "intents": intents,
            "sentiment_labels": sentiment_labels,
            "sentiment_trained": sentiment_trained,
            "dims": dims,
            "seen": seen,
            "architecture": {
                "embedding_dimension": int(config["embedding_dimension"]),
                "hidden_layer_sizes": [int(s) for s in config["hidden_layer_sizes"]],
                "sentiment_hidden_layer_sizes": [int(s) for s in config["sentiment_hidden_layer_sizes"]],
                "dropout": float(config["dropout"]),
                "intent_head": config["intent_head"],
                "cosine_scale": float(config["cosine_scale"]),
                "trunk_branches": list(config["trunk_branches"]),
                "wide_path": bool(config["wide_path"]),
            },
            "config": dict(config),
            "training": report,
        }
        logger.info(
            "%s trained: %d intents, sentiment %s, %d epochs (best %s), validation intent accuracy %s, "
            "sentiment accuracy %s.",
            _NAME,
            len(intents),
            "yes" if sentiment_trained else "no",
            report["epochs_run"],
            report["best_epoch"],
            report.get("val_intent_accuracy"),
            report.get("val_sentiment_accuracy"),
        )
        self.persist()
        return self._resource

    def _fit(
        self,
        network: "torch.nn.Module",
        data: _Batch,
        intent_targets: np.ndarray,
        sentiment_targets: np.ndarray,
        train_idx: np.ndarray,
        val_idx: np.ndarray,
        epochs: Optional[int] = None,
    ) -> Dict[Text, Any]:
        """Adam with early stopping on the validation split; returns the training report.

        Trains `epochs` (default: the config's `epochs`) passes at most; with an empty `val_idx` all of them.
        The network ends with the weights of the best epoch (`early_stopping_metric`).
        """
        import torch

        config = self.component_config
        generator = torch.Generator().manual_seed(int(config["random_seed"]))
        # Adam's L2 penalty stays off the wide path: Adam divides each gradient by its running scale, so for the
        # weight of a rare n-gram, whose data gradient is zero in most batches, the penalty alone would take
        # full-size steps towards zero (measured: -1.5 points of BANKING77 accuracy with weight_decay 1e-4).
        named = list(network.named_parameters())
        groups = [
            {
                "params": [p for n, p in named if not n.startswith("wide_")],
                "lr": float(config["learning_rate"]),
                "weight_decay": float(config["weight_decay"]),
            },
            {
                "params": [p for n, p in named if n.startswith("wide_")],
                "lr": float(config["wide_learning_rate"]),
                "weight_decay": 0.0,
            },
        ]
        optimizer = torch.optim.Adam([group for group in groups if group["params"]])
        batch_size = int(config["batch_size"])
        patience = int(config["early_stopping_patience"])
        p_drop = float(config["modality_dropout"])
        targets_i = torch.from_numpy(intent_targets)
        targets_s = torch.from_numpy(sentiment_targets)

        use_accuracy = config["early_stopping_metric"] == "accuracy"
        best_score, best_loss, best_epoch, best_state, epochs_run = -math.inf, math.inf, 0, None, 0
        for epoch in range(1, int(epochs or config["epochs"]) + 1):
            epochs_run = epoch
            network.train()
            order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
            for start in range(0, len(order), batch_size):
                index = order[start : start + batch_size]
                inputs, present, indicators = self._to_torch(data.rows(index))
                if p_drop > 0:
                    present = _drop_modalities(present, p_drop, generator)
                intent_logits, sentiment_logits = network(inputs, present, indicators)
                loss = self._loss(
                    intent_logits, sentiment_logits, targets_i[index], targets_s[index],
                    label_smoothing=float(config["label_smoothing"]),
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if len(val_idx) == 0:
                continue
            val_loss, intent_acc, sentiment_acc = self._evaluate(network, data, val_idx, targets_i, targets_s)
            score = self._validation_score(intent_acc, sentiment_acc) if use_accuracy else 0.0
            logger.debug(
                "%s epoch %d: validation loss %.4f, intent accuracy %s, sentiment accuracy %s",
                _NAME, epoch, val_loss, intent_acc, sentiment_acc,
            )
            if score > best_score + 1e-9 or (score >= best_score - 1e-9 and val_loss < best_loss - 1e-6):
                best_score, best_loss, best_epoch = score, val_loss, epoch
                best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
            elif epoch - best_epoch >= patience:
                logger.info("%s: early stop after epoch %d (best epoch %d).", _NAME, epoch, best_epoch)
                break
        report: Dict[Text, Any] = {"epochs_run": epochs_run, "train_examples": int(len(train_idx))}
        report["validation_examples"] = int(len(val_idx))
        if best_state is not None:
            network.load_state_dict(best_state)
            val_loss, intent_acc, sentiment_acc = self._evaluate(network, data, val_idx, targets_i, targets_s)
            report.update(
                {
                    "best_epoch": best_epoch,
                    "val_loss": round(val_loss, 6),
                    "val_intent_accuracy": None if intent_acc is None else round(intent_acc, 4),
                    "val_sentiment_accuracy": None if sentiment_acc is None else round(sentiment_acc, 4),
                }
            )
        else:
            report["best_epoch"] = epochs_run
        network.eval()
        return report

    def _validation_score(self, intent_acc: Optional[float], sentiment_acc: Optional[float]) -> float:
        """The heads' validation accuracies averaged with their loss weights (heads without labels left out)."""
        pairs = [
            (float(self.component_config["intent_loss_weight"]), intent_acc),
            (float(self.component_config["sentiment_loss_weight"]), sentiment_acc),
        ]
        pairs = [(w, a) for w, a in pairs if a is not None and w > 0]
        total = sum(w for w, _ in pairs)
        return sum(w * a for w, a in pairs) / total if total > 0 else 0.0

    def _loss(
        self,
        intent_logits: Optional["torch.Tensor"],
        sentiment_logits: "torch.Tensor",
        intent_targets: "torch.Tensor",
        sentiment_targets: "torch.Tensor",
        label_smoothing: float = 0.0,
    ) -> "torch.Tensor":
        """Weighted sum of the two cross-entropies, each averaged over the examples that have its label."""
        return self.component_config["intent_loss_weight"] * masked_cross_entropy(
            intent_logits, intent_targets, label_smoothing
        ) + self.component_config["sentiment_loss_weight"] * masked_cross_entropy(
            sentiment_logits, sentiment_targets, label_smoothing
        )

    def _evaluate(
        self,
        network: "torch.nn.Module",
        data: _Batch,
        index: np.ndarray,
        intent_targets: "torch.Tensor",
        sentiment_targets: "torch.Tensor",
    ) -> Tuple[float, Optional[float], Optional[float]]:
        """(loss, intent accuracy, sentiment accuracy) on the rows `index`; accuracies None without labels."""
        import torch

        network.eval()
        intent_logits, sentiment_logits = self._forward(network, data.rows(index))
        t_i, t_s = intent_targets[index], sentiment_targets[index]
        with torch.no_grad():
            loss = float(self._loss(intent_logits, sentiment_logits, t_i, t_s))

        def accuracy(logits: Optional["torch.Tensor"], targets: "torch.Tensor") -> Optional[float]:
            mask = targets >= 0
            if logits is None or not bool(mask.any()):
                return None
            return float((logits.argmax(dim=1)[mask] == targets[mask]).float().mean())

        return loss, accuracy(intent_logits, t_i), accuracy(sentiment_logits, t_s)

    def _forward(
        self, network: "torch.nn.Module", data: _Batch
    ) -> Tuple[Optional["torch.Tensor"], "torch.Tensor"]:
        """Logits of all rows of `data`, `batch_size` rows per forward pass, without gradients."""
        import torch

        batch_size = int(self.component_config["batch_size"])
        intent_parts, sentiment_parts = [], []
        n = data.present.shape[0]
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                rows = np.arange(start, min(n, start + batch_size))
                inputs, present, indicators = self._to_torch(data.rows(rows))
                intent_logits, sentiment_logits = network(inputs, present, indicators)
                if intent_logits is not None:
                    intent_parts.append(intent_logits)
                sentiment_parts.append(sentiment_logits)
        intent = torch.cat(intent_parts) if intent_parts else None
        return intent, torch.cat(sentiment_parts)

    # ------------------------------------------------------------------ prediction
    def process(self, messages: List[Message]) -> List[Message]:
        """Sets `intent`, `intent_ranking` and `sentiment` on each message (see the class docstring)."""
        with torch_threads(int(self.component_config["num_threads"])):
            return self._process(messages)

    def _process(self, messages: List[Message]) -> List[Message]:
        if self._network is None or not messages:
            for message in messages:
                self._set_no_intent(message)
            return messages
        data = self._collect(messages, self._meta["dims"], self._meta["seen"])
        usable = data.usable
        rows = np.flatnonzero(usable)
        intent_probs = sentiment_probs = None
        if len(rows):
            intent_logits, sentiment_logits = self._forward(self._network, data.rows(rows))
            intent_probs = None if intent_logits is None else intent_logits.softmax(dim=1).numpy()
            sentiment_probs = sentiment_logits.softmax(dim=1).numpy()
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
        if self._network is None:
            return
        from safetensors.torch import save_file

        state = {k: v.detach().contiguous().clone() for k, v in self._network.state_dict().items()}
        with self._model_storage.write_to(self._resource) as directory:
            save_file(state, str(Path(directory) / WEIGHTS_FILE), metadata={"format": "pt"})
            (Path(directory) / META_FILE).write_text(
                json.dumps(self._meta, indent=2, sort_keys=True, ensure_ascii=False), encoding="utf-8"
            )

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
        from safetensors.torch import load_file

        try:
            with model_storage.read_from(resource) as directory:
                meta_path, weights_path = Path(directory) / META_FILE, Path(directory) / WEIGHTS_FILE
                if not meta_path.is_file() or not weights_path.is_file():
                    raise FileNotFoundError(meta_path)
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                state = load_file(str(weights_path))
        except (ValueError, FileNotFoundError):
            logger.debug("%s: no trained model in resource '%s'; it stays untrained.", _NAME, resource.name)
            return cls(config, model_storage, resource, execution_context)
        if meta.get("format_version") != FORMAT_VERSION:
            raise RasaException(
                f"{_NAME}: stored model format {meta.get('format_version')!r} is not {FORMAT_VERSION}; "
                f"train the model again."
            )
        architecture = meta["architecture"]
        network = _build_network(
            {k: int(v) for k, v in meta["dims"].items()},
            int(architecture["embedding_dimension"]),
            list(architecture["hidden_layer_sizes"]),
            float(architecture["dropout"]),
            len(meta["intents"]),
            len(meta["sentiment_labels"]),
            list(architecture.get("sentiment_hidden_layer_sizes", [])),
            architecture.get("intent_head", "linear"),
            float(architecture.get("cosine_scale", 20.0)),
            list(architecture.get("trunk_branches", BRANCHES)),  # models trained before the wide path
            bool(architecture.get("wide_path", False)),
        )
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise RasaException(f"{_NAME}: stored weights do not match their metadata: {error}") from error
        return cls(config, model_storage, resource, execution_context, network=network.eval(), meta=meta)


# ------------------------------------------------------------------------------------------ helpers
@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Runs the block with `count` torch intra-op threads (0: unchanged), then restores the previous count."""
    if count <= 0:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def masked_cross_entropy(
    logits: Optional["torch.Tensor"], targets: "torch.Tensor", label_smoothing: float = 0.0
) -> "torch.Tensor":
    """Mean cross-entropy over the rows whose target is ≥ 0; 0 (still differentiable) when there are none.

    Args:
        logits: `float (batch, classes)`, or None (no head) which gives 0.
        targets: `int64 (batch,)`, -1 for "no label".
        label_smoothing: share of each target's probability mass spread uniformly over the classes (0 ≤ x < 1).
    """
    import torch
    import torch.nn.functional as F

    if logits is None:
        return torch.zeros(())
    labelled = int((targets >= 0).sum())
    if labelled == 0:
        return logits.sum() * 0.0
    return (
        F.cross_entropy(logits, targets, ignore_index=-1, reduction="sum", label_smoothing=label_smoothing)
        / labelled
    )


def _drop_modalities(
    present: "torch.Tensor", probability: float, generator: "torch.Generator"
) -> "torch.Tensor":
    """Hides each present modality (text: both text branches together; image) with `probability`.

    A row whose every modality would be hidden keeps them all, so text-only data is never changed; the two
    text branches are never split (hiding only MiniLM or only the counts made intents worse on data/nlu.yml).

    Args:
        present: `float (batch, len(BRANCHES))` 0/1 mask.
        probability: chance of hiding a modality.
        generator: torch random generator (seeded by the caller).

    Returns:
        The new mask, same shape.
    """
    import torch

    groups = [[BRANCHES.index("text_dense"), BRANCHES.index("text_sparse")], [BRANCHES.index("image")]]
    keep = (torch.rand((present.shape[0], len(groups)), generator=generator) >= probability).float()
    branch_keep = torch.ones_like(present)
    for g, columns in enumerate(groups):
        branch_keep[:, columns] = keep[:, g : g + 1]
    dropped = present * branch_keep
    empty = dropped.sum(dim=1, keepdim=True) == 0
    return torch.where(empty, present, dropped)


def stratified_split(strata: Sequence[Text], fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Indices of a train/validation split that holds out `fraction` of every stratum.

    Each stratum with n examples gives `round(n * fraction)` to validation, but at most n - 1, so every
    label keeps at least one training example (a stratum of one example stays in training).

    Returns:
        (train indices, validation indices), each sorted, `int64`.
    """
    rng = np.random.default_rng(seed)
    groups: Dict[Text, List[int]] = {}
    for index, stratum in enumerate(strata):
        groups.setdefault(stratum, []).append(index)
    validation: List[int] = []
    if fraction > 0:
        for stratum in sorted(groups):
            members = np.array(groups[stratum])
            rng.shuffle(members)
            take = min(int(round(len(members) * fraction)), len(members) - 1)
            validation.extend(members[:take].tolist())
    held = set(validation)
    train = [i for i in range(len(strata)) if i not in held]
    return np.array(train, dtype=np.int64), np.array(sorted(validation), dtype=np.int64)
