"""The trained OutOfScopeDetector in its resource: embeddings as safetensors, the vocabulary as JSON; no pickle.

Files (written with ``model_storage.write_to(resource)``):

- ``scope.safetensors``: ``in_domain`` ``float32 (n_in, d)`` and ``out_of_scope`` ``float32 (n_oos, d)``,
  the L2-normalised sentence embeddings of the training examples;
- ``scope.json``: ``format_version``, ``training_words`` and ``english_words`` (sorted lists), ``dims``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.exceptions import RasaException

from components.scope import NAME

WEIGHTS_FILE = "scope.safetensors"
META_FILE = "scope.json"
FORMAT_VERSION = 1

__all__ = ["ScopeIndex", "load_index", "save_index"]


@dataclass(frozen=True)
class ScopeIndex:
    """What training leaves: reference embeddings and vocabularies.

    Attributes:
        in_domain: ``float32 (n_in, d)`` embeddings of in-domain examples.
        out_of_scope: ``float32 (n_oos, d)`` embeddings of ``out_of_scope`` examples.
        training_words: normalised tokens of the training data.
        english_words: whole words of the text encoder's vocabulary.
    """

    in_domain: np.ndarray
    out_of_scope: np.ndarray
    training_words: frozenset
    english_words: frozenset


def save_index(index: ScopeIndex, model_storage: ModelStorage, resource: Resource) -> None:
    """Write ``index`` into the resource (see the module docstring)."""
    from safetensors.numpy import save_file

    with model_storage.write_to(resource) as directory:
        save_file(
            {
                "in_domain": np.ascontiguousarray(index.in_domain, dtype=np.float32),
                "out_of_scope": np.ascontiguousarray(index.out_of_scope, dtype=np.float32),
            },
            str(Path(directory) / WEIGHTS_FILE),
        )
        meta = {
            "format_version": FORMAT_VERSION,
            "dims": int(index.in_domain.shape[1]) if index.in_domain.ndim == 2 else 0,
            "training_words": sorted(index.training_words),
            "english_words": sorted(index.english_words),
        }
        (Path(directory) / META_FILE).write_text(json.dumps(meta), encoding="utf-8")


def load_index(model_storage: ModelStorage, resource: Resource) -> ScopeIndex:
    """Read what :func:`save_index` wrote.

    Raises:
        ValueError: the resource does not exist (Rasa's model storage raises it).
        RasaException: a file is missing or its format version is not this code's.
    """
    from safetensors.numpy import load_file

    with model_storage.read_from(resource) as directory:
        meta_path, weights_path = Path(directory) / META_FILE, Path(directory) / WEIGHTS_FILE
        if not meta_path.is_file() or not weights_path.is_file():
            raise RasaException(f"{NAME}: the trained index is incomplete in {directory}")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise RasaException(
                f"{NAME}: stored format {meta.get('format_version')} is not {FORMAT_VERSION}; retrain the model"
            )
        tensors = load_file(str(weights_path))
    return ScopeIndex(
        in_domain=tensors["in_domain"],
        out_of_scope=tensors["out_of_scope"],
        training_words=frozenset(meta["training_words"]),
        english_words=frozenset(meta["english_words"]),
    )
