"""Unit tests for components/products/embeddings.py: catalog photos and texts embedded as the featurizers do.

The photo test runs the packaged EfficientNet-Lite0; the text tests run the TransformerTextFeaturizer and
`encode_catalog_texts` on the tiny random BERT of tests/unit/encoders/tiny_bert.py and compare them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest
from PIL import Image

from components.products.embeddings import (
    encode_catalog_images,
    encode_catalog_texts,
    encoder_signature,
    image_encoder_config,
    text_encoder_config,
)
from components.text_featurizer import TransformerTextFeaturizer
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.message import Message
from tests.unit.encoders.tiny_bert import TINY_POSITIONS, build_tiny_bert

IMAGE_DIMS = 1280
#: Catalog-like texts (name. kind. coarse category. description), long enough that the longest is truncated.
TEXTS = ["Banana. banana. Banana. Sweet bananas from Ecuador",
         "Oatly Oat Milk. oat milk. Oat-Milk. Oat drink, 1 l carton",
         "Red Pepper. red pepper. Pepper. " + "crisp and sweet " * 12]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert-catalog"))


def featurizer_config(model_dir: Path, **overrides: Any) -> Dict[str, Any]:
    return {**TransformerTextFeaturizer.get_default_config(), "model_path": str(model_dir),
            "max_length": TINY_POSITIONS, **overrides}


def sentence_features(config: Dict[str, Any], texts) -> np.ndarray:
    """The TransformerTextFeaturizer's sentence feature of each text, `float32 (n, hidden)`."""
    featurizer = TransformerTextFeaturizer.create(
        config, None, Resource("text_featurizer"), ExecutionContext(GraphSchema({}), "text_featurizer")
    )
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    messages = [Message(data={TEXT: text}) for text in texts]
    tokenizer.process(messages)
    featurizer.process(messages)
    rows = []
    for message in messages:
        [feature] = [f for f in message.features if f.attribute == TEXT and f.type == FEATURE_TYPE_SENTENCE]
        rows.append(feature.features[0])
    return np.asarray(rows, dtype=np.float32)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("normalize", [True, False])
def test_a_catalog_text_is_embedded_as_the_featurizers_sentence_feature(tiny_model_dir: Path, pooling: str,
                                                                        normalize: bool) -> None:
    config = featurizer_config(tiny_model_dir, pooling=pooling, normalize=normalize)
    catalog = encode_catalog_texts(TEXTS, config)
    assert catalog.shape == (len(TEXTS), 32) and catalog.dtype == np.float32
    np.testing.assert_allclose(catalog, sentence_features(config, TEXTS), atol=1e-5)
    norms = np.linalg.norm(catalog, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5) == normalize


def test_mean_and_cls_pooling_differ(tiny_model_dir: Path) -> None:
    mean = encode_catalog_texts(TEXTS, featurizer_config(tiny_model_dir, pooling="mean"))
    cls = encode_catalog_texts(TEXTS, featurizer_config(tiny_model_dir, pooling="cls"))
    assert not np.allclose(mean, cls, atol=1e-3)


def test_missing_featurizer_keys_take_its_defaults() -> None:
    assert text_encoder_config({"pooling": "cls"})["normalize"] is True
    assert text_encoder_config({})["model_path"] is None
    assert image_encoder_config({"image_size": 192})["resize_size"] == 256


def test_the_real_encoder_embeds_catalog_photos_and_skips_broken_files(tmp_path: Path, monkeypatch):
    good = tmp_path / "good.jpg"
    Image.new("RGB", (120, 90), (200, 180, 40)).save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good.read_bytes()[:100])
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    embeddings, ok = encode_catalog_images([good, broken, text, good], {}, 10 * 1024 * 1024, 2)
    assert ok == [True, False, False, True]
    assert embeddings.shape == (2, IMAGE_DIMS) and embeddings.dtype == np.float32
    np.testing.assert_allclose(embeddings[0], embeddings[1], atol=1e-5)


def test_the_encoder_signature_names_weights_and_sizes(tmp_path: Path) -> None:
    signature = encoder_signature({})
    assert set(signature) == {"weights_sha256", "image_size", "resize_size"}
    assert (signature["image_size"], signature["resize_size"]) == (224, 256)
    assert encoder_signature({"image_size": 192})["image_size"] == 192
    assert encoder_signature({"weights_path": str(tmp_path / "absent.pth")}) == {}
