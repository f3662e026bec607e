"""The two signals of the out-of-scope detector and the verdict drawn from them.

1. **Familiarity** (gibberish): the share of a message's tokens that are *known*: in the training vocabulary,
   an English word (a whole-word entry of the text encoder's WordPiece vocabulary), one typo away from a
   training word (difflib's Ratcliff/Obershelp ratio of at least ``typo_ratio``), or a token with a digit or an
   ``@`` (order numbers, amounts, emails, postcodes). Keyboard mashes, letter runs, emoji strings and made-up
   words are unknown; a customer's word the shop never saw is usually still an English word.
2. **Similarity** (off-topic): cosine similarity of the message's sentence embedding to its ``k`` nearest
   training examples, in-domain examples and ``out_of_scope`` examples apart (the mean of the ``k`` best).

A message is rejected when one of them falls below a threshold chosen on held-out data
(:mod:`components.scope.calibration`); see :func:`verdict`.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

__all__ = [
    "Signals",
    "Thresholds",
    "Vocabulary",
    "english_words",
    "normalise_token",
    "top_k_similarity",
    "verdict",
]

#: Intents the detector sets.
INTENT_OUT_OF_SCOPE = "out_of_scope"
INTENT_FALLBACK = "nlu_fallback"

_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$", re.UNICODE)
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
#: Tokens longer than this are never typo-matched (difflib is quadratic in the length).
_MAX_TYPO_LENGTH = 30


def normalise_token(token: str) -> str:
    """Lower-cased token without leading/trailing punctuation (``"Hello!"`` → ``"hello"``); a token of
    symbols only (an emoji) is kept whole."""
    lowered = token.lower().strip()
    stripped = _EDGE_PUNCTUATION.sub("", lowered)
    return stripped or lowered


def english_words(wordpiece_vocab: Iterable[str]) -> set:
    """The whole words of a WordPiece vocabulary: alphabetic entries that are not ``##`` continuations or
    ``[SPECIAL]`` tokens, lower-cased (about 21,000 for all-MiniLM-L6-v2's uncased BERT vocabulary)."""
    return {
        piece.lower()
        for piece in wordpiece_vocab
        if piece.isalpha() and not piece.startswith("##") and not piece.startswith("[")
    }


@dataclass(frozen=True)
class Vocabulary:
    """What counts as a known token.

    Attributes:
        training: normalised tokens of the training examples, lookup tables and synonyms.
        english: whole English words (:func:`english_words`).
        typo_ratio: difflib similarity ratio (0..1) to a training word from which an unknown word of four
            letters or more counts as that word mistyped.
    """

    training: frozenset
    english: frozenset
    typo_ratio: float = 0.8

    def __post_init__(self) -> None:
        words = sorted(w for w in self.training if w.isalpha() and len(w) >= 3)
        object.__setattr__(self, "_typo_candidates", words)

    def is_known(self, token: str) -> bool:
        """Whether ``token`` (as the tokenizer gave it) is a known token; see the module docstring."""
        word = normalise_token(token)
        if not word:
            return True
        if word in self.training or word in self.english:
            return True
        if any(ch.isdigit() for ch in word) or "@" in word:
            return True
        if not _LETTER.search(word):  # emoji and symbols: known only when the training data has them
            return False
        if 4 <= len(word) <= _MAX_TYPO_LENGTH:
            return bool(difflib.get_close_matches(word, self._typo_candidates, n=1, cutoff=self.typo_ratio))
        return False

    def familiarity(self, tokens: Sequence[str]) -> float:
        """Share of known tokens, 0..1; 1.0 for no tokens (nothing to judge)."""
        if not tokens:
            return 1.0
        return sum(self.is_known(t) for t in tokens) / len(tokens)


def top_k_similarity(queries: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """Mean cosine similarity of each query to its ``k`` most similar reference rows.

    Args:
        queries: ``float32 (n, d)`` embeddings (normalised here).
        reference: ``float32 (m, d)`` embeddings (normalised here).
        k: neighbours averaged (at most ``m``).

    Returns:
        ``float64 (n,)`` in -1..1; ``-1.0`` each when ``reference`` is empty.
    """
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float64))
    if len(reference) == 0:
        return np.full(len(queries), -1.0)
    reference = np.asarray(reference, dtype=np.float64)
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    r = reference / np.maximum(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12)
    sims = q @ r.T
    k = max(1, min(int(k), sims.shape[1]))
    best = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
    return best.mean(axis=1)


@dataclass(frozen=True)
class Signals:
    """One message's signals: familiarity (0..1), similarity to in-domain and to out-of-scope examples (cosine)."""

    familiarity: float
    similarity: float
    oos_similarity: float

    @property
    def margin(self) -> float:
        """How much closer the message is to in-domain examples than to out-of-scope ones (cosine units)."""
        return self.similarity - self.oos_similarity


@dataclass(frozen=True)
class Thresholds:
    """Rejection thresholds (a signal below its threshold rejects), chosen by :mod:`components.scope.calibration`.

    Attributes:
        min_familiarity: share of known tokens below which a message is gibberish (``nlu_fallback``).
        min_similarity: in-domain top-k cosine below which a message is off-topic or unclear.
        min_margin: in-domain minus out-of-scope top-k cosine below which a message is off-topic.
    """

    min_familiarity: float
    min_similarity: float
    min_margin: float


def verdict(signals: Signals, thresholds: Thresholds) -> Optional[str]:
    """The intent the detector sets, or None to keep the classifier's.

    1. familiarity < ``min_familiarity``: ``nlu_fallback`` (gibberish: "I didn't understand");
    2. similarity < ``min_similarity``: ``out_of_scope`` when the message is at least as close to the
       out-of-scope examples as to the in-domain ones, else ``nlu_fallback`` (unclear);
    3. margin < ``min_margin``: ``out_of_scope`` (closer to the out-of-scope examples than in-domain text is).
    """
    if signals.familiarity < thresholds.min_familiarity:
        return INTENT_FALLBACK
    if signals.similarity < thresholds.min_similarity:
        return INTENT_OUT_OF_SCOPE if signals.oos_similarity >= signals.similarity else INTENT_FALLBACK
    if signals.margin < thresholds.min_margin:
        return INTENT_OUT_OF_SCOPE
    return None
