"""Training the fusion network: Adam, masked cross-entropies, early stopping, refit on all data.

`train_network` seeds python, numpy and torch, holds out a validation split stratified by (intent, sentiment
label), and runs `fit`: Adam (the wide path with its own step size and no L2 penalty), mini-batches of
`batch_size`, each head's cross-entropy averaged over the examples that have its label (optionally
label-smoothed), modality dropout, and early stopping after `early_stopping_patience` epochs without a better
validation score (the best epoch's weights are kept). With `refit_on_all_data` a fresh network is then trained
on every example for the best epoch count.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Text, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from components.fusion import BRANCHES, IMAGE_BRANCH, NAME, TEXT_DENSE, TEXT_SPARSE
from components.fusion.features import Batch, TrainingSet, to_torch
from components.fusion.inference import predict_logits
from components.fusion.network import FusionNetwork
from assistant.torch_runtime import seed_everything

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingSettings:
    """The training hyperparameters, as the component's config keys of the same names give them."""

    learning_rate: float
    wide_learning_rate: float
    weight_decay: float
    batch_size: int
    epochs: int
    early_stopping_patience: int
    early_stopping_metric: Text
    modality_dropout: float
    label_smoothing: float
    intent_loss_weight: float
    sentiment_loss_weight: float
    validation_split: float
    refit_on_all_data: bool
    random_seed: int

    @classmethod
    def from_config(cls, config: Mapping[Text, Any]) -> "TrainingSettings":
        """The settings of a (validated) component config."""
        casts: Dict[Text, Callable[[Any], Any]] = {"float": float, "int": int, "Text": str, "bool": bool}
        return cls(**{field.name: casts[str(field.type)](config[field.name]) for field in fields(cls)})


def masked_cross_entropy(
    logits: Optional[torch.Tensor], targets: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Mean cross-entropy over the rows whose target is ≥ 0; 0 (still differentiable) when there are none.

    Args:
        logits: `float (batch, classes)`, or None (no head) which gives 0.
        targets: `int64 (batch,)`, -1 for "no label".
        label_smoothing: share of each target's probability mass spread uniformly over the classes (0 ≤ x < 1;
            Szegedy et al. 2016, "Rethinking the Inception Architecture").

    Returns:
        The loss, a `float` scalar tensor.
    """
    if logits is None:
        return torch.zeros(())
    labelled = int((targets >= 0).sum())
    if labelled == 0:
        return logits.sum() * 0.0
    return (
        F.cross_entropy(logits, targets, ignore_index=-1, reduction="sum", label_smoothing=label_smoothing)
        / labelled
    )


def combined_loss(
    settings: TrainingSettings,
    intent_logits: Optional[torch.Tensor],
    sentiment_logits: torch.Tensor,
    intent_targets: torch.Tensor,
    sentiment_targets: torch.Tensor,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """`intent_loss_weight * CE(intent) + sentiment_loss_weight * CE(sentiment)`, both masked (see above)."""
    return settings.intent_loss_weight * masked_cross_entropy(
        intent_logits, intent_targets, label_smoothing
    ) + settings.sentiment_loss_weight * masked_cross_entropy(
        sentiment_logits, sentiment_targets, label_smoothing
    )


def drop_modalities(present: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
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
    groups = [[BRANCHES.index(TEXT_DENSE), BRANCHES.index(TEXT_SPARSE)], [BRANCHES.index(IMAGE_BRANCH)]]
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


def _accuracy(logits: Optional[torch.Tensor], targets: torch.Tensor) -> Optional[float]:
    """Share of the labelled rows (target ≥ 0) whose argmax is the target; None without labels or head."""
    mask = targets >= 0
    if logits is None or not bool(mask.any()):
        return None
    return float((logits.argmax(dim=1)[mask] == targets[mask]).float().mean())


def evaluate(
    network: FusionNetwork,
    data: Batch,
    index: np.ndarray,
    intent_targets: torch.Tensor,
    sentiment_targets: torch.Tensor,
    settings: TrainingSettings,
) -> Tuple[float, Optional[float], Optional[float]]:
    """(loss, intent accuracy, sentiment accuracy) on the rows `index`; accuracies None without labels."""
    network.eval()
    intent_logits, sentiment_logits = predict_logits(network, data.rows(index), settings.batch_size)
    t_i, t_s = intent_targets[index], sentiment_targets[index]
    with torch.no_grad():
        loss = float(combined_loss(settings, intent_logits, sentiment_logits, t_i, t_s))
    return loss, _accuracy(intent_logits, t_i), _accuracy(sentiment_logits, t_s)


def validation_score(
    settings: TrainingSettings, intent_acc: Optional[float], sentiment_acc: Optional[float]
) -> float:
    """The heads' validation accuracies averaged with their loss weights (heads without labels left out)."""
    pairs = [(settings.intent_loss_weight, intent_acc), (settings.sentiment_loss_weight, sentiment_acc)]
    pairs = [(w, a) for w, a in pairs if a is not None and w > 0]
    total = sum(w for w, _ in pairs)
    return sum(w * a for w, a in pairs) / total if total > 0 else 0.0


def _optimizer(network: FusionNetwork, settings: TrainingSettings) -> torch.optim.Optimizer:
    """Adam; the wide path with `wide_learning_rate` and no L2 penalty.

    Adam's L2 penalty stays off the wide path: Adam divides each gradient by its running scale, so for the
    weight of a rare n-gram, whose data gradient is zero in most batches, the penalty alone would take
    full-size steps towards zero (measured: -1.5 points of BANKING77 accuracy with weight_decay 1e-4).
    """
    wide = network.wide_parameters()
    wide_ids = {id(parameter) for parameter in wide}
    groups = [
        {
            "params": [p for p in network.parameters() if id(p) not in wide_ids],
            "lr": settings.learning_rate,
            "weight_decay": settings.weight_decay,
        },
        {"params": wide, "lr": settings.wide_learning_rate, "weight_decay": 0.0},
    ]
    return torch.optim.Adam([group for group in groups if group["params"]])


def fit(
    network: FusionNetwork,
    data: Batch,
    intent_targets: np.ndarray,
    sentiment_targets: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    settings: TrainingSettings,
    epochs: Optional[int] = None,
) -> Dict[Text, Any]:
    """Adam with early stopping on the validation rows; returns the training report.

    Trains `epochs` (default: `settings.epochs`) passes at most; with an empty `val_idx` all of them. The
    network ends with the weights of the best epoch (`early_stopping_metric`: a higher validation score, ties
    broken by a lower validation loss; or a lower validation loss) and in eval mode.

    Args:
        network: a freshly built network.
        data: the inputs of every example.
        intent_targets: `int64 (n,)`, -1 for "no intent".
        sentiment_targets: `int64 (n,)`, -1 for "no sentiment label".
        train_idx: rows to train on, `int64`.
        val_idx: rows to validate on, `int64` (may be empty).
        settings: the hyperparameters.
        epochs: most passes, instead of `settings.epochs`.

    Returns:
        `epochs_run`, `train_examples`, `validation_examples`, `best_epoch` and, with validation rows,
        `val_loss`, `val_intent_accuracy`, `val_sentiment_accuracy`.
    """
    generator = torch.Generator().manual_seed(settings.random_seed)
    optimizer = _optimizer(network, settings)
    targets_i = torch.from_numpy(intent_targets)
    targets_s = torch.from_numpy(sentiment_targets)

    use_accuracy = settings.early_stopping_metric == "accuracy"
    best_score, best_loss, best_epoch, best_state, epochs_run = -math.inf, math.inf, 0, None, 0
    for epoch in range(1, int(epochs or settings.epochs) + 1):
        epochs_run = epoch
        network.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        for start in range(0, len(order), settings.batch_size):
            index = order[start : start + settings.batch_size]
            inputs, present, indicators = to_torch(data.rows(index))
            if settings.modality_dropout > 0:
                present = drop_modalities(present, settings.modality_dropout, generator)
            intent_logits, sentiment_logits = network(inputs, present, indicators)
            loss = combined_loss(
                settings, intent_logits, sentiment_logits, targets_i[index], targets_s[index],
                label_smoothing=settings.label_smoothing,
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if len(val_idx) == 0:
            continue
        val_loss, intent_acc, sentiment_acc = evaluate(network, data, val_idx, targets_i, targets_s, settings)
        score = validation_score(settings, intent_acc, sentiment_acc) if use_accuracy else 0.0
        logger.debug(
            "%s epoch %d: validation loss %.4f, intent accuracy %s, sentiment accuracy %s",
            NAME, epoch, val_loss, intent_acc, sentiment_acc,
        )
        if score > best_score + 1e-9 or (score >= best_score - 1e-9 and val_loss < best_loss - 1e-6):
            best_score, best_loss, best_epoch = score, val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
        elif epoch - best_epoch >= settings.early_stopping_patience:
            logger.info("%s: early stop after epoch %d (best epoch %d).", NAME, epoch, best_epoch)
            break
    report: Dict[Text, Any] = {"epochs_run": epochs_run, "train_examples": int(len(train_idx))}
    report["validation_examples"] = int(len(val_idx))
    if best_state is not None:
        network.load_state_dict(best_state)
        val_loss, intent_acc, sentiment_acc = evaluate(network, data, val_idx, targets_i, targets_s, settings)
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


def train_network(
    build: Callable[[], FusionNetwork], examples: TrainingSet, settings: TrainingSettings
) -> Tuple[FusionNetwork, Dict[Text, Any]]:
    """Seeds, splits, fits, and (with `refit_on_all_data`) refits on every example.

    Args:
        build: makes a fresh network (called after seeding, so the seed fixes its initial weights).
        examples: the inputs and targets.
        settings: the hyperparameters (`random_seed` seeds python's `random`, numpy and torch).

    Returns:
        (the trained network in eval mode, the training report of `fit` plus `refit_epochs` and
        `refit_examples` after a refit).
    """
    seed = settings.random_seed
    seed_everything(seed)
    train_idx, val_idx = stratified_split(examples.strata, settings.validation_split, seed)
    targets = (examples.intent_targets, examples.sentiment_targets)
    network = build()
    report = fit(network, examples.data, *targets, train_idx, val_idx, settings)
    if settings.refit_on_all_data and len(val_idx) > 0:
        # The same seed again: the refit starts from the same initialisation and shuffling stream.
        torch.manual_seed(seed)
        network = build()
        all_idx = np.sort(np.concatenate([train_idx, val_idx]))
        refit = fit(
            network, examples.data, *targets, all_idx, np.array([], dtype=np.int64), settings,
            epochs=int(report["best_epoch"]),
        )
        report.update({"refit_epochs": refit["epochs_run"], "refit_examples": int(len(all_idx))})
    return network.eval(), report
