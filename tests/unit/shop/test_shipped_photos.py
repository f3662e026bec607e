"""Unit tests for shop/shipped_photos.py: the photos shipped in data/catalog/photos/ (licence, size, layout) and
attaching them when `make db` seeds a fresh database (`python -m shop.seed`).

The seeding tests use a SQLite file and an image root in a temporary folder; nothing outside it is written.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections import Counter
from pathlib import Path
from typing import Dict, Tuple

import pytest
from PIL import Image

from assistant.paths import PROJECT_ROOT
from shop import seed
from shop.seed import load_catalog
from shop.shipped_photos import (
    LICENSE_FILE,
    README_FILE,
    SHIPPED_PHOTOS_DIR,
    SHIPPED_SIDE,
    SIZE_BUDGET_BYTES,
    SOURCES_FILE,
    attach_shipped_photos,
    shipped_photos,
)
from tests.unit.components.products.synthetic_catalog import seeded_database


def tree(folder: Path) -> Dict[Path, Tuple[int, int]]:
    """Every file under `folder` with its (size, modification time in ns)."""
    if not folder.is_dir():
        return {}
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def shipped_digests() -> Dict[str, set]:
    """sku → SHA-256 of each shipped photo file."""
    digests: Dict[str, set] = {}
    for photo in shipped_photos()[0]:
        digests.setdefault(photo.sku, set()).add(hashlib.sha256(photo.path.read_bytes()).hexdigest())
    return digests


# ---------------------------------------------------------------------------------------------- the folder
def test_the_shipped_folder_carries_the_datasets_licence_notice() -> None:
    licence = (SHIPPED_PHOTOS_DIR / LICENSE_FILE).read_text(encoding="utf-8")
    assert licence.startswith("MIT License")
    assert "Copyright (c) 2019 Marcus Klasson" in licence
    assert "The above copyright notice and this permission notice shall be included" in licence
    readme = (SHIPPED_PHOTOS_DIR / README_FILE).read_text(encoding="utf-8")
    assert "Grocery Store Dataset" in readme and "LICENSE" in readme and "scripts/ship_grocery_photos.py" in readme


def test_the_shipped_folder_stays_under_its_size_budget() -> None:
    total = sum(size for size, _ in tree(SHIPPED_PHOTOS_DIR).values())
    assert 0 < total <= SIZE_BUDGET_BYTES


def test_the_shipped_photos_are_small_catalog_photos_of_known_products_from_train_or_iconic() -> None:
    photos, problems = shipped_photos()
    assert problems == []
    skus = {row["sku"] for row in load_catalog()}
    per_product = Counter(photo.sku for photo in photos)
    assert set(per_product) <= skus and {"FRU-KIWI", "FRU-BANANA"} <= set(per_product)
    assert min(per_product.values()) >= 2  # the iconic photo and train photos: LDA needs several
    for photo in photos:
        with Image.open(photo.path) as image:
            assert image.format == "JPEG" and min(image.size) <= SHIPPED_SIDE, photo.path
    with (SHIPPED_PHOTOS_DIR / SOURCES_FILE).open(newline="", encoding="utf-8") as handle:
        sources = list(csv.DictReader(handle))
    listed = {SHIPPED_PHOTOS_DIR / row["file"] for row in sources}
    assert listed == {photo.path for photo in photos}
    assert all(row["source"].startswith(("train/", "iconic-images-and-descriptions/")) for row in sources)
    assert all(row["file"].split("/")[0] == row["sku"] for row in sources)


# ---------------------------------------------------------------------------------------------- seeding
@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """(database URL, repository, image root) of a freshly seeded SQLite file in `tmp_path`."""
    monkeypatch.delenv("CATALOG_IMAGE_DIR", raising=False)
    with seeded_database(tmp_path) as (url, repository):
        yield url, repository, tmp_path / "catalog-images"


def test_make_db_attaches_the_shipped_photos_once(fresh, tmp_path: Path) -> None:
    url, repository, root = fresh
    before = {"shipped": tree(SHIPPED_PHOTOS_DIR), "var": tree(PROJECT_ROOT / "var")}
    assert seed.main(["--database-url", url, "--image-root", str(root)]) == 0

    recorded = repository.product_images()
    per_product = Counter(sku for sku, _ in recorded)
    expected = shipped_digests()
    assert {sku: len(digests) for sku, digests in expected.items()} == dict(per_product)
    for sku, relative in recorded:  # stored by content hash, byte for byte
        digest = Path(relative).stem
        assert digest in expected[sku] and relative == f"{digest[:2]}/{digest}.jpg"
        assert hashlib.sha256((root / relative).read_bytes()).hexdigest() == digest
    products_without = {row["sku"] for row in load_catalog()} - set(expected)
    assert products_without and not products_without & set(per_product)

    stored = tree(root)
    assert seed.main(["--database-url", url, "--image-root", str(root)]) == 0  # idempotent
    assert repository.product_images() == recorded and tree(root) == stored
    counts = attach_shipped_photos(repository, root)
    assert counts["attached"] == 0 and counts["present"] == sum(map(len, expected.values()))

    # written: the database and the image root only; the shipped folder and var/ are untouched
    assert {p.name for p in tmp_path.iterdir()} == {"shop.db", root.name}
    assert not [p for p in root.rglob("*") if p.is_file() and p.parent.name == ".tmp"]
    assert {"shipped": tree(SHIPPED_PHOTOS_DIR), "var": tree(PROJECT_ROOT / "var")} == before


def test_a_removed_stored_file_is_stored_again(fresh) -> None:
    url, repository, root = fresh
    assert seed.main(["--database-url", url, "--image-root", str(root), "--photos",
                      str(SHIPPED_PHOTOS_DIR)]) == 0
    sku, relative = next(pair for pair in repository.product_images() if pair[0] == "FRU-KIWI")
    (root / relative).unlink()
    counts = attach_shipped_photos(repository, root)
    assert counts["attached"] == 1 and (root / relative).is_file()


def test_no_photos_and_an_absent_folder_attach_nothing(fresh, tmp_path: Path, caplog) -> None:
    url, repository, root = fresh
    assert seed.main(["--database-url", url, "--image-root", str(root), "--no-photos"]) == 0
    with caplog.at_level(logging.WARNING, logger="shop.seed"):
        assert seed.main(["--database-url", url, "--image-root", str(root), "--photos",
                          str(tmp_path / "absent")]) == 0
    assert repository.product_images() == [] and not root.exists()
    assert "is not a folder" in caplog.text


def jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_unknown_skus_and_damaged_files_are_skipped_with_one_line_each(fresh, tmp_path: Path, caplog) -> None:
    _, repository, root = fresh
    folder = tmp_path / "photos"
    for sku, name, data in (("FRU-KIWI", "a.jpg", jpeg((90, 120, 30))), ("FRU-KIWI", "b.jpg", jpeg((0, 0, 0))[:150]),
                            ("NO-SUCH-SKU", "x.jpg", jpeg((1, 2, 3))), ("NO-SUCH-SKU", "y.jpg", jpeg((4, 5, 6)))):
        (folder / sku).mkdir(parents=True, exist_ok=True)
        (folder / sku / name).write_bytes(data)
    with caplog.at_level(logging.WARNING):
        counts = attach_shipped_photos(repository, root, folder)
    assert (counts["attached"], counts["refused"], counts["unknown_sku"]) == (1, 1, 2)
    assert [line for line in caplog.messages if "NO-SUCH-SKU" in line] == [
        "Shipped photos of NO-SUCH-SKU skipped: no product has that sku"]
    assert [sku for sku, _ in repository.product_images()] == ["FRU-KIWI"]
