"""The trained fusion classifier in its resource: weights as safetensors, everything else as JSON; no pickle.

Files (written with `model_storage.write_to(resource)`):

- `fusion_classifier.safetensors`: the network's state_dict, `float32` tensors;
- `fusion_classifier.json`: `format_version`, `intents` and `sentiment_labels` (output order),
  `sentiment_trained`, `dims` (input width per branch), `seen` (modalities training had), `architecture`
  (`Architecture.to_json`), `config` (the component config) and `training` (the training report).

The tensor names in the file are those of format version 1, from before the network's parts became modules
of their own (`wide_dense.image.weight`, `sparse_weight`, `norms.text_dense.weight`, ...): `STORED_NAMES` maps
them to the module names, so models trained before still load and new files keep the same layout. Models
stored before the wide path existed lack `wide_path` and `trunk_branches` in `architecture`;
`Architecture.from_json` gives them the values they were trained with.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Text, Tuple

from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.exceptions import RasaException

from components.fusion import NAME

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "fusion_classifier.safetensors"
META_FILE = "fusion_classifier.json"
FORMAT_VERSION = 1

#: (module name prefix, stored name prefix); names matching no prefix are stored as they are.
STORED_NAMES: Tuple[Tuple[Text, Text], ...] = (
    ("projections.dense.", "dense_projections."),
    ("projections.sparse_weight", "sparse_weight"),
    ("projections.sparse_bias", "sparse_bias"),
    ("projections.norms.", "norms."),
    ("projections.absent.", "absent."),
    ("wide.dense.", "wide_dense."),
    ("wide.sparse", "wide_sparse"),
    ("wide.indicators.", "wide_indicators."),
)


def _renamed(name: Text, pairs: Tuple[Tuple[Text, Text], ...]) -> Text:
    for old, new in pairs:
        if name.startswith(old):
            return new + name[len(old) :]
    return name


def stored_state(state: Mapping[Text, Any]) -> Dict[Text, Any]:
    """`state` (module names) with the tensor names of the file format."""
    return {_renamed(name, STORED_NAMES): value for name, value in state.items()}


def module_state(stored: Mapping[Text, Any]) -> Dict[Text, Any]:
    """A stored state (file names) with the network's module names."""
    reverse = tuple((new, old) for old, new in STORED_NAMES)
    return {_renamed(name, reverse): value for name, value in stored.items()}


@dataclass
class StoredModel:
    """What a resource holds: the metadata and the state_dict with module names."""

    meta: Dict[Text, Any]
    state: Dict[Text, Any]


def save(model_storage: ModelStorage, resource: Resource, network: Any, meta: Mapping[Text, Any]) -> None:
    """Writes the network's weights (safetensors) and `meta` (UTF-8 JSON, sorted keys) to `resource`."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().clone() for k, v in network.state_dict().items()}
    with model_storage.write_to(resource) as directory:
        save_file(stored_state(state), str(Path(directory) / WEIGHTS_FILE), metadata={"format": "pt"})
        (Path(directory) / META_FILE).write_text(
            json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False), encoding="utf-8"
        )


def load(model_storage: ModelStorage, resource: Resource) -> Optional[StoredModel]:
    """Reads a stored model; None when the resource holds none (the component was never trained).

    Raises:
        RasaException: if the stored model is of another format version.
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
        logger.debug("%s: no trained model in resource '%s'; it stays untrained.", NAME, resource.name)
        return None
    if meta.get("format_version") != FORMAT_VERSION:
        raise RasaException(
            f"{NAME}: stored model format {meta.get('format_version')!r} is not {FORMAT_VERSION}; "
            f"train the model again."
        )
    return StoredModel(meta, module_state(state))


def restore_network(stored: StoredModel) -> Any:
    """The `FusionNetwork` of a stored model, with its weights, in eval mode.

    Raises:
        RasaException: if the weights do not match the metadata.
    """
    from components.fusion.network import Architecture, FusionNetwork

    meta = stored.meta
    network = FusionNetwork(
        {k: int(v) for k, v in meta["dims"].items()},
        len(meta["intents"]),
        len(meta["sentiment_labels"]),
        Architecture.from_json(meta["architecture"]),
    )
    try:
        network.load_state_dict(stored.state, strict=True)
    except RuntimeError as error:
        raise RasaException(f"{NAME}: stored weights do not match their metadata: {error}") from error
    return network.eval()
