"""Build the demo catalog's shipped product photos (data/catalog/photos/) from the Grocery Store Dataset.

Data (Klasson, Zhang & Kjellström, "A Hierarchical Grocery Store Image Dataset with Visual and Semantic
Labels", WACV 2019; MIT licence, github.com/marcusklasson/GroceryStoreDataset): for every class that maps to a
seed-catalog product (`shop.grocery_dataset.grocery_skus`: the class name matched with the repository's
`find_product` on a freshly seeded in-memory catalog), its iconic photo and `--train-photos` of its TRAIN photos,
spread evenly over the class's lines of train.txt. Val and test photos are never read: they stay for evaluation.

Photos whose shorter side is at most `--side` pixels (the 198 × 198 iconic photos) are copied byte for byte;
larger ones (the 348-pixel train photos) are turned upright by their EXIF tag, scaled with Lanczos filtering
so their shorter side is `--side` pixels, and saved as baseline JPEG at `--quality` without metadata (Pillow).
The ImageFeaturizer crops the centred square of 224/256 of the shorter side and resizes it to 224 × 224, so a
256-pixel shorter side feeds the network without upscaling (benchmarks/bench_images.py measures the accuracy).

Output (`--out`, default data/catalog/photos; its folders named after a mapped sku are replaced, nothing
else there is touched):
`<SKU>/<dataset file name>`, `LICENSE` (the dataset's licence file, unchanged), `README.md` (what was taken and
how it was resized) and `sources.csv` (`file,sku,class,source` per photo). `make db` attaches the photos to
the products (`shop.shipped_photos`).

Usage: python scripts/ship_grocery_photos.py [DATASET] [--out DIR] [--train-photos N] [--side PX] [--quality Q]
(DATASET defaults to ../shared/data/grocery beside the project.)
"""
from __future__ import annotations

import _bootstrap  # noqa: F401  (the project root on sys.path: scripts/_bootstrap.py)

import argparse
import csv
import io
import logging
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from assistant.paths import PROJECT_ROOT
from shop.grocery_dataset import GroceryClass, read_classes, read_split
from shop.photo_import import relative_file
from shop.shipped_photos import LICENSE_FILE, README_FILE, SHIPPED_PHOTOS_DIR, SHIPPED_SIDE, SOURCES_FILE

logger = logging.getLogger("ship_grocery_photos")

DEFAULT_DATASET = PROJECT_ROOT.parent / "shared" / "data" / "grocery"
#: Train photos per product, shorter side (pixels) and JPEG quality of the shipped photos (chosen by the
#: val accuracy against the repository size; benchmarks/bench_images.py reports the shipped catalog).
DEFAULT_TRAIN_PHOTOS = 10
DEFAULT_SIDE = SHIPPED_SIDE
DEFAULT_QUALITY = 75
#: The dataset's licence file (MIT).
DATASET_LICENSE = "LICENSE"
#: The dataset folders photos may be shipped from (never val/ or test/: they stay for evaluation).
SHIPPABLE = ("iconic-images-and-descriptions/", "train/")


def spread(count: int, wanted: int) -> List[int]:
    """`min(wanted, count)` indices into `count` items, evenly spread (the middle of equal parts), ascending.

    >>> spread(10, 3)
    [1, 5, 8]
    """
    wanted = max(0, min(wanted, count))
    return [int((i + 0.5) * count / wanted) for i in range(wanted)]


def train_choice(dataset: Path, class_ids: Sequence[int], per_class: int) -> Dict[int, List[str]]:
    """Class id → the paths (relative to `dataset`) of `per_class` of its train photos (`spread` over the
    class's lines of train.txt, in file order)."""
    rows: Dict[int, List[str]] = {class_id: [] for class_id in class_ids}
    for relative, class_id, _ in read_split(dataset, "train"):
        if class_id in rows:
            rows[class_id].append(relative)
    return {class_id: [paths[i] for i in spread(len(paths), per_class)] for class_id, paths in rows.items()}


def shrunk(data: bytes, side: int, quality: int) -> bytes:
    """`data` itself when its shorter side is at most `side` pixels; else upright, scaled (Lanczos) to a shorter
    side of `side` pixels, RGB baseline JPEG at `quality`, without EXIF or other metadata.

    Raises:
        OSError: if Pillow cannot read the image.
    """
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        if min(width, height) <= side:
            return data
        upright = ImageOps.exif_transpose(image).convert("RGB")
    width, height = upright.size
    scale = side / min(width, height)
    size = (max(side, round(width * scale)), max(side, round(height * scale)))
    small = upright.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def class_skus(dataset: Path) -> Dict[int, Optional[str]]:
    """Class id → sku of the seed catalog (data/catalog/products.csv) seeded into an in-memory database."""
    from shop.db import make_engine, make_session_factory
    from shop.grocery_dataset import grocery_skus
    from shop.repository import ShopRepository
    from shop.seed import create_and_seed

    engine = make_engine("sqlite://")
    try:
        create_and_seed(engine)
        return grocery_skus(dataset, ShopRepository(make_session_factory(engine)))
    finally:
        engine.dispose()


def readme(classes: int, products: int, iconic: int, train: int, per_class: int, side: int, quality: int,
           size: int) -> str:
    """The README of the shipped folder."""
    return f"""# Product photos of the demo catalog

Taken from the Grocery Store Dataset (Marcus Klasson, Cheng Zhang, Hedvig Kjellström, "A Hierarchical Grocery
Store Image Dataset with Visual and Semantic Labels", WACV 2019; https://github.com/marcusklasson/GroceryStoreDataset),
MIT licence: see LICENSE in this folder.

- {products} products of data/catalog/products.csv (one folder per sku) for the dataset's {classes} classes,
  each class matched to its product by name as shop/grocery_dataset.py does;
- per product: the class's iconic photo ({iconic} in all, copied unchanged) and {per_class} of its train photos
  ({train} in all), spread evenly over the class's lines of train.txt. No val or test photo is included.
- The train photos were turned upright, scaled with Lanczos filtering to a shorter side of {side} pixels and
  saved as JPEG at quality {quality} without metadata (Pillow); file names are the dataset's.
- sources.csv names each file's source in the dataset. {size / 1e6:.1f} MB in all.

Re-made with `python scripts/ship_grocery_photos.py [path to the dataset]`; `make db` attaches the photos to
the products (shop/shipped_photos.py).
"""


def build(dataset: Path, out: Path, per_class: int, side: int, quality: int) -> Tuple[int, int, int]:
    """Writes the shipped folder; returns (products, photos, total bytes).

    Raises:
        SystemExit: when a class maps to no product or a photo file is missing.
        OSError: if a file cannot be read or written.
    """
    classes: List[GroceryClass] = read_classes(dataset)
    skus = class_skus(dataset)
    unmatched = [item.name for item in classes if skus.get(item.class_id) is None]
    if unmatched:
        raise SystemExit(f"classes without a catalog product: {', '.join(unmatched)}")
    chosen = train_choice(dataset, [item.class_id for item in classes], per_class)
    ours = {str(sku) for sku in skus.values()}
    for folder in (p for p in out.glob("*") if p.name in ours and p.is_dir() and not p.is_symlink()):
        shutil.rmtree(folder)
    out.mkdir(parents=True, exist_ok=True)
    rows, total, train_count = [], 0, 0
    for item in classes:
        sku = str(skus[item.class_id])
        for relative in [item.iconic, *chosen[item.class_id]]:
            source = relative_file(dataset, relative)
            if not relative.startswith(SHIPPABLE):
                raise SystemExit(f"{relative}: only iconic and train photos may be shipped")
            if source is None:
                raise SystemExit(f"{relative}: not a file inside {dataset}")
            data = shrunk(source.read_bytes(), side, quality)
            target = out / sku / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            total += len(data)
            train_count += relative != item.iconic
            rows.append((f"{sku}/{source.name}", sku, item.name, relative))
    with (out / SOURCES_FILE).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("file", "sku", "class", "source"))
        writer.writerows(rows)
    shutil.copyfile(dataset / DATASET_LICENSE, out / LICENSE_FILE)
    products = len({row[1] for row in rows})
    text = readme(len(classes), products, len(classes), train_count, per_class, side, quality, total)
    (out / README_FILE).write_text(text, encoding="utf-8")
    return products, len(rows), total


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit code (0 ok, 2 bad arguments or no dataset)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--out", type=Path, default=SHIPPED_PHOTOS_DIR)
    parser.add_argument("--train-photos", type=int, default=DEFAULT_TRAIN_PHOTOS, metavar="N")
    parser.add_argument("--side", type=int, default=DEFAULT_SIDE, metavar="PX",
                        help="shorter side of the downscaled photos (pixels, >= 224)")
    parser.add_argument("--quality", type=int, default=DEFAULT_QUALITY, metavar="Q", help="JPEG quality 1..95")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.train_photos < 0 or args.side < 224 or not 1 <= args.quality <= 95:
        parser.error("--train-photos must be >= 0, --side >= 224, --quality 1..95")
    dataset = args.dataset.expanduser()
    if not (dataset / "classes.csv").is_file() or not (dataset / DATASET_LICENSE).is_file():
        print(f"Grocery Store Dataset (classes.csv, LICENSE) not found at {dataset}.", file=sys.stderr)
        return 2
    products, photos, total = build(dataset, args.out.expanduser(), args.train_photos, args.side, args.quality)
    logger.info("Wrote %d photos of %d products to %s: %.1f MB.", photos, products, args.out, total / 1e6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
