"""components.fusion.training: losses, split, modality dropout, the fit loop and its seeds."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from components.fusion.inference import predict_logits
from components.fusion.training import (
    TrainingSettings,
    combined_loss,
    drop_modalities,
    fit,
    masked_cross_entropy,
    stratified_split,
    train_network,
    validation_score,
)
from tests.unit.components.fusion.synthetic import CONFIG, labelled_examples, network_builder

SETTINGS = TrainingSettings.from_config(CONFIG)


@pytest.fixture(scope="module")
def examples():
    return labelled_examples()


# ---------------------------------------------------------------------------------------------------- losses
def test_masked_cross_entropy_ignores_unlabelled_rows():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]], requires_grad=True)
    targets = torch.tensor([0, -1, -1])
    loss = masked_cross_entropy(logits, targets)
    expected = torch.nn.functional.cross_entropy(logits[:1], targets[:1])
    assert torch.isclose(loss, expected)
    loss.backward()
    assert torch.all(logits.grad[1:] == 0)
    none = masked_cross_entropy(logits, torch.tensor([-1, -1, -1]))
    assert float(none.detach()) == 0.0 and none.requires_grad
    assert float(masked_cross_entropy(None, targets)) == 0.0  # no head, no loss


def test_label_smoothing_spreads_the_target_mass():
    logits = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    targets = torch.tensor([0, -1])
    plain = float(masked_cross_entropy(logits, targets))
    smoothed = float(masked_cross_entropy(logits, targets, 0.3))
    # the unlabelled row is ignored either way; smoothing penalises the over-confident logit
    assert smoothed > plain > 0
    expected = float(torch.nn.functional.cross_entropy(logits[:1], targets[:1], label_smoothing=0.3))
    assert smoothed == pytest.approx(expected)


def test_combined_loss_weighs_the_heads():
    intent, sentiment = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]])
    t_i, t_s = torch.tensor([1]), torch.tensor([0])
    settings = dataclasses.replace(SETTINGS, intent_loss_weight=2.0, sentiment_loss_weight=0.25)
    expected = 2.0 * masked_cross_entropy(intent, t_i) + 0.25 * masked_cross_entropy(sentiment, t_s)
    assert float(combined_loss(settings, intent, sentiment, t_i, t_s)) == pytest.approx(float(expected))
    assert float(combined_loss(settings, None, sentiment, t_i, t_s)) == pytest.approx(
        0.25 * float(masked_cross_entropy(sentiment, t_s))
    )


def test_validation_score_weighs_the_accuracies_of_the_heads_with_labels():
    settings = dataclasses.replace(SETTINGS, intent_loss_weight=1.0, sentiment_loss_weight=0.5)
    assert validation_score(settings, 0.9, 0.6) == pytest.approx((0.9 + 0.5 * 0.6) / 1.5)
    assert validation_score(settings, 0.9, None) == pytest.approx(0.9)
    assert validation_score(settings, None, None) == 0.0


# -------------------------------------------------------------------------------------- split and dropout
def test_modality_dropout_hides_whole_modalities_and_never_everything():
    generator = torch.Generator().manual_seed(0)
    text_only = torch.tensor([[1.0, 1.0, 0.0]] * 200)
    assert torch.equal(drop_modalities(text_only, 0.5, generator), text_only)
    both = torch.tensor([[1.0, 1.0, 1.0]] * 400)
    dropped = drop_modalities(both, 0.5, generator)
    rows = {tuple(row.tolist()) for row in dropped}
    assert rows == {(1.0, 1.0, 1.0), (1.0, 1.0, 0.0), (0.0, 0.0, 1.0)}  # text branches go together


def test_stratified_split_holds_out_every_label():
    strata = ["a"] * 20 + ["b"] * 10 + ["c"]
    train, val = stratified_split(strata, 0.2, seed=1)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(strata)))
    held = [strata[i] for i in val]
    assert held.count("a") == 4 and held.count("b") == 2 and "c" not in held
    assert stratified_split(strata, 0.0, seed=1)[1].size == 0
    assert train.dtype == val.dtype == np.int64 and list(val) == sorted(val)


# ------------------------------------------------------------------------------------------------- settings
def test_settings_come_from_the_config_with_their_types():
    assert SETTINGS.epochs == 6 and SETTINGS.batch_size == 16 and SETTINGS.random_seed == 42
    assert isinstance(TrainingSettings.from_config({**CONFIG, "learning_rate": 1}).learning_rate, float)
    assert SETTINGS.early_stopping_metric == "accuracy" and SETTINGS.refit_on_all_data is False


# ------------------------------------------------------------------------------------------------- fit loop
def test_the_wide_path_has_its_own_step_size_and_no_weight_decay(examples, monkeypatch):
    groups = []
    real_adam = torch.optim.Adam

    def recording_adam(param_groups, *args, **kwargs):
        groups.extend(param_groups)
        return real_adam(param_groups, *args, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", recording_adam)
    network = network_builder(examples)()
    settings = dataclasses.replace(SETTINGS, weight_decay=1e-3, wide_learning_rate=0.02, epochs=1)
    fit(network, examples[0].data, examples[0].intent_targets, examples[0].sentiment_targets,
        np.arange(8), np.array([], dtype=np.int64), settings)
    deep, wide = groups
    assert (deep["lr"], deep["weight_decay"]) == (settings.learning_rate, 1e-3)
    assert (wide["lr"], wide["weight_decay"]) == (0.02, 0.0)
    assert {id(p) for p in wide["params"]} == {id(p) for p in network.wide.parameters()}
    assert len(deep["params"]) + len(wide["params"]) == len(list(network.parameters()))


def test_fit_without_validation_runs_every_epoch(examples):
    result, _ = examples
    network = network_builder(examples)()
    report = fit(network, result.data, result.intent_targets, result.sentiment_targets,
                 np.arange(len(result.data)), np.array([], dtype=np.int64), SETTINGS, epochs=3)
    assert report == {"epochs_run": 3, "best_epoch": 3, "train_examples": len(result.data),
                      "validation_examples": 0}
    assert not network.training  # left in eval mode


def test_training_is_deterministic_with_the_seed(examples):
    """Two trainings with one seed give the same weights and outputs bit for bit; another seed does not."""
    result, _ = examples
    settings = dataclasses.replace(
        SETTINGS, refit_on_all_data=True, modality_dropout=0.3, validation_split=0.3
    )
    first, first_report = train_network(network_builder(examples), result, settings)
    second, second_report = train_network(network_builder(examples), result, settings)
    assert first_report == second_report and "refit_epochs" in first_report
    a, b = first.state_dict(), second.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    logits_a = predict_logits(first, result.data, 16)
    logits_b = predict_logits(second, result.data, 16)
    assert torch.equal(logits_a[0], logits_b[0]) and torch.equal(logits_a[1], logits_b[1])
    other, _ = train_network(network_builder(examples), result, dataclasses.replace(settings, random_seed=3))
    assert not torch.equal(predict_logits(other, result.data, 16)[0], logits_a[0])


def test_early_stopping_keeps_the_best_epoch(examples):
    result, _ = examples
    settings = dataclasses.replace(SETTINGS, epochs=30, early_stopping_patience=2, validation_split=0.3)
    network, report = train_network(network_builder(examples), result, settings)
    assert 1 <= report["best_epoch"] <= report["epochs_run"] <= 30
    assert report["epochs_run"] - report["best_epoch"] <= 2
    assert {"val_loss", "val_intent_accuracy", "val_sentiment_accuracy"} <= set(report)
