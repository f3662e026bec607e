"""Unit tests of `shop.lookup` (candidate retrieval through the database's text index) and the repository's
look-up on top of it, on SQLite and, where ``DATABASE_URL`` names a PostgreSQL server, on PostgreSQL in a
throw-away schema (tests/postgres.py): typos, plurals, variants, misses, input that means something to SQL or
to the text-search syntax, over-long input, and the index kept in step with inserts, updates and deletes."""

from __future__ import annotations

import os
import random
import string
from decimal import Decimal
from typing import Iterator

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.engine import Engine

from shop import lookup, matching
from shop.db import make_engine, make_session_factory, unit_of_work
from shop.models import Product, ProductTerm, add_terms
from shop.repository import ShopRepository
from shop.seed import create_and_seed
from tests.postgres import postgres_schema

DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request) -> Iterator[Engine]:
    """A seeded shop database on each backend (PostgreSQL: skipped unless DATABASE_URL names one)."""
    if request.param == "sqlite":
        engine = make_engine("sqlite://")
        create_and_seed(engine)
        yield engine
        engine.dispose()
        return
    if not DATABASE_URL.startswith("postgresql"):
        pytest.skip("DATABASE_URL does not point at PostgreSQL")
    with postgres_schema(DATABASE_URL, "lookup_test") as options:
        engine = make_engine(DATABASE_URL, **options)
        try:
            create_and_seed(engine)
            yield engine
        finally:
            engine.dispose()


@pytest.fixture
def repo(engine: Engine) -> ShopRepository:
    return ShopRepository(make_session_factory(engine))


def _sku(repo: ShopRepository, query: str):
    match = repo.find_product(query)
    return match.product.sku if match.product else None


@pytest.mark.parametrize(
    "query, sku",
    [
        ("strawbery", "FRU-BER-STRAWBERRY"),  # deletion
        ("strawberrys", "FRU-BER-STRAWBERRY"),  # insertion, plural
        ("stawberries", "FRU-BER-STRAWBERRY"),
        ("bananna", "FRU-BANANA"),
        ("banaan", "FRU-BANANA"),  # swap of neighbours
        ("lemno", "FRU-LEMON"),
        ("cucumbre", "VEG-CUCUMBER"),
        ("brocoli", "VEG-BROCCOLI"),
        ("Garnny Smith", "FRU-APL-GRANNY"),  # typo in the first word
        ("granny smith apples", "FRU-APL-GRANNY"),
        ("tomatoes", "VEG-TOMATO-REGULAR"),
        ("blueberries", "FRU-BER-BLUEBERRY"),
        ("strawberry yogurt", "DAI-YOGGI-YOG-STRAWBERRY"),  # spelling variant
        ("eggplant", "VEG-AUBERGINE"),  # synonym
        ("oatmilk", "PLB-OATLY-OATMILK"),  # two catalog words written together
        ("some bananas please", "FRU-BANANA"),  # filler words
    ],
)
def test_typos_plurals_and_variants_find_the_product(repo, query, sku) -> None:
    assert _sku(repo, query) == sku


@pytest.mark.parametrize(
    "query",
    [
        "delivery",
        "how much is the cancellation fee",
        "qwertyuiop",
        "%",
        "_",
        "%_%",
        "' OR '1'='1",
        "ban*",
        "\\x00",
        "'; DROP TABLE products; --",
        "a" * 250,
        "x" * 100_000,
        "",
        None,
    ],
)
def test_misses_and_hostile_input_find_nothing_and_change_nothing(repo, engine, query) -> None:
    before = _products_state(engine)
    match = repo.find_product(query)
    assert match.product is None and 0.0 <= match.score < matching.MATCH_THRESHOLD
    if query:  # no query lists the catalog
        assert repo.search_products(query) == []
    assert _products_state(engine) == before


@pytest.mark.parametrize(
    "query, sku",
    [
        ('"bananas', "FRU-BANANA"),
        ('bananas" OR "zzz', "FRU-BANANA"),
        ("NEAR(banana kiwi)", None),
        ("banana AND NOT zzz", "FRU-BANANA"),
        ("milk & !cream | (egg) <-> :*", None),
        ("avocado:*", "FRU-AVOCADO"),
        ("avocado^2 {col}: -x", "FRU-AVOCADO"),
        ("banana " * 30, "FRU-BANANA"),  # 210 characters: under the 256 of matching.MAX_QUERY_CHARS
    ],
)
def test_text_search_syntax_is_plain_words(repo, engine, query, sku) -> None:
    """FTS5 and tsquery operators in a query are words like any other: no error, no change, and a product
    is found only for its own words."""
    before = _products_state(engine)
    match = repo.find_product(query)
    if sku is not None:
        assert match.product is not None and match.product.sku == sku
    assert isinstance(repo.search_products(query), list)
    assert _products_state(engine) == before


def test_quotes_and_sql_wildcards_around_a_name_still_find_it(repo) -> None:
    for query in ('"bananas"', "'bananas'", "bananas%", "_bananas_", "bananas; --"):
        assert _sku(repo, query) == "FRU-BANANA", query


def test_the_search_respects_category_and_stock_filters(repo, engine) -> None:
    with engine.begin() as connection:
        connection.execute(update(Product).where(Product.sku == "FRU-BER-STRAWBERRY").values(stock=0))
    assert "FRU-BER-STRAWBERRY" not in {p.sku for p in repo.search_products("strawbery", in_stock_only=True)}
    assert [p.sku for p in repo.search_products("strawbery", category="Fruit")] == ["FRU-BER-STRAWBERRY"]
    assert repo.search_products("strawbery", category="Dairy/Yoghurt")[0].sku == "DAI-YOGGI-YOG-STRAWBERRY"


def _products_state(engine: Engine):
    with engine.connect() as connection:
        return connection.execute(select(Product.sku, Product.search_text).order_by(Product.sku)).all()


def _add(engine: Engine, sku: str, name: str, kind: str, category: str) -> None:
    with unit_of_work(make_session_factory(engine)) as session:
        session.add(
            Product(
                sku=sku, name=name, kind=kind, category=category, coarse_category=category.split("/")[-1],
                price=Decimal("2.50"), currency="EUR", stock=10, unit="piece", description="",
            )
        )


def test_orm_inserts_updates_and_deletes_keep_the_index_in_step(repo, engine) -> None:
    assert _sku(repo, "rambutn") is None
    _add(engine, "FRU-RAMBUTAN", "Rambutan", "rambutan", "Fruit/Tropical")
    assert _sku(repo, "rambutn") == "FRU-RAMBUTAN"  # the new word is in the vocabulary too

    with unit_of_work(make_session_factory(engine)) as session:
        product = session.execute(select(Product).where(Product.sku == "FRU-RAMBUTAN")).scalar_one()
        product.name, product.kind = "Lychee", "lychee"
    assert _sku(repo, "lychees") == "FRU-RAMBUTAN"
    assert _sku(repo, "rambutan") is None
    with engine.connect() as connection:
        stored = connection.execute(
            select(Product.search_text).where(Product.sku == "FRU-RAMBUTAN")
        ).scalar_one()
    assert stored == matching.search_text("Lychee", "lychee", "Fruit/Tropical", "Tropical")

    with unit_of_work(make_session_factory(engine)) as session:
        session.execute(delete(Product).where(Product.sku == "FRU-RAMBUTAN"))
    assert _sku(repo, "lychee") is None


def test_core_inserts_compute_the_search_text_and_add_terms_extends_the_vocabulary(repo, engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(Product),
            [
                {
                    "sku": "FRU-DURIAN", "name": "Durian", "kind": "durian", "category": "Fruit/Tropical",
                    "coarse_category": "Tropical", "price": Decimal("9.99"), "unit": "piece", "stock": 2,
                }
            ],
        )
        stored = connection.execute(
            select(Product.search_text).where(Product.sku == "FRU-DURIAN")
        ).scalar_one()
        assert stored == "durian | durian | tropical | fruit tropical"
    assert _sku(repo, "durian") == "FRU-DURIAN"  # the exact word needs no vocabulary entry...
    assert _sku(repo, "durain") is None  # ...a typo of it does
    with engine.begin() as connection:
        add_terms(connection, [stored])
    assert _sku(repo, "durain") == "FRU-DURIAN"


def test_ensure_search_index_repairs_stale_texts_and_vocabulary(repo, engine) -> None:
    with engine.begin() as connection:
        connection.execute(update(Product).where(Product.sku == "FRU-BANANA").values(search_text="nonsense"))
        connection.execute(delete(ProductTerm))
    assert _sku(repo, "bananna") is None
    assert lookup.ensure_search_index(engine) == 1
    assert lookup.ensure_search_index(engine) == 0  # idempotent
    assert _sku(repo, "bananna") == "FRU-BANANA"


def test_a_database_made_before_the_search_text_gets_it(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    create_and_seed(engine)
    with engine.begin() as connection:  # as an older version left it: no column, no index objects
        for name in ("products_search", "product_terms_search"):
            for trigger in ("ai", "ad", "au"):
                connection.execute(text(f"DROP TRIGGER IF EXISTS {name}_{trigger}"))
            connection.execute(text(f"DROP TABLE {name}"))
        connection.execute(text("DROP TABLE product_terms"))
        connection.execute(text("ALTER TABLE products DROP COLUMN search_text"))
    create_and_seed(engine)
    assert _sku(ShopRepository(make_session_factory(engine)), "strawbery") == "FRU-BER-STRAWBERRY"
    engine.dispose()


def test_candidates_are_bounded(repo, engine) -> None:
    with unit_of_work(make_session_factory(engine)) as session:
        tokens = matching.query_tokens("fruit")
        ids = lookup.candidate_ids(session, tokens, limit=3)
    assert ids is not None and len(ids) == 3


def test_one_of_the_two_pieces_survives_any_one_edit() -> None:
    """Whenever the matcher accepts a typo of a word, one of the typo's pieces is in the padded word."""
    rng = random.Random(3)
    checked = 0
    for _ in range(3000):
        word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 14)))
        position = rng.randrange(len(word))
        letter = rng.choice(string.ascii_lowercase)
        typo = rng.choice(
            [
                word[:position] + letter + word[position + 1 :],
                word[:position] + word[position + 1 :],
                word[:position] + letter + word[position:],
                word[:position] + word[position + 1 : position + 2] + word[position : position + 1]
                + word[position + 2 :],
            ]
        )
        if matching.token_similarity(typo, word) == 0.0:
            continue
        checked += 1
        pieces = lookup.fts_token_terms(typo)
        assert all(len(piece) >= 3 for piece in pieces)
        assert any(piece in f" {word} " for piece in pieces), (word, typo, pieces)
    assert checked > 1000
