"""Unit tests for tuning/image.py (`make tune-images`).

The network is the real EfficientNet-Lite0 with the packaged ImageNet weights, run on 64×64 inputs so that a
few epochs take seconds; the photos are generated (two kinds of patterns, a few colours each).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest

import encoders.image as image_encoder
from media.images import decode_image
from tuning.image import (
    VIEWS,
    WEIGHTS_FILE,
    ImageTuningConfig,
    fine_tune_images,
    is_up_to_date,
    photo_digest,
    iter_photos,
    read_report,
    training_views,
)

SIZE, RESIZE = 64, 72
FAST = ImageTuningConfig(first_tuned_block=14, epochs=4, batch_size=8, image_size=SIZE, resize_size=RESIZE,
                         num_threads=1)


def pattern(kind: str, colour: Tuple[int, int, int], seed: int) -> "object":
    """A 96×80 RGB PIL image: stripes ("stripes") or a filled disc ("disc") on a noisy background."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    pixels = rng.integers(180, 255, size=(80, 96, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    if kind == "stripes":
        for x in range(int(rng.integers(0, 6)), 96, 12):
            draw.rectangle([x, 0, x + 5, 79], fill=colour)
    else:
        cx, cy = int(rng.integers(36, 60)), int(rng.integers(30, 50))
        draw.ellipse([cx - 22, cy - 22, cx + 22, cy + 22], fill=colour)
    return image


def dataset() -> Tuple[List[List[np.ndarray]], List[str]]:
    colours = [(200, 30, 30), (30, 30, 200), (30, 160, 30)]
    inputs, labels = [], []
    for kind in ("stripes", "disc"):
        for i, colour in enumerate(colours * 2):
            inputs.append(training_views(pattern(kind, colour, i), SIZE, RESIZE))
            labels.append(f"SKU-{kind.upper()}")
    return inputs, labels


def load_state(path: Path) -> dict:
    return dict(image_encoder.read_state_dict(path))


def embed(weights: Path, inputs: List[List[np.ndarray]]) -> np.ndarray:
    """L2-normalised pooled embeddings `float32 (n, 1280)` of each photo's first view."""
    import torch

    net = image_encoder.build_network(SIZE)
    net.load_state_dict(load_state(weights), strict=True)
    with torch.inference_mode():
        pooled = net.eval().extract_features(torch.from_numpy(np.stack([v[0] for v in inputs]))).mean(dim=(2, 3))
    vectors = pooled.numpy()
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def separation(vectors: np.ndarray, labels: List[str]) -> float:
    """Mean cosine distance across labels divided by the mean cosine distance within a label (higher: the
    photos of a product cluster more tightly relative to the other product)."""
    codes = np.unique(labels, return_inverse=True)[1]
    same = codes[:, None] == codes[None, :]
    similarity = vectors @ vectors.T
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    return float((1 - similarity[~same].mean()) / (1 - similarity[same & off_diagonal].mean()))


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory):
    inputs, labels = dataset()
    out = tmp_path_factory.mktemp("tuned") / "image-encoder"
    lines: List[str] = []
    report = fine_tune_images(zip(inputs, labels), image_encoder.packaged_weights_path(), out, FAST,
                              lines.append, data_digest="d" * 64)
    return out, report, lines, inputs, labels


def test_training_views_are_the_eval_crop_the_full_side_and_their_mirrors() -> None:
    image = pattern("stripes", (200, 30, 30), 0)
    views = training_views(image, SIZE, RESIZE)
    assert len(views) == len(VIEWS) == 4
    assert all(v.shape == (3, SIZE, SIZE) and v.dtype == np.float32 for v in views)
    np.testing.assert_array_equal(views[0], image_encoder.crop_and_resize(image, SIZE, RESIZE))
    np.testing.assert_array_equal(views[1], image_encoder.crop_and_resize(image, SIZE, SIZE))
    np.testing.assert_array_equal(views[2], views[0][:, :, ::-1])
    np.testing.assert_array_equal(views[3], views[1][:, :, ::-1])
    assert not np.array_equal(views[0], views[1])


def test_fine_tuning_writes_safetensors_and_a_report(tuned) -> None:
    out, report, lines, inputs, labels = tuned
    assert sorted(p.name for p in out.iterdir()) == ["tuning.json", WEIGHTS_FILE]
    assert read_report(out) == json.loads(json.dumps(report))
    assert report["labels"] == ["SKU-DISC", "SKU-STRIPES"]
    assert report["photos"] == len(labels) and report["views"] == len(labels) * len(VIEWS)
    assert report["config"] == dataclasses.asdict(FAST) and report["data_sha256"] == "d" * 64
    assert len(report["history"]) == FAST.epochs and len(lines) == FAST.epochs
    assert report["history"][-1]["loss"] < report["history"][0]["loss"]
    assert not any(p.parent.name.startswith(".image-encoder") for p in out.parent.iterdir() if p != out)


def test_only_the_tail_changes_and_the_imagenet_classifier_is_kept(tuned) -> None:
    import torch

    out, *_ = tuned
    base, new = load_state(image_encoder.packaged_weights_path()), load_state(out / WEIGHTS_FILE)
    assert base.keys() == new.keys()
    first = FAST.first_tuned_block
    for key in base:
        same = torch.equal(base[key], new[key])
        tail = key.startswith(tuple(f"_blocks.{i}." for i in range(first, 16))) or key.startswith(
            ("_conv_head", "_bn1.weight", "_bn1.bias"))
        if key.startswith("_fc") or "running_" in key or "num_batches" in key or not tail:
            assert same, f"{key} should be frozen"
    assert not torch.equal(base["_conv_head.weight"], new["_conv_head.weight"])
    assert not torch.equal(base[f"_blocks.{first}._project_conv.weight"], new[f"_blocks.{first}._project_conv.weight"])


def test_tuned_embeddings_separate_the_products_better(tuned) -> None:
    out, _, _, inputs, labels = tuned
    before = separation(embed(image_encoder.packaged_weights_path(), inputs), labels)
    after = separation(embed(out / WEIGHTS_FILE, inputs), labels)
    assert after > 1.5 * before, (before, after)


def test_the_image_featurizer_loads_the_tuned_weights(tuned) -> None:
    out, *_ = tuned
    loaded = image_encoder.load_model(out / WEIGHTS_FILE, SIZE)
    assert loaded.weights_path == out / WEIGHTS_FILE


def test_invalid_input_is_refused(tmp_path: Path) -> None:
    inputs, labels = dataset()
    base = image_encoder.packaged_weights_path()
    with pytest.raises(ValueError, match="2 different products"):
        fine_tune_images(zip(inputs[:2], ["A", "A"]), base, tmp_path / "out", FAST)
    with pytest.raises(ValueError, match="no views"):
        fine_tune_images([(inputs[0], "A"), ([], "B")], base, tmp_path / "out", FAST)
    with pytest.raises(ValueError, match="epochs"):
        fine_tune_images(zip(inputs, labels), base, tmp_path / "out", dataclasses.replace(FAST, epochs=0))
    with pytest.raises(ValueError, match="resize_size"):
        dataclasses.replace(FAST, resize_size=SIZE - 1).validate()
    assert not (tmp_path / "out").exists()


def test_iter_photos_skips_what_cannot_be_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = tmp_path / "good.png"
    pattern("disc", (30, 30, 200), 1).save(good)
    other = tmp_path / "other.jpg"
    pattern("stripes", (30, 160, 30), 2).save(other)
    text = tmp_path / "text.jpg"
    text.write_text("not a photo")
    big = tmp_path / "big.png"
    big.write_bytes(good.read_bytes() + b"\0" * 10)
    paths = [good, text, other, big, tmp_path / "gone.jpg"]
    kept = list(iter_photos(paths, list("ABCDE"), FAST, max_bytes=good.stat().st_size + 5, max_pixels=10_000))
    assert [label for _, label in kept] == ["A", "C"] and all(len(views) == len(VIEWS) for views, _ in kept)
    np.testing.assert_array_equal(kept[0][0][0], image_encoder.crop_and_resize(
        decode_image(good.read_bytes(), 10_000, RESIZE), SIZE, RESIZE))
    assert sum("skipped" in r.getMessage() for r in caplog.records) == 3
    assert list(iter_photos([good], ["A"], FAST, 10**6, 100)) == []  # 96×80 photo over a 100-pixel limit


def test_photo_digest_follows_contents_and_labels(tmp_path: Path) -> None:
    first, second = tmp_path / "1.png", tmp_path / "2.png"
    pattern("disc", (30, 30, 200), 1).save(first)
    pattern("disc", (30, 30, 200), 2).save(second)
    digest = photo_digest([first, second], ["A", "B"])
    assert digest == photo_digest([first, second], ["A", "B"])
    assert digest != photo_digest([first, second], ["A", "A"])
    assert digest != photo_digest([second, first], ["A", "B"])
    pattern("disc", (30, 30, 200), 3).save(second)
    assert digest != photo_digest([first, second], ["A", "B"])
    assert photo_digest([tmp_path / "gone.png"], ["A"]) != photo_digest([first], ["A"])


def test_is_up_to_date_compares_data_settings_and_base(tuned) -> None:
    out, report, *_ = tuned
    base = image_encoder.packaged_weights_path()
    assert is_up_to_date(out, "d" * 64, FAST, base)
    assert not is_up_to_date(out, "e" * 64, FAST, base)
    assert not is_up_to_date(out, "d" * 64, dataclasses.replace(FAST, epochs=5), base)
    assert not is_up_to_date(out.parent / "nothing-here", "d" * 64, FAST, base)
