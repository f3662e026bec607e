"""Signals and verdict of the out-of-scope detector."""
import numpy as np
import pytest

from components.scope.signals import (
    Signals,
    Thresholds,
    Vocabulary,
    english_words,
    normalise_token,
    top_k_similarity,
    verdict,
)

VOCABULARY = Vocabulary(
    training=frozenset({"where", "is", "my", "order", "bananas", "👍", "refund", "cancel"}),
    english=frozenset({"the", "weather", "in", "leeds", "what", "will", "be", "on", "saturday"}),
)
THRESHOLDS = Thresholds(min_familiarity=0.4166, min_similarity=0.44, min_margin=0.17)


def test_english_words_keeps_whole_alphabetic_entries():
    assert english_words(["[CLS]", "##ing", "hello", "100", "Apple"]) == {"hello", "apple"}


@pytest.mark.parametrize("token, known", [
    ("bananas", True), ("Bananas!", True), ("ordr", True), ("cancle", True), ("10023", True),
    ("anna@example.com", True), ("👍", True), ("😂😂😂", False), ("asdfghjkl", False), ("qwerty", False),
    ("z" * 40, False), ("weather", True), ("blorf", False),
])
def test_known_tokens(token, known):
    assert VOCABULARY.is_known(token) is known


def test_familiarity_is_the_share_of_known_tokens():
    assert VOCABULARY.familiarity(["asdfghjkl", "qwerty"]) == 0.0
    assert VOCABULARY.familiarity(["where", "is", "my", "xqzt"]) == 0.75
    assert VOCABULARY.familiarity([]) == 1.0
    assert normalise_token("Hello,") == "hello"


def test_top_k_similarity_averages_the_best():
    reference = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    assert top_k_similarity(np.array([[1, 0]]), reference, 1)[0] == pytest.approx(1.0)
    assert top_k_similarity(np.array([[2, 0]]), reference, 2)[0] == pytest.approx(0.8)
    assert top_k_similarity(np.array([[1, 0]]), np.zeros((0, 2)), 3)[0] == -1.0


@pytest.mark.parametrize("signals, expected", [
    (Signals(0.0, 0.9, 0.1), "nlu_fallback"),       # gibberish, however similar the embedding
    (Signals(1.0, 0.30, 0.50), "out_of_scope"),     # far from the shop, near the out-of-scope examples
    (Signals(1.0, 0.30, 0.20), "nlu_fallback"),     # far from everything: unclear
    (Signals(1.0, 0.60, 0.55), "out_of_scope"),     # closer to out-of-scope than in-domain text is
    (Signals(1.0, 0.80, 0.30), None),               # in-domain
    (Signals(0.5, 0.80, 0.30), None),               # one unknown word of two is not gibberish
])
def test_verdict(signals, expected):
    assert verdict(signals, THRESHOLDS) == expected
