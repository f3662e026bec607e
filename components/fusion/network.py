"""The fusion network: text, image and audio signals in, intent and sentiment logits out ("wide and deep").

Two paths add their logits for each head:

- the deep path: every branch in `trunk_branches` is projected to `embedding_dimension` units and
  layer-normalised (`BranchProjections`; an absent branch takes its learned "absent" embedding instead), the
  projections and the three modality indicators are concatenated (the fused input) and go through the
  `Trunk` (Linear → ReLU → Dropout layers) into the intent head (`nn.Linear` or `CosineHead`) and the
  sentiment head (on the shared trunk, or on its own `Trunk` from the fused input);
- the wide path (`WidePath`): a linear map from every branch's normalised input (zeros where absent) and the
  indicators straight to both heads' logits (Cheng et al. 2016, "Wide & Deep Learning for Recommender
  Systems"). On sentence embeddings and count vectors this linear path generalises better than the
  projections (a multinomial logistic regression on the same features beats a trunk that sees them only
  through a 128-unit projection), and the trunk adds what is not linear, e.g. text and photo together.

Inputs (see `components.fusion.features.to_torch`), for a batch of n rows:
`inputs[branch]`: `float32 (n, dims[branch])`, a sparse COO tensor for "text_sparse"; `present`:
`float32 (n, 3)` 0/1 per branch of `BRANCHES`; `indicators`: `float32 (n, 3)` 0/1 per entry of `MODALITIES`.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Dict, List, Mapping, Optional, Sequence, Text, Tuple

import torch
from torch import nn

from components.fusion import BRANCHES, MODALITIES, TEXT_SPARSE


@dataclass(frozen=True)
class Architecture:
    """The hyperparameters that shape a `FusionNetwork` (the `architecture` entry of the stored metadata).

    The defaults of the optional fields are what a model stored before the field existed was built with.

    Attributes:
        embedding_dimension: width of each branch projection and absent embedding (units).
        hidden_layer_sizes: units per layer of the shared trunk (() feeds the fused input to the heads).
        dropout: dropout probability on the fused input and after each hidden layer.
        sentiment_hidden_layer_sizes: units per layer of the sentiment head's own trunk (() shares the trunk).
        intent_head: "linear" (affine layer) or "cosine" (`CosineHead`).
        cosine_scale: the cosine head's logit scale (inverse softmax temperature).
        trunk_branches: branches projected into the fused input (the others reach the heads through the wide
            path only).
        wide_path: whether the `WidePath` adds its logits.
    """

    embedding_dimension: int
    hidden_layer_sizes: Tuple[int, ...]
    dropout: float
    sentiment_hidden_layer_sizes: Tuple[int, ...] = ()
    intent_head: Text = "linear"
    cosine_scale: float = 20.0
    trunk_branches: Tuple[Text, ...] = BRANCHES
    wide_path: bool = False

    @classmethod
    def from_json(cls, values: Mapping[Text, Any]) -> "Architecture":
        """From the component config or the stored metadata; keys added in later versions may be missing."""
        default = {field.name: field.default for field in fields(cls)}

        def get(key: Text) -> Any:
            return values.get(key, default[key])

        return cls(
            embedding_dimension=int(values["embedding_dimension"]),
            hidden_layer_sizes=tuple(int(s) for s in values["hidden_layer_sizes"]),
            dropout=float(values["dropout"]),
            sentiment_hidden_layer_sizes=tuple(int(s) for s in get("sentiment_hidden_layer_sizes")),
            intent_head=str(get("intent_head")),
            cosine_scale=float(get("cosine_scale")),
            trunk_branches=tuple(get("trunk_branches")),
            wide_path=bool(get("wide_path")),
        )

    def to_json(self) -> Dict[Text, Any]:
        """The JSON form stored in the model's metadata (lists, not tuples)."""
        return {
            "embedding_dimension": self.embedding_dimension,
            "hidden_layer_sizes": list(self.hidden_layer_sizes),
            "sentiment_hidden_layer_sizes": list(self.sentiment_hidden_layer_sizes),
            "dropout": self.dropout,
            "intent_head": self.intent_head,
            "cosine_scale": self.cosine_scale,
            "trunk_branches": list(self.trunk_branches),
            "wide_path": self.wide_path,
        }


def _branch_mask(present: torch.Tensor, name: Text) -> torch.Tensor:
    """`float32 (n, 1)`: the `present` column of branch `name`."""
    return present[:, BRANCHES.index(name)].unsqueeze(1)


class CosineHead(nn.Module):
    """Scores each class by the cosine between the input and the class's weight vector, times `scale`.

    `logits = scale * normalize(x) @ normalize(weight).T` (normalised softmax: Wang et al. 2017, "NormFace").
    Input `float32 (n, width)`, output `float32 (n, n_classes)` in `[-scale, scale]`; `weight` is
    `float32 (n_classes, width)`, initialised from N(0, 0.02²).
    """

    def __init__(self, width: int, n_classes: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(torch.randn(n_classes, width) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normalize = torch.nn.functional.normalize
        return self.scale * normalize(x, dim=1) @ normalize(self.weight, dim=1).T


def intent_head(kind: Text, width: int, n_classes: int, scale: float) -> nn.Module:
    """The intent head: `nn.Linear(width, n_classes)` for "linear", `CosineHead` for "cosine"."""
    return CosineHead(width, n_classes, scale) if kind == "cosine" else nn.Linear(width, n_classes)


class Trunk(nn.Sequential):
    """`sizes` Linear → ReLU → Dropout layers; with no sizes the input passes unchanged.

    Input `float32 (n, in_width)`, output `float32 (n, width)` (`width` is the last size, or `in_width`).
    The first layer's weights for the last `indicator_inputs` input columns (the modality indicators) start at
    zero: a modality never seen in training keeps a zero weight, so switching its indicator on cannot move the
    prediction by an amount nothing was trained for.
    """

    def __init__(
        self, in_width: int, sizes: Sequence[int], dropout: float, indicator_inputs: int = 0
    ) -> None:
        layers: List[nn.Module] = []
        width = in_width
        for size in sizes:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        super().__init__(*layers)
        self.width = width
        if layers and indicator_inputs > 0:
            with torch.no_grad():
                first: nn.Linear = layers[0]  # type: ignore[assignment]
                first.weight[:, -indicator_inputs:] = 0.0


class BranchProjections(nn.Module):
    """Per branch: a projection to `embedding_dimension` units + LayerNorm, or a learned "absent" embedding.

    Each branch of `branches` with `dims[branch] > 0` gets a Linear projection followed by a LayerNorm (so the
    scale of a featurizer's output does not matter); the sparse branch multiplies the sparse batch with its
    weight (`torch.sparse.mm`), never densifying the vocabulary. Where a row lacks the branch, the branch's
    learned absent embedding (`float32 (embedding_dimension,)`, N(0, 0.02²) at first) stands in. A learned
    embedding rather than zeros + mask: zeros are a real input (a blank text gets all-zero MiniLM features),
    and the absent embedding gives "nothing there" its own trained point.

    Output: `float32 (n, width)`, the branches' embeddings side by side in `BRANCHES` order,
    `width = embedding_dimension * len(self.branches)`.
    """

    def __init__(self, dims: Mapping[Text, int], branches: Sequence[Text], embedding_dimension: int) -> None:
        super().__init__()
        self.branches = [name for name in BRANCHES if dims.get(name, 0) > 0 and name in branches]
        self.width = embedding_dimension * len(self.branches)
        self.dense = nn.ModuleDict(
            {
                name: nn.Linear(dims[name], embedding_dimension)
                for name in self.branches
                if name != TEXT_SPARSE
            }
        )
        if TEXT_SPARSE in self.branches:
            self.sparse_weight = nn.Parameter(torch.empty(dims[TEXT_SPARSE], embedding_dimension))
            self.sparse_bias = nn.Parameter(torch.zeros(embedding_dimension))
            nn.init.normal_(self.sparse_weight, std=0.02)
        self.norms = nn.ModuleDict({name: nn.LayerNorm(embedding_dimension) for name in self.branches})
        self.absent = nn.ParameterDict(
            {name: nn.Parameter(torch.randn(embedding_dimension) * 0.02) for name in self.branches}
        )

    def forward(self, inputs: Mapping[Text, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        parts = []
        for name in self.branches:
            if name == TEXT_SPARSE:
                projected = torch.sparse.mm(inputs[name], self.sparse_weight) + self.sparse_bias
            else:
                projected = self.dense[name](inputs[name])
            projected = self.norms[name](projected)
            mask = _branch_mask(present, name)
            parts.append(mask * projected + (1.0 - mask) * self.absent[name])
        if not parts:
            return present.new_zeros((present.shape[0], 0))
        return torch.cat(parts, dim=1)


class WidePath(nn.Module):
    """A linear map from every branch's input and the modality indicators to `n_outputs` logits.

    Every branch with `dims[branch] > 0` gets a weight matrix `(dims[branch], n_outputs)` without bias (the
    sparse one multiplied with `torch.sparse.mm`), masked by `present` (an absent branch adds nothing); the
    indicators get an affine layer, which carries "absent". Every weight starts at zero, so a branch or
    modality never seen in training keeps a zero weight. Output: `float32 (n, n_outputs)`.
    """

    def __init__(self, dims: Mapping[Text, int], n_outputs: int) -> None:
        super().__init__()
        self.branches = [name for name in BRANCHES if dims.get(name, 0) > 0]
        self.dense = nn.ModuleDict(
            {
                name: nn.Linear(dims[name], n_outputs, bias=False)
                for name in self.branches
                if name != TEXT_SPARSE
            }
        )
        if TEXT_SPARSE in self.branches:
            self.sparse = nn.Parameter(torch.zeros(dims[TEXT_SPARSE], n_outputs))
        self.indicators = nn.Linear(len(MODALITIES), n_outputs)
        for parameter in self.parameters():
            nn.init.zeros_(parameter)

    def forward(
        self, inputs: Mapping[Text, torch.Tensor], present: torch.Tensor, indicators: torch.Tensor
    ) -> torch.Tensor:
        wide = self.indicators(indicators)
        for name in self.branches:
            mask = _branch_mask(present, name)
            if name == TEXT_SPARSE:
                wide = wide + mask * torch.sparse.mm(inputs[name], self.sparse)
            else:
                wide = wide + mask * self.dense[name](inputs[name])
        return wide


class FusionNetwork(nn.Module):
    """Intent and sentiment logits from the branch inputs, their presence and the modality indicators.

    The fused input is `BranchProjections` output + indicators, `float32 (n, projections.width + 3)`, after
    dropout. The intent head (none when `n_intents` is 0) reads the shared `Trunk`; the sentiment head reads
    the shared trunk, or its own trunk on the fused input when `sentiment_hidden_layer_sizes` is set. With
    `wide_path`, `WidePath` logits are added to both heads' (intents first, then sentiments).

    The modules are created in a fixed order (wide path, projections, trunk, heads), so a seed gives the same
    weights every time. The wide path's parameters are `wide_parameters()` (they get their own step size).

    Args:
        dims: input width per branch (0: the branch is never present).
        n_intents: intents in output order (0: no intent head).
        n_sentiments: sentiment labels in output order.
        architecture: the hyperparameters.
    """

    def __init__(
        self, dims: Mapping[Text, int], n_intents: int, n_sentiments: int, architecture: Architecture
    ) -> None:
        super().__init__()
        self.n_intents = n_intents
        self.wide: Optional[WidePath] = (
            WidePath(dims, n_intents + n_sentiments) if architecture.wide_path else None
        )
        self.projections = BranchProjections(
            dims, architecture.trunk_branches, architecture.embedding_dimension
        )
        self.input_dropout = nn.Dropout(architecture.dropout)
        fused_width = self.projections.width + len(MODALITIES)
        self.trunk = Trunk(
            fused_width, architecture.hidden_layer_sizes, architecture.dropout, len(MODALITIES)
        )
        self.intent_head: Optional[nn.Module] = None
        if n_intents > 0:
            self.intent_head = intent_head(
                architecture.intent_head, self.trunk.width, n_intents, architecture.cosine_scale
            )
        self.sentiment_trunk: Optional[Trunk] = None
        sentiment_width = self.trunk.width
        if architecture.sentiment_hidden_layer_sizes:
            self.sentiment_trunk = Trunk(
                fused_width, architecture.sentiment_hidden_layer_sizes, architecture.dropout, len(MODALITIES)
            )
            sentiment_width = self.sentiment_trunk.width
        self.sentiment_head = nn.Linear(sentiment_width, n_sentiments)

    def wide_parameters(self) -> List[nn.Parameter]:
        """The wide path's parameters (empty without the wide path)."""
        return [] if self.wide is None else list(self.wide.parameters())

    def forward(
        self, inputs: Mapping[Text, torch.Tensor], present: torch.Tensor, indicators: torch.Tensor
    ) -> Tuple[Optional[torch.Tensor], torch.Tensor]:
        """(intent logits `float32 (n, n_intents)` or None without intents, sentiment logits
        `float32 (n, n_sentiments)`); see the module docstring for the inputs."""
        fused = self.input_dropout(torch.cat([self.projections(inputs, present), indicators], dim=1))
        hidden = self.trunk(fused)
        intent_logits = self.intent_head(hidden) if self.intent_head is not None else None
        sentiment_hidden = hidden if self.sentiment_trunk is None else self.sentiment_trunk(fused)
        sentiment_logits = self.sentiment_head(sentiment_hidden)
        if self.wide is not None:
            wide = self.wide(inputs, present, indicators)
            if intent_logits is not None:
                intent_logits = intent_logits + wide[:, : self.n_intents]
            sentiment_logits = sentiment_logits + wide[:, self.n_intents :]
        return intent_logits, sentiment_logits
