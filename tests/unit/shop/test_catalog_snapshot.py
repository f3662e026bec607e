"""Unit tests for shop/catalog_snapshot.py: the catalog snapshot the NLU graph reads, not the database."""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import List

import pytest

import shop.catalog_snapshot as catalog_snapshot
from assistant.fingerprints import file_sha256_or
from shop.catalog_snapshot import (
    NO_SNAPSHOT,
    PRODUCT_FIELDS,
    SNAPSHOT_FORMAT,
    CatalogSnapshot,
    SnapshotPhoto,
    build_snapshot,
    catalog_content,
    main,
    read_snapshot,
    refresh_snapshot,
    resolve_snapshot_path,
    save_snapshot,
)
from tests.unit.components.products.synthetic_catalog import seeded_database


@pytest.fixture
def database(tmp_path: Path):
    """(URL, repository) of a seeded SQLite file."""
    with seeded_database(tmp_path) as database:
        yield database


def test_round_trip_of_the_repositorys_catalog(database, tmp_path: Path) -> None:
    url, shop_repo = database
    root = tmp_path / "images"
    (root / "ab").mkdir(parents=True)
    (root / "ab" / "kiwi.jpg").write_bytes(b"kiwi photo")
    shop_repo.add_product_image("FRU-KIWI", "ab/kiwi.jpg", "a" * 64)
    shop_repo.add_product_image("FRU-LIME", "cd/lime.jpg", "b" * 64)  # no file
    path = tmp_path / "catalog" / "snapshot.json"
    assert refresh_snapshot(path, url, root) is True

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


def test_unchanged_content_is_not_rewritten(database, tmp_path: Path) -> None:
    url, shop_repo = database
    path = tmp_path / "snapshot.json"
    assert refresh_snapshot(path, url, tmp_path) is True
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    digest = file_sha256_or(path, None)
    assert refresh_snapshot(path, url, tmp_path) is False
    assert path.stat().st_mtime_ns == 1_000_000_000 and file_sha256_or(path, None) == digest
    shop_repo.add_product_image("FRU-KIWI", "ab/kiwi.jpg", "a" * 64)
    assert refresh_snapshot(path, url, tmp_path) is True
    assert file_sha256_or(path, None) != digest
    assert file_sha256_or(tmp_path / "absent.json", None) is None


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> List[Path]:
    """The photo files the snapshot writer reads (hashes) from now on, in order."""
    seen: List[Path] = []
    real = catalog_snapshot.file_sha256_or

    def counting(path: Path, default):
        seen.append(Path(path))
        return real(path, default)

    monkeypatch.setattr(catalog_snapshot, "file_sha256_or", counting)
    return seen


def later(path: Path, seconds: int = 1) -> None:
    """Moves the file's modification time `seconds` later, as touching or rewriting it later would."""
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + seconds * 1_000_000_000))


def test_a_refresh_reads_only_new_or_changed_photos(database, tmp_path: Path, hashed: List[Path]) -> None:
    url, repository = database
    root = tmp_path / "images"
    root.mkdir()
    for name, sku in (("kiwi.jpg", "FRU-KIWI"), ("lime.jpg", "FRU-LIME")):
        (root / name).write_bytes(f"{name} photo".encode())
        repository.add_product_image(sku, name, "a" * 64)
    kiwi, lime = (root / "kiwi.jpg").resolve(), (root / "lime.jpg").resolve()
    path = tmp_path / "snapshot.json"
    assert refresh_snapshot(path, url, root) is True
    assert sorted(hashed) == [kiwi, lime]
    first = read_snapshot(path)
    assert [(p.size, p.mtime_ns) for p in first.photos] == [
        (f.stat().st_size, f.stat().st_mtime_ns) for f in (kiwi, lime)
    ]

    hashed.clear()
    assert refresh_snapshot(path, url, root) is False  # `make db` twice: up to date, no photo read
    assert hashed == []

    later(kiwi)  # touched: read again, same hash, same catalog
    assert refresh_snapshot(path, url, root) is True
    assert hashed == [kiwi]
    assert read_snapshot(path) == first and catalog_content(path) == first.content(with_file_status=False)

    hashed.clear()
    lime.write_bytes(b"another lime")  # changed: read again, new hash
    later(lime)
    assert refresh_snapshot(path, url, root) is True
    assert hashed == [lime]
    assert read_snapshot(path).photos[1].sha256 == hashlib.sha256(b"another lime").hexdigest()
    assert read_snapshot(path).photos[0] == first.photos[0]


def test_a_snapshot_without_file_status_is_read_and_its_photos_hashed_once(
    database, tmp_path: Path, hashed: List[Path]
) -> None:
    url, repository = database
    (tmp_path / "kiwi.jpg").write_bytes(b"kiwi photo")
    repository.add_product_image("FRU-KIWI", "kiwi.jpg", "a" * 64)
    path = tmp_path / "snapshot.json"
    refresh_snapshot(path, url, tmp_path)
    old = read_snapshot(path)
    path.write_bytes(old.content(with_file_status=False))  # as written before size and mtime_ns were recorded
    assert "mtime_ns" not in path.read_text() and read_snapshot(path) == old
    [photo] = read_snapshot(path).photos
    assert (photo.size, photo.mtime_ns) == (None, None)

    hashed.clear()
    assert refresh_snapshot(path, url, tmp_path) is True  # the status is added, the hash stays
    assert len(hashed) == 1 and read_snapshot(path) == old
    hashed.clear()
    assert refresh_snapshot(path, url, tmp_path) is False and hashed == []


def test_catalog_content_leaves_out_the_file_status(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    products = ({field: "A" for field in PRODUCT_FIELDS},)
    save_snapshot(CatalogSnapshot(products, (SnapshotPhoto("A", "a.jpg", "ab" * 32, 10, 1_000),)), path)
    content = catalog_content(path)
    assert b"mtime_ns" in path.read_bytes() and b"mtime_ns" not in content
    save_snapshot(CatalogSnapshot(products, (SnapshotPhoto("A", "a.jpg", "ab" * 32, 10, 2_000),)), path)
    assert catalog_content(path) == content  # touched, same catalog
    save_snapshot(CatalogSnapshot(products, (SnapshotPhoto("A", "a.jpg", "cd" * 32, 10, 2_000),)), path)
    assert catalog_content(path) != content  # another photo content
    assert catalog_content(tmp_path / "absent.json") == NO_SNAPSHOT
    path.write_bytes(b"{not json")
    assert catalog_content(path) == b"{not json"


def test_a_file_status_that_is_not_a_count_is_ignored() -> None:
    product = {field: "A" for field in PRODUCT_FIELDS}
    for size, mtime_ns in (("10", 5), (True, 5), (-1, 5), (10, None)):
        data = {"format": 1, "products": [product],
                "photos": [{"sku": "A", "path": "a.jpg", "sha256": None, "size": size, "mtime_ns": mtime_ns}]}
        [photo] = CatalogSnapshot.from_json(data).photos
        assert photo.to_json() == {"sku": "A", "path": "a.jpg", "sha256": None}


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
