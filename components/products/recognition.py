"""The answer for one photo: recognised, uncertain or unknown, by k-NN or by ImageNet labels.

1. Local-mean k-NN over the catalog photos (`knn.knn_scores`) when the nearest photo is at least
   `min_similarity` (plain features) or `min_similarity_projected` (projected ones) similar; the softmax of
   the products' similarities (`knn.softmax_ranking`) is the confidence. At `min_confidence` or above:
   recognised.
2. Otherwise the ImageNet labels mapped to catalog products (`labels.label_votes`): at `label_min_confidence`
   or above they name the product when k-NN had no candidate or the label's product has no catalog photo
   (k-NN would have seen it otherwise).
3. Otherwise the k-NN candidates, else label candidates above `label_min_candidate`, as "uncertain"; else
   "unknown".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from assistant.keys import METHOD_IMAGENET_LABEL, METHOD_KNN, RECOGNISED, UNCERTAIN, UNKNOWN
from components.products.index import CatalogIndex
from components.products.knn import knn_scores, softmax_ranking
from components.products.labels import label_votes


@dataclass(frozen=True)
class RecognitionSettings:
    """The thresholds of `recognise` (the ProductRecognizer's config keys of the same names).

    Attributes:
        k: photos per product averaged (count).
        temperature: softmax temperature (cosine-similarity units, > 0).
        min_confidence: k-NN confidence to name a product (probability).
        min_similarity: nearest-photo cosine below which k-NN is not trusted, plain features.
        min_similarity_projected: the same for projected features.
        label_min_confidence: mapped ImageNet probability to name a product.
        label_min_candidate: mapped ImageNet probability to offer a product.
        candidates: candidates returned at most (count).
    """

    k: int
    temperature: float
    min_confidence: float
    min_similarity: float
    min_similarity_projected: float
    label_min_confidence: float
    label_min_candidate: float
    candidates: int

    @classmethod
    def from_config(cls, config: Any) -> "RecognitionSettings":
        """The settings of a config object with these attributes (`ProductRecognizerConfig`)."""
        return cls(**{name: getattr(config, name) for name in cls.__dataclass_fields__})


def recognise(
    index: CatalogIndex,
    settings: RecognitionSettings,
    query: Optional[np.ndarray],
    labels: Sequence[Mapping[str, Any]],
    label_targets: Mapping[str, Sequence[Sequence[int]]],
) -> Dict[str, Any]:
    """The `product_recognition` of one photo.

    Args:
        index: the catalog index.
        settings: the thresholds.
        query: the photo's embedding in the index space (`CatalogIndex.prepare`), None when unusable.
        labels: the photo's top ImageNet labels `[{"label", "confidence"}]`.
        label_targets: `labels.resolve_label_targets` for this index.

    Returns:
        `{"status", "method", "sku", "name", "confidence", "candidates": [{"sku", "name", "confidence"}]}`.
    """
    knn: List[Tuple[int, float]] = []
    if query is not None:
        scores, best_similarity = knn_scores(query, index.image_embeddings, index.image_groups, settings.k)
        projected = index.projection is not None
        threshold = settings.min_similarity_projected if projected else settings.min_similarity
        if best_similarity >= threshold:
            knn = softmax_ranking(scores, settings.temperature)
    if knn and knn[0][1] >= settings.min_confidence:
        return _result(index, settings, RECOGNISED, METHOD_KNN, knn)
    by_label = label_votes(labels, label_targets)
    if by_label and by_label[0][1] >= settings.label_min_confidence:
        if not knn or not index.has_image[by_label[0][0]]:
            return _result(index, settings, RECOGNISED, METHOD_IMAGENET_LABEL, by_label)
    if knn:
        return _result(index, settings, UNCERTAIN, METHOD_KNN, knn)
    if by_label and by_label[0][1] >= settings.label_min_candidate:
        return _result(index, settings, UNCERTAIN, METHOD_IMAGENET_LABEL, by_label)
    return {"status": UNKNOWN, "method": None, "sku": None, "name": None, "confidence": 0.0, "candidates": []}


def _result(
    index: CatalogIndex, settings: RecognitionSettings, status: str, method: str,
    ranked: Sequence[Tuple[int, float]],
) -> Dict[str, Any]:
    candidates = [
        {"sku": index.products[i].sku, "name": index.products[i].name, "confidence": round(float(score), 4)}
        for i, score in ranked[: settings.candidates]
    ]
    best = candidates[0]
    return {"status": status, "method": method, "sku": best["sku"], "name": best["name"],
            "confidence": best["confidence"], "candidates": candidates}
