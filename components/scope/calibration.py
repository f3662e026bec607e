"""Thresholds of the out-of-scope detector chosen on held-out data.

Each signal scores "in-domain-ness" (higher = more in-domain) and a message is rejected when its score is
below the threshold. :func:`choose_threshold` is the Neyman-Pearson choice: the largest threshold whose
rejection rate on held-out in-domain messages stays within a budget (``max_in_domain_rate``), which catches
as many out-of-domain messages as that budget allows.

In-domain scores come from cross-fitting (:func:`cross_fitted_signals`): the project's NLU examples are split
into folds and each fold is scored against the other folds only (their vocabulary, their embeddings), so an
example never meets itself. Out-of-domain scores come from a hand-written set kept outside the training data
(``benchmarks/data/ood_calibration.tsv``; ``benchmarks/calibrate_ood.py`` runs the whole procedure).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Sequence, Tuple

import numpy as np

from components.scope.signals import Vocabulary, normalise_token, top_k_similarity

__all__ = ["Choice", "choose_threshold", "cross_fitted_signals"]


@dataclass(frozen=True)
class Choice:
    """A chosen threshold and what it does on the data it was chosen on.

    Attributes:
        threshold: reject scores strictly below this.
        in_domain_rate: share of in-domain scores rejected (0..1).
        ood_rate: share of out-of-domain scores rejected (0..1); NaN without out-of-domain scores.
    """

    threshold: float
    in_domain_rate: float
    ood_rate: float


def choose_threshold(
    in_domain: Sequence[float], out_of_domain: Sequence[float], max_in_domain_rate: float
) -> Choice:
    """The largest threshold that rejects at most ``max_in_domain_rate`` of the in-domain scores.

    Candidates are the midpoints between consecutive distinct scores of both sets (and a value below the
    lowest score, which rejects nothing), so the threshold never sits on an observed score; it is rounded down to 4
    decimals.

    Args:
        in_domain: held-out in-domain scores (higher = more in-domain); at least one.
        out_of_domain: out-of-domain scores (may be empty: then only the budget decides).
        max_in_domain_rate: budget of in-domain messages that may be rejected, 0..1.

    Returns:
        The :class:`Choice`.

    Raises:
        ValueError: ``in_domain`` is empty or the budget is outside 0..1.
    """
    inside = np.sort(np.asarray(in_domain, dtype=np.float64))
    outside = np.asarray(out_of_domain, dtype=np.float64)
    if inside.size == 0:
        raise ValueError("choose_threshold needs at least one in-domain score")
    if not 0.0 <= max_in_domain_rate <= 1.0:
        raise ValueError(f"max_in_domain_rate must be in 0..1, got {max_in_domain_rate}")
    values = np.unique(np.concatenate([inside, outside]))
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2.0, [values[-1] + 1e-6]])
    best = candidates[0]
    for candidate in candidates:  # ascending: the last one within budget rejects the most
        rate = np.searchsorted(inside, candidate, side="left") / inside.size
        if rate <= max_in_domain_rate:
            best = candidate
        else:
            break
    threshold = float(np.floor(best * 1e4) / 1e4)  # 4 decimals, rounded down: never rejects more
    return Choice(
        threshold=threshold,
        in_domain_rate=float(np.mean(inside < threshold)),
        ood_rate=float(np.mean(outside < threshold)) if outside.size else float("nan"),
    )


def cross_fitted_signals(
    tokens: Sequence[Sequence[str]],
    embeddings: np.ndarray,
    is_out_of_scope: Sequence[bool],
    english: Iterable[str],
    extra_vocabulary: Iterable[str] = (),
    k: int = 3,
    folds: int = 5,
    seed: int = 42,
    typo_ratio: float = 0.8,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Signals of every training example computed against the other folds only.

    Args:
        tokens: each example's tokens (as the pipeline's tokenizer gives them).
        embeddings: ``float32 (n, d)`` sentence embeddings of the examples.
        is_out_of_scope: per example, whether it is an ``out_of_scope`` example.
        english: whole English words (:func:`components.scope.signals.english_words`).
        extra_vocabulary: words always known (lookup tables, synonyms), as at training time.
        k: neighbours averaged by :func:`top_k_similarity`.
        folds: number of folds (≥ 2).
        seed: seed of the random fold assignment.
        typo_ratio: as :class:`Vocabulary`.

    Returns:
        ``(familiarity, similarity, oos_similarity, fold)``: ``float64 (n,)`` each and the ``int (n,)`` fold of
        each example.

    Raises:
        ValueError: fewer than 2 folds, or lengths that differ.
    """
    n = len(tokens)
    if folds < 2:
        raise ValueError("cross-fitting needs at least 2 folds")
    if len(embeddings) != n or len(is_out_of_scope) != n:
        raise ValueError("tokens, embeddings and is_out_of_scope must have the same length")
    oos = np.asarray(is_out_of_scope, dtype=bool)
    fold = np.random.default_rng(seed).permutation(np.arange(n) % folds)
    english_set = frozenset(english)
    extra = {normalise_token(w) for w in extra_vocabulary}
    familiarity = np.ones(n)
    similarity = np.zeros(n)
    oos_similarity = np.zeros(n)
    for f in range(folds):
        held, rest = fold == f, fold != f
        words = set(extra)
        for index in np.flatnonzero(rest):
            words.update(normalise_token(t) for t in tokens[index])
        vocabulary = Vocabulary(frozenset(words), english_set, typo_ratio)
        held_idx: List[int] = list(np.flatnonzero(held))
        familiarity[held] = [vocabulary.familiarity(tokens[i]) for i in held_idx]
        similarity[held] = top_k_similarity(embeddings[held], embeddings[rest & ~oos], k)
        oos_similarity[held] = top_k_similarity(embeddings[held], embeddings[rest & oos], k)
    return familiarity, similarity, oos_similarity, fold
