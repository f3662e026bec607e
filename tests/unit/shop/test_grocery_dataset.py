"""Unit tests for shop/grocery_dataset.py on a miniature Grocery Store Dataset layout.

Attaching its photos end to end (`make catalog-images GROCERY=1`) is tested in
tests/unit/scripts/test_catalog_images.py.
"""
from __future__ import annotations

from pathlib import Path

from shop.grocery_dataset import GroceryClass, grocery_skus, read_classes, read_split

HEADER = ("Class Name (str),Class ID (int),Coarse Class Name (str),Coarse Class ID (int),"
          "Iconic Image Path (str),Product Description Path (str)")


def write_dataset(dataset: Path) -> None:
    dataset.mkdir()
    (dataset / "classes.csv").write_text(
        f"{HEADER}\nOatly-Oat-Milk,1,Oat-Milk,1,/icons/oat.jpg,/d.txt\n"
        "Granny-Smith,0,Apple,0,/icons/granny.jpg,/d.txt\n"
        "Golden-Delicious,2,Apple,0,/icons/golden.jpg,/d.txt\nshort,row\n"
    )
    lines = ["train/a.jpg, 0, 0", "train/b.jpg, 1, 1", "broken line", "train/c.jpg, x, 1"]
    (dataset / "train.txt").write_text("\n".join(lines) + "\n")


def test_classes_and_splits_are_read(tmp_path: Path) -> None:
    write_dataset(tmp_path / "grocery")
    classes = read_classes(tmp_path / "grocery")
    assert classes[0] == GroceryClass(0, "Granny-Smith", 0, "icons/granny.jpg")
    assert [c.class_id for c in classes] == [0, 1, 2]
    assert read_split(tmp_path / "grocery", "train") == [("train/a.jpg", 0, 0), ("train/b.jpg", 1, 1)]


def test_each_class_maps_to_the_product_it_matches_best(tmp_path: Path, shop_repo) -> None:
    write_dataset(tmp_path / "grocery")
    skus = grocery_skus(tmp_path / "grocery", shop_repo)
    assert skus == {0: "FRU-APL-GRANNY", 1: "PLB-OATLY-OATMILK", 2: "FRU-APL-GOLDEN"}
