"""Unit tests for `components.image_featurizer.ImageFeaturizer` on a tiny EfficientNet-Lite0.

The tiny model is the real architecture with random weights, built for 64×64 inputs
(tests/unit/encoders/tiny_efficientnet.py, the session fixture `tiny_efficientnet_weights`). Every image is
generated with Pillow (tests/unit/media/photos.py); uploads go through a real `AttachmentStore` in a temporary
directory. Bad content that the store itself refuses at upload time
(truncated, empty, not an image, pixel bomb) is planted in the store's layout directly, as a store filled by
an older version or a broken disk would hold it.

The encoder's own functions (loading, pre-processing, the forward pass) are tested in
tests/unit/encoders/test_image.py, the photo decoder's in tests/unit/media/test_images.py; here they are
checked through the component.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import resource
import struct
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np
import pytest
from PIL import Image

import encoders.image as image_encoder
from assistant.keys import ATTACHMENT_PROBLEMS, IMAGE, IMAGE_EMBEDDINGS, IMAGE_LABELS
from components.image_featurizer import ImageFeaturizer
from encoders.image import EMBEDDING_DIMS
from media import AttachmentError, AttachmentStore
from media.images import decode_image
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.resource import Resource
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from tests.unit.components.featurizer_contract import FeaturizerContract
from tests.unit.encoders.tiny_efficientnet import TINY_RESIZE, TINY_SIZE, save_as_safetensors
from tests.unit.media.photos import (
    NON_IMAGES,
    animation_and_first_frame,
    encode_image,
    forbid_pixel_decoding,
    rgba_cutout,
    rotated_with_exif,
    sample_image,
    sixteen_bit_ramp,
    truncated_jpeg,
)

NODE = "image_featurizer"
MAX_PIXELS = 40_000_000


# ---------------------------------------------------------------------------------------------- images
def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(width: int = 30000, height: int = 30000, rows: int = 64) -> bytes:
    """A small PNG whose header declares `width`×`height` 8-bit gray pixels; IDAT holds `rows` zero rows."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(compressor.compress(row) for _ in range(rows)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunks = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def _restore_pillow_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Creating the component sets `Image.MAX_IMAGE_PIXELS`; put Pillow's value back after every test."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def store(store_dir: Path) -> AttachmentStore:
    return AttachmentStore(store_dir)


@pytest.fixture(scope="module")
def upload(store: AttachmentStore) -> Callable[..., Dict[str, Any]]:
    """`upload(data, name)` → the metadata entry of an image stored the normal way (the store checks it)."""

    def save(data: bytes, name: str = "photo.jpg") -> Dict[str, Any]:
        return store.save(data, name=name).to_metadata()

    return save


@pytest.fixture(scope="module")
def plant(store: AttachmentStore) -> Callable[..., Dict[str, Any]]:
    """`plant(data)` → a reference to `data` written into the store's layout without the upload checks."""

    def write(data: bytes, name: str = "photo.jpg", kind: str = "image") -> Dict[str, Any]:
        attachment_id = hashlib.sha256(data).hexdigest()
        shard = store.root / attachment_id[:2]
        shard.mkdir(exist_ok=True)
        (shard / attachment_id).write_bytes(data)
        sidecar = {
            "id": attachment_id, "type": kind, "mime_type": "image/jpeg", "size": len(data), "name": name
        }
        (shard / f"{attachment_id}.json").write_text(json.dumps(sidecar), encoding="utf-8")
        return {"type": kind, "id": attachment_id, "mime_type": "image/jpeg", "size": len(data), "name": name}

    return write


@pytest.fixture(scope="module")
def tiny_config(tiny_efficientnet_weights: Path, store_dir: Path) -> Dict[str, Any]:
    return {
        "weights_path": str(tiny_efficientnet_weights),
        "image_size": TINY_SIZE,
        "resize_size": TINY_RESIZE,
        "attachment_dir": str(store_dir),
    }


@pytest.fixture
def make_featurizer(
    tiny_config: Dict[str, Any], execution_context: ExecutionContext, model_storage
) -> Callable[..., ImageFeaturizer]:
    """`make_featurizer(**overrides)` → a featurizer on the tiny model, named `image_featurizer`."""
    context = dataclasses.replace(execution_context, node_name=NODE)

    def make(**overrides: Any) -> ImageFeaturizer:
        config = {**ImageFeaturizer.get_default_config(), **tiny_config, **overrides}
        return ImageFeaturizer.create(config, model_storage, Resource(NODE), context)

    return make


@pytest.fixture
def featurizer(make_featurizer: Callable[..., ImageFeaturizer]) -> ImageFeaturizer:
    return make_featurizer()


def with_attachments(*entries: Dict[str, Any], text: str = "", **data: Any) -> Message:
    return Message(data={TEXT: text, "metadata": {"attachments": list(entries)}, **data})


def sentence_feature(message: Message) -> Optional[np.ndarray]:
    found = [f for f in message.features if f.attribute == IMAGE and f.origin == NODE]
    assert len(found) <= 1
    if not found:
        return None
    assert found[0].type == FEATURE_TYPE_SENTENCE
    return found[0].features


def run(featurizer: ImageFeaturizer, *entries: Dict[str, Any]) -> Message:
    [message] = featurizer.process([with_attachments(*entries)])
    return message


def assert_rejected(message: Message, code: str) -> None:
    assert sentence_feature(message) is None
    assert message.get(IMAGE_LABELS) is None
    problems = message.get(ATTACHMENT_PROBLEMS)
    assert [p["code"] for p in problems] == [code]
    assert problems[0]["type"] == "image"
    assert problems[0]["message"]
    assert ATTACHMENT_PROBLEMS in message.output_properties


# ---------------------------------------------------------------------------------------------- contract
class TestImageFeaturizerContract(FeaturizerContract):
    @pytest.fixture
    def featurizer_class(self):
        return ImageFeaturizer

    @pytest.fixture
    def featurizer_config(self, tiny_config):
        return dict(tiny_config)

    @pytest.fixture
    def node_name(self):
        return NODE

    @pytest.fixture
    def attribute(self):
        return IMAGE

    @pytest.fixture
    def expected_dims(self):
        return EMBEDDING_DIMS

    @pytest.fixture
    def feature_types(self):
        return (FEATURE_TYPE_SENTENCE,)

    @pytest.fixture
    def message_with_input(self, upload):
        return with_attachments(upload(encode_image(sample_image(1), "JPEG", quality=90)))

    @pytest.fixture
    def other_messages_with_input(self, upload):
        return [
            with_attachments(
                upload(encode_image(sample_image(2), "PNG"), "a.png"),
                upload(encode_image(sample_image(3), "WEBP"), "b.webp"),
            ),
            with_attachments(
                upload(encode_image(sample_image(4, (50, 120)), "PNG"), "tall.png"), text="is this fresh?"
            ),
        ]

    @pytest.fixture
    def message_without_input(self):
        return Message(data={TEXT: "hello", "metadata": {"channel": "web"}})


# ---------------------------------------------------------------------------------------------- outputs
def test_labels_embeddings_and_mean_over_images(featurizer: ImageFeaturizer, upload) -> None:
    first = upload(encode_image(sample_image(10), "PNG"), "first.png")
    second = upload(encode_image(sample_image(11), "PNG"), "second.png")
    message = run(featurizer, first, second)

    embeddings = message.get(IMAGE_EMBEDDINGS)
    assert embeddings.shape == (2, EMBEDDING_DIMS) and embeddings.dtype == np.float32
    np.testing.assert_allclose(sentence_feature(message), embeddings.mean(axis=0, keepdims=True), rtol=1e-6)
    assert not np.allclose(embeddings[0], embeddings[1])

    labels = message.get(IMAGE_LABELS)
    assert IMAGE_LABELS in message.output_properties
    assert IMAGE_EMBEDDINGS not in message.output_properties
    assert len(labels) == 2
    for per_image in labels:
        assert len(per_image) == 5
        assert all(set(entry) == {"label", "confidence"} for entry in per_image)
        confidences = [entry["confidence"] for entry in per_image]
        assert confidences == sorted(confidences, reverse=True)
        assert all(0.0 <= c <= 1.0 for c in confidences) and sum(confidences) <= 1.0 + 1e-3
        assert all(isinstance(entry["label"], str) and entry["label"] for entry in per_image)
    assert message.get(ATTACHMENT_PROBLEMS) is None

    [alone] = featurizer.process([with_attachments(first)])
    np.testing.assert_allclose(alone.get(IMAGE_EMBEDDINGS)[0], embeddings[0], atol=1e-5, rtol=1e-4)


def test_same_image_gives_identical_features(featurizer: ImageFeaturizer, upload) -> None:
    entry = upload(encode_image(sample_image(12), "JPEG", quality=85))
    first, second = run(featurizer, entry), run(featurizer, entry)
    np.testing.assert_array_equal(sentence_feature(first), sentence_feature(second))
    assert first.get(IMAGE_LABELS) == second.get(IMAGE_LABELS)


def test_top_k_and_batch_size(make_featurizer, upload) -> None:
    entries = [upload(encode_image(sample_image(20 + i), "PNG"), f"{i}.png") for i in range(3)]
    batched = run(make_featurizer(top_k=2, batch_size=8), *entries)
    single = run(make_featurizer(top_k=2, batch_size=1), *entries)
    assert [len(labels) for labels in batched.get(IMAGE_LABELS)] == [2, 2, 2]
    np.testing.assert_allclose(sentence_feature(batched), sentence_feature(single), atol=1e-5, rtol=1e-4)


def test_text_features_and_existing_problems_are_kept(featurizer: ImageFeaturizer, upload, plant) -> None:
    earlier = {"type": "audio", "code": "no_speech", "message": "I couldn't hear anything."}
    message = with_attachments(
        upload(encode_image(sample_image(30), "PNG")), plant(b"not a photo at all"), text="what is this?"
    )
    message.set(ATTACHMENT_PROBLEMS, [earlier], add_to_output=True)
    featurizer.process([message])

    assert message.get(TEXT) == "what is this?"
    assert not [f for f in message.features if f.attribute == TEXT]
    assert sentence_feature(message).shape == (1, EMBEDDING_DIMS)
    assert len(message.get(IMAGE_LABELS)) == 1
    problems = message.get(ATTACHMENT_PROBLEMS)
    assert problems[0] == earlier
    assert [(p["type"], p["code"]) for p in problems[1:]] == [("image", "unsupported_type")]


@pytest.mark.parametrize(
    "metadata",
    [None, "photo.jpg", ["attachments"], {"attachments": None}, {"attachments": []}, {"other": 1}, {}],
    ids=["none", "string", "list", "null-list", "empty-list", "other-keys", "empty-dict"],
)
def test_no_image_no_output(featurizer: ImageFeaturizer, metadata: Any) -> None:
    [message] = featurizer.process([Message(data={TEXT: "hi", "metadata": metadata})])
    assert sentence_feature(message) is None
    for key in (IMAGE_LABELS, IMAGE_EMBEDDINGS, ATTACHMENT_PROBLEMS):
        assert message.get(key) is None


def test_audio_attachments_are_left_to_the_speech_recognizer(featurizer: ImageFeaturizer, plant) -> None:
    message = run(featurizer, plant(b"OggS fake voice note", name="voice.ogg", kind="audio"))
    assert sentence_feature(message) is None
    assert message.get(ATTACHMENT_PROBLEMS) is None


def test_malformed_metadata_becomes_a_problem_not_a_crash(featurizer: ImageFeaturizer) -> None:
    message = run(featurizer, {"type": "image", "id": "../../etc/passwd"})
    assert sentence_feature(message) is None
    assert [p["code"] for p in message.get(ATTACHMENT_PROBLEMS)] == ["invalid_reference"]


def test_missing_upload_is_not_found(featurizer: ImageFeaturizer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    message = run(featurizer, {"type": "image", "id": "ab" * 32})
    assert_rejected(message, "not_found")
    assert "photo" in message.get(ATTACHMENT_PROBLEMS)[0]["message"]
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_urls_outside_the_allow_list_are_refused_without_fetching(
    featurizer: ImageFeaturizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AttachmentStore, "fetch_url", lambda *a, **k: pytest.fail("fetched"))
    urls = ("https://127.0.0.1/photo.jpg", "https://169.254.169.254/latest", "https://evil.example.net/a.jpg")
    for url in urls:
        assert_rejected(run(featurizer, {"type": "image", "url": url}), "forbidden_url")


def test_unusable_store_becomes_a_problem_not_a_crash(make_featurizer, tmp_path: Path) -> None:
    not_a_directory = tmp_path / "uploads"
    not_a_directory.write_text("a file where the store should be")
    featurizer = make_featurizer(attachment_dir=str(not_a_directory))
    assert_rejected(run(featurizer, {"type": "image", "id": "cd" * 32}), "not_found")


def test_file_over_max_bytes_is_refused_before_reading(make_featurizer, upload, monkeypatch) -> None:
    featurizer = make_featurizer(max_bytes=500)
    entry = upload(encode_image(sample_image(40), "PNG"))
    assert entry["size"] > 500
    monkeypatch.setattr(AttachmentStore, "read", lambda *a, **k: pytest.fail("read despite the size limit"))
    assert_rejected(run(featurizer, entry), "too_large")


# ---------------------------------------------------------------------------------------------- cases/images
# What the decoder makes of each kind of photo is checked in tests/unit/media/test_images.py (same test
# names); here each kind goes through the component.
def test_exif_rotated_equals_upright(featurizer: ImageFeaturizer, upload) -> None:
    upright = sample_image(50, (96, 64))
    a = run(featurizer, upload(encode_image(upright, "PNG"), "up.png"))
    b = run(featurizer, upload(rotated_with_exif(upright, "PNG"), "rot.png"))
    np.testing.assert_allclose(sentence_feature(a), sentence_feature(b), atol=1e-6)


#: The photos of tests/unit/media/test_images.py's colour-mode tests (test_cmyk_jpeg, ...), by test name.
PHOTO_KINDS: Dict[str, Callable[[], bytes]] = {
    "cmyk_jpeg": lambda: encode_image(sample_image(51).convert("CMYK"), "JPEG", quality=95),
    "rgba_is_composited_on_white": lambda: encode_image(Image.fromarray(rgba_cutout()), "PNG"),
    "grayscale": lambda: encode_image(sample_image(52).convert("L"), "PNG"),
    "palette-opaque": lambda: encode_image(
        sample_image(53).convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG"
    ),
    "palette-with-transparency": lambda: encode_image(
        sample_image(53).convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG", transparency=0
    ),
    "sixteen_bit_grayscale": lambda: encode_image(Image.fromarray(sixteen_bit_ramp()), "PNG"),
    "webp": lambda: encode_image(sample_image(54), "WEBP", lossless=True),
}


@pytest.mark.parametrize("kind", list(PHOTO_KINDS))
def test_every_kind_of_photo_gets_features(featurizer: ImageFeaturizer, upload, kind: str) -> None:
    message = run(featurizer, upload(PHOTO_KINDS[kind](), f"{kind}.img"))
    assert sentence_feature(message) is not None
    assert message.get(ATTACHMENT_PROBLEMS) is None


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG", "MPO"])
def test_animation_uses_first_frame(featurizer: ImageFeaturizer, upload, fmt: str) -> None:
    data, reference = animation_and_first_frame(fmt)
    animated, still = run(featurizer, upload(data, f"anim.{fmt.lower()}")), run(featurizer, upload(reference))
    np.testing.assert_allclose(sentence_feature(animated), sentence_feature(still), atol=1e-6)


def test_one_pixel_is_accepted(featurizer: ImageFeaturizer, upload) -> None:
    dot = encode_image(Image.new("RGB", (1, 1), (200, 180, 40)), "PNG")
    message = run(featurizer, upload(dot, "dot.png"))
    assert sentence_feature(message).shape == (1, EMBEDDING_DIMS)
    assert np.isfinite(sentence_feature(message)).all()
    assert len(message.get(IMAGE_LABELS)[0]) == 5
    assert message.get(ATTACHMENT_PROBLEMS) is None


@pytest.mark.parametrize("size", [(1, 400), (3000, 2)], ids=["tall-line", "wide-line"])
def test_extreme_aspect_ratios(featurizer: ImageFeaturizer, upload, size) -> None:
    data = encode_image(Image.new("RGB", size, (10, 120, 30)), "PNG")
    assert sentence_feature(run(featurizer, upload(data, "line.png"))) is not None


def test_truncated_jpeg_is_damaged(featurizer: ImageFeaturizer, plant, caplog) -> None:
    caplog.set_level(logging.INFO)
    assert_rejected(run(featurizer, plant(truncated_jpeg())), "damaged")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "damaged" in warnings[0].getMessage()


def test_zero_bytes_are_empty(featurizer: ImageFeaturizer, plant) -> None:
    assert_rejected(run(featurizer, plant(b"", name="zero_bytes.jpg")), "empty")


@pytest.mark.parametrize("name", list(NON_IMAGES))
def test_non_images_are_rejected_by_content(featurizer: ImageFeaturizer, plant, name: str) -> None:
    """The component reports the decoder's verdict."""
    content = NON_IMAGES[name]
    with pytest.raises(AttachmentError) as raised:
        decode_image(content, MAX_PIXELS)
    message = run(featurizer, plant(content, name="photo.jpg"))
    assert sentence_feature(message) is None
    assert message.get(ATTACHMENT_PROBLEMS)[0]["code"] == raised.value.code


def test_pixel_bomb_is_refused_before_decoding(featurizer: ImageFeaturizer, plant, monkeypatch) -> None:
    bomb = png_bomb()
    assert len(bomb) < 200_000
    assert struct.unpack(">II", bomb[16:24]) == (30000, 30000)  # IHDR width, height: 900 M pixels
    entry = plant(bomb, name="bomb_30000x30000.png")
    forbid_pixel_decoding(monkeypatch)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.perf_counter()
    message = run(featurizer, entry)
    assert time.perf_counter() - started < 2.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 50 * 1024
    assert_rejected(message, "too_large")


def test_pixel_limit_is_checked_from_the_header(make_featurizer, upload, monkeypatch) -> None:
    # 6000 pixels: Pillow's guard would only warn, the component's own header check refuses.
    entry = upload(encode_image(sample_image(59, (100, 60)), "PNG"))
    featurizer = make_featurizer(max_pixels=5000)
    assert Image.MAX_IMAGE_PIXELS == 5000  # Pillow's own guard follows the configured limit
    forbid_pixel_decoding(monkeypatch)
    assert_rejected(run(featurizer, entry), "too_large")


# ---------------------------------------------------------------------------------------------- plumbing
def test_training_data_without_images_is_a_cheap_no_op(featurizer: ImageFeaturizer, monkeypatch) -> None:
    monkeypatch.setattr(ImageFeaturizer, "encode", lambda *a, **k: pytest.fail("the network ran"))
    monkeypatch.setattr(ImageFeaturizer, "store", property(lambda self: pytest.fail("the store was opened")))
    examples = [Message(data={TEXT: f"where is my order {i}", "intent": "track_order"}) for i in range(2000)]
    started = time.perf_counter()
    data = featurizer.process_training_data(TrainingData(examples))
    assert time.perf_counter() - started < 1.0
    assert all(not m.features and m.get(IMAGE_LABELS) is None for m in data.training_examples)


def test_model_is_loaded_once_per_process(make_featurizer, monkeypatch) -> None:
    """Featurizers of other settings share one network (`encoders.image.load_model` caches it; see
    tests/unit/encoders/test_image.py)."""
    first = make_featurizer()
    monkeypatch.setattr(image_encoder, "build_network", lambda size: pytest.fail("loaded again"))
    second = make_featurizer(top_k=3, batch_size=2)
    assert first._loaded is second._loaded


def test_default_config_has_the_documented_keys_in_order() -> None:
    """The defaults come from `ImageFeaturizerConfig` alone, after Rasa's `alias`; keys and values as before."""
    config = ImageFeaturizer.get_default_config()
    assert list(config.items()) == [
        ("alias", None),
        ("weights_path", None),
        ("image_size", 224),
        ("resize_size", 256),
        ("batch_size", 8),
        ("num_threads", 0),
        ("top_k", 5),
        ("attachment_dir", None),
        ("max_pixels", None),
        ("max_bytes", None),
    ]
    ImageFeaturizer.validate_config(config)


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"image_size": 16}, "image_size"),
        ({"image_size": "224"}, "image_size"),
        ({"resize_size": 200}, "resize_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"num_threads": -1}, "num_threads"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 1001}, "top_k"),
        ({"top_k": True}, "top_k"),
        ({"max_pixels": 0}, "max_pixels"),
        ({"max_bytes": -5}, "max_bytes"),
        ({"weights_path": 3}, "weights_path"),
        ({"attachment_dir": ""}, "attachment_dir"),
        ({"max_pixel": 10}, "max_pixel"),
    ],
)
def test_validate_config_names_the_bad_key(overrides: Dict[str, Any], key: str) -> None:
    with pytest.raises(InvalidConfigException, match=f"`?{key}`?"):
        ImageFeaturizer.validate_config({**ImageFeaturizer.get_default_config(), **overrides})


def test_weights_that_do_not_fit_are_refused(make_featurizer, tmp_path: Path) -> None:
    """The encoder's refusals (missing file, wrong keys, not a state_dict: tests/unit/encoders/test_image.py)
    fail the component's creation as a configuration error."""
    with pytest.raises(InvalidConfigException, match="weights_path"):
        make_featurizer(weights_path=str(tmp_path / "missing.pth"))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(InvalidConfigException, match="state_dict"):
        make_featurizer(weights_path=str(garbage))


def test_fingerprint_addon_follows_the_weight_file(tiny_efficientnet_weights: Path, tmp_path: Path) -> None:
    copy = tmp_path / "weights.pth"
    copy.write_bytes(tiny_efficientnet_weights.read_bytes())
    config = {**ImageFeaturizer.get_default_config(), "weights_path": str(copy)}
    before = ImageFeaturizer.fingerprint_addon(config)
    assert before == ImageFeaturizer.fingerprint_addon(dict(config))
    copy.write_bytes(tiny_efficientnet_weights.read_bytes() + b"\0")
    assert ImageFeaturizer.fingerprint_addon(config) != before
    assert ImageFeaturizer.fingerprint_addon({**config, "weights_path": str(tmp_path / "gone.pth")})


def test_safetensors_weights_are_read_like_the_state_dict(make_featurizer, tiny_efficientnet_weights: Path,
                                                          tmp_path: Path) -> None:
    converted = save_as_safetensors(tiny_efficientnet_weights, tmp_path / "weights.safetensors")
    assert make_featurizer(weights_path=str(converted)).dims == image_encoder.EMBEDDING_DIMS
