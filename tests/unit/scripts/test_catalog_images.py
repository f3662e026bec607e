"""Unit tests of scripts/catalog_images.py (`make catalog-images`): sources, validation, content-addressed
storage.

Photos are generated with Pillow in temporary folders; the catalog is a seeded SQLite database in a temporary
file; a miniature Grocery Store Dataset layout (classes.csv, iconic photos, train.txt) is written for
`--grocery`.
"""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from PIL import Image

import catalog_images  # scripts/ is on sys.path (conftest.py)
from tests.unit.components.products.synthetic_catalog import seeded_database


def jpeg(colour=(200, 180, 40), size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def shop(tmp_path: Path):
    """(database URL, repository) of a seeded SQLite file."""
    with seeded_database(tmp_path) as database:
        yield database


def run_script(*args: str) -> int:
    return catalog_images.main(list(args))


def test_sku_folders_are_validated_stored_by_hash_and_recorded(tmp_path: Path, shop) -> None:
    url, repository = shop
    source, root = tmp_path / "photos", tmp_path / "images"
    (source / "fru-banana").mkdir(parents=True)
    (source / "FRU-MANGO").mkdir()
    (source / "NO-SUCH-SKU").mkdir()
    banana = jpeg()
    (source / "fru-banana" / "front.jpg").write_bytes(banana)
    (source / "fru-banana" / "copy.JPG").write_bytes(banana)  # same content: stored once
    (source / "fru-banana" / "broken.jpg").write_bytes(banana[:200])
    (source / "fru-banana" / "notes.txt").write_text("ignored")
    (source / "FRU-MANGO" / "text.png").write_text("not an image")
    (source / "NO-SUCH-SKU" / "x.jpg").write_bytes(jpeg((1, 2, 3)))
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(jpeg((9, 9, 9)))
    os.symlink(outside, source / "FRU-MANGO" / "link.jpg")

    assert run_script(str(source), "--database-url", url, "--image-root", str(root)) == 0
    digest = hashlib.sha256(banana).hexdigest()
    assert repository.product_images() == [("FRU-BANANA", f"{digest[:2]}/{digest}.jpg")]
    assert (root / digest[:2] / f"{digest}.jpg").read_bytes() == banana
    stored = [p for p in root.rglob("*") if p.is_file()]
    assert stored == [root / digest[:2] / f"{digest}.jpg"]

    assert run_script(str(source), "--database-url", url, "--image-root", str(root)) == 0  # idempotent
    assert len(repository.product_images()) == 1


def test_csv_paths_must_stay_inside_the_folder(tmp_path: Path, shop) -> None:
    url, repository = shop
    source, root = tmp_path / "photos", tmp_path / "images"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "kiwi.png").write_bytes(jpeg((90, 140, 40)))
    (tmp_path / "outside.jpg").write_bytes(jpeg())
    mapping = tmp_path / "map.csv"
    mapping.write_text(
        "path,sku\n"
        "sub/kiwi.png,fru-kiwi\n"
        "../outside.jpg,FRU-BANANA\n"
        f"{tmp_path / 'outside.jpg'},FRU-BANANA\n"
        "sub/missing.jpg,FRU-LIME\n"
        "sub/kiwi.png,\n"
    )
    args = ["--csv", str(mapping), "--database-url", url, "--image-root", str(root)]
    assert run_script(str(source), *args) == 0
    assert [sku for sku, _ in repository.product_images()] == ["FRU-KIWI"]


def test_size_and_pixel_limits_refuse_photos(tmp_path: Path, shop) -> None:
    url, repository = shop
    source = tmp_path / "photos" / "FRU-LEMON"
    source.mkdir(parents=True)
    (source / "big.jpg").write_bytes(jpeg(size=(400, 300)))
    args = ["--database-url", url, "--image-root", str(tmp_path / "images")]
    assert run_script(str(source.parent), *args, "--max-pixels", "10000") == 1
    assert run_script(str(source.parent), *args, "--max-bytes", "100") == 1
    assert repository.product_images() == []
    assert run_script(str(source.parent), *args, "--dry-run") == 0
    assert repository.product_images() == []
    assert not (tmp_path / "images").exists()


def test_grocery_mode_attaches_iconic_and_train_photos(tmp_path: Path, shop) -> None:
    url, repository = shop
    dataset = tmp_path / "grocery"
    rows = [("Granny-Smith", 0, "Apple", 0, "Fruit/Apple/Granny-Smith"), ("Oatly-Oat-Milk", 1, "Oat-Milk", 1,
            "Packages/Oat-Milk/Oatly-Oat-Milk"), ("Dragon-Fruit-Caviar", 2, "Odd", 2, "Fruit/Odd/Dragon")]
    lines = ["Class Name (str),Class ID (int),Coarse Class Name (str),Coarse Class ID (int),"
             "Iconic Image Path (str),Product Description Path (str)"]
    train = []
    for name, fine, coarse_name, coarse, folder in rows:
        iconic = dataset / "iconic-images-and-descriptions" / folder / f"{name}_Iconic.jpg"
        iconic.parent.mkdir(parents=True)
        iconic.write_bytes(jpeg((fine * 60, 100, 50)))
        lines.append(f"{name},{fine},{coarse_name},{coarse},/{iconic.relative_to(dataset)},/x.txt")
        for n in range(3):
            photo = dataset / "train" / folder / f"{name}_{n:03d}.jpg"
            photo.parent.mkdir(parents=True, exist_ok=True)
            photo.write_bytes(jpeg((fine * 60, 120 + 10 * n, 50)))
            train.append(f"{photo.relative_to(dataset)}, {fine}, {coarse}")
    (dataset / "classes.csv").write_text("\n".join(lines) + "\n")
    (dataset / "train.txt").write_text("\n".join(train) + "\n")

    args = ["--grocery", "--database-url", url, "--image-root", str(tmp_path / "images")]
    assert run_script(str(dataset), *args, "--grocery-train-photos", "2") == 0
    skus = [sku for sku, _ in repository.product_images()]
    assert skus.count("FRU-APL-GRANNY") == 3 and skus.count("PLB-OATLY-OATMILK") == 3
    assert len(skus) == 6


def test_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as raised:
        run_script(str(tmp_path / "absent"))
    assert raised.value.code == 2
