"""The maths of photo recognition: normalisation, the LDA projection, product groups and local-mean k-NN.

- Shrinkage linear discriminant analysis (Fisher 1936; within-class covariance shrunk towards a scaled
  identity, Ledoit & Wolf 2004; scikit-learn's `LinearDiscriminantAnalysis(solver="eigen")`) to at most
  (products - 1) dimensions: it pulls photos of one product together and pushes products apart, which a pooled
  ImageNet feature does not do for look-alike packages (benchmarks/bench_images.py).
- Local-mean k-NN (Mitani & Hamamoto, "A local mean-based nonparametric classifier", Pattern Recognition
  Letters 27, 2006): a product's similarity s_p is the mean cosine similarity of its `k` photos closest to the
  query (all of them when it has fewer); its confidence is the softmax over all photographed products,
  exp(s_p / temperature) / Σ_q exp(s_q / temperature).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

#: Norm floor of `l2_normalise` (as torch.nn.functional.normalize's eps).
_NORM_EPS = 1e-12


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (`float32`, any shape `(..., d)`); all-zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, _NORM_EPS)).astype(np.float32)


@dataclass(frozen=True)
class Projection:
    """A linear map applied to L2-normalised photo embeddings: `z = (x - mean) @ matrix`.

    Attributes:
        matrix: `float32 (1280, m)`.
        mean: `float32 (1280,)`.
    """

    matrix: np.ndarray
    mean: np.ndarray

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """`float32 (n, m)` projections of `float32 (n, 1280)` rows."""
        return (np.asarray(vectors, dtype=np.float32) - self.mean) @ self.matrix


def prepare_embeddings(vectors: np.ndarray, projection: Optional[Projection]) -> np.ndarray:
    """The space photos are compared in: L2-normalised, projected (when a projection is given), normalised."""
    vectors = l2_normalise(vectors)
    if projection is not None:
        vectors = l2_normalise(projection.apply(vectors))
    return vectors


def fit_lda_projection(
    raw_embeddings: np.ndarray, owners: np.ndarray, shrinkage: float
) -> Optional[Projection]:
    """Shrinkage LDA on L2-normalised photo embeddings labelled by product.

    Args:
        raw_embeddings: `float32 (n, 1280)` pooled photo embeddings.
        owners: `int (n,)` product of each photo.
        shrinkage: weight of the scaled identity in the within-class covariance (0..1).

    Returns:
        The projection to `min(#products - 1, 1280)` dimensions, or None with fewer than two products.
    """
    classes = np.unique(owners)
    if classes.shape[0] < 2:
        return None
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    x = l2_normalise(raw_embeddings).astype(np.float64)
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=shrinkage)
    lda.fit(x, owners)
    dims = min(classes.shape[0] - 1, x.shape[1])
    matrix = np.ascontiguousarray(lda.scalings_[:, :dims], dtype=np.float32)
    # Centred on the photos' mean, so that cosine similarities are measured from the middle of the catalog.
    return Projection(matrix=matrix, mean=x.mean(axis=0).astype(np.float32))


def product_groups(owners: np.ndarray, n_products: int) -> List[np.ndarray]:
    """Row indices (`int64`) of each product's photos (empty for a product without photos)."""
    order = np.argsort(owners, kind="stable")
    bounds = np.searchsorted(owners[order], np.arange(n_products + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(n_products)]


def product_centroids(embeddings: np.ndarray, owners: np.ndarray, n_products: int) -> np.ndarray:
    """`float32 (n_products, d)`: the normalised mean of each product's rows (zeros without rows)."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    dims = embeddings.shape[1] if embeddings.ndim == 2 else 0
    centroids = np.zeros((n_products, dims), dtype=np.float32)
    if dims:
        np.add.at(centroids, np.asarray(owners, dtype=np.int64), embeddings)
        centroids = l2_normalise(centroids)
    return centroids


def knn_scores(
    query: np.ndarray, embeddings: np.ndarray, groups: Sequence[np.ndarray], k: int
) -> Tuple[np.ndarray, float]:
    """Local-mean k-NN similarities: per product, the mean cosine of its `k` photos nearest to `query`.

    Args:
        query: `float32 (d,)`, prepared like the rows (unit length).
        embeddings: `float32 (n, d)` unit rows.
        groups: `product_groups(owners, n_products)`.
        k: photos per product averaged (products with fewer photos use all of theirs).

    Returns:
        `(scores float64 (n_products,), best)`: -inf for products without photos; `best` is the highest cosine
        similarity of any photo (-inf without photos).
    """
    similarities = embeddings @ query
    scores = np.full((len(groups),), -np.inf)
    for product, rows in enumerate(groups):
        if rows.size == 0:
            continue
        values = similarities[rows]
        if values.size > k:
            values = np.partition(values, values.size - k)[-k:]
        scores[product] = float(values.mean())
    best = float(similarities.max()) if similarities.size else float("-inf")
    return scores, best


def softmax_ranking(scores: np.ndarray, temperature: float) -> List[Tuple[int, float]]:
    """`[(product, confidence)]` best first: softmax of `scores / temperature` over the finite scores."""
    finite = np.flatnonzero(np.isfinite(scores))
    if finite.size == 0:
        return []
    logits = scores[finite] / temperature
    weights = np.exp(logits - logits.max())
    confidences = weights / weights.sum()
    order = np.argsort(-confidences, kind="stable")
    return [(int(finite[i]), float(confidences[i])) for i in order]
