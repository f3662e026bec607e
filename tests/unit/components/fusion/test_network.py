"""components.fusion.network: each module alone, and the whole network against a hand-written forward pass."""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from components.fusion import BRANCHES, MODALITIES
from components.fusion.network import (
    Architecture,
    BranchProjections,
    CosineHead,
    FusionNetwork,
    Trunk,
    WidePath,
    intent_head,
)

DIMS = {"text_dense": 6, "text_sparse": 9, "image": 5}
N = 7


def batch(
    seed: int = 0, dims: Dict[str, int] = DIMS
) -> Tuple[Dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Random inputs of N rows: dense branches, a sparse COO branch, a 0/1 present mask and indicators."""
    generator = torch.Generator().manual_seed(seed)
    sparse = torch.rand((N, dims["text_sparse"]), generator=generator)
    sparse = torch.where(sparse > 0.7, sparse, torch.zeros_like(sparse))
    inputs = {
        "text_dense": torch.randn((N, dims["text_dense"]), generator=generator),
        "text_sparse": sparse.to_sparse().coalesce(),
        "image": torch.randn((N, dims["image"]), generator=generator),
    }
    present = (torch.rand((N, len(BRANCHES)), generator=generator) > 0.4).float()
    indicators = torch.stack([present[:, :2].max(dim=1).values, present[:, 2], torch.ones(N)], dim=1)
    return inputs, present, indicators


def randomise(module: nn.Module, seed: int = 1) -> nn.Module:
    """Every parameter drawn from N(0, 0.5²), so zero-initialised parts take part in the comparison too."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return module.eval()


def reference_forward(
    state: Dict[str, torch.Tensor],
    architecture: Architecture,
    n_intents: int,
    inputs: Dict[str, torch.Tensor],
    present: torch.Tensor,
    indicators: torch.Tensor,
) -> Tuple[Optional[torch.Tensor], torch.Tensor]:
    """The fusion network's forward pass in eval mode, written out with plain tensor operations."""
    dense = {name: x.to_dense() for name, x in inputs.items()}
    parts = []
    for column, name in enumerate(BRANCHES):
        if name not in architecture.trunk_branches or not DIMS[name]:
            continue
        if name == "text_sparse":
            projected = dense[name] @ state["projections.sparse_weight"] + state["projections.sparse_bias"]
        else:
            projected = dense[name] @ state[f"projections.dense.{name}.weight"].T
            projected = projected + state[f"projections.dense.{name}.bias"]
        projected = F.layer_norm(
            projected, (architecture.embedding_dimension,),
            state[f"projections.norms.{name}.weight"], state[f"projections.norms.{name}.bias"],
        )
        mask = present[:, column : column + 1]
        parts.append(mask * projected + (1 - mask) * state[f"projections.absent.{name}"])
    fused = torch.cat(parts + [indicators], dim=1)

    def mlp(prefix: str, x: torch.Tensor, sizes: Tuple[int, ...]) -> torch.Tensor:
        for layer in range(len(sizes)):
            x = torch.relu(x @ state[f"{prefix}.{3 * layer}.weight"].T + state[f"{prefix}.{3 * layer}.bias"])
        return x

    hidden = mlp("trunk", fused, architecture.hidden_layer_sizes)
    intent = None
    if n_intents:
        if architecture.intent_head == "cosine":
            weight = state["intent_head.weight"]
            unit_hidden = hidden / hidden.norm(dim=1, keepdim=True)
            intent = architecture.cosine_scale * unit_hidden @ (weight / weight.norm(dim=1, keepdim=True)).T
        else:
            intent = hidden @ state["intent_head.weight"].T + state["intent_head.bias"]
    if architecture.sentiment_hidden_layer_sizes:
        hidden = mlp("sentiment_trunk", fused, architecture.sentiment_hidden_layer_sizes)
    sentiment = hidden @ state["sentiment_head.weight"].T + state["sentiment_head.bias"]
    if architecture.wide_path:
        wide = indicators @ state["wide.indicators.weight"].T + state["wide.indicators.bias"]
        wide = wide + present[:, 0:1] * (dense["text_dense"] @ state["wide.dense.text_dense.weight"].T)
        wide = wide + present[:, 1:2] * (dense["text_sparse"] @ state["wide.sparse"])
        wide = wide + present[:, 2:3] * (dense["image"] @ state["wide.dense.image.weight"].T)
        intent = None if intent is None else intent + wide[:, :n_intents]
        sentiment = sentiment + wide[:, n_intents:]
    return intent, sentiment


ARCHITECTURES = {
    "wide and deep": Architecture(8, (12,), 0.5, trunk_branches=("text_dense", "image"), wide_path=True),
    "deep only": Architecture(8, (12, 10), 0.2),
    "cosine head, own sentiment trunk": Architecture(
        8, (12,), 0.5, sentiment_hidden_layer_sizes=(6,), intent_head="cosine", cosine_scale=5.0,
        wide_path=True,
    ),
    "no hidden layer, no trunk branch": Architecture(4, (), 0.1, trunk_branches=(), wide_path=True),
}


# ---------------------------------------------------------------------------------------------- whole network
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_forward_pass_equals_the_hand_written_reference(name):
    architecture = ARCHITECTURES[name]
    network = randomise(FusionNetwork(DIMS, 4, 3, architecture))
    inputs, present, indicators = batch()
    with torch.no_grad():
        intent, sentiment = network(inputs, present, indicators)
        expected_intent, expected_sentiment = reference_forward(
            network.state_dict(), architecture, 4, inputs, present, indicators
        )
    assert intent.shape == (N, 4) and sentiment.shape == (N, 3)
    assert intent.dtype == sentiment.dtype == torch.float32
    assert torch.allclose(intent, expected_intent, atol=1e-5)
    assert torch.allclose(sentiment, expected_sentiment, atol=1e-5)


def test_without_intents_there_is_no_intent_head():
    network = FusionNetwork(DIMS, 0, 3, ARCHITECTURES["wide and deep"]).eval()
    intent, sentiment = network(*batch())
    assert network.intent_head is None and intent is None and sentiment.shape == (N, 3)


def test_the_same_seed_builds_the_same_weights():
    def build(seed: int) -> Dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        return FusionNetwork(DIMS, 4, 3, ARCHITECTURES["cosine head, own sentiment trunk"]).state_dict()

    first, second, other = build(5), build(5), build(6)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["trunk.0.weight"], other["trunk.0.weight"])


def test_modules_and_parameters_of_the_configured_branches_only():
    network = FusionNetwork({**DIMS, "image": 0}, 4, 3, ARCHITECTURES["wide and deep"])
    assert network.projections.branches == ["text_dense"]  # image has no input, text_sparse is wide only
    assert network.wide.branches == ["text_dense", "text_sparse"]
    assert {id(p) for p in network.wide_parameters()} == {id(p) for p in network.wide.parameters()}
    assert FusionNetwork(DIMS, 4, 3, ARCHITECTURES["deep only"]).wide_parameters() == []


def test_a_modality_never_trained_has_zero_weight_in_every_first_layer():
    network = FusionNetwork(DIMS, 4, 3, ARCHITECTURES["cosine head, own sentiment trunk"])
    indicators = slice(-len(MODALITIES), None)
    assert not network.trunk[0].weight.detach()[:, indicators].any()
    assert not network.sentiment_trunk[0].weight.detach()[:, indicators].any()
    assert not any(p.detach().any() for p in network.wide.parameters())


# ---------------------------------------------------------------------------------------------------- modules
def test_cosine_head_scores_are_scaled_cosines():
    head = CosineHead(5, 3, scale=10.0)
    x = torch.randn(4, 5) * 100.0
    with torch.no_grad():
        scores = head(x)
        expected = 10.0 * F.cosine_similarity(x[:, None, :], head.weight[None, :, :], dim=2)
    assert head.weight.shape == (3, 5) and scores.shape == (4, 3)
    assert torch.allclose(scores, expected, atol=1e-5) and float(scores.abs().max()) <= 10.0 + 1e-4


def test_intent_head_kinds():
    assert isinstance(intent_head("linear", 5, 3, 20.0), nn.Linear)
    cosine = intent_head("cosine", 5, 3, 7.0)
    assert isinstance(cosine, CosineHead) and cosine.scale == 7.0


def test_trunk_layers_width_and_identity():
    trunk = Trunk(10, (8, 6), 0.3, indicator_inputs=3)
    assert trunk.width == 6
    assert [type(m) for m in trunk] == [nn.Linear, nn.ReLU, nn.Dropout] * 2
    assert not trunk[0].weight.detach()[:, -3:].any() and trunk[0].weight.detach()[:, :-3].any()
    empty = Trunk(10, (), 0.3, indicator_inputs=3)
    x = torch.randn(2, 10)
    assert empty.width == 10 and torch.equal(empty(x), x)


def test_branch_projections_put_the_absent_embedding_where_a_branch_is_missing():
    projections = randomise(BranchProjections(DIMS, BRANCHES, 4))
    inputs, present, _ = batch()
    with torch.no_grad():
        out = projections(inputs, present)
    assert out.shape == (N, 4 * len(BRANCHES)) and projections.width == 12
    for column, name in enumerate(BRANCHES):
        block = out[:, 4 * column : 4 * column + 4]
        absent = present[:, column] == 0
        assert torch.equal(block[absent], projections.absent[name].detach().expand(int(absent.sum()), 4))
        with torch.no_grad():
            x = inputs[name].to_dense()[~absent]
            if name == "text_sparse":
                projected = x @ projections.sparse_weight + projections.sparse_bias
            else:
                projected = projections.dense[name](x)
            assert torch.allclose(block[~absent], projections.norms[name](projected), atol=1e-5)
    none = BranchProjections(DIMS, (), 4)
    assert none(inputs, present).shape == (N, 0) and none.width == 0


def test_wide_path_starts_at_zero_and_adds_nothing_for_absent_branches():
    wide = WidePath(DIMS, 5)
    inputs, present, indicators = batch()
    assert torch.equal(wide(inputs, present, indicators).detach(), torch.zeros(N, 5))
    randomise(wide)
    nothing = torch.zeros_like(present)
    with torch.no_grad():
        only_indicators = wide(inputs, nothing, indicators)
        expected = indicators @ wide.indicators.weight.T + wide.indicators.bias
    assert torch.allclose(only_indicators, expected, atol=1e-6)


# ----------------------------------------------------------------------------------------------- architecture
def test_architecture_round_trips_through_json():
    architecture = ARCHITECTURES["cosine head, own sentiment trunk"]
    assert Architecture.from_json(architecture.to_json()) == architecture
    assert architecture.to_json()["hidden_layer_sizes"] == [12]  # JSON lists, not tuples


def test_architecture_of_a_model_stored_before_the_later_keys():
    old = {"embedding_dimension": 128, "hidden_layer_sizes": [256], "dropout": 0.3}
    assert Architecture.from_json(old) == Architecture(
        128, (256,), 0.3, sentiment_hidden_layer_sizes=(), intent_head="linear", cosine_scale=20.0,
        trunk_branches=BRANCHES, wide_path=False,
    )


def test_architecture_from_the_component_config():
    from components.fusion_classifier import MultimodalFusionClassifier

    architecture = Architecture.from_json(MultimodalFusionClassifier.get_default_config())
    assert architecture == dataclasses.replace(
        architecture, embedding_dimension=128, hidden_layer_sizes=(256,), dropout=0.5,
        trunk_branches=("text_dense", "image"), wide_path=True,
    )
