"""Unit tests for components/products/index.py: `CatalogIndex` building, files and loading."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from components.products.catalog import CatalogProduct
from components.products.index import INDEX_FORMAT, CatalogIndex, build_index

PRODUCTS = [CatalogProduct("B", "Banana", "banana", "Fruit/Banana", "Banana"),
            CatalogProduct("A", "Apple", "apple", "Fruit/Apple", "Apple"),
            CatalogProduct("C", "Cherry", "cherry", "Fruit/Cherry", "Cherry")]


def small_index(projection: str = "lda") -> CatalogIndex:
    rng = np.random.default_rng(1)
    images = [{"sku": sku, "path": f"{sku}{i}.png", "sha256": "0" * 64} for sku in "AB" for i in range(3)]
    raw = rng.normal(size=(6, 1280)).astype(np.float32)
    text = rng.normal(size=(3, 8)).astype(np.float32)
    return build_index(PRODUCTS, images, raw, text, {"weights_sha256": "w"}, "snapshot", projection, 0.1, 3)


def test_catalog_index_round_trip_keeps_an_empty_index(tmp_path: Path):
    CatalogIndex.empty().save(tmp_path)
    restored = CatalogIndex.load(tmp_path)
    assert restored.products == [] and not restored.has_images and not restored.has_text


def test_built_index_sorts_products_and_normalises_rows() -> None:
    index = small_index()
    assert [p.sku for p in index.products] == ["A", "B", "C"]
    assert index.projection is not None and index.image_embeddings.shape == (6, 1)
    assert index.image_owner.tolist() == [0, 0, 0, 1, 1, 1]
    assert index.has_image.tolist() == [True, True, False]
    np.testing.assert_allclose(np.linalg.norm(index.text_embeddings, axis=1), 1.0, atol=1e-6)
    assert index.has_text and index.has_images
    plain = small_index("none")
    assert plain.image_embeddings.shape == (6, 1280) and plain.projection is None
    assert plain.prepare(np.zeros(1280)) is None  # all zero: unusable
    assert index.prepare(np.ones(7)) is None and index.prepare(np.full(1280, np.nan)) is None
    assert index.prepare(np.ones(1280)).shape == (1,)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    index = small_index()
    index.save(tmp_path)
    restored = CatalogIndex.load(tmp_path)
    assert restored.products == index.products and restored.images == index.images
    np.testing.assert_array_equal(restored.image_embeddings, index.image_embeddings)
    np.testing.assert_array_equal(restored.projection.matrix, index.projection.matrix)
    np.testing.assert_array_equal(restored.image_centroids, index.image_centroids)
    assert restored.encoder == {"weights_sha256": "w"} and restored.source == "snapshot"
    assert json.loads((tmp_path / "index.json").read_text())["format"] == INDEX_FORMAT


def test_inconsistent_files_are_refused(tmp_path: Path) -> None:
    small_index().save(tmp_path)
    meta = json.loads((tmp_path / "index.json").read_text())
    (tmp_path / "index.json").write_text(json.dumps({**meta, "format": INDEX_FORMAT + 1}))
    with pytest.raises(ValueError, match="format"):
        CatalogIndex.load(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({**meta, "images": meta["images"][:5]}))
    with pytest.raises(ValueError, match="differ"):
        CatalogIndex.load(tmp_path)
    stranger = {**meta["images"][0], "sku": "Z"}
    (tmp_path / "index.json").write_text(json.dumps({**meta, "images": [stranger] * 6}))
    with pytest.raises(ValueError, match="unknown sku"):
        CatalogIndex.load(tmp_path)
    (tmp_path / "index.json").unlink()
    with pytest.raises(ValueError, match="unreadable"):
        CatalogIndex.load(tmp_path)
