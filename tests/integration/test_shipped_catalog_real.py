"""The demo catalog's shipped photos (data/catalog/photos/) with the real packaged EfficientNet-Lite0 weights.

As on a fresh clone after `make db` and `make train`: a seeded SQLite database gets the shipped photos attached
(`shop.photo_import.attach`, as `shop.shipped_photos` does), the catalog snapshot is written from it, and the
ProductRecognizer, configured as in config.yml, builds its index from that snapshot. One shipped kiwi train
photo is held out of the catalog; that photo, and a mirrored crop of it, arrive as customer photos through the
upload store and the ImageFeaturizer, and must be named as the kiwi. The val kiwi photos of the Grocery Store
Dataset (../shared/data/grocery, skipped when absent) are checked the same way. Embedding the ~900 shipped
photos takes about half a minute on two cores.
"""
from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Dict

import pytest
from PIL import Image, ImageOps

from assistant.keys import PRODUCT_RECOGNITION, RECOGNISED
from assistant.paths import PROJECT_ROOT
from assistant.training import pipeline
from components.image_featurizer import ImageFeaturizer
from components.product_recognizer import ProductRecognizer
from media import AttachmentStore
from shop.catalog_snapshot import refresh_snapshot
from shop.photo_import import attach
from shop.shipped_photos import shipped_photos
from tests.unit.components.products.synthetic_catalog import seeded_database

pytestmark = pytest.mark.slow

KIWI = "FRU-KIWI"


def configured(component: str) -> Dict:
    """The keys config.yml sets for the pipeline component whose name ends with `component`."""
    for item in pipeline(PROJECT_ROOT / "config.yml"):
        if str(item.get("name", "")).endswith(component):
            return {key: value for key, value in item.items() if key != "name"}
    return {}


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The ImageFeaturizer and the ProductRecognizer trained on the shipped catalog without one kiwi photo."""
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.training_data.training_data import TrainingData

    tmp = tmp_path_factory.mktemp("shipped-catalog")
    photos, problems = shipped_photos()
    assert photos and not problems
    kiwis = sorted(p.path for p in photos if p.sku == KIWI and "iconic" not in p.path.name.lower())
    held_out = kiwis[len(kiwis) // 2]
    root, snapshot = tmp / "catalog-images", tmp / "catalog" / "snapshot.json"
    with seeded_database(tmp) as (url, repository):
        counts = attach([p for p in photos if p.path != held_out], repository, root)
        assert counts["attached"] == len(photos) - 1
        refresh_snapshot(snapshot, url, root)
    (tmp / "model").mkdir()
    storage = LocalModelStorage(tmp / "model")
    context = ExecutionContext(GraphSchema({}), "shipped-catalog")
    config = {**configured("ProductRecognizer"), "catalog_snapshot": str(snapshot), "image_root": str(root)}
    recogniser = ProductRecognizer.create(config, storage, Resource("product_recognizer"), context)
    recogniser.train(TrainingData())
    assert len(recogniser.index.images) == len(photos) - 1 and recogniser.index.projection is not None
    store = AttachmentStore(tmp / "uploads")
    featurizer_config = {**ImageFeaturizer.get_default_config(), **configured("ImageFeaturizer"),
                         "attachment_dir": str(store.root)}
    featurizer = ImageFeaturizer.create(featurizer_config, storage, Resource("image_featurizer"), context)
    return SimpleNamespace(recogniser=recogniser, featurizer=featurizer, store=store, held_out=held_out)


def recognition(shipped, data: bytes) -> Dict:
    """The `product_recognition` of a customer photo: upload store → ImageFeaturizer → ProductRecognizer."""
    from rasa.shared.nlu.constants import TEXT
    from rasa.shared.nlu.training_data.message import Message

    ref = shipped.store.save(data, name="photo.jpg")
    message = Message(data={TEXT: "", "metadata": {"attachments": [ref.to_metadata()]}})
    [message] = shipped.recogniser.process(shipped.featurizer.process([message]))
    return message.get(PRODUCT_RECOGNITION)


def mirrored_crop(data: bytes) -> bytes:
    """The photo mirrored left-right, with its central 85 % cropped out (another shot of the same product)."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        dx, dy = int(width * 0.075), int(height * 0.075)
        view = ImageOps.mirror(image.convert("RGB")).crop((dx, dy, width - dx, height - dy))
    buffer = io.BytesIO()
    view.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_a_held_out_shipped_kiwi_photo_is_named_as_the_kiwi(shipped) -> None:
    result = recognition(shipped, shipped.held_out.read_bytes())
    assert (result["status"], result["sku"]) == (RECOGNISED, KIWI), result


def test_a_mirrored_crop_of_it_is_named_as_the_kiwi_too(shipped) -> None:
    result = recognition(shipped, mirrored_crop(shipped.held_out.read_bytes()))
    assert (result["status"], result["sku"]) == (RECOGNISED, KIWI), result


def test_the_val_kiwi_photos_are_mostly_named_as_the_kiwi(shipped, shared_dir: Path) -> None:
    dataset = shared_dir / "data" / "grocery"
    paths = sorted((dataset / "val").glob("Fruit/Kiwi/*.jpg"))
    if not paths:
        pytest.skip(f"no val kiwi photos under {dataset}")
    results = [recognition(shipped, path.read_bytes()) for path in paths]
    top = [result["sku"] or (result["candidates"] or [{}])[0].get("sku") for result in results]
    named = [result["sku"] for result in results if result["status"] == RECOGNISED]
    assert sum(sku == KIWI for sku in top) >= 0.8 * len(paths), top
    assert named and all(sku == KIWI for sku in named), named
