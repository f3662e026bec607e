"""Unit tests for assistant/keys.py: every shared key is defined once, as a plain string, and the collections
of keys are those that the media package and the fusion classifier use."""
from __future__ import annotations

from typing import Dict, get_args

import assistant.keys as keys
from assistant.keys import (
    ATTACHMENT_PROBLEM,
    ATTACHMENT_PROBLEMS,
    ATTACHMENT_TYPES,
    ATTACHMENTS,
    CUSTOMER,
    IMAGE,
    IMAGE_EMBEDDINGS,
    IMAGE_LABELS,
    METADATA,
    PRODUCT_RECOGNITION,
    RESERVED_METADATA_KEYS,
    SENTIMENT,
    SENTIMENT_LABELS,
    SIMILAR_PRODUCTS,
    SIMILAR_TO,
    TEXT_TRUNCATED,
    TRANSCRIPT,
)

COLLECTIONS = ("RESERVED_METADATA_KEYS", "SENTIMENT_LABELS", "ATTACHMENT_TYPES")


def key_constants() -> Dict[str, object]:
    """Every upper-case module constant of assistant.keys except the collections of keys."""
    return {
        name: value
        for name, value in vars(keys).items()
        if name.isupper() and not name.startswith("_") and name not in COLLECTIONS
    }


def test_every_key_constant_is_a_non_empty_string() -> None:
    constants = key_constants()
    assert len(constants) >= 25
    for name, value in constants.items():
        assert isinstance(value, str) and value, name
        assert value == value.strip() and " " not in value, name


def test_the_message_keys_are_distinct() -> None:
    message_keys = [
        METADATA, ATTACHMENTS, ATTACHMENT_PROBLEMS, TRANSCRIPT, TEXT_TRUNCATED, IMAGE, IMAGE_LABELS,
        IMAGE_EMBEDDINGS, SENTIMENT, PRODUCT_RECOGNITION, SIMILAR_PRODUCTS, SIMILAR_TO, ATTACHMENT_PROBLEM,
    ]
    assert len(set(message_keys)) == len(message_keys)


def test_the_reserved_metadata_keys_are_keys() -> None:
    assert isinstance(RESERVED_METADATA_KEYS, frozenset)
    assert RESERVED_METADATA_KEYS <= set(key_constants().values())
    assert RESERVED_METADATA_KEYS == {ATTACHMENTS, ATTACHMENT_PROBLEMS, TRANSCRIPT, IMAGE_LABELS, CUSTOMER}


def test_attachment_types_are_those_of_the_media_schema() -> None:
    from media.schema import AttachmentType

    assert set(ATTACHMENT_TYPES) <= set(key_constants().values())
    assert ATTACHMENT_TYPES == get_args(AttachmentType)


def test_sentiment_labels_are_those_of_the_fusion_classifier() -> None:
    from components.fusion_classifier import MultimodalFusionClassifier

    assert set(SENTIMENT_LABELS) <= set(key_constants().values())
    assert list(SENTIMENT_LABELS) == MultimodalFusionClassifier.get_default_config()["sentiment_labels"]
