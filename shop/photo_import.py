"""Attaching product photos to catalog products (`make catalog-images`, scripts/catalog_images.py).

Two ways to say which photo shows which product (the Grocery Store Dataset is a third:
`shop.grocery_dataset`):

- a folder with one sub-folder per sku (`DIR/FRU-BANANA/front.jpg`, case-insensitive sku names):
  `photos_from_folders`;
- a CSV with the columns `path,sku`, paths relative to the folder: `photos_from_csv`.

Every photo must be a regular file inside the source folder (no symbolic links, no `..`, no absolute paths),
is read with a size cap and must decode completely with Pillow as JPEG/PNG/WebP/GIF within the pixel limit
(`media.images.decode_image`): the limits a customer photo gets (`PHOTO_MAX_BYTES`, `PHOTO_MAX_PIXELS`). It is
copied unchanged into the catalog image root as `<sha256[:2]>/<sha256>.<ext>` (content-addressed: the same
photo is stored once; written through a temporary file and an atomic rename) and recorded with
`ShopRepository.add_product_image(sku, path, sha256)`, which ignores a photo that is already recorded.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Tuple

from assistant.files import write_atomically
from media import AttachmentError, AttachmentLimits
from shop.catalog_photos import relative_parts

if TYPE_CHECKING:  # hints only
    from shop.repository import ShopRepository

logger = logging.getLogger(__name__)

#: Largest catalog photo file read (bytes) and largest width × height (pixels): the customer photo limits.
PHOTO_MAX_BYTES: int = AttachmentLimits().image_max_bytes
PHOTO_MAX_PIXELS: int = AttachmentLimits().image_max_pixels
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
    """A file named by a path relative to `base` (as in a CSV): the path must pass
    `shop.catalog_photos.relative_parts` (no absolute paths, no `..`), the file must pass `inside`."""
    parts = relative_parts(relative)
    return inside(base, base.joinpath(*parts)) if parts else None


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
    """Rows `path,sku` (header required); paths relative to `base`. Returns (photos, problems).

    Raises:
        ValueError: if the CSV lacks the columns path and sku.
    """
    photos: List[Photo] = []
    problems: List[str] = []
    with mapping.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not {"path", "sku"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{mapping} needs the columns path,sku")
        for line, row in enumerate(reader, start=2):
            path = relative_file(base, row.get("path") or "")
            sku = (row.get("sku") or "").strip().upper()
            if path is None or not sku:
                shown = str(row.get("path"))[:80]
                problems.append(f"{mapping.name}:{line}: {shown!r} is not a file inside {base}")
                continue
            photos.append(Photo(path, sku))
    return photos, problems


# ---------------------------------------------------------------------------------------------- storing
def validated_bytes(path: Path, max_bytes: int, max_pixels: int) -> Tuple[bytes, str]:
    """The file's content and stored extension, after a complete Pillow decode.

    Raises:
        PhotoRefused: over `max_bytes`, empty, not a JPEG/PNG/WebP/GIF, over `max_pixels`, or damaged.
        OSError: if the file cannot be read.
    """
    from PIL import Image

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
    write_atomically(target, data, root / ".tmp")
    return relative, digest


def attach(
    photos: Iterable[Photo],
    repository: "ShopRepository",
    root: Path,
    max_bytes: int = PHOTO_MAX_BYTES,
    max_pixels: int = PHOTO_MAX_PIXELS,
    dry_run: bool = False,
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
