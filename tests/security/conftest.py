"""Fixtures of the action server's security tests: a seeded shop database file per test, the real repository
on it installed as the actions' repository, and the action server application served on 127.0.0.1 with a
token (see tests/security/action_calls.py).
"""
from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest


@pytest.fixture(scope="session")
def seeded_shop_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with the schema and the demo data of :mod:`shop.seed`, built once; tests use copies."""
    from shop.db import make_engine
    from shop.seed import create_and_seed

    path = tmp_path_factory.mktemp("seeded") / "shop.db"
    engine = make_engine(f"sqlite:///{path}")
    create_and_seed(engine)
    engine.dispose()
    return path


@pytest.fixture
def shop_url(tmp_path: Path, seeded_shop_file: Path) -> str:
    """The URL of this test's own copy of the seeded database file."""
    path = tmp_path / "shop.db"
    shutil.copyfile(seeded_shop_file, path)
    return f"sqlite:///{path}"


@pytest.fixture
def shop_db(shop_url: str) -> Iterator:
    """A session factory on this test's database (to arrange and to check what the actions wrote)."""
    from shop.db import make_engine, make_session_factory

    engine = make_engine(shop_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def shop_repository(shop_db) -> Iterator:
    """The real repository on this test's database, installed as the actions' repository."""
    from actions import common
    from shop.repository import ShopRepository

    repository = ShopRepository(shop_db)
    common.set_repository(repository)
    yield repository
    common.set_repository(None)


@pytest.fixture
def action_token() -> str:
    """The shared token the action server is built with (Rasa sends it as ``?token=``)."""
    return secrets.token_urlsafe(32)


@pytest.fixture
async def action_server(shop_repository, action_token: str) -> AsyncIterator:
    """The action server application with ``action_token``, served on 127.0.0.1 over the seeded database."""
    from tests.security.action_calls import ActionServer, build_app, serving

    async with serving(build_app(action_token)) as url:
        yield ActionServer(url, action_token)
