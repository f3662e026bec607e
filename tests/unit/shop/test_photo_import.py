"""Unit tests for shop/photo_import.py (its CLI: tests/unit/scripts/test_catalog_images.py)."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from shop.photo_import import (
    PHOTO_MAX_BYTES,
    PHOTO_MAX_PIXELS,
    PhotoRefused,
    photos_from_csv,
    relative_file,
    store,
    validated_bytes,
)
from media import AttachmentLimits


def png(size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_limits_are_the_customer_photo_limits() -> None:
    limits = AttachmentLimits()
    assert (PHOTO_MAX_BYTES, PHOTO_MAX_PIXELS) == (limits.image_max_bytes, limits.image_max_pixels)


def test_a_photo_is_validated_then_stored_once_by_content(tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    source.write_bytes(png())
    data, extension = validated_bytes(source, PHOTO_MAX_BYTES, PHOTO_MAX_PIXELS)
    assert (data, extension) == (source.read_bytes(), "png")
    with pytest.raises(PhotoRefused):
        validated_bytes(source, 10, PHOTO_MAX_PIXELS)
    with pytest.raises(PhotoRefused):
        validated_bytes(source, PHOTO_MAX_BYTES, 100)
    root = tmp_path / "images"
    relative, digest = store(root, data, extension)
    assert digest == hashlib.sha256(data).hexdigest() and relative == f"{digest[:2]}/{digest}.png"
    assert store(root, data, extension) == (relative, digest)
    assert (root / relative).read_bytes() == data and list((root / ".tmp").iterdir()) == []


def test_csv_sources_need_their_columns_and_stay_inside(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png())
    assert relative_file(tmp_path, "a.png") == (tmp_path / "a.png").resolve()
    assert relative_file(tmp_path, "../a.png") is None and relative_file(tmp_path, "/etc/passwd") is None
    bad = tmp_path / "bad.csv"
    bad.write_text("file,product\na.png,FRU-KIWI\n")
    with pytest.raises(ValueError, match="path,sku"):
        photos_from_csv(tmp_path, bad)
