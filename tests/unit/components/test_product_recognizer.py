"""Unit tests for `components.product_recognizer.ProductRecognizer` with synthetic encoders.

The catalog is a real seeded SQLite database in a temporary directory, with generated solid-colour photos in a
temporary image root. The image encoder is replaced by a fixed random linear map of a photo's mean colour (so
photos of similar colours get similar 1280-wide embeddings) and the text encoder by a hashed bag of words
(384 wide), so these tests need neither EfficientNet nor MiniLM; one test runs the real image encoder on the
catalog photo files to check that unusable files are skipped.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest
from PIL import Image

import components.product_recognizer as recognizer_module
from components.product_recognizer import (
    PRODUCT_RECOGNITION,
    SIMILAR_PRODUCTS,
    SIMILAR_TO,
    CatalogIndex,
    ProductRecognizer,
    knn_scores,
    label_votes,
    load_label_mapping,
    product_groups,
    read_catalog,
    resolve_catalog_image,
    resolve_label_targets,
    resolve_mapping_path,
    softmax_ranking,
)
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

NODE = "product_recognizer"
IMAGE_DIMS = 1280
TEXT_DIMS = 384

#: Catalog products given photos in these tests, with the colour of their photos.
PHOTO_COLOURS = {
    "FRU-BANANA": (250, 220, 40),
    "FRU-APL-GRANNY": (60, 200, 60),
    "VEG-PEPPER-RED": (220, 30, 30),
    "PLB-OATLY-OATMILK": (40, 60, 220),
}


# ---------------------------------------------------------------------------------------------- encoders
_COLOUR_MAP = np.random.default_rng(7).normal(size=(3, IMAGE_DIMS)).astype(np.float32)


def colour_embedding(rgb: Sequence[float]) -> np.ndarray:
    """The synthetic 1280-wide embedding of a photo whose mean colour is `rgb` (0..255)."""
    centred = np.asarray(rgb, dtype=np.float32) / 255.0 - 0.5
    return (centred @ _COLOUR_MAP).astype(np.float32)


def fake_encode_catalog_images(paths, encoder_config, max_bytes, batch_size) -> Tuple[np.ndarray, List[bool]]:
    """Stands in for `encode_catalog_images`: mean colour → fixed random map to 1280; unreadable: skipped."""
    rows, ok = [], []
    for path in paths:
        try:
            with Image.open(path) as image:
                rows.append(colour_embedding(np.asarray(image.convert("RGB"), np.float32).mean(axis=(0, 1))))
            ok.append(True)
        except OSError:
            ok.append(False)
    return (np.stack(rows) if rows else np.zeros((0, IMAGE_DIMS), np.float32)), ok


def _word_vector(word: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
    return np.random.default_rng(seed).normal(size=TEXT_DIMS).astype(np.float32)


def fake_encode_texts(texts, model_path=None, batch_size=32) -> np.ndarray:
    """Stands in for `encode_texts`: the normalised sum of one fixed random vector per lower-case word."""
    rows = []
    for text in texts:
        words = re.findall(r"[a-z]+", text.lower()) or ["empty"]
        vector = np.sum([_word_vector(word) for word in words], axis=0)
        rows.append(vector / np.linalg.norm(vector))
    return np.asarray(rows, dtype=np.float32)


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def synthetic_encoders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test of this module embeds with the synthetic encoders unless it puts the real ones back."""
    monkeypatch.setattr(recognizer_module, "encode_catalog_images", fake_encode_catalog_images)
    monkeypatch.setattr(recognizer_module, "encode_texts", fake_encode_texts)


@pytest.fixture
def model_storage(tmp_path: Path):
    """A Rasa `LocalModelStorage` whose directory exists, as it does during `rasa train`."""
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    path = tmp_path / "model-storage"
    path.mkdir()
    return LocalModelStorage(path)


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A seeded SQLite shop database and an empty catalog image root; returns (database URL, root, repo)."""
    from shop.db import make_engine, make_session_factory
    from shop.repository import ShopRepository
    from shop.seed import create_and_seed

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = make_engine(url)
    create_and_seed(engine)
    root = tmp_path / "catalog-images"
    root.mkdir()
    monkeypatch.delenv("CATALOG_IMAGE_DIR", raising=False)
    yield url, root, ShopRepository(make_session_factory(engine))
    engine.dispose()


def add_photo(repository, root: Path, sku: str, rgb: Tuple[int, int, int], name: Optional[str] = None) -> str:
    """Writes a solid-colour PNG under `root` and records it for `sku`; returns its relative path."""
    relative = name or f"{sku.lower()}/{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x}.png"
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), rgb).save(path)
    repository.add_product_image(sku, relative, hashlib.sha256(path.read_bytes()).hexdigest())
    return relative


def add_catalog_photos(repository, root: Path, per_product: int = 1) -> None:
    """`per_product` photos for each product of PHOTO_COLOURS, in slightly different shades."""
    for sku, (r, g, b) in PHOTO_COLOURS.items():
        for shade in range(per_product):
            colour = (max(r - 6 * shade, 0), max(g - 6 * shade, 0), min(b + 5 * shade, 255))
            add_photo(repository, root, sku, colour)


def make_config(url: str, root: Path, **overrides) -> Dict:
    defaults = ProductRecognizer.get_default_config()
    return {**defaults, "database_url": url, "image_root": str(root), **overrides}


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
    url, root, repository = catalog
    add_catalog_photos(repository, root)
    component = trained(model_storage, make_config(url, root))
    message = photo_message((245, 215, 50))  # a banana-coloured photo
    component.process([message])

    recognition = message.get(PRODUCT_RECOGNITION)
    assert recognition["status"] == "recognised"
    assert recognition["method"] == "knn"
    assert recognition["sku"] == "FRU-BANANA"
    [entity] = product_entities(message)
    assert entity["entity"] == "product"
    assert entity["value"] == repository.get_product("FRU-BANANA").name
    assert entity["sku"] == "FRU-BANANA"
    assert 0.66 <= entity["confidence"] <= 1.0
    assert entity["method"] == "knn"
    assert [c["sku"] for c in entity["candidates"]][0] == "FRU-BANANA"
    assert len(entity["candidates"]) <= 3


def test_an_unclear_photo_offers_candidates_and_no_entity(model_storage, catalog):
    url, root, repository = catalog
    add_catalog_photos(repository, root)
    component = trained(model_storage, make_config(url, root))
    banana, granny = (colour_embedding(PHOTO_COLOURS[sku]) for sku in ("FRU-BANANA", "FRU-APL-GRANNY"))
    message = photo_message(embedding=banana / np.linalg.norm(banana) + granny / np.linalg.norm(granny))
    component.process([message])

    recognition = message.get(PRODUCT_RECOGNITION)
    assert recognition["status"] == "uncertain"
    assert recognition["confidence"] < 0.66
    assert {c["sku"] for c in recognition["candidates"][:2]} == {"FRU-BANANA", "FRU-APL-GRANNY"}
    assert 2 <= len(recognition["candidates"]) <= 3
    assert not product_entities(message)


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


def test_lda_projection_is_learnt_from_several_photos_per_product(model_storage, catalog):
    url, root, repository = catalog
    add_catalog_photos(repository, root, per_product=3)
    component = trained(model_storage, make_config(url, root))
    assert component.index.projection is not None
    assert component.index.image_embeddings.shape == (12, len(PHOTO_COLOURS) - 1)
    # "Looks similar" compares plain embeddings: one unit centroid per photographed product, zeros elsewhere.
    centroids = component.index.image_centroids
    assert centroids.shape == (len(component.index.products), IMAGE_DIMS)
    assert np.count_nonzero(np.linalg.norm(centroids, axis=1) > 0.99) == len(PHOTO_COLOURS)
    message = photo_message((55, 195, 65))
    component.process([message])
    assert message.get(PRODUCT_RECOGNITION)["sku"] == "FRU-APL-GRANNY"

    single = trained(model_storage, make_config(url, root, projection="none"))
    assert single.index.projection is None
    assert single.index.image_embeddings.shape == (12, IMAGE_DIMS)


# ---------------------------------------------------------------------------------------------- persistence
def test_persisted_index_gives_identical_results(model_storage, catalog):
    url, root, repository = catalog
    add_catalog_photos(repository, root, per_product=3)
    config = make_config(url, root)
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
    url, root, repository = catalog
    add_catalog_photos(repository, root, per_product=3)
    trained(model_storage, make_config(url, root))
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
    url, root, _ = catalog
    config = make_config(url, root)
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
    url, root, _ = catalog
    component = trained(model_storage, make_config(url, root))
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
    url, root, repository = catalog
    add_catalog_photos(repository, root)  # no pineapple photo
    component = trained(model_storage, make_config(url, root, min_similarity=0.95))
    message = photo_message((128, 128, 128), labels=[{"label": "pineapple", "confidence": 0.8}])
    component.process([message])
    recognition = message.get(PRODUCT_RECOGNITION)
    assert (recognition["method"], recognition["sku"]) == ("imagenet_label", "FRU-PINEAPPLE")


def test_label_votes_share_a_label_between_its_targets():
    from components.product_recognizer import CatalogProduct

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
    products, _, _ = read_catalog("sqlite:////nonexistent/dir/shop.db")  # seed catalog
    targets = resolve_label_targets(mapping, products)
    assert set(targets) == set(mapping), "every label maps to at least one seed product"
    for label in ("banana", "Granny Smith", "bell pepper", "pineapple"):
        assert label in mapping


def test_a_label_mapping_with_an_unknown_label_is_refused(tmp_path: Path, model_storage):
    bad = tmp_path / "map.yml"
    bad.write_text("bananna: [banana]\n")
    with pytest.raises(InvalidConfigException, match="bananna"):
        ProductRecognizer.create({"label_mapping": str(bad)}, model_storage, Resource(NODE), context())


# ------------------------------------------------------------------------------------------ catalog source
def test_a_missing_database_gives_the_seed_catalog_without_photos(model_storage, tmp_path: Path):
    component = trained(model_storage, make_config(f"sqlite:///{tmp_path / 'absent.db'}", tmp_path))
    assert not (tmp_path / "absent.db").exists(), "the database file must not be created"
    assert component.index.source == "seed"
    assert len(component.index.products) > 50
    assert not component.index.has_images
    assert component.index.has_text


def test_photos_outside_the_image_root_or_missing_are_skipped(model_storage, catalog, tmp_path: Path, caplog):
    url, root, repository = catalog
    add_catalog_photos(repository, root)
    outside = tmp_path / "outside.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(outside)
    (root / "link.png").symlink_to(outside)
    repository.add_product_image("FRU-KIWI", "link.png", "0" * 64)
    repository.add_product_image("FRU-LIME", "gone/lime.png", "1" * 64)
    component = trained(model_storage, make_config(url, root))
    assert {image["sku"] for image in component.index.images} == set(PHOTO_COLOURS)
    assert "gone/lime.png" in caplog.text

    assert resolve_catalog_image(root, "../outside.png") is None
    assert resolve_catalog_image(root, str(outside)) is None
    assert resolve_catalog_image(root, "link.png") is None
    assert resolve_catalog_image(root, "c:/windows/x.png") is None
    assert resolve_catalog_image(root, "a\x00b") is None
    assert resolve_catalog_image(root, "") is None
    assert resolve_catalog_image(root, "fru-banana/fadc28.png") == (root / "fru-banana/fadc28.png").resolve()


def test_the_real_encoder_embeds_catalog_photos_and_skips_broken_files(tmp_path: Path, monkeypatch):
    from components.product_recognizer import encode_catalog_images

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


# ---------------------------------------------------------------------------------------------- fingerprint
def test_the_fingerprint_follows_the_catalog(catalog):
    url, root, repository = catalog
    config = make_config(url, root)
    first = ProductRecognizer.fingerprint_addon(config)
    assert ProductRecognizer.fingerprint_addon(config) == first

    from sqlalchemy import update

    from shop.db import unit_of_work
    from shop.models import Product

    with unit_of_work(repository._session_factory) as session:  # stock and price do not matter
        session.execute(update(Product).where(Product.sku == "FRU-BANANA").values(stock=1, price=9))
    assert ProductRecognizer.fingerprint_addon(config) == first

    relative = add_photo(repository, root, "FRU-BANANA", (250, 220, 40))
    with_photo = ProductRecognizer.fingerprint_addon(config)
    assert with_photo != first

    Image.new("RGB", (32, 24), (0, 0, 0)).save(root / relative)  # same path, other content
    assert ProductRecognizer.fingerprint_addon(config) not in (first, with_photo)

    with unit_of_work(repository._session_factory) as session:
        session.execute(update(Product).where(Product.sku == "FRU-KIWI").values(description="Now golden."))
    assert ProductRecognizer.fingerprint_addon(config) not in (first, with_photo)


# ---------------------------------------------------------------------------------------- similar products
def test_similar_products_for_a_named_product(model_storage, catalog):
    url, root, _ = catalog
    component = trained(model_storage, make_config(url, root))
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
    url, root, _ = catalog
    component = trained(model_storage, make_config(url, root))
    message = text_message("anything similar to dragon fruit?")
    component.process([message])
    assert message.get(SIMILAR_TO) == {"sku": None, "name": None, "query": "dragon fruit", "source": "text"}
    assert message.get(SIMILAR_PRODUCTS)


def test_similar_products_from_a_button_payload(model_storage, catalog):
    url, root, _ = catalog
    component = trained(model_storage, make_config(url, root))
    message = text_message('/similar_products{"product": "Banana"}', intent="nlu_fallback")
    component.process([message])
    assert message.get(SIMILAR_TO)["sku"] == "FRU-BANANA"
    assert message.get(SIMILAR_PRODUCTS)


def test_similar_products_for_a_photo(model_storage, catalog):
    url, root, repository = catalog
    add_catalog_photos(repository, root)
    component = trained(model_storage, make_config(url, root))
    message = photo_message((215, 35, 35), text="show me something like this", intent="similar_products")
    component.process([message])
    assert message.get(SIMILAR_TO)["sku"] == "VEG-PEPPER-RED"
    assert message.get(SIMILAR_TO)["source"] == "photo"
    assert "VEG-PEPPER-RED" not in [item["sku"] for item in message.get(SIMILAR_PRODUCTS)]


def test_no_similar_products_without_a_product(model_storage, catalog):
    url, root, _ = catalog
    component = trained(model_storage, make_config(url, root))
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

    url, root, repository = catalog
    add_catalog_photos(repository, root)
    component = trained(model_storage, make_config(url, root))
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
    assert values[-1] == repository.get_product("FRU-BANANA").name  # the photo's product, last, wins


def test_messages_without_photo_or_similar_intent_are_left_alone(model_storage, catalog):
    url, root, _ = catalog
    component = trained(model_storage, make_config(url, root))
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
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_config_names_the_key(overrides, key, model_storage):
    with pytest.raises(InvalidConfigException, match=key):
        ProductRecognizer.create(overrides, model_storage, Resource(NODE), context())


def test_an_index_built_with_other_image_weights_is_not_used_for_knn(model_storage, catalog, caplog):
    url, root, repository = catalog
    add_catalog_photos(repository, root)
    config = make_config(url, root)
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
    url, root, repository = catalog
    add_catalog_photos(repository, root)
    config = make_config(url, root)
    original = trained(model_storage, config)
    with model_storage.read_from(Resource(NODE)) as directory:
        (Path(directory) / "image_centroids.npy").unlink()
    restored = loaded(model_storage, config)
    np.testing.assert_allclose(restored.index.image_centroids, original.index.image_centroids, atol=1e-6)


def test_catalog_index_round_trip_keeps_an_empty_index(tmp_path: Path):
    CatalogIndex.empty().save(tmp_path)
    restored = CatalogIndex.load(tmp_path)
    assert restored.products == [] and not restored.has_images and not restored.has_text
