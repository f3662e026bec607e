"""The product photos shipped with the demo catalog (data/catalog/photos/), and attaching them at seed time.

Layout of the shipped folder (written by scripts/ship_grocery_photos.py from the Grocery Store Dataset):

- `<SKU>/<file>.jpg`: the photos of one catalog product (the folder layout `make catalog-images DIR=...`
  reads, `shop.photo_import.photos_from_folders`);
- `LICENSE`: the dataset's licence (MIT) with its copyright line; `README.md`: what was taken and how it was
  resized; `sources.csv`: `file,sku,class,source` per photo (`source` relative to the dataset root).

`make db` (`python -m shop.seed`) calls `attach_shipped_photos` after seeding, so a fresh clone's catalog has
photos: each one is validated, stored by content hash under the catalog image root and recorded in the
database exactly as `make catalog-images` does (`shop.photo_import.attach`). Photos already recorded for their
product, whose stored file is in place, are skipped before they are decoded, so running it again reads the
folder, hashes the files and writes nothing.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Tuple

from assistant.paths import DATA_DIR
from shop.photo_import import EXTENSIONS, Photo, attach, photos_from_folders

if TYPE_CHECKING:  # hints only
    from shop.repository import ShopRepository

logger = logging.getLogger(__name__)

#: The shipped photo folder: one sub-folder per sku.
SHIPPED_PHOTOS_DIR: Path = DATA_DIR / "catalog" / "photos"
#: Files beside the sku folders: the licence notice, the README, the photo → source list.
LICENSE_FILE = "LICENSE"
README_FILE = "README.md"
SOURCES_FILE = "sources.csv"
#: Largest total size of the shipped folder (bytes); tests/unit/shop/test_shipped_photos.py checks it.
SIZE_BUDGET_BYTES = 20 * 1024 * 1024
#: Shorter side (pixels) of the shipped photos at most: the ImageFeaturizer's centre crop of 224/256 of the
#: shorter side is then 224 pixels, its input size, with no upscaling (scripts/ship_grocery_photos.py).
SHIPPED_SIDE = 256


def shipped_photos(folder: Path = SHIPPED_PHOTOS_DIR) -> Tuple[List[Photo], List[str]]:
    """The photos of the shipped folder, one `Photo` per file of a sku sub-folder (sku upper-cased).

    Returns:
        `(photos, problems)` as `shop.photo_import.photos_from_folders`; `([], [])` when the folder is absent.
    """
    if not folder.is_dir():
        return [], []
    return photos_from_folders(folder)


def _already_stored(photo: Photo, recorded: Dict[str, set], root: Path) -> bool:
    """Whether `photo` is recorded for its sku under its content-addressed path and that file exists."""
    try:
        digest = hashlib.sha256(photo.path.read_bytes()).hexdigest()
    except OSError:
        return False
    for extension in set(EXTENSIONS.values()):
        relative = f"{digest[:2]}/{digest}.{extension}"
        if relative in recorded.get(photo.sku, ()) and (root / relative).is_file():
            return True
    return False


def attach_shipped_photos(
    repository: "ShopRepository", root: Path, folder: Path = SHIPPED_PHOTOS_DIR
) -> Dict[str, int]:
    """Attaches the shipped photos to their products (validated, stored under `root`, recorded).

    Args:
        repository: the shop database.
        root: the catalog image root (`shop.catalog_photos.resolve_image_root`).
        folder: the shipped folder.

    Returns:
        Counts: `attached` (newly stored or recorded), `present` (already recorded and stored, skipped),
        `refused` (failed validation), `unknown_sku` (photos of a folder named after no product: one log line
        per folder), `problems` (files that are not regular files inside the folder).
    """
    photos, problems = shipped_photos(folder)
    for problem in problems:
        logger.warning("Shipped photo skipped: %s", problem)
    known = {sku: repository.get_product(sku) is not None for sku in {photo.sku for photo in photos}}
    for sku in sorted(sku for sku, found in known.items() if not found):
        logger.warning("Shipped photos of %s skipped: no product has that sku", sku)
    recorded: Dict[str, set] = {}
    for sku, relative in repository.product_images():
        recorded.setdefault(sku, set()).add(relative)
    ours = [photo for photo in photos if known[photo.sku]]
    new = [photo for photo in ours if not _already_stored(photo, recorded, root)]
    counts = attach(new, repository, root)
    counts.update(present=len(ours) - len(new), unknown_sku=len(photos) - len(ours), problems=len(problems))
    return counts
