"""Unit tests of scripts/ship_grocery_photos.py on a miniature Grocery Store Dataset layout (generated photos).

The real shipped folder, data/catalog/photos/, is checked in tests/unit/shop/test_shipped_photos.py.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Dict

import pytest
from PIL import Image

import ship_grocery_photos as ship  # scripts/ is on sys.path (conftest.py)
from shop.shipped_photos import LICENSE_FILE, README_FILE, SOURCES_FILE

HEADER = ("Class Name (str),Class ID (int),Coarse Class Name (str),Coarse Class ID (int),"
          "Iconic Image Path (str),Product Description Path (str)")
LICENSE_TEXT = "MIT License\n\nCopyright (c) 2019 Someone\n\nPermission is hereby granted ...\n"


def jpeg(colour, size, exif_orientation: int = 0) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", size, colour)
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    image.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


def write_dataset(dataset: Path, train_per_class: int = 6) -> Dict[str, bytes]:
    """Two classes (Kiwi, Banana) with 198-pixel iconic photos, `train_per_class` 348 × 464 train photos each
    (the second one with an EXIF rotation) and val photos; returns the files by relative path."""
    files: Dict[str, bytes] = {}
    classes = [("Kiwi", 0, "Fruit/Kiwi", (120, 150, 40)), ("Banana", 1, "Fruit/Banana", (240, 220, 40))]
    lines, train, val = [HEADER], [], []
    for name, class_id, folder, colour in classes:
        iconic = f"iconic-images-and-descriptions/{folder}/{name}_Iconic.jpg"
        files[iconic] = jpeg(colour, (198, 198))
        lines.append(f"{name},{class_id},{name},{class_id},/{iconic},/d.txt")
        for i in range(train_per_class):
            path = f"train/{folder}/{name}_{i:03d}.jpg"
            files[path] = jpeg(colour, (348, 464), exif_orientation=6 if i == 1 else 0)
            train.append(f"{path}, {class_id}, {class_id}")
        path = f"val/{folder}/{name}_001.jpg"
        files[path] = jpeg(colour, (348, 348))
        val.append(f"{path}, {class_id}, {class_id}")
    for relative, data in files.items():
        (dataset / relative).parent.mkdir(parents=True, exist_ok=True)
        (dataset / relative).write_bytes(data)
    (dataset / "classes.csv").write_text("\n".join(lines) + "\n")
    (dataset / "train.txt").write_text("\n".join(train) + "\n")
    (dataset / "val.txt").write_text("\n".join(val) + "\n")
    (dataset / "LICENSE").write_text(LICENSE_TEXT)
    return files


def test_spread_takes_evenly_spaced_items() -> None:
    assert ship.spread(10, 3) == [1, 5, 8]
    assert ship.spread(4, 4) == [0, 1, 2, 3]
    assert ship.spread(3, 8) == [0, 1, 2]
    assert ship.spread(5, 0) == []


def test_the_folder_has_iconic_and_train_photos_downscaled_and_the_licence(tmp_path: Path) -> None:
    files = write_dataset(tmp_path / "grocery")
    out = tmp_path / "photos"
    assert ship.main([str(tmp_path / "grocery"), "--out", str(out), "--train-photos", "3", "--side", "256"]) == 0

    assert sorted(p.name for p in (out / "FRU-KIWI").iterdir()) == [
        "Kiwi_001.jpg", "Kiwi_003.jpg", "Kiwi_005.jpg", "Kiwi_Iconic.jpg"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["FRU-BANANA", "FRU-KIWI", LICENSE_FILE, README_FILE, SOURCES_FILE])
    iconic = "iconic-images-and-descriptions/Fruit/Kiwi/Kiwi_Iconic.jpg"
    assert (out / "FRU-KIWI" / "Kiwi_Iconic.jpg").read_bytes() == files[iconic]  # small: copied unchanged
    with Image.open(out / "FRU-KIWI" / "Kiwi_003.jpg") as image:
        assert image.size == (256, 341) and image.format == "JPEG"
    with Image.open(out / "FRU-KIWI" / "Kiwi_001.jpg") as image:  # EXIF rotation applied, then dropped
        assert image.size == (341, 256) and 0x0112 not in image.getexif()
    assert (out / LICENSE_FILE).read_text() == LICENSE_TEXT
    assert "Grocery Store Dataset" in (out / README_FILE).read_text()
    with (out / SOURCES_FILE).open(newline="") as handle:
        sources = list(csv.DictReader(handle))
    assert len(sources) == 8 and all((out / row["file"]).is_file() for row in sources)
    assert {row["source"] for row in sources} <= set(files)
    assert not any(row["source"].startswith("val/") for row in sources)


def test_running_again_replaces_the_sku_folders_only(tmp_path: Path) -> None:
    write_dataset(tmp_path / "grocery")
    out = tmp_path / "photos"
    assert ship.main([str(tmp_path / "grocery"), "--out", str(out), "--train-photos", "4"]) == 0
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (out / "keep-me").mkdir()
    (out / "keep-me" / "note.txt").write_text("not ours")
    assert ship.main([str(tmp_path / "grocery"), "--out", str(out), "--train-photos", "1"]) == 0
    assert sorted(p.name for p in (out / "FRU-BANANA").iterdir()) == ["Banana_003.jpg", "Banana_Iconic.jpg"]
    assert (out / "keep-me" / "note.txt").read_text() == "not ours"
    assert ship.main([str(tmp_path / "grocery"), "--out", str(out), "--train-photos", "4"]) == 0
    again = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert {k: v for k, v in again.items() if k.parts[0] != "keep-me"} == first  # reproducible


def test_a_class_without_a_product_stops_the_build(tmp_path: Path) -> None:
    write_dataset(tmp_path / "grocery")
    classes = tmp_path / "grocery" / "classes.csv"
    classes.write_text(classes.read_text() + "Qwxzv-Plorb,2,Qwxzv,2,/x.jpg,/d.txt\n")
    with pytest.raises(SystemExit, match="Qwxzv-Plorb"):
        ship.main([str(tmp_path / "grocery"), "--out", str(tmp_path / "photos")])


def test_a_missing_dataset_or_bad_arguments_are_refused(tmp_path: Path, capsys) -> None:
    assert ship.main([str(tmp_path / "absent"), "--out", str(tmp_path / "photos")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ship.main([str(tmp_path), "--side", "100"])
