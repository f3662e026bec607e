"""Attach product photos to catalog products (`make catalog-images DIR=...`).

Three ways to say which photo shows which product:

- a folder with one sub-folder per sku (`DIR/FRU-BANANA/front.jpg`, case-insensitive sku names);
- `--csv MAP.csv` with the columns `path,sku`, paths relative to DIR;
- `--grocery`: DIR is the Grocery Store Dataset (classes.csv, iconic-images-and-descriptions/, train.txt);
  each class name is matched to a catalog product and its iconic photo is attached; `--grocery-train-photos N`
  also attaches up to N of the class's train photos (several photos per product let the ProductRecognizer
  learn a projection).

Each photo is validated as a customer photo would be, stored by content hash under the catalog image root and
recorded in the shop database (shop/photo_import.py, shop/grocery_dataset.py). The next
`make train` (scripts/train_if_changed.py) writes the catalog snapshot, whose content names the model, and
rebuilds the ProductRecognizer's index; Rasa's cache retrains that component only.

Usage: python scripts/catalog_images.py DIR [--csv MAP.csv | --grocery [--grocery-train-photos N]]
       [--image-root PATH] [--database-url URL] [--max-bytes N] [--max-pixels N] [--dry-run]
"""
from __future__ import annotations

import _bootstrap  # noqa: F401  (the project root on sys.path: scripts/_bootstrap.py)

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from shop.grocery_dataset import photos_from_grocery
from shop.photo_import import (
    PHOTO_MAX_BYTES,
    PHOTO_MAX_PIXELS,
    attach,
    photos_from_csv,
    photos_from_folders,
)

logger = logging.getLogger("catalog_images")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit code (0 ok, 1 nothing usable, 2 bad arguments)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dir", type=Path, help="<sku>/ sub-folders, the CSV-listed photos, or the dataset")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--csv", type=Path, help="CSV with the columns path,sku (paths relative to DIR)")
    source.add_argument("--grocery", action="store_true", help="DIR is the Grocery Store Dataset")
    parser.add_argument("--grocery-train-photos", type=int, default=0, metavar="N",
                        help="with --grocery: also attach up to N train photos per class (default 0)")
    parser.add_argument("--image-root", default=None,
                        help="catalog image root (default: CATALOG_IMAGE_DIR or var/catalog-images)")
    parser.add_argument("--database-url", default=None, help="default: DATABASE_URL or var/shop.db")
    parser.add_argument("--max-bytes", type=int, default=PHOTO_MAX_BYTES)
    parser.add_argument("--max-pixels", type=int, default=PHOTO_MAX_PIXELS)
    parser.add_argument("--dry-run", action="store_true", help="validate only; store and record nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from shop.catalog_photos import resolve_image_root
    from shop.repository import ShopRepository

    base = args.dir.expanduser()
    if not base.is_dir():
        parser.error(f"{base} is not a folder")
    if args.grocery_train_photos < 0 or args.max_bytes < 1 or args.max_pixels < 1:
        parser.error("--grocery-train-photos must be >= 0, --max-bytes and --max-pixels >= 1")
    repository = ShopRepository.from_url(args.database_url)
    if args.grocery:
        photos, problems = photos_from_grocery(base, repository, args.grocery_train_photos)
    elif args.csv:
        try:
            photos, problems = photos_from_csv(base, args.csv.expanduser())
        except ValueError as error:
            raise SystemExit(f"error: {error}") from None
    else:
        photos, problems = photos_from_folders(base)
    for problem in problems:
        logger.warning("%s", problem)
    root = resolve_image_root(args.image_root)
    counts = attach(photos, repository, root, args.max_bytes, args.max_pixels, args.dry_run)
    logger.info(
        "%s %d photo(s) under %s; %d refused, %d with an unknown sku, %d other problem(s).",
        "Would attach" if args.dry_run else "Attached", counts["attached"], root, counts["refused"],
        counts["unknown_sku"], len(problems),
    )
    if counts["attached"] and not args.dry_run:
        logger.info("Retrain to index them: python scripts/train_if_changed.py")
    return 0 if counts["attached"] or not photos else 1


if __name__ == "__main__":
    sys.exit(main())
