"""Unit tests for components/products/recognition.py: recognised / uncertain / unknown, k-NN or labels."""
from __future__ import annotations

import numpy as np

from components.products.catalog import CatalogProduct
from components.products.index import build_index
from components.products.recognition import RecognitionSettings, recognise

PRODUCTS = [CatalogProduct("A", "Apple", "apple", "Fruit/Apple", "Apple"),
            CatalogProduct("B", "Banana", "banana", "Fruit/Banana", "Banana"),
            CatalogProduct("C", "Cherry", "cherry", "Fruit/Cherry", "Cherry")]
SETTINGS = RecognitionSettings(k=1, temperature=0.04, min_confidence=0.66, min_similarity=0.36,
                               min_similarity_projected=0.45, label_min_confidence=0.5,
                               label_min_candidate=0.1, candidates=2)
#: One photo each of A and B, along two axes.
PHOTOS = [{"sku": "A", "path": "a", "sha256": ""}, {"sku": "B", "path": "b", "sha256": ""}]
INDEX = build_index(PRODUCTS, PHOTOS, np.eye(2, 1280, dtype=np.float32), np.zeros((0, 0)), {}, "snapshot",
                    "none")
#: The ImageNet label "cherry" → product C (no photo).
TARGETS = {"cherry": [[2]], "banana": [[1]]}


def query(x: float, y: float):
    vector = np.zeros(1280, np.float32)
    vector[:2] = (x, y)
    return INDEX.prepare(vector)


def test_a_close_photo_is_recognised_by_knn() -> None:
    result = recognise(INDEX, SETTINGS, query(1.0, 0.05), [], TARGETS)
    found = (result["status"], result["method"], result["sku"], result["name"])
    assert found == ("recognised", "knn", "A", "Apple")
    assert [c["sku"] for c in result["candidates"]] == ["A", "B"]
    assert result["confidence"] == result["candidates"][0]["confidence"] > 0.66


def test_an_ambiguous_photo_is_uncertain_and_a_far_one_goes_to_the_labels() -> None:
    between = recognise(INDEX, SETTINGS, query(1.0, 1.0), [], TARGETS)
    assert (between["status"], between["method"]) == ("uncertain", "knn") and between["confidence"] < 0.66
    far = recognise(INDEX, SETTINGS, None, [{"label": "cherry", "confidence": 0.9}], TARGETS)
    assert (far["status"], far["method"], far["sku"]) == ("recognised", "imagenet_label", "C")
    weak = recognise(INDEX, SETTINGS, None, [{"label": "cherry", "confidence": 0.2}], TARGETS)
    assert (weak["status"], weak["sku"]) == ("uncertain", "C")
    nothing = recognise(INDEX, SETTINGS, None, [{"label": "cherry", "confidence": 0.05}], TARGETS)
    assert nothing == {"status": "unknown", "method": None, "sku": None, "name": None, "confidence": 0.0,
                       "candidates": []}


def test_a_confident_label_only_overrides_an_unsure_knn_for_a_product_without_photos() -> None:
    unsure = query(1.0, 1.0)
    label_c = recognise(INDEX, SETTINGS, unsure, [{"label": "cherry", "confidence": 0.9}], TARGETS)
    assert (label_c["method"], label_c["sku"]) == ("imagenet_label", "C")
    label_b = recognise(INDEX, SETTINGS, unsure, [{"label": "banana", "confidence": 0.9}], TARGETS)
    assert (label_b["status"], label_b["method"]) == ("uncertain", "knn")  # k-NN saw B's photo


def test_settings_come_from_a_config_object() -> None:
    class Config:
        k, temperature, min_confidence, min_similarity, min_similarity_projected = 3, 0.1, 0.5, 0.3, 0.4
        label_min_confidence, label_min_candidate, candidates, other = 0.5, 0.1, 3, "ignored"

    expected = RecognitionSettings(3, 0.1, 0.5, 0.3, 0.4, 0.5, 0.1, 3)
    assert RecognitionSettings.from_config(Config()) == expected
