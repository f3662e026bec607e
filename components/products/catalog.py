"""The catalog as the ProductRecognizer reads it, and where its photos are.

The catalog comes from the snapshot file `shop.catalog_snapshot` writes from the database (`make db`,
`make train`); the recogniser never opens the database. Without a usable snapshot it uses the seed catalog
data/catalog/products.csv, without photos.

Photo paths in the catalog are relative to the catalog image root (`image_root` in config.yml, else the
environment variable CATALOG_IMAGE_DIR, else var/catalog-images). A path is only followed when it stays inside
that root (`resolve_catalog_image`): no absolute paths, no `..`, no symbolic links that lead out.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Set, Text, Tuple

from components.products import NAME
from shop.catalog_photos import resolve_catalog_image
from shop.catalog_snapshot import read_snapshot, resolve_snapshot_path

logger = logging.getLogger(__name__)

#: Where the catalog came from (`CatalogIndex.source`).
SOURCE_SNAPSHOT, SOURCE_SEED, SOURCE_NONE = "snapshot", "seed", "none"


@dataclass(frozen=True)
class CatalogProduct:
    """A catalog product as the recogniser sees it (what `shop.matching.rank` needs, plus the description).

    `stock` is only a tie-breaker for the matcher and always 1: live stock and prices come from the database
    when an action answers.
    """

    sku: str
    name: str
    kind: str
    category: str
    coarse_category: str
    description: str = ""
    stock: int = 1

    @classmethod
    def from_fields(cls, fields: Mapping[str, object]) -> "CatalogProduct":
        """A product from a mapping with the keys sku, name, kind, category, coarse_category and (optionally)
        description; values are turned into strings."""
        return cls(str(fields["sku"]), str(fields["name"]), str(fields["kind"]), str(fields["category"]),
                   str(fields["coarse_category"]), str(fields.get("description") or ""))

    def text(self) -> str:
        """The text embedded with the text encoder: "name. kind. coarse category. description"."""
        parts = [self.name, self.kind, self.coarse_category, self.description]
        return ". ".join(part.strip().rstrip(".") for part in parts if part and part.strip())

    def to_json(self) -> Dict[str, str]:
        """The persisted fields (no stock)."""
        data = asdict(self)
        data.pop("stock")
        return data


class Catalog(NamedTuple):
    """What `load_catalog` found.

    Attributes:
        products: sorted by sku.
        photos: `(sku, path relative to the image root)` pairs, sorted by sku and path.
        source: "snapshot", "seed" or "none".
        problem: why the snapshot was not used (one line), or None.
    """

    products: List[CatalogProduct]
    photos: List[Tuple[str, str]]
    source: str
    problem: Optional[str] = None


def seed_catalog() -> List[CatalogProduct]:
    """The products of the seed catalog data/catalog/products.csv (`shop.seed.load_catalog`), by sku.

    Raises:
        OSError, ValueError: if the CSV cannot be read or is malformed.
    """
    from shop.seed import load_catalog as load_seed

    return sorted((CatalogProduct.from_fields(row) for row in load_seed()), key=lambda p: p.sku)


def load_catalog(snapshot: Optional[Text] = None) -> Catalog:
    """The catalog of the snapshot file, else the seed catalog without photos; logs nothing.

    Args:
        snapshot: the snapshot file (`shop.catalog_snapshot.resolve_snapshot_path`: None means
            CATALOG_SNAPSHOT, else var/catalog/snapshot.json).
    """
    path = resolve_snapshot_path(snapshot)
    try:
        data = read_snapshot(path)
    except FileNotFoundError:
        problem = f"no catalog snapshot at {path} (make db writes it)"
    except (OSError, ValueError) as error:
        problem = f"the catalog snapshot {path} could not be read ({type(error).__name__}: {error})"
    else:
        if data.products:
            products = [CatalogProduct.from_fields(fields) for fields in data.products]
            return Catalog(products, [(photo.sku, photo.path) for photo in data.photos], SOURCE_SNAPSHOT)
        problem = f"the catalog snapshot {path} has no products"
    try:
        return Catalog(seed_catalog(), [], SOURCE_SEED, problem)
    except (OSError, ValueError) as error:
        return Catalog([], [], SOURCE_NONE, f"{problem}; the seed catalog could not be read either ({error})")


def read_catalog(snapshot: Optional[Text] = None) -> Tuple[List[CatalogProduct], List[Tuple[str, str]], str]:
    """`load_catalog`, with one log line when the snapshot could not be used.

    Returns:
        `(products, photos, source)`, see `Catalog`.
    """
    catalog = load_catalog(snapshot)
    if catalog.problem is not None:
        fallback = "the seed catalog without photos" if catalog.source == SOURCE_SEED else "an empty catalog"
        logger.warning("%s: %s; using %s.", NAME, catalog.problem, fallback)
    return catalog.products, catalog.photos, catalog.source


def catalog_photo_files(
    pairs: Sequence[Tuple[str, str]], root: Path, known: Optional[Set[str]] = None
) -> List[Tuple[str, str, Path]]:
    """`(sku, relative path, file)` of each listed photo that `resolve_catalog_image` finds inside `root` (and
    whose sku is in `known`, when given); every other one is skipped with one log line."""
    found: List[Tuple[str, str, Path]] = []
    for sku, relative in pairs:
        path = resolve_catalog_image(root, relative) if known is None or sku in known else None
        if path is None:
            logger.warning("%s: catalog photo '%s' of %s not found under %s; skipped.", NAME, relative, sku,
                           root)
            continue
        found.append((sku, relative, path))
    return found
