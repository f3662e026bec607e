"""Unit tests for `components.product_recognizer.ProductRecognizer` with synthetic encoders.

The catalog is a real seeded SQLite database in a temporary directory, with generated solid-colour photos in a
temporary image root; the recogniser reads the catalog snapshot written from it
(tests/unit/components/products/synthetic_catalog.py). The image and text encoders are synthetic, so these
tests need neither EfficientNet nor MiniLM. The parts (k-NN maths, labels, index files, catalog, encoders)
have their own tests in tests/unit/components/products/.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest
from PIL import Image

import components.product_recognizer as recognizer_module
from assistant.keys import PRODUCT_RECOGNITION, SIMILAR_PRODUCTS, SIMILAR_TO
from components.product_recognizer import ProductRecognizer
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from tests.unit.components.products.synthetic_catalog import (
    IMAGE_DIMS,
    PHOTO_COLOURS,
    colour_embedding,
    fake_encode_catalog_images,
    fake_encode_texts,
    make_catalog,
)

NODE = "product_recognizer"


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def synthetic_encoders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test of this module embeds with the synthetic encoders."""
    monkeypatch.setattr(recognizer_module, "encode_catalog_images", fake_encode_catalog_images)
    monkeypatch.setattr(recognizer_module, "encode_catalog_texts", fake_encode_texts)


@pytest.fixture
def model_storage(tmp_path: Path):
    """A Rasa `LocalModelStorage` whose directory exists, as it does during `rasa train`."""
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    path = tmp_path / "model-storage"
    path.mkdir()
    return LocalModelStorage(path)


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A seeded SQLite shop database, an empty catalog image root and the snapshot path (`TestCatalog`)."""
    monkeypatch.delenv("CATALOG_IMAGE_DIR", raising=False)
    monkeypatch.delenv("CATALOG_SNAPSHOT", raising=False)
    yield from make_catalog(tmp_path)


def context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "test-model")


def trained(model_storage, config: Dict) -> ProductRecognizer:
    component = ProductRecognizer.create(config, model_storage, Resource(NODE), context())
    component.train(TrainingData())
    return component


def loaded(model_storage, config: Dict) -> ProductRecognizer:
    return ProductRecognizer.load(config, model_storage, Resource(NODE), context())


def photo_message(
    rgb=None, labels=None, text: str = "", intent: Optional[str] = "send_image", embedding=None
) -> Message:
    """A parsed message carrying one photo with the synthetic embedding of `rgb` (or `embedding`) and ImageNet
    `labels`."""
    message = Message(data={TEXT: text})
    if rgb is not None or labels is not None or embedding is not None:
        if embedding is None:
            embedding = colour_embedding(rgb if rgb is not None else (128, 128, 128))
        embedding = np.asarray(embedding, dtype=np.float32)
        message.set("image_embeddings", embedding[None, :])
        message.set("image_labels", [labels or []], add_to_output=True)
    if intent:
        message.set(INTENT, {"name": intent, "confidence": 1.0}, add_to_output=True)
    return message


def text_message(
    text: str, intent: str = "similar_products", entities: Optional[List[Dict]] = None
) -> Message:
    message = Message(data={TEXT: text})
    message.set(INTENT, {"name": intent, "confidence": 0.9}, add_to_output=True)
    message.set(ENTITIES, entities or [], add_to_output=True)
    return message


def product_entities(message: Message) -> List[Dict]:
    return [e for e in message.get(ENTITIES) or [] if e.get("extractor") == "ProductRecognizer"]


# ---------------------------------------------------------------------------------------------- k-NN
def test_knn_recognises_the_product_of_the_closest_catalog_photos(model_storage, catalog):
    catalog.add_catalog_photos()
    component = trained(model_storage, catalog.config())
    message = photo_message((245, 215, 50))  # a banana-coloured photo
    component.process([message])

    recognition = message.get(PRODUCT_RECOGNITION)
    assert recognition["status"] == "recognised"
    assert recognition["method"] == "knn"
    assert recognition["sku"] == "FRU-BANANA"
    [entity] = product_entities(message)
    assert entity["entity"] == "product"
    assert entity["value"] == catalog.repository.get_product("FRU-BANANA").name
    assert entity["sku"] == "FRU-BANANA"
    assert 0.66 <= entity["confidence"] <= 1.0
    assert entity["method"] == "knn"
    assert [c["sku"] for c in entity["candidates"]][0] == "FRU-BANANA"
    assert len(entity["candidates"]) <= 3


def test_an_unclear_photo_offers_candidates_and_no_entity(model_storage, catalog):
    catalog.add_catalog_photos()
    component = trained(model_storage, catalog.config())
    banana, granny = (colour_embedding(PHOTO_COLOURS[sku]) for sku in ("FRU-BANANA", "FRU-APL-GRANNY"))
    message = photo_message(embedding=banana / np.linalg.norm(banana) + granny / np.linalg.norm(granny))
    component.process([message])

    recognition = message.get(PRODUCT_RECOGNITION)
    assert recognition["status"] == "uncertain"
    assert recognition["confidence"] < 0.66
    assert {c["sku"] for c in recognition["candidates"][:2]} == {"FRU-BANANA", "FRU-APL-GRANNY"}
    assert 2 <= len(recognition["candidates"]) <= 3
    assert not product_entities(message)


def test_lda_projection_is_learnt_from_several_photos_per_product(model_storage, catalog):
    catalog.add_catalog_photos(per_product=3)
    component = trained(model_storage, catalog.config())
    assert component.index.projection is not None
    assert component.index.image_embeddings.shape == (12, len(PHOTO_COLOURS) - 1)
    # "Looks similar" compares plain embeddings: one unit centroid per photographed product, zeros elsewhere.
    centroids = component.index.image_centroids
    assert centroids.shape == (len(component.index.products), IMAGE_DIMS)
    assert np.count_nonzero(np.linalg.norm(centroids, axis=1) > 0.99) == len(PHOTO_COLOURS)
    message = photo_message((55, 195, 65))
    component.process([message])
    assert message.get(PRODUCT_RECOGNITION)["sku"] == "FRU-APL-GRANNY"

    single = trained(model_storage, catalog.config(projection="none"))
    assert single.index.projection is None
    assert single.index.image_embeddings.shape == (12, IMAGE_DIMS)


# ---------------------------------------------------------------------------------------------- persistence
def test_persisted_index_gives_identical_results(model_storage, catalog):
    catalog.add_catalog_photos(per_product=3)
    config = catalog.config()
    original = trained(model_storage, config)
    restored = loaded(model_storage, config)

    def outputs(component: ProductRecognizer) -> List:
        messages = [
            photo_message((245, 215, 50)),
            photo_message((128, 128, 128)),
            photo_message((200, 60, 60), text="anything similar?", intent="similar_products"),
            text_message("anything similar to oat milk?"),
        ]
        component.process(messages)
        return [m.as_dict(only_output_properties=True) for m in messages]

    assert outputs(restored) == outputs(original)
    np.testing.assert_array_equal(restored.index.image_embeddings, original.index.image_embeddings)
    np.testing.assert_array_equal(restored.index.text_embeddings, original.index.text_embeddings)
    assert restored.index.images == original.index.images
    assert restored.index.products == original.index.products


def test_the_index_is_stored_without_pickle(model_storage, catalog):
    catalog.add_catalog_photos(per_product=3)
    trained(model_storage, catalog.config())
    with model_storage.read_from(Resource(NODE)) as directory:
        files = sorted(p.name for p in Path(directory).iterdir())
        assert files == [
            "image_centroids.npy",
            "image_embeddings.npy",
            "index.json",
            "projection.npy",
            "projection_mean.npy",
            "text_embeddings.npy",
        ]
        for name in files:
            data = (Path(directory) / name).read_bytes()
            assert not data.startswith(b"\x80"), f"{name} is a pickle"
            if name.endswith(".npy"):
                assert data.startswith(b"\x93NUMPY")
                array = np.load(Path(directory) / name, allow_pickle=False)
                assert array.dtype == np.float32
            else:
                json.loads(data)


def test_a_missing_or_broken_index_loads_as_empty(model_storage, catalog, caplog):
    config = catalog.config()
    component = loaded(model_storage, config)  # nothing was ever persisted
    assert component.index.products == []
    trained(model_storage, config)
    with model_storage.read_from(Resource(NODE)) as directory:
        (Path(directory) / "image_embeddings.npy").write_bytes(b"not numpy")
    component = loaded(model_storage, config)
    assert component.index.products == []
    assert "no usable catalog index" in caplog.text


# ---------------------------------------------------------------------------------------------- fallback
def test_without_catalog_photos_imagenet_labels_name_the_product(model_storage, catalog):
    component = trained(model_storage, catalog.config())
    assert not component.index.has_images
    banana = photo_message(
        labels=[{"label": "banana", "confidence": 0.93}, {"label": "lemon", "confidence": 0.02}]
    )
    peppers = photo_message(labels=[{"label": "bell pepper", "confidence": 0.9}])
    nothing = photo_message(
        labels=[{"label": "grocery store", "confidence": 0.7}, {"label": "packet", "confidence": 0.1}]
    )
    component.process([banana, peppers, nothing])

    recognition = banana.get(PRODUCT_RECOGNITION)
    assert (recognition["status"], recognition["method"], recognition["sku"]) == (
        "recognised", "imagenet_label", "FRU-BANANA"
    )
    [entity] = product_entities(banana)
    assert entity["method"] == "imagenet_label"

    recognition = peppers.get(PRODUCT_RECOGNITION)
    assert recognition["status"] == "uncertain"
    assert len(recognition["candidates"]) == 3
    assert all(c["sku"].startswith("VEG-PEPPER-") for c in recognition["candidates"])
    assert not product_entities(peppers)

    assert nothing.get(PRODUCT_RECOGNITION)["status"] == "unknown"
    assert nothing.get(PRODUCT_RECOGNITION)["candidates"] == []
    assert not product_entities(nothing)


def test_a_confident_label_wins_for_a_product_without_catalog_photo(model_storage, catalog):
    catalog.add_catalog_photos()  # no pineapple photo
    component = trained(model_storage, catalog.config(min_similarity=0.95))
    message = photo_message((128, 128, 128), labels=[{"label": "pineapple", "confidence": 0.8}])
    component.process([message])
    recognition = message.get(PRODUCT_RECOGNITION)
    assert (recognition["method"], recognition["sku"]) == ("imagenet_label", "FRU-PINEAPPLE")


def test_a_label_mapping_with_an_unknown_label_is_refused(tmp_path: Path, model_storage):
    bad = tmp_path / "map.yml"
    bad.write_text("bananna: [banana]\n")
    with pytest.raises(InvalidConfigException, match="bananna"):
        ProductRecognizer.create({"label_mapping": str(bad)}, model_storage, Resource(NODE), context())


# ------------------------------------------------------------------------------------------ catalog source
def test_a_missing_snapshot_gives_the_seed_catalog_without_photos(model_storage, tmp_path: Path, caplog):
    config = {**ProductRecognizer.get_default_config(), "catalog_snapshot": str(tmp_path / "absent.json"),
              "image_root": str(tmp_path)}
    component = trained(model_storage, config)
    assert not (tmp_path / "absent.json").exists(), "the snapshot is written by make db / make train only"
    assert component.index.source == "seed"
    assert len(component.index.products) > 50
    assert not component.index.has_images
    assert component.index.has_text
    assert sum("no catalog snapshot" in record.message for record in caplog.records) == 1


def test_the_recogniser_trains_from_the_snapshot_alone(model_storage, catalog, monkeypatch):
    catalog.add_catalog_photos()
    config = catalog.config()
    import shop.db

    def no_database(*args, **kwargs):
        raise AssertionError("the recogniser opened the database")

    monkeypatch.setattr(shop.db, "make_engine", no_database)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/nothing")
    component = trained(model_storage, config)
    assert component.index.source == "snapshot"
    assert {image["sku"] for image in component.index.images} == set(PHOTO_COLOURS)
    assert len(component.index.products) == len(catalog.repository.list_products())


def test_photos_outside_the_image_root_or_missing_are_skipped(model_storage, catalog, tmp_path: Path, caplog):
    catalog.add_catalog_photos()
    outside = tmp_path / "outside.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(outside)
    (catalog.root / "link.png").symlink_to(outside)
    catalog.repository.add_product_image("FRU-KIWI", "link.png", "0" * 64)
    catalog.repository.add_product_image("FRU-LIME", "gone/lime.png", "1" * 64)
    component = trained(model_storage, catalog.config())
    assert {image["sku"] for image in component.index.images} == set(PHOTO_COLOURS)
    assert "gone/lime.png" in caplog.text


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_catalog_texts_share_the_text_featurizers_space(model_storage, catalog, monkeypatch, tmp_path_factory,
                                                        pooling: str):
    """The recogniser reads the featurizer's model and pooling from the graph schema: a product's text
    embedding is the featurizer's sentence feature of the product's text."""
    from components.products.embeddings import encode_catalog_texts
    from components.text_featurizer import TransformerTextFeaturizer
    from rasa.engine.graph import SchemaNode
    from tests.unit.components.products.test_embeddings import featurizer_config, sentence_features
    from tests.unit.encoders.tiny_bert import build_tiny_bert

    monkeypatch.setattr(recognizer_module, "encode_catalog_texts", encode_catalog_texts)
    text_config = featurizer_config(build_tiny_bert(tmp_path_factory.mktemp("tiny")), pooling=pooling)
    node = SchemaNode(needs={}, uses=TransformerTextFeaturizer, constructor_name="create", fn="process",
                      config=text_config)
    schema_context = ExecutionContext(GraphSchema({"text_featurizer": node}), "test-model")
    component = ProductRecognizer.create(catalog.config(), model_storage, Resource(NODE), schema_context)
    component.train(TrainingData())
    products = component.index.products[:5]
    expected = sentence_features(text_config, [product.text() for product in products])
    np.testing.assert_allclose(component.index.text_embeddings[:5], expected, atol=1e-5)


# ---------------------------------------------------------------------------------------------- fingerprint
def test_the_fingerprint_follows_the_catalog_snapshot(catalog):
    config = catalog.config()
    first = ProductRecognizer.fingerprint_addon(config)
    assert ProductRecognizer.fingerprint_addon(config) == first

    from sqlalchemy import update

    from shop.db import unit_of_work
    from shop.models import Product

    with unit_of_work(catalog.repository._session_factory) as session:  # stock and price do not matter
        session.execute(update(Product).where(Product.sku == "FRU-BANANA").values(stock=1, price=9))
    catalog.write_snapshot()
    assert ProductRecognizer.fingerprint_addon(config) == first

    relative = catalog.add_photo("FRU-BANANA", (250, 220, 40))
    assert ProductRecognizer.fingerprint_addon(config) == first, "the database is not read, the snapshot is"
    catalog.write_snapshot()
    with_photo = ProductRecognizer.fingerprint_addon(config)
    assert with_photo != first

    Image.new("RGB", (32, 24), (0, 0, 0)).save(catalog.root / relative)  # same path, other content
    assert ProductRecognizer.fingerprint_addon(config) not in (first, with_photo)

    with unit_of_work(catalog.repository._session_factory) as session:
        session.execute(update(Product).where(Product.sku == "FRU-KIWI").values(description="Now golden."))
    catalog.write_snapshot()
    assert ProductRecognizer.fingerprint_addon(config) not in (first, with_photo)


def test_the_fingerprint_never_opens_the_database(catalog, monkeypatch):
    config = catalog.config()
    first = ProductRecognizer.fingerprint_addon(config)
    import shop.db

    def no_database(*args, **kwargs):
        raise AssertionError("fingerprint_addon opened the database")

    monkeypatch.setattr(shop.db, "make_engine", no_database)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/nothing")
    assert ProductRecognizer.fingerprint_addon(config) == first
    missing = {**config, "catalog_snapshot": str(catalog.snapshot.with_name("absent.json"))}
    assert ProductRecognizer.fingerprint_addon(missing) not in (first, None)  # the seed catalog's


# ---------------------------------------------------------------------------------------- similar products
def test_similar_products_for_a_named_product(model_storage, catalog):
    component = trained(model_storage, catalog.config())
    entity = {"entity": "product", "value": "oat milk", "start": 20, "end": 28, "extractor": "DIETClassifier"}
    by_entity = text_message("anything similar to oat milk?", entities=[entity])
    by_text = text_message("anything similar to oat milk?")
    component.process([by_entity, by_text])

    for message, source in ((by_entity, "entity"), (by_text, "text")):
        reference = message.get(SIMILAR_TO)
        assert reference["sku"] == "PLB-OATLY-OATMILK"
        assert reference["source"] == source
        ranked = message.get(SIMILAR_PRODUCTS)
        assert 1 <= len(ranked) <= 5
        assert "PLB-OATLY-OATMILK" not in [item["sku"] for item in ranked]
        assert all(set(item) == {"sku", "score"} for item in ranked)
        assert [item["score"] for item in ranked] == sorted((item["score"] for item in ranked), reverse=True)
        top = component.index.products[component.index.sku_index[ranked[0]["sku"]]]
        assert "oat" in top.text().lower() or "milk" in top.text().lower()
    assert by_text.as_dict(only_output_properties=True)[SIMILAR_PRODUCTS] == ranked


def test_similar_products_for_words_that_name_no_product(model_storage, catalog):
    component = trained(model_storage, catalog.config())
    message = text_message("anything similar to dragon fruit?")
    component.process([message])
    assert message.get(SIMILAR_TO) == {"sku": None, "name": None, "query": "dragon fruit", "source": "text"}
    assert message.get(SIMILAR_PRODUCTS)


def test_similar_products_from_a_button_payload(model_storage, catalog):
    component = trained(model_storage, catalog.config())
    message = text_message('/similar_products{"product": "Banana"}', intent="nlu_fallback")
    component.process([message])
    assert message.get(SIMILAR_TO)["sku"] == "FRU-BANANA"
    assert message.get(SIMILAR_PRODUCTS)


def test_similar_products_for_a_photo(model_storage, catalog):
    catalog.add_catalog_photos()
    component = trained(model_storage, catalog.config())
    message = photo_message((215, 35, 35), text="show me something like this", intent="similar_products")
    component.process([message])
    assert message.get(SIMILAR_TO)["sku"] == "VEG-PEPPER-RED"
    assert message.get(SIMILAR_TO)["source"] == "photo"
    assert "VEG-PEPPER-RED" not in [item["sku"] for item in message.get(SIMILAR_PRODUCTS)]


def test_no_similar_products_without_a_product(model_storage, catalog):
    component = trained(model_storage, catalog.config())
    asked = text_message("show me something like this")
    other = text_message("anything similar to oat milk?", intent="product_search")
    component.process([asked, other])
    assert asked.get(SIMILAR_TO) is None and asked.get(SIMILAR_PRODUCTS) == []
    assert SIMILAR_PRODUCTS not in other.as_dict(only_output_properties=True)
    assert PRODUCT_RECOGNITION not in other.as_dict(only_output_properties=True)


# ---------------------------------------------------------------------------------------------- Rasa contract
def test_the_entity_fits_rasas_schema_and_fills_the_product_slot(model_storage, catalog):
    import jsonschema

    from rasa.core.actions.action import extract_slot_value_from_predefined_mapping
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.slot_mappings import SlotMappingType
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.utils.schemas.events import ENTITIES_SCHEMA

    catalog.add_catalog_photos()
    component = trained(model_storage, catalog.config())
    message = photo_message((245, 215, 50), text="is this in stock?", intent="product_availability")
    text_entity = {"entity": "product", "value": "this", "start": 3, "end": 7, "extractor": "DIETClassifier"}
    message.set(ENTITIES, [text_entity], add_to_output=True)
    component.process([message])
    parse_data = message.as_dict(only_output_properties=True)
    jsonschema.validate(parse_data[ENTITIES], ENTITIES_SCHEMA)
    json.dumps(parse_data)  # the tracker store must be able to serialise it

    event = UserUttered(
        "is this in stock?", intent=parse_data[INTENT], entities=parse_data[ENTITIES], parse_data=parse_data
    )
    tracker = DialogueStateTracker.from_events("u", [event])
    values = extract_slot_value_from_predefined_mapping(
        SlotMappingType.FROM_ENTITY, {"type": "from_entity", "entity": "product"}, tracker
    )
    assert values[-1] == catalog.repository.get_product("FRU-BANANA").name  # the photo's product, last, wins


def test_messages_without_photo_or_similar_intent_are_left_alone(model_storage, catalog):
    component = trained(model_storage, catalog.config())
    message = text_message("where is my order 10023", intent="track_order")
    before = message.as_dict()
    component.process([message])
    assert message.as_dict() == before


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"k": 0}, "k"),
        ({"temperature": 0}, "temperature"),
        ({"min_confidence": 1.5}, "min_confidence"),
        ({"projection": "pca"}, "projection"),
        ({"candidates": 11}, "candidates"),
        ({"text_weight": 0, "image_weight": 0}, "text_weight"),
        ({"similar_intent": ""}, "similar_intent"),
        ({"image_root": 5}, "image_root"),
        ({"catalog_snapshot": ""}, "catalog_snapshot"),
        ({"database_url": "sqlite://"}, "database_url"),  # replaced by the catalog snapshot
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_config_names_the_key(overrides, key, model_storage):
    with pytest.raises(InvalidConfigException, match=key):
        ProductRecognizer.create(overrides, model_storage, Resource(NODE), context())


def test_an_index_built_with_other_image_weights_is_not_used_for_knn(model_storage, catalog, caplog):
    catalog.add_catalog_photos()
    config = catalog.config()
    trained(model_storage, config)
    index_path = None
    with model_storage.read_from(Resource(NODE)) as directory:
        index_path = Path(directory) / "index.json"
        meta = json.loads(index_path.read_text())
        meta["encoder"]["weights_sha256"] = "0" * 64
        index_path.write_text(json.dumps(meta))
    component = loaded(model_storage, config)
    assert "until the model is retrained" in caplog.text
    message = photo_message((245, 215, 50), labels=[{"label": "banana", "confidence": 0.9}])
    component.process([message])
    assert message.get(PRODUCT_RECOGNITION)["method"] == "imagenet_label"


def test_an_index_without_centroid_file_still_loads(model_storage, catalog):
    catalog.add_catalog_photos()
    config = catalog.config()
    original = trained(model_storage, config)
    with model_storage.read_from(Resource(NODE)) as directory:
        (Path(directory) / "image_centroids.npy").unlink()
    restored = loaded(model_storage, config)
    np.testing.assert_allclose(restored.index.image_centroids, original.index.image_centroids, atol=1e-6)




# ---------------------------------------------------------------------------------------------- names, limits
def test_the_component_name_is_the_extractor_actions_check() -> None:
    from assistant.keys import PRODUCT_RECOGNIZER_EXTRACTOR
    from components.products import NAME

    assert ProductRecognizer.__name__ == NAME == PRODUCT_RECOGNIZER_EXTRACTOR
    entity = recognizer_module._entity({"name": "Banana", "sku": "FRU-BANANA", "confidence": 0.9,
                                        "method": "knn", "candidates": []})
    assert entity["extractor"] == PRODUCT_RECOGNIZER_EXTRACTOR and list(entity)[-1] == "extractor"


def test_the_photo_size_limit_is_the_customer_photo_limit_without_catalog_tooling() -> None:
    import subprocess
    import sys

    from media import AttachmentLimits

    assert ProductRecognizer.get_default_config()["max_image_bytes"] == AttachmentLimits().image_max_bytes
    code = "import sys, components.product_recognizer; print('shop.photo_import' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[3], check=True)
    assert result.stdout.strip() == "False", "the graph does not import the catalog photo import"
