"""Unit tests for shop/catalog_snapshot.py: the catalog snapshot the NLU graph reads, not the database."""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import pytest

from shop.catalog_snapshot import (
    PRODUCT_FIELDS,
    SNAPSHOT_FORMAT,
    CatalogSnapshot,
    SnapshotPhoto,
    build_snapshot,
    main,
    read_snapshot,
    refresh_snapshot,
    resolve_snapshot_path,
    save_snapshot,
    snapshot_sha256,
    write_snapshot,
)
from tests.unit.components.products.synthetic_catalog import seeded_database


@pytest.fixture
def database(tmp_path: Path):
    """(URL, repository) of a seeded SQLite file."""
    with seeded_database(tmp_path) as database:
        yield database


def test_round_trip_of_the_repositorys_catalog(shop_repo, tmp_path: Path) -> None:
    root = tmp_path / "images"
    (root / "ab").mkdir(parents=True)
    (root / "ab" / "kiwi.jpg").write_bytes(b"kiwi photo")
    shop_repo.add_product_image("FRU-KIWI", "ab/kiwi.jpg", "a" * 64)
    shop_repo.add_product_image("FRU-LIME", "cd/lime.jpg", "b" * 64)  # no file
    path = tmp_path / "catalog" / "snapshot.json"
    assert write_snapshot(shop_repo, path, root) is True

    snapshot = read_snapshot(path)
    assert snapshot == build_snapshot(shop_repo, root)
    assert [p["sku"] for p in snapshot.products] == sorted(v.sku for v in shop_repo.list_products())
    kiwi = next(p for p in snapshot.products if p["sku"] == "FRU-KIWI")
    view = shop_repo.get_product("FRU-KIWI")
    assert kiwi == {field: getattr(view, field) for field in PRODUCT_FIELDS}
    assert snapshot.photos == (
        SnapshotPhoto("FRU-KIWI", "ab/kiwi.jpg", hashlib.sha256(b"kiwi photo").hexdigest()),
        SnapshotPhoto("FRU-LIME", "cd/lime.jpg", None),
    )
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == SNAPSHOT_FORMAT and set(data) == {"format", "products", "photos"}
    assert "price" not in data["products"][0] and "stock" not in data["products"][0]


def test_unchanged_content_is_not_rewritten(shop_repo, tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    assert write_snapshot(shop_repo, path, tmp_path) is True
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    digest = snapshot_sha256(path)
    assert write_snapshot(shop_repo, path, tmp_path) is False
    assert path.stat().st_mtime_ns == 1_000_000_000 and snapshot_sha256(path) == digest
    shop_repo.add_product_image("FRU-KIWI", "ab/kiwi.jpg", "a" * 64)
    assert write_snapshot(shop_repo, path, tmp_path) is True
    assert snapshot_sha256(path) != digest
    assert snapshot_sha256(tmp_path / "absent.json") is None


def test_the_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "snapshot.json"
    first = CatalogSnapshot(({field: "A" for field in PRODUCT_FIELDS},), ())
    assert save_snapshot(first, path)
    second = CatalogSnapshot(({field: "B" for field in PRODUCT_FIELDS},), ())

    def crash(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_snapshot(second, path)
    assert read_snapshot(path) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot.json"], "no temporary file left behind"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"format": 2, "products": []}, "format"),
        ([], "format"),
        ({"format": 1, "products": [{"sku": "A"}]}, "text fields"),
        ({"format": 1, "products": [{f: "A" for f in PRODUCT_FIELDS}] * 2}, "twice"),
        ({"format": 1, "products": [], "photos": [{"sku": "A", "path": "a.jpg"}]}, "unknown sku"),
    ],
)
def test_a_malformed_snapshot_is_refused(data, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CatalogSnapshot.from_json(data)


def test_the_path_comes_from_argument_environment_or_default(monkeypatch, tmp_path: Path) -> None:
    from assistant.paths import PROJECT_ROOT

    monkeypatch.delenv("CATALOG_SNAPSHOT", raising=False)
    assert resolve_snapshot_path() == PROJECT_ROOT / "var" / "catalog" / "snapshot.json"
    monkeypatch.setenv("CATALOG_SNAPSHOT", str(tmp_path / "env.json"))
    assert resolve_snapshot_path() == tmp_path / "env.json"
    assert resolve_snapshot_path("var/x.json") == PROJECT_ROOT / "var" / "x.json"


def test_refresh_reads_the_database_only_when_it_can(database, tmp_path: Path) -> None:
    url, _ = database
    path = tmp_path / "snapshot.json"
    assert refresh_snapshot(path, url, tmp_path) is True
    assert refresh_snapshot(path, url, tmp_path) is False
    before = path.read_bytes()
    assert refresh_snapshot(path, f"sqlite:///{tmp_path / 'absent.db'}", tmp_path) is None
    assert not (tmp_path / "absent.db").exists(), "a missing database file is not created"
    (tmp_path / "empty.db").write_bytes(b"")
    assert refresh_snapshot(path, f"sqlite:///{tmp_path / 'empty.db'}", tmp_path) is None  # no schema
    assert path.read_bytes() == before, "the last snapshot is kept"


def test_the_command_line_writes_from_database_url(database, tmp_path: Path, monkeypatch, caplog) -> None:
    caplog.set_level(logging.INFO, logger="shop.catalog_snapshot")
    url, repository = database
    monkeypatch.setenv("DATABASE_URL", url)
    out = tmp_path / "out" / "snapshot.json"
    assert main(["--out", str(out), "--image-root", str(tmp_path)]) == 0
    assert len(read_snapshot(out).products) == len(repository.list_products())
    assert main(["--out", str(out), "--image-root", str(tmp_path)]) == 0
    assert "up to date" in caplog.text
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'absent.db'}")
    assert main(["--out", str(out)]) == 1
