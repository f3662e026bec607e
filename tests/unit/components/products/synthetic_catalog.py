"""A test catalog and synthetic encoders for the ProductRecognizer's tests.

The catalog is a real seeded SQLite database in a temporary directory, with generated solid-colour photos in a
temporary image root and a catalog snapshot written from it (`shop.catalog_snapshot`), as `make db` would. The
image encoder is replaced by a fixed random linear map of a photo's mean colour (so photos of similar colours
get similar 1280-wide embeddings) and the text encoder by a hashed bag of words (384 wide), so the tests need
neither EfficientNet nor MiniLM.
"""
from __future__ import annotations

import hashlib
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

IMAGE_DIMS = 1280
TEXT_DIMS = 384

#: Catalog products given photos in these tests, with the colour of their photos.
PHOTO_COLOURS = {
    "FRU-BANANA": (250, 220, 40),
    "FRU-APL-GRANNY": (60, 200, 60),
    "VEG-PEPPER-RED": (220, 30, 30),
    "PLB-OATLY-OATMILK": (40, 60, 220),
}

_COLOUR_MAP = np.random.default_rng(7).normal(size=(3, IMAGE_DIMS)).astype(np.float32)


def colour_embedding(rgb: Sequence[float]) -> np.ndarray:
    """The synthetic 1280-wide embedding of a photo whose mean colour is `rgb` (0..255)."""
    centred = np.asarray(rgb, dtype=np.float32) / 255.0 - 0.5
    return (centred @ _COLOUR_MAP).astype(np.float32)


def fake_encode_catalog_images(paths, encoder_config, max_bytes, batch_size) -> Tuple[np.ndarray, List[bool]]:
    """Stands in for `encode_catalog_images`: mean colour → fixed random map to 1280; unreadable: skipped."""
    rows, ok = [], []
    for path in paths:
        try:
            with Image.open(path) as image:
                rows.append(colour_embedding(np.asarray(image.convert("RGB"), np.float32).mean(axis=(0, 1))))
            ok.append(True)
        except OSError:
            ok.append(False)
    return (np.stack(rows) if rows else np.zeros((0, IMAGE_DIMS), np.float32)), ok


def _word_vector(word: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
    return np.random.default_rng(seed).normal(size=TEXT_DIMS).astype(np.float32)


def fake_encode_texts(texts: Sequence[str], encoder_config: Optional[Mapping[str, Any]] = None) -> np.ndarray:
    """Stands in for `encode_catalog_texts`: the normalised sum of one fixed random vector per word."""
    rows = []
    for text in texts:
        words = re.findall(r"[a-z]+", text.lower()) or ["empty"]
        vector = np.sum([_word_vector(word) for word in words], axis=0)
        rows.append(vector / np.linalg.norm(vector))
    return np.asarray(rows, dtype=np.float32)


@dataclass
class TestCatalog:
    """A seeded SQLite shop database, its catalog image root and the snapshot file written from it."""

    __test__ = False  # not a test class

    url: str
    root: Path
    repository: Any
    snapshot: Path

    def write_snapshot(self) -> Path:
        """Writes the catalog snapshot from the database (as `make db` / `make train` do); returns it."""
        from shop.catalog_snapshot import refresh_snapshot

        refresh_snapshot(self.snapshot, self.url, self.root)
        return self.snapshot

    def config(self, **overrides: Any) -> Dict[str, Any]:
        """The recogniser's default config on this catalog (the snapshot is written first)."""
        from components.product_recognizer import ProductRecognizer

        self.write_snapshot()
        return {**ProductRecognizer.get_default_config(), "catalog_snapshot": str(self.snapshot),
                "image_root": str(self.root), **overrides}

    def add_photo(self, sku: str, rgb: Tuple[int, int, int], name: Optional[str] = None) -> str:
        """Writes a solid-colour PNG under the image root, records it for `sku`; returns its relative path."""
        relative = name or f"{sku.lower()}/{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x}.png"
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 24), rgb).save(path)
        self.repository.add_product_image(sku, relative, hashlib.sha256(path.read_bytes()).hexdigest())
        return relative

    def add_catalog_photos(self, per_product: int = 1) -> None:
        """`per_product` photos for each product of PHOTO_COLOURS, in slightly different shades."""
        for sku, (r, g, b) in PHOTO_COLOURS.items():
            for shade in range(per_product):
                self.add_photo(sku, (max(r - 6 * shade, 0), max(g - 6 * shade, 0), min(b + 5 * shade, 255)))


@contextmanager
def seeded_database(tmp_path: Path) -> Iterator[Tuple[str, Any]]:
    """`(URL, ShopRepository)` of a seeded SQLite file `tmp_path/shop.db`; the engine is disposed of after."""
    from shop.db import make_engine, make_session_factory
    from shop.repository import ShopRepository
    from shop.seed import create_and_seed

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = make_engine(url)
    create_and_seed(engine)
    try:
        yield url, ShopRepository(make_session_factory(engine))
    finally:
        engine.dispose()


def make_catalog(tmp_path: Path) -> Iterator[TestCatalog]:
    """A `TestCatalog` in `tmp_path` (yields it; disposes of the engine afterwards). Use as a fixture body."""
    with seeded_database(tmp_path) as (url, repository):
        root = tmp_path / "catalog-images"
        root.mkdir()
        yield TestCatalog(url, root, repository, tmp_path / "catalog" / "snapshot.json")
