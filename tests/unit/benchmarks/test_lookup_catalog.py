"""The look-up benchmark's catalog generator at a small scale (2,000 products): deterministic, distinct
names, queries of each class, and the repository finds each query's product on SQLite (no timing asserts)."""

from __future__ import annotations

import random

import pytest

from benchmarks.bench_lookup import load_catalog, percentile, time_lookups
from benchmarks.lookup_catalog import generate_catalog, generate_queries, one_letter_typo
from shop import matching
from shop.db import make_engine, make_session_factory
from shop.repository import ShopRepository

SIZE = 2_000


@pytest.fixture(scope="module")
def catalog():
    return generate_catalog(SIZE)


def test_the_catalog_is_deterministic_and_its_names_are_distinct_after_normalisation(catalog) -> None:
    assert generate_catalog(SIZE) == catalog
    assert generate_catalog(SIZE, seed=8) != catalog
    assert len({row.sku for row in catalog}) == SIZE
    assert len({matching.tokenize(row.base_name) for row in catalog}) == SIZE
    with pytest.raises(ValueError):
        generate_catalog(0)


def test_queries_cover_every_class(catalog) -> None:
    queries = generate_queries(catalog, per_class=30)
    classes = ("exact", "plural", "typo", "variant", "miss")
    assert [q.kind for q in queries] == [kind for kind in classes for _ in range(30)]
    skus = {row.sku for row in catalog}
    assert all((q.sku is None) == (q.kind == "miss") for q in queries)
    assert all(q.sku in skus for q in queries if q.sku)


def test_one_letter_typo_is_one_edit_away() -> None:
    rng = random.Random(1)
    for word in ("strawberry", "nordhavn", "apple", "organic"):
        typo = one_letter_typo(word, rng)
        assert typo != word and typo[0] == word[0] and abs(len(typo) - len(word)) <= 1


def test_the_repository_finds_each_querys_product(catalog, tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        load_catalog(engine, catalog, "test")
        summary = time_lookups(ShopRepository(make_session_factory(engine)), generate_queries(catalog, 40))
    finally:
        engine.dispose()
    rates = {kind: row["hit_rate"] for kind, row in summary["classes"].items()}
    assert rates["exact"] == rates["plural"] == rates["variant"] == rates["miss"] == 1.0, summary
    assert rates["typo"] >= 0.95, summary
    assert summary["queries"] == 200


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 0.95) == 95 and percentile(values, 0.5) == 50 and percentile([7.0], 0.99) == 7.0
