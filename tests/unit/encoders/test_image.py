"""Unit tests for `encoders.image`: EfficientNet-Lite0 weights, loading once per process, the inference
optimisation, ImageNet labels, pre-processing and the batched forward pass.

The network is the tiny EfficientNet-Lite0 of tests/unit/encoders/tiny_efficientnet.py (real architecture,
random weights, 64×64 inputs; the session fixture `tiny_efficientnet_weights`); only the key-for-key check
and the default path read the packaged ImageNet weights. The ImageFeaturizer's use of these functions is
tested in tests/unit/components/test_image_featurizer.py.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import encoders.image as image_encoder
from encoders.image import EMBEDDING_DIMS, NUM_CLASSES, crop_and_resize, encode_images
from media.images import decode_image
from rasa.shared.exceptions import InvalidConfigException
from tests.unit.encoders.tiny_efficientnet import TINY_RESIZE, TINY_SIZE, save_as_safetensors
from tests.unit.media.photos import encode_image, sample_image

MAX_PIXELS = 40_000_000


@pytest.fixture(scope="module")
def tiny_net(tiny_efficientnet_weights: Path) -> torch.nn.Module:
    """The tiny network as `load_model` prepares it (batch norms folded, channels-last, eval mode)."""
    return image_encoder.load_model(tiny_efficientnet_weights, TINY_SIZE).net


def tiny_inputs(count: int) -> list:
    """`count` pre-processed sample photos, `float32 (3, 64, 64)` each."""
    return [crop_and_resize(sample_image(70 + i), TINY_SIZE, TINY_RESIZE) for i in range(count)]


# ---------------------------------------------------------------------------------------------- weights
def test_build_network_matches_the_packaged_weights_key_for_key() -> None:
    packaged = image_encoder.read_state_dict(image_encoder.packaged_weights_path())
    built = image_encoder.build_network(TINY_SIZE).state_dict()
    assert len(packaged) == len(built) == 296
    assert all(built[key].shape == value.shape for key, value in packaged.items())
    assert built["_fc.weight"].shape == (NUM_CLASSES, EMBEDDING_DIMS)


def test_packaged_weights_are_the_default() -> None:
    path = image_encoder.resolve_weights_path(None)
    assert path.name == "efficientnet-lite0-57934424.pth" and path.is_file()
    assert path == image_encoder.packaged_weights_path().resolve()


def test_relative_weights_path_is_taken_from_the_project_root(
    tiny_efficientnet_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import assistant.paths as module

    target = tmp_path / "models" / "image-encoder" / "weights.pth"
    target.parent.mkdir(parents=True)
    shutil.copyfile(tiny_efficientnet_weights, target)
    monkeypatch.setattr(module, "PROJECT_ROOT", tmp_path)
    monkeypatch.chdir(tiny_efficientnet_weights.parent)  # the working directory does not matter
    assert image_encoder.resolve_weights_path("models/image-encoder/weights.pth") == target.resolve()


def test_weights_that_do_not_fit_are_refused(tiny_efficientnet_weights: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigException, match="weights_path"):
        image_encoder.resolve_weights_path(str(tmp_path / "missing.pth"))
    state = torch.load(tiny_efficientnet_weights, map_location="cpu", weights_only=True)
    del state["_fc.bias"]
    broken = tmp_path / "broken.pth"
    torch.save(state, broken)
    with pytest.raises(InvalidConfigException, match="_fc.bias"):
        image_encoder.load_model(broken, TINY_SIZE)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(InvalidConfigException, match="state_dict"):
        image_encoder.load_model(garbage, TINY_SIZE)


def test_safetensors_weights_are_read_like_the_state_dict(tiny_efficientnet_weights: Path,
                                                          tmp_path: Path) -> None:
    state = torch.load(tiny_efficientnet_weights, map_location="cpu", weights_only=True)
    converted = save_as_safetensors(tiny_efficientnet_weights, tmp_path / "weights.safetensors")
    read = image_encoder.read_state_dict(converted)
    assert read.keys() == state.keys() and all(torch.equal(read[k], state[k]) for k in state)
    embeddings, _ = encode_images(image_encoder.load_model(converted, TINY_SIZE).net, tiny_inputs(1))
    assert embeddings.shape == (1, EMBEDDING_DIMS)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(InvalidConfigException, match="state_dict"):
        image_encoder.read_state_dict(garbage)


# ---------------------------------------------------------------------------------------------- loading
def test_model_is_loaded_once_per_process(tiny_efficientnet_weights: Path, monkeypatch) -> None:
    first = image_encoder.load_model(tiny_efficientnet_weights, TINY_SIZE)
    monkeypatch.setattr(image_encoder, "build_network", lambda size: pytest.fail("loaded again"))
    second = image_encoder.load_model(tiny_efficientnet_weights, TINY_SIZE)
    assert first is second
    assert not second.net.training
    assert not any(parameter.requires_grad for parameter in second.net.parameters())


def test_a_changed_file_or_input_size_is_loaded_again(tiny_efficientnet_weights: Path,
                                                      tmp_path: Path) -> None:
    copy = tmp_path / "weights.pth"
    shutil.copyfile(tiny_efficientnet_weights, copy)
    first = image_encoder.load_model(copy, TINY_SIZE)
    status = copy.stat()
    os.utime(copy, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))  # rewritten a second later
    again = image_encoder.load_model(copy, TINY_SIZE)
    assert again is not first and again is image_encoder.load_model(copy, TINY_SIZE)
    assert image_encoder.load_model(copy, TINY_SIZE + 32) is not again  # the "same" paddings differ


def test_inference_optimisation_keeps_the_outputs(tiny_efficientnet_weights: Path) -> None:
    def fresh_network() -> torch.nn.Module:
        net = image_encoder.build_network(TINY_SIZE)
        net.load_state_dict(torch.load(tiny_efficientnet_weights, map_location="cpu", weights_only=True))
        return net.eval()

    reference, optimised = fresh_network(), image_encoder.optimise_for_inference(fresh_network())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in optimised.modules())
    batch = torch.from_numpy(np.stack(tiny_inputs(3)))
    with torch.inference_mode():
        expected_features = reference.extract_features(batch).mean(dim=(2, 3))
        channels_last = batch.contiguous(memory_format=torch.channels_last)
        features = optimised.extract_features(channels_last).mean(dim=(2, 3))
        np.testing.assert_allclose(features.numpy(), expected_features.numpy(), atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(optimised(batch).numpy(), reference(batch).numpy(), atol=1e-4, rtol=1e-4)


def test_labels_are_the_imagenet_classes() -> None:
    labels = image_encoder.imagenet_labels()
    assert len(labels) == 1000
    assert (labels[0], labels[954], labels[999]) == ("tench", "banana", "toilet tissue")


# ---------------------------------------------------------------------------------------------- preprocessing
def test_crop_and_resize_normalises_the_centre_square_of_the_shorter_side() -> None:
    # 292×146: the crop is the centred 128×128 square (146 · 64/73) at x = 82..210, y = 9..137. Everything
    # the crop (and the bicubic kernel's 4-pixel reach at this 2:1 scale) sees is one colour.
    image = Image.new("RGB", (292, 146), (250, 0, 0))
    ImageDraw.Draw(image).rectangle((74, 1, 217, 144), fill=(31, 127, 255))
    pixels = crop_and_resize(image, TINY_SIZE, TINY_RESIZE)
    assert pixels.shape == (3, TINY_SIZE, TINY_SIZE) and pixels.dtype == np.float32
    assert pixels.flags["C_CONTIGUOUS"]
    expected = (np.array([31, 127, 255], dtype=np.float32) - 127.0) / 128.0  # channels R, G, B
    np.testing.assert_allclose(pixels, np.broadcast_to(expected[:, None, None], pixels.shape), atol=1e-5)


@pytest.mark.parametrize("size", [(1, 400), (3000, 2)], ids=["tall-line", "wide-line"])
def test_crop_and_resize_of_extreme_aspect_ratios(size) -> None:
    data = encode_image(Image.new("RGB", size, (10, 120, 30)), "PNG")
    assert crop_and_resize(decode_image(data, MAX_PIXELS), TINY_SIZE, TINY_RESIZE).shape == (3, 64, 64)


# ---------------------------------------------------------------------------------------------- forward
def test_encode_images_of_no_inputs_gives_zero_rows(tiny_net: torch.nn.Module) -> None:
    embeddings, probabilities = encode_images(tiny_net, [])
    assert embeddings.shape == (0, EMBEDDING_DIMS) and embeddings.dtype == np.float32
    assert probabilities.shape == (0, NUM_CLASSES) and probabilities.dtype == np.float32


def test_encode_images_gives_embeddings_and_class_probabilities(tiny_net: torch.nn.Module) -> None:
    embeddings, probabilities = encode_images(tiny_net, tiny_inputs(3), batch_size=2)
    assert embeddings.shape == (3, EMBEDDING_DIMS) and embeddings.dtype == np.float32
    assert probabilities.shape == (3, NUM_CLASSES) and probabilities.dtype == np.float32
    assert ((embeddings >= 0.0) & (embeddings <= 6.0)).all()  # means of ReLU6 activations
    assert (probabilities >= 0.0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(embeddings[0], embeddings[1])


def test_encode_images_does_not_depend_on_the_batch_size(tiny_net: torch.nn.Module) -> None:
    inputs = tiny_inputs(3)
    one_by_one, batched = encode_images(tiny_net, inputs, batch_size=1), encode_images(tiny_net, inputs, 8)
    for single, together in zip(one_by_one, batched):
        np.testing.assert_allclose(single, together, atol=1e-5, rtol=1e-4)
