"""The Grocery Store Dataset as catalog photos: its layout, and which seed-catalog product each class is.

Data (Klasson, Zhang & Kjellström, "A Hierarchical Grocery Store Image Dataset with Visual and Semantic
Labels", WACV 2019; MIT licence): 81 fine / 42 coarse classes, one iconic product photo per class, train /
val / test phone photos taken in stores. Files used here:

- `classes.csv`: class name, class id, coarse class name, coarse class id, iconic image path (from the dataset
  root, with a leading "/"), description path;
- `train.txt`, `val.txt`, `test.txt`: `path, class id, coarse class id` per line.

Each class name ("Granny-Smith", "Arla-Ecological-Medium-Fat-Milk") is matched to a catalog product with the
repository's tolerant `find_product`; `make catalog-images GROCERY=1` attaches the photos of the matched
classes, and benchmarks/bench_images.py scores predictions in catalog skus.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from shop.photo_import import Photo, relative_file

if TYPE_CHECKING:  # hints only
    from shop.repository import ShopRepository


@dataclass(frozen=True)
class GroceryClass:
    """One fine class of the dataset.

    Attributes:
        class_id: fine class id (0-based).
        name: class name, e.g. "Granny-Smith".
        coarse_id: coarse class id.
        iconic: the iconic photo's path relative to the dataset root.
    """

    class_id: int
    name: str
    coarse_id: int
    iconic: str


def read_classes(dataset: Path) -> List[GroceryClass]:
    """The classes of `dataset/classes.csv`, by class id.

    Raises:
        OSError: if the file cannot be read. ValueError: for a non-numeric id.
    """
    with (dataset / "classes.csv").open(newline="", encoding="utf-8") as handle:
        rows = [row for row in list(csv.reader(handle))[1:] if len(row) >= 5]
    classes = [GroceryClass(int(row[1]), row[0], int(row[3]), row[4].lstrip("/")) for row in rows]
    return sorted(classes, key=lambda c: c.class_id)


def read_split(dataset: Path, name: str) -> List[Tuple[str, int, int]]:
    """`(path relative to the dataset, class id, coarse class id)` of each line of `dataset/<name>.txt`."""
    rows = []
    for line in (dataset / f"{name}.txt").read_text(encoding="utf-8").splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) >= 3 and fields[1].isdigit() and fields[2].isdigit():
            rows.append((fields[0], int(fields[1]), int(fields[2])))
    return rows


def grocery_skus(dataset: Path, repository: "ShopRepository") -> Dict[int, Optional[str]]:
    """Grocery class id → catalog sku, matching the class name ("Golden-Delicious") with `find_product`.

    A class that matches nothing, or whose product is matched better by another class, maps to None.
    """
    matches: Dict[int, Tuple[Optional[str], float]] = {}
    for item in read_classes(dataset):
        match = repository.find_product(item.name.replace("-", " "))
        found = match.product is not None
        matches[item.class_id] = (match.product.sku, match.score) if found else (None, 0.0)
    owner: Dict[str, int] = {}
    for class_id, (sku, score) in matches.items():
        if sku is not None and (sku not in owner or score > matches[owner[sku]][1]):
            owner[sku] = class_id
    return {class_id: (sku if sku is not None and owner[sku] == class_id else None)
            for class_id, (sku, _) in matches.items()}


def photos_from_grocery(
    dataset: Path, repository: "ShopRepository", train_photos: int
) -> Tuple[List[Photo], List[str]]:
    """The iconic photo (and up to `train_photos` train photos) of every class that maps to a product.

    Returns:
        `(photos, problems)`: one line per class without a product or photo file.
    """
    skus = grocery_skus(dataset, repository)
    photos: List[Photo] = []
    problems: List[str] = []
    for item in read_classes(dataset):
        sku = skus.get(item.class_id)
        if sku is None:
            problems.append(f"class {item.name}: no catalog product matches")
            continue
        path = relative_file(dataset, item.iconic)
        if path is None:
            problems.append(f"class {item.name}: iconic photo {item.iconic} missing")
            continue
        photos.append(Photo(path, sku))
    if train_photos > 0 and (dataset / "train.txt").is_file():
        taken: Dict[int, int] = {}
        for relative, class_id, _ in read_split(dataset, "train"):
            sku = skus.get(class_id)
            if sku is None or taken.get(class_id, 0) >= train_photos:
                continue
            path = relative_file(dataset, relative)
            if path is None:
                problems.append(f"{relative}: missing")
                continue
            photos.append(Photo(path, sku))
            taken[class_id] = taken.get(class_id, 0) + 1
    return photos, problems
