"""Unit tests of `shop.db`: the database URL, engines, sessions and the unit of work."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from shop import db as shop_db
from shop.db import database_url, make_engine, make_session_factory, unit_of_work
from shop.models import Customer, OrderItem
from shop.repository import ShopRepository
from shop.seed import create_and_seed
from tests.unit.conftest import SEED_NOW

PROJECT_ROOT = Path(__file__).resolve().parents[3]



def test_database_url_prefers_environment(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "  postgresql+psycopg2://u@h:5432/db  ")
    assert database_url() == "postgresql+psycopg2://u@h:5432/db"
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    assert database_url() == "postgresql://u@h/db"


def test_database_url_defaults_to_sqlite_file_under_project_root(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr(shop_db, "VAR_DIR", tmp_path / "var")
    url = database_url()
    assert url == f"sqlite:///{tmp_path / 'var' / 'shop.db'}"
    assert (tmp_path / "var").is_dir()
    monkeypatch.setenv("DATABASE_URL", "   ")
    assert database_url() == url


def test_default_database_is_in_the_projects_var_folder():
    assert shop_db.VAR_DIR == PROJECT_ROOT / "var"
    assert (PROJECT_ROOT / "shop" / "db.py").is_file()


def test_make_engine_sqlite_settings(tmp_path):
    memory = make_engine("sqlite://")
    assert isinstance(memory.pool, StaticPool) and memory.dialect.name == "sqlite"
    with memory.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    memory.dispose()
    filed = make_engine(f"sqlite:///{tmp_path / 'f.db'}")
    assert not isinstance(filed.pool, StaticPool)
    with filed.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    filed.dispose()


def test_sqlite_file_database_works_from_other_threads(tmp_path):
    url = f"sqlite:///{tmp_path / 'threads.db'}"
    engine = make_engine(url)
    create_and_seed(engine, now=SEED_NOW)
    repo = ShopRepository(make_session_factory(engine))
    results, errors = [], []

    def worker() -> None:
        try:
            results.append(repo.get_order("10023").status)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and results == ["shipped"] * 4
    engine.dispose()


def test_foreign_keys_are_enforced(shop_session_factory):
    with pytest.raises(IntegrityError):
        with unit_of_work(shop_session_factory) as session:
            session.add(OrderItem(order_id=1, product_id=999_999, quantity=1, unit_price=Decimal("1.00")))


def test_unit_of_work_commits_rolls_back_and_closes(shop_session_factory):
    events = []

    class Spy:
        def __init__(self) -> None:
            self.inner = shop_session_factory()

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def commit(self):
            events.append("commit")
            self.inner.commit()

        def rollback(self):
            events.append("rollback")
            self.inner.rollback()

        def close(self):
            events.append("close")
            self.inner.close()

    with unit_of_work(Spy) as session:
        session.add(Customer(name="Test Person", email="test.person@example.com"))
    assert events == ["commit", "close"]

    events.clear()
    with pytest.raises(RuntimeError):
        with unit_of_work(Spy) as session:
            session.add(Customer(name="Other Person", email="other.person@example.com"))
            session.flush()
            raise RuntimeError("boom")
    assert events == ["rollback", "close"]
    with unit_of_work(shop_session_factory) as session:
        emails = set(session.execute(select(Customer.email)).scalars())
    assert "test.person@example.com" in emails and "other.person@example.com" not in emails
