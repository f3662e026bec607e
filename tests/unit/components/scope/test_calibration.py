"""Threshold choice and cross-fitting of the out-of-scope detector."""
import numpy as np
import pytest

from components.scope.calibration import choose_threshold, cross_fitted_signals


def test_threshold_separates_disjoint_scores_without_rejecting_in_domain():
    rng = np.random.default_rng(0)
    inside, outside = rng.uniform(0.6, 0.9, 200), rng.uniform(0.1, 0.4, 100)
    choice = choose_threshold(inside, outside, max_in_domain_rate=0.0)
    # the midpoint between the highest out-of-domain and the lowest in-domain score
    assert choice.threshold == pytest.approx((outside.max() + inside.min()) / 2, abs=1e-4)
    assert choice.in_domain_rate == 0.0 and choice.ood_rate == 1.0


@pytest.mark.parametrize("budget", [0.0, 0.05, 0.2])
def test_threshold_spends_the_budget_and_no_more(budget):
    rng = np.random.default_rng(1)
    inside, outside = rng.normal(0.7, 0.1, 1000), rng.normal(0.4, 0.1, 500)
    choice = choose_threshold(inside, outside, budget)
    assert choice.in_domain_rate <= budget
    assert np.mean(inside < choice.threshold) == pytest.approx(choice.in_domain_rate)
    # a slightly higher threshold would go over the budget: the choice is the largest one allowed
    above = np.sort(inside)[int(np.floor(budget * inside.size))]
    assert np.mean(inside < above + 1e-9) > budget
    if budget:
        assert choice.ood_rate > choose_threshold(inside, outside, budget / 2).ood_rate - 1e-12


def test_threshold_moves_with_the_data():
    low = choose_threshold([0.3, 0.35, 0.4, 0.5], [0.1], 0.0).threshold
    high = choose_threshold([0.7, 0.75, 0.8, 0.9], [0.1], 0.0).threshold
    assert low == pytest.approx(0.2, abs=1e-3) and high == pytest.approx(0.4, abs=1e-3)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        choose_threshold([], [0.1], 0.1)
    with pytest.raises(ValueError):
        choose_threshold([0.5], [0.1], 1.5)


def test_cross_fitting_never_scores_an_example_against_itself():
    # two identical pairs: with an example's twin in another fold its similarity is 1, never from itself
    embeddings = np.eye(4, dtype=np.float32)
    tokens = [["apple"], ["pear"], ["plum"], ["kiwi"]]
    fam, sim, oos_sim, fold = cross_fitted_signals(
        tokens, embeddings, [False] * 4, english=[], k=1, folds=2, seed=0
    )
    assert set(fold) == {0, 1}
    assert np.all(sim < 0.5)  # orthogonal to every other example
    assert np.all(fam == 0.0)  # each word occurs once: unknown when its fold is held out
    assert np.all(oos_sim == -1.0)  # no out-of-scope examples
