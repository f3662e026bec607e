"""The catalog snapshot: what the NLU graph knows of the shop catalog, written from the database.

The database is the one source of truth for the catalog; the ProductRecognizer never reads it. `make db` and
`make train` (scripts/train_if_changed.py) write a snapshot of the catalog's recognisable parts into one JSON
file, and `rasa train` builds the recogniser's index from that file and fingerprints it by content, so a
training run depends on files only, not on the state of a database server.

Format (UTF-8 JSON, keys sorted, `SNAPSHOT_FORMAT` = 1)::

    {"format": 1,
     "products": [{"sku", "name", "kind", "category", "coarse_category", "description"}, ...],  # by sku
     "photos": [{"sku", "path", "sha256", "size", "mtime_ns"}, ...]}  # repository order (by sku, path)

`path` is relative to the catalog image root (`shop.catalog_photos.resolve_image_root`); `sha256` is
the hex SHA-256 of the photo file when it could be read at writing time, else null. `size` (bytes) and
`mtime_ns` (modification time, ns since the epoch) are the file's status when `sha256` was taken; they are
left out when it could not be, and a reader accepts photos without them (snapshots written before they were
recorded). Prices and stock are left out: actions read them live.

Refreshing is cheap when nothing changed: a photo that the previous snapshot lists under the same path with
the same size and modification time keeps its recorded `sha256` without being read, so `make db` and `make
train` read only new or changed photos. `size` and `mtime_ns` only spare those reads: they are not part of the
catalog (`CatalogSnapshot` equality and `catalog_content`, which names the trained model, leave them out), so
touching a photo retrains nothing.

The file is written to a temporary file beside it and renamed into place (atomic on POSIX), and only when its
content changes, so its modification time and Rasa's fingerprints stay put while the catalog does.

Command line (`make db` runs it after seeding)::

    python -m shop.catalog_snapshot [--database-url URL] [--out PATH] [--image-root PATH]

The database defaults to DATABASE_URL (else var/shop.db), the file to CATALOG_SNAPSHOT (else
var/catalog/snapshot.json); relative paths are taken from the project root.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from assistant.files import write_atomically
from assistant.fingerprints import file_sha256_or
from assistant.paths import project_path

if TYPE_CHECKING:  # hints only
    from shop.repository import ShopRepository

logger = logging.getLogger(__name__)

#: Version of the file layout; a reader refuses other versions.
SNAPSHOT_FORMAT = 1
#: Where the snapshot lives unless configured otherwise (relative to the project root).
DEFAULT_SNAPSHOT_PATH = "var/catalog/snapshot.json"
#: Environment variable naming another snapshot file.
SNAPSHOT_ENV = "CATALOG_SNAPSHOT"
#: The product fields a snapshot keeps (the recogniser's text and label matching use them).
PRODUCT_FIELDS = ("sku", "name", "kind", "category", "coarse_category", "description")
#: What `catalog_content` gives for a missing or unreadable snapshot file.
NO_SNAPSHOT = b"no catalog snapshot"


@dataclass(frozen=True)
class SnapshotPhoto:
    """One catalog photo.

    Attributes:
        sku: the product's sku.
        path: the file, relative to the image root.
        sha256: the file's SHA-256 (hex); None when the file could not be read when the snapshot was written.
        size: the file's size (bytes) when `sha256` was taken; None when unknown.
        mtime_ns: the file's modification time (ns since the epoch) when `sha256` was taken; None when
            unknown. `size` and `mtime_ns` only tell a later refresh whether the file must be read again;
            they take no part in comparisons.
    """

    sku: str
    path: str
    sha256: Optional[str] = None
    size: Optional[int] = field(default=None, compare=False)
    mtime_ns: Optional[int] = field(default=None, compare=False)

    def to_json(self, with_file_status: bool = True) -> Dict[str, Any]:
        """The photo's JSON object; `size` and `mtime_ns` only when known and `with_file_status`."""
        data: Dict[str, Any] = {"sku": self.sku, "path": self.path, "sha256": self.sha256}
        if with_file_status and self.size is not None and self.mtime_ns is not None:
            data.update(size=self.size, mtime_ns=self.mtime_ns)
        return data

    def unchanged(self, size: int, mtime_ns: int) -> bool:
        """Whether a file of `size` bytes modified at `mtime_ns` is the one this photo's `sha256` was taken of
        (same size and modification time; never for a photo without a hash or without a recorded status)."""
        return self.sha256 is not None and (self.size, self.mtime_ns) == (size, mtime_ns)


@dataclass(frozen=True)
class CatalogSnapshot:
    """The catalog as the NLU graph sees it.

    Attributes:
        products: one mapping per product with exactly the `PRODUCT_FIELDS` (str values), sorted by sku.
        photos: the product photos, sorted by sku and path.
    """

    products: Tuple[Mapping[str, str], ...]
    photos: Tuple[SnapshotPhoto, ...]

    def to_json(self, with_file_status: bool = True) -> Dict[str, Any]:
        """The JSON document (see the module docstring); without the photos' `size` and `mtime_ns` unless
        `with_file_status`."""
        return {
            "format": SNAPSHOT_FORMAT,
            "products": [{key: product[key] for key in PRODUCT_FIELDS} for product in self.products],
            "photos": [photo.to_json(with_file_status) for photo in self.photos],
        }

    def content(self, with_file_status: bool = True) -> bytes:
        """The file content: canonical JSON (sorted keys, one item per line), UTF-8, newline-terminated.
        Without `with_file_status`: the catalog alone, as `catalog_content` hashes it."""
        text = json.dumps(self.to_json(with_file_status), ensure_ascii=False, sort_keys=True, indent=1)
        return (text + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: Any) -> "CatalogSnapshot":
        """Reads the JSON document.

        Raises:
            ValueError: for another format version, a product without a field or with a non-string one, a
                repeated sku, or a photo of an unknown sku.
        """
        if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"catalog snapshot format {found!r}, expected {SNAPSHOT_FORMAT}")
        products: List[Dict[str, str]] = []
        for item in data.get("products") or []:
            if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in PRODUCT_FIELDS):
                fields = ", ".join(PRODUCT_FIELDS)
                raise ValueError(f"catalog snapshot: a product needs the text fields {fields}")
            products.append({key: item[key] for key in PRODUCT_FIELDS})
        skus = {product["sku"] for product in products}
        if len(skus) != len(products):
            raise ValueError("catalog snapshot: a sku is listed twice")
        photos: List[SnapshotPhoto] = []
        for item in data.get("photos") or []:
            valid = isinstance(item, dict) and item.get("sku") in skus and isinstance(item.get("path"), str)
            if not valid:
                raise ValueError("catalog snapshot: a photo names an unknown sku or has no path")
            digest = item.get("sha256") if isinstance(item.get("sha256"), str) else None
            size, mtime_ns = _count(item.get("size")), _count(item.get("mtime_ns"))
            photos.append(SnapshotPhoto(item["sku"], item["path"], digest, size, mtime_ns))
        return cls(tuple(sorted(products, key=lambda p: p["sku"])), tuple(photos))


def _count(value: Any) -> Optional[int]:
    """`value` when it is an integer >= 0 (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def resolve_snapshot_path(path: Union[str, "os.PathLike[str]", None] = None) -> Path:
    """The snapshot file: `path`, else CATALOG_SNAPSHOT, else var/catalog/snapshot.json (relative paths are
    taken from the project root)."""
    value = path or os.environ.get(SNAPSHOT_ENV, "").strip() or DEFAULT_SNAPSHOT_PATH
    return project_path(value)


def build_snapshot(
    repository: "ShopRepository",
    image_root: Optional[Path] = None,
    previous: Optional[CatalogSnapshot] = None,
) -> CatalogSnapshot:
    """The snapshot of the catalog in `repository` (`list_products()`, `product_images()`).

    Args:
        repository: the shop repository.
        image_root: the directory photo paths are relative to; None: `resolve_image_root(None)`
            (CATALOG_IMAGE_DIR, else var/catalog-images).
        previous: the last snapshot written, if any: a photo it lists under the same path with the same size
            and modification time keeps its `sha256` without the file being read.

    Raises:
        Whatever the repository raises when the database cannot be read (no schema, server down).
    """
    # The image root and the safe resolution of a photo path belong to the catalog photos' reader.
    from shop.catalog_photos import resolve_image_root

    products = [
        {"sku": view.sku, "name": view.name, "kind": view.kind, "category": view.category,
         "coarse_category": view.coarse_category, "description": view.description or ""}
        for view in repository.list_products()
    ]
    root = image_root if image_root is not None else resolve_image_root(None)
    known = {photo.path: photo for photo in previous.photos} if previous is not None else {}
    photos = [
        _photo(root, sku, relative, known.get(relative)) for sku, relative in repository.product_images()
    ]
    return CatalogSnapshot(tuple(sorted(products, key=lambda p: p["sku"])), tuple(photos))


def _photo(root: Path, sku: str, relative: str, before: Optional[SnapshotPhoto]) -> SnapshotPhoto:
    """The snapshot entry of one photo: its hash taken over from `before` when the file's size and
    modification time are those `before` recorded, else read from the file (None, without a status, when it
    cannot be)."""
    from shop.catalog_photos import resolve_catalog_image

    file = resolve_catalog_image(root, relative)
    try:
        status = file.stat() if file is not None else None
    except OSError:
        status = None
    if status is None:
        return SnapshotPhoto(sku, relative)
    size, mtime_ns = status.st_size, status.st_mtime_ns
    if before is not None and before.unchanged(size, mtime_ns):
        return SnapshotPhoto(sku, relative, before.sha256, size, mtime_ns)
    digest = file_sha256_or(file, None)  # the status was taken first: a file changed meanwhile is read again
    if digest is None:
        return SnapshotPhoto(sku, relative)
    return SnapshotPhoto(sku, relative, digest, size, mtime_ns)


def read_snapshot(path: Path) -> CatalogSnapshot:
    """Reads a snapshot file.

    Raises:
        OSError: if the file cannot be read (`FileNotFoundError` when there is none).
        ValueError: if it is not a snapshot of this format (JSON errors included).
    """
    return CatalogSnapshot.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def save_snapshot(snapshot: CatalogSnapshot, path: Path) -> bool:
    """Writes `snapshot` to `path` atomically (temporary file, fsync, rename), unless the file already holds
    exactly this content.

    Returns:
        True when the file was written, False when it was already up to date.

    Raises:
        OSError: if the directory cannot be created or the file not written.
    """
    path = Path(path)
    content = snapshot.content()
    try:
        if path.read_bytes() == content:
            return False
    except OSError:
        pass
    write_atomically(path, content)
    return True


def _previous_snapshot(path: Path) -> Optional[CatalogSnapshot]:
    """The snapshot at `path`, or None when there is none or it is not readable as a snapshot."""
    try:
        return read_snapshot(path)
    except (OSError, ValueError):
        return None


def catalog_content(path: Path) -> bytes:
    """What a trained model depends on in the snapshot file at `path` (`assistant.training.model_fingerprint`
    hashes it): the snapshot's catalog without the photos' `size` and `mtime_ns` (the bytes the file would
    hold without them), so touching a photo renames no model; the file's bytes as they are when it is not a
    snapshot of this format; `NO_SNAPSHOT` when there is no readable file."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return NO_SNAPSHOT
    try:
        return CatalogSnapshot.from_json(json.loads(data.decode("utf-8"))).content(with_file_status=False)
    except ValueError:  # JSON and decoding errors included
        return data


def _is_missing_sqlite_file(url: str) -> bool:
    """True for a SQLite URL whose database file does not exist (opening it would create an empty one)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    if database in ("", ":memory:") or parsed.query.get("mode") == "memory":
        return False
    return not Path(database).is_file()


def refresh_snapshot(
    path: Optional[Path] = None, database_url: Optional[str] = None, image_root: Optional[Path] = None
) -> Optional[bool]:
    """Writes the snapshot from the database when the database can be read: the one way a snapshot is written.

    A missing SQLite file is not created; an unreadable database (no schema yet, server down, driver missing)
    leaves the last snapshot as it is, with one log line. The photos of the last snapshot whose files have not
    changed (same path, size and modification time) are not read again (`build_snapshot`).

    Args:
        path: the snapshot file; None: `resolve_snapshot_path()`.
        database_url: SQLAlchemy URL; None: `shop.db.database_url()` (DATABASE_URL or var/shop.db).
        image_root: see `build_snapshot`.

    Returns:
        True (written), False (already up to date) or None (the database could not be read).

    Raises:
        OSError: if the snapshot file cannot be written.
    """
    from shop.db import database_url as default_url
    from shop.db import make_engine, make_session_factory
    from shop.repository import ShopRepository

    target = resolve_snapshot_path(path)
    url = database_url or default_url()
    if _is_missing_sqlite_file(url):
        logger.info("No shop database file yet; the catalog snapshot %s is left as it is.", target)
        return None
    previous = _previous_snapshot(target)
    engine = None
    try:
        engine = make_engine(url)
        snapshot = build_snapshot(ShopRepository(make_session_factory(engine)), image_root, previous)
    except Exception as error:  # no schema yet, server unreachable, driver missing: keep the last snapshot
        first_line = str(error).splitlines()[0][:200] if str(error) else ""
        logger.warning("The shop database could not be read (%s: %s); the catalog snapshot %s is left as it "
                       "is.", type(error).__name__, first_line, target)
        return None
    finally:
        if engine is not None:
            engine.dispose()
    return save_snapshot(snapshot, target)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point: 0 written or up to date, 1 the database could not be read."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None, help="default: DATABASE_URL or var/shop.db")
    parser.add_argument("--out", default=None, help=f"default: {SNAPSHOT_ENV} or {DEFAULT_SNAPSHOT_PATH}")
    parser.add_argument("--image-root", default=None,
                        help="catalog image root (default: CATALOG_IMAGE_DIR or var/catalog-images)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    target = resolve_snapshot_path(args.out)
    root = project_path(args.image_root) if args.image_root else None
    written = refresh_snapshot(target, args.database_url, root)
    if written is None:
        return 1
    logger.info("Catalog snapshot %s: %s.", target, "written" if written else "up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
