"""Unit tests for components/products/fingerprint.py: what the recogniser's index depends on."""
from __future__ import annotations

from pathlib import Path

import pytest

from assistant.fingerprints import UNREADABLE, file_sha256_or
from components.products.fingerprint import catalog_fingerprint
from tests.unit.components.products.synthetic_catalog import make_catalog


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CATALOG_SNAPSHOT", raising=False)
    yield from make_catalog(tmp_path)


def test_the_fingerprint_covers_snapshot_photos_and_mapping(catalog, tmp_path: Path) -> None:
    snapshot, root = str(catalog.write_snapshot()), str(catalog.root)
    first = catalog_fingerprint(snapshot, root, None)
    assert catalog_fingerprint(snapshot, root, None) == first
    relative = catalog.add_photo("FRU-KIWI", (90, 140, 40))
    catalog.write_snapshot()
    with_photo = catalog_fingerprint(snapshot, root, None)
    assert with_photo != first
    (catalog.root / relative).unlink()  # the file is gone: "missing"
    assert catalog_fingerprint(snapshot, root, None) not in (first, with_photo)
    mapping = tmp_path / "map.yml"
    mapping.write_text("banana: [banana]\n")
    assert catalog_fingerprint(snapshot, root, str(mapping)) != catalog_fingerprint(snapshot, root, None)
    elsewhere = str(tmp_path / "elsewhere")
    assert catalog_fingerprint(snapshot, elsewhere, None) != catalog_fingerprint(snapshot, root, None)


def test_a_missing_snapshot_fingerprints_the_seed_catalog(tmp_path: Path) -> None:
    absent = str(tmp_path / "absent.json")
    assert catalog_fingerprint(absent, str(tmp_path), None) == catalog_fingerprint(
        str(tmp_path / "also-absent.json"), str(tmp_path), None
    )
    assert file_sha256_or(tmp_path / "nothing", UNREADABLE) == "unreadable"
