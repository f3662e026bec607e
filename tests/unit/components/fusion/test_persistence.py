"""components.fusion.persistence: the stored files, their tensor names and the format version."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import RasaException
from safetensors import safe_open

from components.fusion.network import Architecture, FusionNetwork
from components.fusion.persistence import (
    FORMAT_VERSION,
    META_FILE,
    WEIGHTS_FILE,
    load,
    module_state,
    restore_network,
    save,
    stored_state,
)

DIMS = {"text_dense": 6, "text_sparse": 9, "image": 5}
ARCHITECTURE = Architecture(4, (8,), 0.5, sentiment_hidden_layer_sizes=(3,), wide_path=True)

#: Tensor names of format version 1 (the network above: every branch in the trunk, a wide path).
FORMAT_1_NAMES = {
    "wide_dense.text_dense.weight", "wide_dense.image.weight", "wide_sparse",
    "wide_indicators.weight", "wide_indicators.bias",
    "dense_projections.text_dense.weight", "dense_projections.text_dense.bias",
    "dense_projections.image.weight", "dense_projections.image.bias", "sparse_weight", "sparse_bias",
    *(f"norms.{b}.{p}" for b in DIMS for p in ("weight", "bias")), *(f"absent.{b}" for b in DIMS),
    "trunk.0.weight", "trunk.0.bias", "intent_head.weight", "intent_head.bias",
    "sentiment_trunk.0.weight", "sentiment_trunk.0.bias", "sentiment_head.weight", "sentiment_head.bias",
}


def meta(**changes):
    return {"format_version": FORMAT_VERSION, "intents": ["a", "b"], "sentiment_labels": ["x", "y", "z"],
            "dims": DIMS, "architecture": ARCHITECTURE.to_json(), **changes}


def test_stored_tensor_names_are_those_of_format_1():
    state = FusionNetwork(DIMS, 2, 3, ARCHITECTURE).state_dict()
    assert set(stored_state(state)) == FORMAT_1_NAMES
    assert module_state(stored_state(state)).keys() == state.keys()


def test_save_and_load_give_the_same_network(model_storage):
    network = FusionNetwork(DIMS, 2, 3, ARCHITECTURE).eval()
    save(model_storage, Resource("fusion"), network, meta(training={"epochs_run": 1}))
    with model_storage.read_from(Resource("fusion")) as directory:
        assert sorted(p.name for p in Path(directory).iterdir()) == sorted([META_FILE, WEIGHTS_FILE])
        with safe_open(str(Path(directory) / WEIGHTS_FILE), framework="pt") as handle:
            assert set(handle.keys()) == FORMAT_1_NAMES
        assert json.loads((Path(directory) / META_FILE).read_text())["training"] == {"epochs_run": 1}
    stored = load(model_storage, Resource("fusion"))
    restored = restore_network(stored)
    assert not restored.training
    original, loaded = network.state_dict(), restored.state_dict()
    assert original.keys() == loaded.keys() and all(torch.equal(original[k], loaded[k]) for k in original)


def test_an_empty_resource_holds_no_model(model_storage):
    assert load(model_storage, Resource("never-trained")) is None


def test_another_format_version_is_refused(model_storage):
    save(model_storage, Resource("fusion"), FusionNetwork(DIMS, 2, 3, ARCHITECTURE), meta(format_version=99))
    with pytest.raises(RasaException, match="format 99 is not 1; train the model again"):
        load(model_storage, Resource("fusion"))


def test_weights_that_do_not_match_the_metadata_are_refused(model_storage):
    network = FusionNetwork(DIMS, 2, 3, ARCHITECTURE)
    save(model_storage, Resource("fusion"), network, meta(intents=["a", "b", "c"]))
    with pytest.raises(RasaException, match="stored weights do not match their metadata"):
        restore_network(load(model_storage, Resource("fusion")))
