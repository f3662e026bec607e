"""Unit tests for components/products/knn.py: normalisation, LDA, product groups, local-mean k-NN."""
from __future__ import annotations

import numpy as np
import pytest

from components.products.knn import (
    Projection,
    fit_lda_projection,
    knn_scores,
    l2_normalise,
    prepare_embeddings,
    product_centroids,
    product_groups,
    softmax_ranking,
)


def test_local_mean_knn_scores_and_softmax_confidences():
    embeddings = np.asarray([[1, 0, 0], [0.8, 0.6, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    owners = np.array([0, 0, 1, 1])
    groups = product_groups(owners, 3)
    query = np.array([0.6, 0.8, 0.0], dtype=np.float32)
    scores, best = knn_scores(query, embeddings, groups, k=2)
    assert scores[0] == pytest.approx((0.6 + 0.96) / 2)
    assert scores[1] == pytest.approx((0.8 + 0.0) / 2)
    assert scores[2] == -np.inf  # no photos
    assert best == pytest.approx(0.96)
    nearest, _ = knn_scores(query, embeddings, groups, k=1)
    assert nearest[:2] == pytest.approx([0.96, 0.8])

    ranked = softmax_ranking(scores, temperature=0.1)
    assert [product for product, _ in ranked] == [0, 1]
    assert sum(confidence for _, confidence in ranked) == pytest.approx(1.0)
    assert ranked[0][1] == pytest.approx(1 / (1 + np.exp((0.4 - 0.78) / 0.1)))
    assert softmax_ranking(np.full(3, -np.inf), 0.1) == []


def test_l2_normalise_keeps_zero_rows_and_gives_unit_rows() -> None:
    vectors = l2_normalise(np.asarray([[3.0, 4.0], [0.0, 0.0]]))
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, [[0.6, 0.8], [0.0, 0.0]], atol=1e-7)


def test_groups_and_centroids_per_product() -> None:
    owners = np.array([2, 0, 2])
    groups = product_groups(owners, 4)
    assert [g.tolist() for g in groups] == [[1], [], [0, 2], []]
    centroids = product_centroids(np.asarray([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0]]), owners, 4)
    np.testing.assert_allclose(centroids, [[0, 1], [0, 0], [1, 0], [0, 0]], atol=1e-7)
    assert product_centroids(np.zeros((0, 0)), np.zeros((0,), np.int64), 2).shape == (2, 0)


def test_the_lda_projection_separates_products_and_needs_two() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    raw = np.concatenate([centre + 0.3 * rng.normal(size=(5, 16)) for centre in centres]).astype(np.float32)
    owners = np.repeat(np.arange(3), 5)
    projection = fit_lda_projection(raw, owners, shrinkage=0.1)
    assert isinstance(projection, Projection)
    assert projection.matrix.shape == (16, 2) and projection.mean.shape == (16,)
    prepared = prepare_embeddings(raw, projection)
    np.testing.assert_allclose(np.linalg.norm(prepared, axis=1), 1.0, atol=1e-5)
    scores, _ = knn_scores(prepared[0], prepared[1:], product_groups(owners[1:], 3), k=2)
    assert int(np.argmax(scores)) == 0
    assert fit_lda_projection(raw[:5], owners[:5], 0.1) is None
    np.testing.assert_allclose(prepare_embeddings(raw, None), l2_normalise(raw))
