"""Model inputs and labels of the fusion classifier, read from Rasa messages.

Per message the classifier reads sentence-level features only (sequence features are not used):

- branch `text_dense`: dense TEXT sentence features (TransformerTextFeaturizer, MiniLM), `float32 (1, 384)`;
- branch `text_sparse`: the sparse TEXT sentence features of every sparse featurizer, concatenated by Rasa
  (CountVectorsFeaturizer word + char n-grams, RegexFeaturizer), `scipy.sparse (1, vocabulary)`;
- branch `image`: the dense sentence features of the image attribute (ImageFeaturizer), `float32 (1, 1280)`;
- indicators `float32 (3,)`: has_text (non-blank text with features), has_image (image features), has_audio
  (`transcript` set by the SpeechRecognizer).

`FeatureReader.collect` gathers them for n messages into a `Batch` of numpy/scipy arrays; `to_torch` turns a
(mini-)batch into the tensors `FusionNetwork` takes. `training_set` picks the labelled NLU examples and builds
the targets of both heads.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Text, Tuple

import numpy as np
import scipy.sparse
from rasa.shared.exceptions import RasaException
from rasa.shared.nlu.constants import (
    ACTION_NAME,
    ACTION_TEXT,
    INTENT,
    METADATA,
    METADATA_EXAMPLE,
    METADATA_INTENT,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from assistant.keys import SENTIMENT, TRANSCRIPT
from components.fusion import BRANCHES, IMAGE_BRANCH, MODALITIES, NAME, TEXT_DENSE, TEXT_SPARSE

if TYPE_CHECKING:  # hints only; torch is imported where tensors are made
    import torch

logger = logging.getLogger(__name__)

#: Every modality counts as seen (while the training inputs are read).
ALL_SEEN: Mapping[Text, bool] = {name: True for name in MODALITIES}


@dataclass
class Batch:
    """Model inputs of n messages, as numpy/scipy arrays (converted to torch per mini-batch by `to_torch`).

    Attributes:
        text_dense: `float32 (n, d_text)`; zero rows where the branch is absent.
        text_sparse: `csr_matrix float32 (n, vocabulary)`; empty rows where absent.
        image: `float32 (n, d_image)`; zero rows where absent.
        present: `bool (n, 3)`, one column per entry of `BRANCHES`.
        indicators: `float32 (n, 3)`, one column per entry of `MODALITIES` (has_text / has_image / has_audio).
    """

    text_dense: np.ndarray
    text_sparse: scipy.sparse.csr_matrix
    image: np.ndarray
    present: np.ndarray
    indicators: np.ndarray

    def __len__(self) -> int:
        return int(self.present.shape[0])

    @property
    def usable(self) -> np.ndarray:
        """`bool (n,)`: messages with at least one input branch (the others get no intent)."""
        return self.present.any(axis=1)

    def rows(self, index: np.ndarray) -> "Batch":
        """The sub-batch of the rows in `index` (`int64 (k,)`)."""
        return Batch(
            self.text_dense[index],
            self.text_sparse[index],
            self.image[index],
            self.present[index],
            self.indicators[index],
        )


def has_text(message: Message) -> bool:
    """Whether the message has non-blank text."""
    text = message.get(TEXT)
    return isinstance(text, str) and bool(text.strip())


def sentence_row(features: Any) -> Any:
    """The sentence row of a Rasa `Features` object: dense `float32 (d,)`, sparse `csr (1, d)`, or None."""
    if features is None:
        return None
    values = features.features
    if scipy.sparse.issparse(values):
        return values.tocsr()[-1:]
    return np.asarray(values, dtype=np.float32).reshape(-1, values.shape[-1])[-1]


def l2_rows_dense(matrix: np.ndarray) -> np.ndarray:
    """Each row of `float (n, d)` divided by its L2 norm (all-zero rows stay zero); `float32 (n, d)`."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


def l2_rows_sparse(matrix: scipy.sparse.csr_matrix) -> scipy.sparse.csr_matrix:
    """Counts compressed to `sign(x) * log(1 + |x|)`, then rows divided by their L2 norm; sparse `(n, d)`."""
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


@dataclass(frozen=True)
class FeatureReader:
    """Reads the classifier's inputs from messages, as the component's config says.

    Attributes:
        featurizers: names (node names or `alias`) of the featurizers whose TEXT sentence features are used;
            None for all.
        image_attribute: message attribute of the image sentence feature.
        normalization: "l2" (rows scaled to unit norm, counts log-compressed first) or "none".
    """

    featurizers: Optional[List[Text]]
    image_attribute: Text
    normalization: Text

    @classmethod
    def from_config(cls, config: Mapping[Text, Any]) -> "FeatureReader":
        """The reader for a (validated) component config."""
        featurizers = list(config["featurizers"]) or None
        return cls(featurizers, config["image_attribute"], config["input_normalization"])

    def input_dims(self, messages: Sequence[Message]) -> Dict[Text, int]:
        """Input width per branch, from the first message that has the branch (0: none has it)."""
        dims = {name: 0 for name in BRANCHES}
        for message in messages:
            if has_text(message):
                if not dims[TEXT_DENSE]:
                    row = sentence_row(message.get_dense_features(TEXT, self.featurizers)[1])
                    dims[TEXT_DENSE] = 0 if row is None else int(row.shape[0])
                if not dims[TEXT_SPARSE]:
                    row = sentence_row(message.get_sparse_features(TEXT, self.featurizers)[1])
                    dims[TEXT_SPARSE] = 0 if row is None else int(row.shape[1])
            if not dims[IMAGE_BRANCH]:
                row = sentence_row(message.get_dense_features(self.image_attribute)[1])
                dims[IMAGE_BRANCH] = 0 if row is None else int(row.shape[0])
            if all(dims.values()):
                break
        return dims

    def collect(
        self, messages: Sequence[Message], dims: Mapping[Text, int], seen: Mapping[Text, bool]
    ) -> Batch:
        """Reads the model inputs of `messages` (see `Batch`).

        Args:
            messages: the messages.
            dims: input width per branch; a branch of width 0 is absent for every message.
            seen: per modality, whether training had it; an unseen modality counts as absent.

        Raises:
            RasaException: if a message's feature width differs from `dims` (the pipeline changed since
                training).
        """
        n = len(messages)
        text_dense = np.zeros((n, dims.get(TEXT_DENSE, 0)), dtype=np.float32)
        image = np.zeros((n, dims.get(IMAGE_BRANCH, 0)), dtype=np.float32)
        sparse_rows: List[scipy.sparse.csr_matrix] = []
        empty_sparse = scipy.sparse.csr_matrix((1, dims.get(TEXT_SPARSE, 0)), dtype=np.float32)
        present = np.zeros((n, len(BRANCHES)), dtype=bool)
        indicators = np.zeros((n, len(MODALITIES)), dtype=np.float32)
        dense_column, sparse_column = BRANCHES.index(TEXT_DENSE), BRANCHES.index(TEXT_SPARSE)
        image_column = BRANCHES.index(IMAGE_BRANCH)

        def check(branch: str, width: int) -> None:
            if width != dims[branch]:
                raise RasaException(
                    f"{NAME}: the '{branch}' features have {width} dimensions, the model was trained with "
                    f"{dims[branch]}. The featurizers changed since training; train the model again."
                )

        for i, message in enumerate(messages):
            sparse_row = empty_sparse
            text = has_text(message)
            if text and dims.get(TEXT_DENSE, 0):
                row = sentence_row(message.get_dense_features(TEXT, self.featurizers)[1])
                if row is not None:
                    check(TEXT_DENSE, row.shape[0])
                    text_dense[i] = row
                    present[i, dense_column] = True
            if text and dims.get(TEXT_SPARSE, 0):
                row = sentence_row(message.get_sparse_features(TEXT, self.featurizers)[1])
                if row is not None:
                    check(TEXT_SPARSE, row.shape[1])
                    sparse_row = row.astype(np.float32)
                    present[i, sparse_column] = True
            if dims.get(IMAGE_BRANCH, 0) and seen.get("image", False):
                row = sentence_row(message.get_dense_features(self.image_attribute)[1])
                if row is not None:
                    check(IMAGE_BRANCH, row.shape[0])
                    image[i] = row
                    present[i, image_column] = True
            sparse_rows.append(sparse_row)
            indicators[i, 0] = float(present[i, dense_column] or present[i, sparse_column])
            indicators[i, 1] = float(present[i, image_column])
            indicators[i, 2] = float(bool(message.get(TRANSCRIPT)) and seen.get("audio", False))

        text_sparse = (
            scipy.sparse.vstack(sparse_rows, format="csr", dtype=np.float32)
            if sparse_rows
            else scipy.sparse.csr_matrix((0, dims.get(TEXT_SPARSE, 0)), dtype=np.float32)
        )
        if self.normalization == "l2":
            text_dense = l2_rows_dense(text_dense)
            image = l2_rows_dense(image)
            text_sparse = l2_rows_sparse(text_sparse).tocsr()
        return Batch(text_dense, text_sparse, image, present, indicators)


def to_torch(batch: Batch) -> Tuple[Dict[str, "torch.Tensor"], "torch.Tensor", "torch.Tensor"]:
    """The tensors `FusionNetwork.forward` takes for `batch` (n rows).

    Returns:
        (inputs per branch: `float32 (n, d_text)` dense, `float32 (n, vocabulary)` sparse COO (coalesced),
        `float32 (n, d_image)` dense; present mask `float32 (n, 3)` of 0/1; indicators `float32 (n, 3)`).
    """
    import torch

    coo = batch.text_sparse.tocoo()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    with warnings.catch_warnings():  # torch warns once that it skips index checks; scipy's are valid
        warnings.filterwarnings("ignore", message="Sparse invariant checks")
        sparse = torch.sparse_coo_tensor(
            indices, torch.from_numpy(coo.data.astype(np.float32)), size=coo.shape
        ).coalesce()
    inputs = {
        TEXT_DENSE: torch.from_numpy(batch.text_dense),
        TEXT_SPARSE: sparse,
        IMAGE_BRANCH: torch.from_numpy(batch.image),
    }
    return inputs, torch.from_numpy(batch.present.astype(np.float32)), torch.from_numpy(batch.indicators)


# ------------------------------------------------------------------------------------------ training labels
@dataclass
class TrainingSet:
    """The labelled, usable training examples as model inputs and targets.

    Attributes:
        data: the inputs of the m examples.
        intents: intent names in output order (sorted).
        sentiment_labels: sentiment labels in output order (the config's).
        intent_targets: `int64 (m,)`, index into `intents`, -1 where the example has no intent.
        sentiment_targets: `int64 (m,)`, index into `sentiment_labels`, -1 where it has no sentiment label.
        strata: one `"<intent>\\x00<sentiment>"` string per example, for the stratified validation split.
        seen: per modality (`MODALITIES`), whether any example has it.
    """

    data: Batch
    intents: List[Text]
    sentiment_labels: List[Text]
    intent_targets: np.ndarray
    sentiment_targets: np.ndarray
    strata: List[Text]
    seen: Dict[Text, bool]

    @property
    def sentiment_trained(self) -> bool:
        """Whether any example has a sentiment label (otherwise the sentiment head predicts nothing)."""
        return int((self.sentiment_targets >= 0).sum()) > 0

    def counts(self) -> Dict[Text, Any]:
        """Example counts for the training report."""
        return {
            "examples": len(self.data),
            "intent_examples": int((self.intent_targets >= 0).sum()),
            "sentiment_examples": int((self.sentiment_targets >= 0).sum()),
            "sentiment_counts": {
                label: int((self.sentiment_targets == i).sum())
                for i, label in enumerate(self.sentiment_labels)
            },
        }


def training_set(
    examples: Sequence[Message], reader: FeatureReader, sentiment_labels: Sequence[Text], sentiment_key: Text
) -> Tuple[Optional[TrainingSet], Dict[Text, int]]:
    """The NLU examples with an intent and/or a known sentiment label, read into inputs and targets.

    Messages Rasa builds from stories and the domain (action names and texts) are left out; an example's
    intent counts only when it has text. Sentiment labels outside `sentiment_labels` are dropped with a
    warning.
    Labelled examples without any feature are skipped.

    Returns:
        (the training set, or None when no labelled example has features; the input width per branch).
    """
    messages: List[Message] = []
    intent_names: List[Optional[str]] = []
    sentiments: List[Optional[str]] = []
    unknown_sentiments: Dict[str, int] = {}
    for message in examples:
        if message.get(ACTION_NAME) or message.get(ACTION_TEXT):
            continue  # messages Rasa builds from stories and the domain
        intent = message.get(INTENT) if message.get(TEXT) else None
        sentiment = sentiment_label_of(message, sentiment_key)
        if sentiment is not None and sentiment not in sentiment_labels:
            unknown_sentiments[sentiment] = unknown_sentiments.get(sentiment, 0) + 1
            sentiment = None
        if not intent and sentiment is None:
            continue
        messages.append(message)
        intent_names.append(intent or None)
        sentiments.append(sentiment)
    if unknown_sentiments:
        logger.warning(
            "%s: ignored sentiment labels outside %s: %s.", NAME, list(sentiment_labels), unknown_sentiments
        )

    dims = reader.input_dims(messages)
    data = reader.collect(messages, dims, ALL_SEEN)
    keep = np.flatnonzero(data.usable)
    if len(keep) < len(messages):
        logger.info("%s: skipped %d labelled examples without features.", NAME, len(messages) - len(keep))
    if len(keep) == 0:
        logger.warning("%s: no labelled examples with features; the classifier stays untrained.", NAME)
        return None, dims
    data = data.rows(keep)
    intent_names = [intent_names[i] for i in keep]
    sentiments = [sentiments[i] for i in keep]
    seen = {
        "text": bool(data.indicators[:, MODALITIES.index("text")].any()),
        "image": bool(data.present[:, BRANCHES.index(IMAGE_BRANCH)].any()),
        "audio": bool(any(messages[i].get(TRANSCRIPT) for i in keep)),
    }
    if not seen["audio"]:
        data.indicators[:, MODALITIES.index("audio")] = 0.0

    intents = sorted({name for name in intent_names if name})
    intent_index = {name: i for i, name in enumerate(intents)}
    sentiment_index = {name: i for i, name in enumerate(sentiment_labels)}
    if len(intents) == 1:
        logger.warning("%s: only one intent (%r) in the training data.", NAME, intents[0])
    return (
        TrainingSet(
            data=data,
            intents=intents,
            sentiment_labels=list(sentiment_labels),
            intent_targets=np.array([intent_index[n] if n else -1 for n in intent_names], dtype=np.int64),
            sentiment_targets=np.array([sentiment_index[s] if s else -1 for s in sentiments], dtype=np.int64),
            strata=[f"{n or ''}\x00{s or ''}" for n, s in zip(intent_names, sentiments)],
            seen=seen,
        ),
        dims,
    )
