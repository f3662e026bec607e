"""Unit tests of `shop.matching` on plain products (no database): normalisation, token similarity, ranking."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shop import matching
from shop.views import ProductView


def product(sku: str, name: str, kind: str, category: str, stock: int = 5) -> ProductView:
    coarse = category.split("/")[-1]
    return ProductView(sku, name, category, coarse, kind, Decimal("1.00"), "EUR", "kg", stock, "")


CATALOG = [
    product("FRU-BANANA", "Banana", "banana", "Fruit/Banana"),
    product("VEG-TOMATO-REGULAR", "Regular Tomato", "tomato", "Vegetables/Tomato"),
    product("VEG-TOMATO-BEEF", "Beef Tomato", "beef tomato", "Vegetables/Tomato"),
    product("PLB-OATMILK", "Oatly Oat Milk", "oat milk", "Plant-based/Oat Milk"),
    product("DAI-YOG", "Natural Yoghurt", "natural yoghurt", "Dairy/Yoghurt"),
]


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("Some BANANAS please", ("banana",)),
        ("berries", ("berry",)),
        ("tomatoes", ("tomato",)),
        ("yogurt", ("yoghurt",)),
        ("2 kg of bananas", ("banana",)),
        ("Chloé's  café!", ("chloé", "café")),  # apostrophes and punctuation go, accents stay
        ("😀", ()),
    ],
)
def test_tokenize_normalises_case_plurals_variants_and_fillers(text: str, tokens: tuple) -> None:
    assert matching.tokenize(text) == tokens


def test_token_similarity() -> None:
    assert matching.token_similarity("banana", "banana") == 1.0
    assert matching.token_similarity("bananna", "banana") >= matching.TOKEN_SIMILARITY_MIN
    assert matching.token_similarity("kiwi", "lime") == 0.0
    assert matching.token_similarity("fig", "fog") == 0.0  # short words only match exactly


@pytest.mark.parametrize(
    "query, sku",
    [
        ("bananas", "FRU-BANANA"),
        ("bananna", "FRU-BANANA"),
        ("tomatos", "VEG-TOMATO-REGULAR"),
        ("beef tomatoes", "VEG-TOMATO-BEEF"),
        ("oatmilk", "PLB-OATMILK"),
        ("yogurt", "DAI-YOG"),
    ],
)
def test_rank_puts_the_meant_product_first(query: str, sku: str) -> None:
    ranked = matching.rank(query, CATALOG)
    score, best = ranked[0]
    assert best.sku == sku and score >= matching.MATCH_THRESHOLD
    assert [s for s, _ in ranked] == sorted((s for s, _ in ranked), reverse=True)
    assert all(0.0 <= s <= 1.0 for s, _ in ranked)


@pytest.mark.parametrize("query", ["", "😀", None, 42, "x" * (matching.MAX_QUERY_CHARS + 1), "please"])
def test_odd_queries_have_no_tokens_and_rank_nothing(query) -> None:
    assert matching.query_tokens(query) == ()
    assert matching.rank(query, CATALOG) == []


def test_a_vague_query_stays_below_the_match_threshold() -> None:
    ranked = matching.rank("fruit", CATALOG)
    assert ranked and ranked[0][0] < matching.MATCH_THRESHOLD
