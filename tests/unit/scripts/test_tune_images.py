"""Unit tests of scripts/tune_images.py (`make tune-images`): refuses a catalog without photos, tunes on the
photos `make catalog-images` attached, and skips the work when nothing changed.

The catalog is a seeded SQLite file; photos are generated with Pillow and attached with
scripts/catalog_images.py, as a shop would. The network is the packaged EfficientNet-Lite0; only its last
block is tuned, for one epoch, so the test takes seconds.
"""
from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image, ImageDraw

import catalog_images  # scripts/ is on sys.path (conftest.py)
import tune_images
from tests.unit.components.products.synthetic_catalog import seeded_database


def photo(colour, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(150, 255, size=(120, 160, 3), dtype=np.uint8), "RGB")
    ImageDraw.Draw(image).ellipse([40 + seed, 20, 120 + seed, 100], fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[str]:
    with seeded_database(tmp_path) as (url, _):
        yield url


def attach(tmp_path: Path, url: str, per_sku: int) -> Path:
    source, root = tmp_path / "photos", tmp_path / "images"
    for sku, colour in (("FRU-BANANA", (230, 200, 40)), ("FRU-MANGO", (240, 120, 30))):
        (source / sku).mkdir(parents=True)
        for i in range(per_sku):
            (source / sku / f"{i}.jpg").write_bytes(photo(colour, i))
    assert catalog_images.main([str(source), "--image-root", str(root), "--database-url", url]) == 0
    return root


def args(url: str, root: Path, out: Path, *extra: str) -> list:
    return ["--database-url", url, "--image-root", str(root), "--out", str(out), "--epochs", "1",
            "--first-tuned-block", "15", "--num-threads", "1", *extra]


def test_a_catalog_without_photos_is_refused_with_a_hint(tmp_path: Path, shop: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    out = tmp_path / "image-encoder"
    assert tune_images.main(args(shop, tmp_path / "images", out)) == 2
    assert "make catalog-images" in caplog.text and not out.exists()


def test_an_unreadable_database_is_one_line_not_a_traceback(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "empty.db").write_bytes(b"")
    out = tmp_path / "image-encoder"
    assert tune_images.main(args(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path, out)) == 2
    assert "could not be read" in caplog.text and not out.exists()


def test_tunes_on_the_attached_photos_then_is_up_to_date(tmp_path: Path, shop: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    root = attach(tmp_path, shop, per_sku=3)
    out = tmp_path / "image-encoder"
    assert tune_images.main(args(shop, root, out, "--min-photos", "6")) == 0
    report = json.loads((out / "tuning.json").read_text())
    assert report["labels"] == ["FRU-BANANA", "FRU-MANGO"] and report["photos"] == 6
    weights = out / "weights.safetensors"
    stamp = weights.stat().st_mtime_ns
    caplog.clear()
    assert tune_images.main(args(shop, root, out, "--min-photos", "6")) == 0
    assert "up to date" in caplog.text and weights.stat().st_mtime_ns == stamp
    assert tune_images.main(args(shop, root, out, "--min-photos", "7")) == 2  # fewer photos than asked for
