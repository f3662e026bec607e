"""Unit tests for components/products/catalog.py: the catalog from its snapshot, image root, photo paths."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from components.products.catalog import (
    CatalogProduct,
    catalog_photo_files,
    load_catalog,
    read_catalog,
    seed_catalog,
)
from tests.unit.components.products.synthetic_catalog import make_catalog


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CATALOG_IMAGE_DIR", raising=False)
    monkeypatch.delenv("CATALOG_SNAPSHOT", raising=False)
    yield from make_catalog(tmp_path)


def test_the_catalog_is_read_from_the_snapshot(catalog) -> None:
    relative = catalog.add_photo("FRU-BANANA", (250, 220, 40))
    catalog.write_snapshot()
    products, photos, source = read_catalog(str(catalog.snapshot))
    assert source == "snapshot"
    assert [p.sku for p in products] == sorted(view.sku for view in catalog.repository.list_products())
    banana = next(p for p in products if p.sku == "FRU-BANANA")
    assert banana == CatalogProduct.from_fields(vars(catalog.repository.get_product("FRU-BANANA")))
    assert photos == [("FRU-BANANA", relative)]


def test_without_a_usable_snapshot_the_seed_catalog_is_used(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO)
    missing = load_catalog(str(tmp_path / "absent.json"))
    assert (missing.source, missing.photos) == ("seed", [])
    assert missing.products == seed_catalog() and len(missing.products) > 50
    assert "no catalog snapshot" in missing.problem
    assert not caplog.records, "load_catalog logs nothing; read_catalog logs the problem once"
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert load_catalog(str(broken)).source == "seed"
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"format": 1, "products": [], "photos": []}))
    assert "has no products" in load_catalog(str(empty)).problem
    read_catalog(str(broken))
    assert len(caplog.records) == 1 and "could not be read" in caplog.text


def test_the_product_text_and_persisted_fields() -> None:
    product = CatalogProduct("A", "Oat Milk.", "oat milk", "Milk/Oat", "Oat-Milk", "Creamy. ")
    assert product.text() == "Oat Milk. oat milk. Oat-Milk. Creamy"
    assert product.to_json() == {"sku": "A", "name": "Oat Milk.", "kind": "oat milk", "category": "Milk/Oat",
                                 "coarse_category": "Oat-Milk", "description": "Creamy. "}


def test_only_photos_inside_the_image_root_are_listed(tmp_path: Path, caplog) -> None:
    root = tmp_path / "root"
    (root / "fru-banana").mkdir(parents=True)
    (root / "fru-banana/fadc28.png").write_bytes(b"a photo")
    (tmp_path / "outside.png").write_bytes(b"another photo")
    (root / "link.png").symlink_to(tmp_path / "outside.png")  # leads out of the root: skipped

    pairs = [("FRU-BANANA", "fru-banana/fadc28.png"), ("FRU-KIWI", "link.png"), ("FRU-LIME", "gone/lime.png")]
    found = catalog_photo_files(pairs, root)
    assert [(sku, relative) for sku, relative, _ in found] == [("FRU-BANANA", "fru-banana/fadc28.png")]
    assert "gone/lime.png" in caplog.text and "link.png" in caplog.text
    assert catalog_photo_files(pairs, root, known={"FRU-KIWI"}) == []
