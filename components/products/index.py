"""`CatalogIndex`: the catalog's products, photo embeddings and text embeddings, and how they are persisted.

Files in the component's model storage directory (`numpy.save` / `numpy.load` with `allow_pickle=False`, no
pickle anywhere):

- `index.json`: `{"format", "source", "encoder", "products", "images", "projection"}` (format `INDEX_FORMAT`);
- `image_embeddings.npy`: `float32 (n_images, d)` prepared photo embeddings (projected when there is a
  projection);
- `projection.npy` + `projection_mean.npy`: the LDA projection, `(0, 0)` and `(0,)` without one;
- `image_centroids.npy`: `float32 (n_products, 1280)` per-product plain photo centroids (absent in indexes of
  the first release; then recomputed from the embeddings);
- `text_embeddings.npy`: `float32 (n_products, hidden)` unit text embeddings, `(0, 0)` without a text encoder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from components.products.catalog import SOURCE_NONE, CatalogProduct
from components.products.knn import (
    Projection,
    fit_lda_projection,
    l2_normalise,
    prepare_embeddings,
    product_centroids,
    product_groups,
)

#: Persisted index layout version (bump when the files change meaning).
INDEX_FORMAT = 1
_ARRAYS = ("image_embeddings", "projection", "projection_mean", "text_embeddings", "image_centroids")


@dataclass
class CatalogIndex:
    """The catalog as the recogniser uses it.

    Attributes:
        products: catalog products, sorted by sku.
        images: one `{"sku", "path", "sha256"}` per row of `image_embeddings`.
        image_owner: `int64 (n_images,)` index into `products` of each row.
        image_embeddings: `float32 (n_images, d)`, prepared (`prepare_embeddings`): unit length, projected
            when `projection` is set (d = its width), else d = 1280.
        projection: the learnt projection, or None.
        text_embeddings: `float32 (n_products, hidden)` unit text vectors, or `(0, 0)` when unavailable.
        encoder: the image encoder settings the rows were computed with (`weights_sha256`, `image_size`,
            `resize_size`).
        source: where the catalog came from: "snapshot", "seed" or "none" ("database" in older indexes).
        image_centroids: `float32 (n_products, 1280)`: per product the normalised mean of its L2-normalised
            photo embeddings without projection (zeros without photos), for "looks similar"; the projection
            separates products and is meant for recognising them, not for comparing them. None: computed
            from `image_embeddings`.
    """

    products: List[CatalogProduct]
    images: List[Dict[str, str]]
    image_owner: np.ndarray
    image_embeddings: np.ndarray
    projection: Optional[Projection]
    text_embeddings: np.ndarray
    encoder: Dict[str, Any]
    source: str
    image_centroids: Optional[np.ndarray] = None

    @classmethod
    def empty(cls) -> "CatalogIndex":
        """An index without products."""
        return cls([], [], np.zeros((0,), np.int64), np.zeros((0, 0), np.float32), None,
                   np.zeros((0, 0), np.float32), {}, SOURCE_NONE)

    def __post_init__(self) -> None:
        self.sku_index = {product.sku: i for i, product in enumerate(self.products)}
        n_products = len(self.products)
        self.has_image = np.zeros((n_products,), dtype=bool)
        self.has_image[np.asarray(self.image_owner, dtype=np.int64)] = True
        if self.image_centroids is None:
            self.image_centroids = product_centroids(self.image_embeddings, self.image_owner, n_products)
        self.image_groups = product_groups(np.asarray(self.image_owner, dtype=np.int64), n_products)

    @property
    def has_images(self) -> bool:
        """True when at least one catalog photo is indexed."""
        return self.image_embeddings.ndim == 2 and self.image_embeddings.shape[0] > 0

    @property
    def has_text(self) -> bool:
        """True when every product has a text embedding."""
        return self.text_embeddings.ndim == 2 and self.text_embeddings.shape[0] == len(self.products) > 0

    def prepare(self, embedding: np.ndarray) -> Optional[np.ndarray]:
        """A customer photo's raw `float32 (1280,)` embedding in the index space, or None when unusable
        (no photos indexed, wrong width, not finite, all zero)."""
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if not self.has_images or not np.all(np.isfinite(vector)):
            return None
        projection = self.projection
        width = projection.mean.shape[0] if projection is not None else self.image_embeddings.shape[1]
        if vector.shape[0] != width:
            return None
        prepared = prepare_embeddings(vector[None, :], self.projection)[0]
        return prepared if float(np.linalg.norm(prepared)) > 0.5 else None

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        """Writes `index.json` and the `.npy` arrays (no pickle) into `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": INDEX_FORMAT,
            "source": self.source,
            "encoder": self.encoder,
            "products": [product.to_json() for product in self.products],
            "images": self.images,
            "projection": "lda" if self.projection is not None else None,
        }
        text = json.dumps(meta, ensure_ascii=False, indent=1)
        (directory / "index.json").write_text(text, encoding="utf-8")
        projection = self.projection or Projection(np.zeros((0, 0), np.float32), np.zeros((0,), np.float32))
        arrays = (self.image_embeddings, projection.matrix, projection.mean, self.text_embeddings,
                  self.image_centroids)
        for name, array in zip(_ARRAYS, arrays):
            np.save(directory / f"{name}.npy", np.ascontiguousarray(array, np.float32), allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> "CatalogIndex":
        """Reads what `save` wrote.

        Raises:
            ValueError: for a missing or inconsistent file (an unknown format, row counts that differ, an
                image row of an unknown sku).
        """
        try:
            meta = json.loads((directory / "index.json").read_text(encoding="utf-8"))
            embeddings, matrix, mean, text = (
                np.load(directory / f"{name}.npy", allow_pickle=False) for name in _ARRAYS[:4]
            )
            centroids_file = directory / "image_centroids.npy"  # absent in indexes of the first release
            centroids = (np.load(centroids_file, allow_pickle=False) if centroids_file.is_file()
                         else np.zeros((0, 0), np.float32))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"unreadable catalog index: {error}") from error
        if meta.get("format") != INDEX_FORMAT:
            raise ValueError(f"catalog index format {meta.get('format')!r}, expected {INDEX_FORMAT}")
        products = [CatalogProduct(**{k: str(v) for k, v in item.items()}) for item in meta["products"]]
        skus = {product.sku: i for i, product in enumerate(products)}
        images = [dict(item) for item in meta["images"]]
        if any(item.get("sku") not in skus for item in images):
            raise ValueError("catalog index: an image row names an unknown sku")
        if embeddings.ndim != 2 or embeddings.shape[0] != len(images):
            raise ValueError("catalog index: image rows and embeddings differ")
        if centroids.size and (centroids.ndim != 2 or centroids.shape[0] != len(products)):
            raise ValueError("catalog index: one photo centroid per product expected")
        owners = np.asarray([skus[item["sku"]] for item in images], dtype=np.int64)
        projection = None
        if meta.get("projection"):
            if matrix.ndim != 2 or mean.shape != (matrix.shape[0],) or (
                embeddings.shape[0] and embeddings.shape[1] != matrix.shape[1]
            ):
                raise ValueError("catalog index: projection and embeddings do not fit together")
            projection = Projection(matrix.astype(np.float32), mean.astype(np.float32))
        return cls(
            products=products,
            images=images,
            image_owner=owners,
            image_embeddings=embeddings.astype(np.float32, copy=False),
            projection=projection,
            text_embeddings=text.astype(np.float32, copy=False),
            encoder=dict(meta.get("encoder") or {}),
            source=str(meta.get("source", SOURCE_NONE)),
            image_centroids=centroids.astype(np.float32, copy=False) if centroids.size else None,
        )


def build_index(
    products: Sequence[CatalogProduct],
    images: Sequence[Dict[str, str]],
    raw_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    encoder: Dict[str, Any],
    source: str,
    projection: str = "none",
    lda_shrinkage: float = 0.1,
    lda_min_photos_per_product: float = 3.0,
) -> CatalogIndex:
    """An index from raw (pooled, un-normalised) photo embeddings.

    With `projection="lda"` and on average at least `lda_min_photos_per_product` photos per photographed
    product (and at least two such products), a shrinkage LDA projection is fitted on the photos
    (`fit_lda_projection`); the rows are then stored projected.

    Args:
        products: the catalog (any order; stored by sku).
        images: one `{"sku", "path", "sha256"}` per row of `raw_embeddings`.
        raw_embeddings: `float32 (n_images, 1280)` pooled photo embeddings.
        text_embeddings: `float32 (n_products, hidden)` text embeddings in the order of `products` sorted by
            sku (`(0, 0)`: none); stored L2-normalised, so that dot products are cosines.
        encoder: the image encoder settings (`embeddings.encoder_signature`).
        source: where the catalog came from.
        projection: "lda" or "none".
        lda_shrinkage: weight of the identity in the within-class covariance (0..1).
        lda_min_photos_per_product: average photos per photographed product needed for the projection.
    """
    products = sorted(products, key=lambda p: p.sku)
    skus = {product.sku: i for i, product in enumerate(products)}
    raw = np.asarray(raw_embeddings, dtype=np.float32)
    owners = np.asarray([skus[item["sku"]] for item in images], dtype=np.int64)
    fitted = None
    if raw.ndim == 2 and raw.shape[0]:
        photographed = np.unique(owners).shape[0]
        enough = photographed >= 2 and raw.shape[0] >= lda_min_photos_per_product * photographed
        if projection == "lda" and enough:
            fitted = fit_lda_projection(raw, owners, lda_shrinkage)
        prepared = prepare_embeddings(raw, fitted)
        centroids = product_centroids(l2_normalise(raw), owners, len(products))
    else:
        prepared = centroids = np.zeros((0, 0), np.float32)
    text = np.asarray(text_embeddings, dtype=np.float32)
    text = l2_normalise(text) if text.size else text
    return CatalogIndex(list(products), [dict(item) for item in images], owners, prepared, fitted, text,
                        dict(encoder), source, centroids)
