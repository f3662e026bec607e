"""Unit tests for components/products/labels.py: the ImageNet label → catalog product mapping."""
from __future__ import annotations

from pathlib import Path

import pytest
from rasa.shared.exceptions import InvalidConfigException

from components.products.catalog import CatalogProduct, seed_catalog
from components.products.labels import (
    DEFAULT_LABEL_MAPPING,
    label_votes,
    load_label_mapping,
    resolve_label_targets,
    resolve_mapping_path,
)


def test_label_votes_share_a_label_between_its_targets():
    products = [
        CatalogProduct("A", "Lemon", "lemon", "Fruit/Lemon", "Lemon"),
        CatalogProduct("B", "Lime", "lime", "Fruit/Lime", "Lime"),
        CatalogProduct("C", "Red Pepper", "red pepper", "Veg/Pepper", "Pepper"),
        CatalogProduct("D", "Green Pepper", "green pepper", "Veg/Pepper", "Pepper"),
    ]
    mapping = {"lemon": ["lemon", "lime", "kumquat"], "bell pepper": ["Pepper"]}
    targets = resolve_label_targets(mapping, products)
    assert targets == {"lemon": [[0], [1]], "bell pepper": [[2, 3]]}
    labels = [{"label": "lemon", "confidence": 0.8}, {"label": "bell pepper", "confidence": 0.2}]
    votes = label_votes(labels, targets)
    assert [product for product, _ in votes] == [0, 1, 2, 3]
    assert [share for _, share in votes] == pytest.approx([0.4, 0.4, 0.1, 0.1])
    assert label_votes([{"label": "lemon", "confidence": float("nan")}, "junk"], targets) == []


def test_the_shipped_label_mapping_names_seed_catalog_products():
    mapping = load_label_mapping(resolve_mapping_path(None))
    products = seed_catalog()
    targets = resolve_label_targets(mapping, products)
    assert set(targets) == set(mapping), "every label maps to at least one seed product"
    for label in ("banana", "Granny Smith", "bell pepper", "pineapple"):
        assert label in mapping


def test_a_mapping_file_is_checked(tmp_path: Path) -> None:
    assert resolve_mapping_path(None).name == Path(DEFAULT_LABEL_MAPPING).name
    with pytest.raises(InvalidConfigException, match="does not exist"):
        load_label_mapping(tmp_path / "absent.yml")
    unknown = tmp_path / "unknown.yml"
    unknown.write_text("bananna: [banana]\n")
    with pytest.raises(InvalidConfigException, match="bananna"):
        load_label_mapping(unknown)
    not_a_list = tmp_path / "number.yml"
    not_a_list.write_text("banana: 5\n")
    with pytest.raises(InvalidConfigException, match="list of catalog kinds"):
        load_label_mapping(not_a_list)
    single = tmp_path / "single.yml"
    single.write_text("banana: banana\n")
    assert load_label_mapping(single) == {"banana": ["banana"]}
