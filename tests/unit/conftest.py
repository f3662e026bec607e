"""Fixtures shared by the unit tests of several packages.

- `shop/` and `actions/`: a seeded in-memory SQLite database per test. The seeded database is built once per
  session and copied into each test's own in-memory database with SQLite's backup API, so every test starts
  from the same state without paying for seeding again. `shop_repo` is the real `ShopRepository` on that copy;
  the action tests install it with `actions.common.set_repository` (see tests/unit/actions/conftest.py).
- `encoders/` and the featurizers of `components/`: the tiny random encoders of tests/unit/encoders (a BERT
  directory and an EfficientNet-Lite0 state_dict), written once per session.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy.engine import Engine

#: Fixed reference time for the demo orders, so seeded timestamps are the same in every run.
SEED_NOW = datetime(2025, 3, 10, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def _seeded_template_engine() -> Iterator[Engine]:
    """The schema and seed data, built once per test session; tests get copies of it."""
    from shop.db import make_engine
    from shop.seed import create_and_seed

    engine = make_engine("sqlite://")
    create_and_seed(engine, now=SEED_NOW)
    yield engine
    engine.dispose()


@pytest.fixture
def shop_engine(_seeded_template_engine: Engine) -> Iterator[Engine]:
    """A fresh in-memory SQLite engine holding its own copy of the seeded database."""
    from shop.db import make_engine

    engine = make_engine("sqlite://")
    source = _seeded_template_engine.raw_connection()
    target = engine.raw_connection()
    try:
        source.driver_connection.backup(target.driver_connection)
    finally:
        target.close()
        source.close()
    yield engine
    engine.dispose()


@pytest.fixture
def shop_session_factory(shop_engine):
    """Session factory on the seeded in-memory database."""
    from shop.db import make_session_factory

    return make_session_factory(shop_engine)


@pytest.fixture
def shop_repo(shop_session_factory):
    """A `ShopRepository` on the seeded in-memory database."""
    from shop.repository import ShopRepository

    return ShopRepository(shop_session_factory)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BertModel (hidden 32) and a fast WordPiece tokenizer, saved with `save_pretrained`
    (tests/unit/encoders/tiny_bert.py). Tests that change files work on a copy."""
    from tests.unit.encoders.tiny_bert import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_efficientnet_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random EfficientNet-Lite0 state_dict for 64×64 inputs, BN statistics calibrated
    (tests/unit/encoders/tiny_efficientnet.py). Tests that change the file work on a copy."""
    from tests.unit.encoders.tiny_efficientnet import build_tiny_efficientnet

    return build_tiny_efficientnet(tmp_path_factory.mktemp("tiny-efficientnet") / "lite0-tiny.pth")
