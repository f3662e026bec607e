"""Attach product photos to catalog products (`make catalog-images DIR=...`).

Three ways to say which photo shows which product:

- a folder with one sub-folder per sku (`DIR/FRU-BANANA/front.jpg`, case-insensitive sku names);
- `--csv MAP.csv` with the columns `path,sku`, paths relative to DIR;
- `--grocery`: DIR is the Grocery Store Dataset (classes.csv, iconic-images-and-descriptions/, train.txt);
  each class name ("Granny-Smith", "Arla-Ecological-Medium-Fat-Milk") is matched to a catalog product with the
  repository's `find_product`, and its iconic photo is attached; `--grocery-train-photos N` also attaches up
  to N of the class's train photos (several photos per product let the ProductRecognizer learn a projection).

Every photo is read with a size cap, must be a regular file inside DIR (no symbolic links, no `..`, no
absolute paths), must decode completely with Pillow as JPEG/PNG/WebP/GIF within the pixel limit
(`components.image_featurizer.decode_image`), and is copied unchanged into the catalog image root as
`<sha256[:2]>/<sha256>.<ext>` (content-addressed: the same photo is stored once; writes go through a temporary
file and an atomic rename). It is then recorded with `ShopRepository.add_product_image(sku, path, sha256)`,
which ignores a photo that is already recorded.

The next training run (`scripts/train_if_changed.py --force`, which `make catalog-images` runs) rebuilds the
ProductRecognizer's index: its fingerprint covers the catalog's photos, so Rasa's cache retrains that
component only.

Usage: python scripts/catalog_images.py DIR [--csv MAP.csv | --grocery [--grocery-train-photos N]]
       [--image-root PATH] [--database-url URL] [--max-bytes N] [--max-pixels N] [--dry-run]
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

logger = logging.getLogger("catalog_images")

#: Largest photo file read, in bytes, and largest width × height, in pixels (the attachment store's limits).
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
#: File extension stored per Pillow format.
EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}


@dataclass(frozen=True)
class Photo:
    """A photo to attach: its file (inside the source folder) and the product's sku."""

    path: Path
    sku: str


class PhotoRefused(Exception):
    """A photo that is not attached; the message says why."""


# ---------------------------------------------------------------------------------------------- sources
def inside(base: Path, candidate: Path) -> Optional[Path]:
    """`candidate` resolved, when it is a regular file inside `base` and not a symbolic link; else None."""
    try:
        if candidate.is_symlink() or not candidate.is_file():
            return None
        resolved = candidate.resolve()
        return resolved if resolved.is_relative_to(base.resolve()) else None
    except (OSError, RuntimeError):
        return None


def relative_file(base: Path, relative: str) -> Optional[Path]:
    """A file named by a path relative to `base` (as in a CSV), refusing absolute paths and `..` parts."""
    text = (relative or "").strip().replace("\\", "/")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if not parts or text.startswith("/") or ".." in parts or ":" in parts[0] or "\x00" in text:
        return None
    return inside(base, base.joinpath(*parts))


def photos_from_folders(base: Path) -> Tuple[List[Photo], List[str]]:
    """One sub-folder per sku; every photo file directly inside it. Returns (photos, problems)."""
    photos: List[Photo] = []
    problems: List[str] = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink()):
        for file in sorted(folder.iterdir()):
            if file.name.startswith(".") or file.suffix.lower() not in PHOTO_SUFFIXES:
                continue
            path = inside(base, file)
            if path is None:
                problems.append(f"{folder.name}/{file.name}: not a regular file inside {base}")
                continue
            photos.append(Photo(path, folder.name.strip().upper()))
    return photos, problems


def photos_from_csv(base: Path, mapping: Path) -> Tuple[List[Photo], List[str]]:
    """Rows `path,sku` (header required); paths relative to `base`. Returns (photos, problems)."""
    photos: List[Photo] = []
    problems: List[str] = []
    with mapping.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not {"path", "sku"} <= set(reader.fieldnames or ()):
            raise SystemExit(f"error: {mapping} needs the columns path,sku")
        for line, row in enumerate(reader, start=2):
            path = relative_file(base, row.get("path") or "")
            sku = (row.get("sku") or "").strip().upper()
            if path is None or not sku:
                shown = str(row.get("path"))[:80]
                problems.append(f"{mapping.name}:{line}: {shown!r} is not a file inside {base}")
                continue
            photos.append(Photo(path, sku))
    return photos, problems


def grocery_class_names(dataset: Path) -> List[Tuple[int, str, str]]:
    """`(class id, class name, iconic image path relative to the dataset)` from the dataset's classes.csv."""
    with (dataset / "classes.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return [(int(row[1]), row[0], row[4].lstrip("/")) for row in rows[1:] if len(row) >= 5]


def grocery_skus(dataset: Path, repository) -> Dict[int, Optional[str]]:
    """Grocery class id → catalog sku, matching the class name ("Golden-Delicious") with `find_product`.

    A class that matches nothing, or whose product is matched better by another class, maps to None.
    """
    matches: Dict[int, Tuple[Optional[str], float]] = {}
    for class_id, name, _ in grocery_class_names(dataset):
        match = repository.find_product(name.replace("-", " "))
        matches[class_id] = (match.product.sku, match.score) if match.product is not None else (None, 0.0)
    owner: Dict[str, int] = {}
    for class_id, (sku, score) in matches.items():
        if sku is not None and (sku not in owner or score > matches[owner[sku]][1]):
            owner[sku] = class_id
    return {class_id: (sku if sku is not None and owner[sku] == class_id else None)
            for class_id, (sku, _) in matches.items()}


def photos_from_grocery(dataset: Path, repository, train_photos: int) -> Tuple[List[Photo], List[str]]:
    """The iconic photo (and up to `train_photos` train photos) of every class that maps to a product."""
    skus = grocery_skus(dataset, repository)
    photos: List[Photo] = []
    problems: List[str] = []
    for class_id, name, iconic in grocery_class_names(dataset):
        sku = skus.get(class_id)
        if sku is None:
            problems.append(f"class {name}: no catalog product matches")
            continue
        path = relative_file(dataset, iconic)
        if path is None:
            problems.append(f"class {name}: iconic photo {iconic} missing")
            continue
        photos.append(Photo(path, sku))
    if train_photos > 0 and (dataset / "train.txt").is_file():
        taken: Dict[int, int] = {}
        for line in (dataset / "train.txt").read_text(encoding="utf-8").splitlines():
            fields = [field.strip() for field in line.split(",")]
            if len(fields) < 2 or not fields[1].isdigit():
                continue
            class_id = int(fields[1])
            sku = skus.get(class_id)
            if sku is None or taken.get(class_id, 0) >= train_photos:
                continue
            path = relative_file(dataset, fields[0])
            if path is None:
                problems.append(f"{fields[0]}: missing")
                continue
            photos.append(Photo(path, sku))
            taken[class_id] = taken.get(class_id, 0) + 1
    return photos, problems


# ---------------------------------------------------------------------------------------------- storing
def validated_bytes(path: Path, max_bytes: int, max_pixels: int) -> Tuple[bytes, str]:
    """The file's content and stored extension, after a complete Pillow decode.

    Raises:
        PhotoRefused: over `max_bytes`, empty, not a JPEG/PNG/WebP/GIF, over `max_pixels`, or damaged.
    """
    from PIL import Image

    from media import AttachmentError
    from media.images import IMAGE_FORMATS, decode_image

    size = path.stat().st_size
    if size > max_bytes:
        raise PhotoRefused(f"{size} bytes > {max_bytes} bytes")
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PhotoRefused(f"more than {max_bytes} bytes")
    try:
        decode_image(data, max_pixels)
    except AttachmentError as error:
        raise PhotoRefused(f"{error.code}: {error.detail}") from None
    import io

    with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
        extension = EXTENSIONS.get(image.format or "", "img")
    return data, extension


def store(root: Path, data: bytes, extension: str) -> Tuple[str, str]:
    """Writes `data` as `<root>/<sha[:2]>/<sha>.<ext>` (atomically, once); returns (relative path, sha256)."""
    digest = hashlib.sha256(data).hexdigest()
    relative = f"{digest[:2]}/{digest}.{extension}"
    target = root / relative
    if target.is_file() and not target.is_symlink():
        return relative, digest
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = root / ".tmp"
    temporary.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=temporary, suffix=f".{extension}")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return relative, digest


def attach(
    photos: Iterable[Photo], repository, root: Path, max_bytes: int, max_pixels: int, dry_run: bool = False
) -> Dict[str, int]:
    """Validates, stores and records each photo; returns counts {"attached", "refused", "unknown_sku"}."""
    counts = {"attached": 0, "refused": 0, "unknown_sku": 0}
    known: Dict[str, bool] = {}
    for photo in photos:
        if photo.sku not in known:
            known[photo.sku] = repository.get_product(photo.sku) is not None
        if not known[photo.sku]:
            logger.warning("%s: unknown sku %s, skipped", photo.path.name, photo.sku)
            counts["unknown_sku"] += 1
            continue
        try:
            data, extension = validated_bytes(photo.path, max_bytes, max_pixels)
        except (PhotoRefused, OSError) as error:
            logger.warning("%s: refused (%s)", photo.path.name, error)
            counts["refused"] += 1
            continue
        if dry_run:
            counts["attached"] += 1
            continue
        relative, digest = store(root, data, extension)
        repository.add_product_image(photo.sku, relative, digest)
        counts["attached"] += 1
    return counts


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
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    parser.add_argument("--dry-run", action="store_true", help="validate only; store and record nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from components.product_recognizer import resolve_image_root
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
        photos, problems = photos_from_csv(base, args.csv.expanduser())
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
        logger.info("Retrain to index them: python scripts/train_if_changed.py --force")
    return 0 if counts["attached"] or not photos else 1


if __name__ == "__main__":
    sys.exit(main())
