"""Unit tests for components/products/recommender.py: the reference product and the similarity ranking."""
from __future__ import annotations

from typing import List, Optional

import numpy as np
import pytest

from components.products.catalog import CatalogProduct
from components.products.index import build_index
from components.products.recommender import SimilarityWeights, named_product, rank_similar, similar_products

PRODUCTS = [CatalogProduct("FRU-BANANA", "Banana", "banana", "Fruit/Banana", "Banana"),
            CatalogProduct("PLB-OAT", "Oat Milk", "oat milk", "Milk/Oat", "Oat-Milk"),
            CatalogProduct("PLB-SOY", "Soy Milk", "soy milk", "Milk/Soy", "Soy-Milk")]
#: Text vectors: the two milks close, the banana apart.
TEXT = np.asarray([[1, 0, 0], [0, 1, 0.2], [0, 1, 0.4]], np.float32)
INDEX = build_index(PRODUCTS, [], np.zeros((0, 0)), TEXT, {}, "snapshot")
WEIGHTS = SimilarityWeights(text_weight=0.6, image_weight=0.4, top_n=5)


def no_encoder(words: str) -> Optional[np.ndarray]:
    raise AssertionError("a catalog product needs no encoding")


def test_the_reference_comes_from_an_entity_else_the_text() -> None:
    entity = {"entity": "product", "value": "  oat   milk ", "extractor": "DIETClassifier"}
    assert named_product([entity], "anything?", "ProductRecognizer") == ("oat milk", "entity")
    own = {**entity, "extractor": "ProductRecognizer"}
    assert named_product([own], "anything similar to soy milk?", "ProductRecognizer") == ("soy milk", "text")
    assert named_product([], "show me something like this", "ProductRecognizer") is None
    assert named_product([], "similar to soy milk", "ProductRecognizer", from_payload=True) is None
    assert named_product([], "x" * 2000, "ProductRecognizer") is None


def test_similar_products_of_a_named_product_exclude_it() -> None:
    reference, ranked = similar_products(INDEX, WEIGHTS, no_encoder, "ProductRecognizer",
                                         "anything similar to oat milk?", [])
    assert reference == {"sku": "PLB-OAT", "name": "Oat Milk", "query": "oat milk", "source": "text"}
    assert [item["sku"] for item in ranked] == ["PLB-SOY", "FRU-BANANA"]
    assert ranked[0]["score"] == pytest.approx(float(TEXT[1] @ TEXT[2] / np.linalg.norm(TEXT[1]) /
                                                     np.linalg.norm(TEXT[2])), abs=1e-4)


def test_words_that_name_no_product_are_encoded() -> None:
    asked: List[str] = []

    def encoder(words: str) -> np.ndarray:
        asked.append(words)
        return np.asarray([1, 0, 0], np.float32)

    reference, ranked = similar_products(INDEX, WEIGHTS, encoder, "ProductRecognizer",
                                         "anything similar to dragon fruit?", [])
    assert asked == ["dragon fruit"]
    assert reference == {"sku": None, "name": None, "query": "dragon fruit", "source": "text"}
    assert ranked[0]["sku"] == "FRU-BANANA"
    unencodable = similar_products(INDEX, WEIGHTS, lambda words: None, "ProductRecognizer",
                                   "similar to dragon fruit", [])
    assert unencodable == (None, [])


def test_a_photo_reference_and_the_top_n() -> None:
    recognition = {"status": "recognised", "sku": "FRU-BANANA"}
    weights = SimilarityWeights(1.0, 0.0, 1)
    reference, ranked = similar_products(INDEX, weights, no_encoder, "ProductRecognizer", "like this", [],
                                         None, recognition, None)
    assert reference == {"sku": "FRU-BANANA", "name": "Banana", "query": None, "source": "photo"}
    assert len(ranked) == 1
    assert rank_similar(INDEX, WEIGHTS, None, None, None) == []
