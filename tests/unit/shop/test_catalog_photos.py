"""Tests for `shop.catalog_photos`: the catalog image root and safe photo paths."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from assistant.paths import PROJECT_ROOT
from shop.catalog_photos import resolve_catalog_image, resolve_image_root


def test_the_image_root_comes_from_config_environment_or_default(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CATALOG_IMAGE_DIR", raising=False)
    assert resolve_image_root(None) == PROJECT_ROOT / "var/catalog-images"
    monkeypatch.setenv("CATALOG_IMAGE_DIR", str(tmp_path))
    assert resolve_image_root(None) == tmp_path
    assert resolve_image_root("photos") == PROJECT_ROOT / "photos"


def test_photo_paths_must_stay_inside_the_image_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "fru-banana").mkdir(parents=True)
    Image.new("RGB", (8, 8), (250, 220, 40)).save(root / "fru-banana/fadc28.png")
    outside = tmp_path / "outside.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(outside)
    (root / "link.png").symlink_to(outside)

    assert resolve_catalog_image(root, "../outside.png") is None
    assert resolve_catalog_image(root, str(outside)) is None
    assert resolve_catalog_image(root, "link.png") is None
    assert resolve_catalog_image(root, "c:/windows/x.png") is None
    assert resolve_catalog_image(root, "a\x00b") is None
    assert resolve_catalog_image(root, "") is None
    assert resolve_catalog_image(root, "fru-banana/fadc28.png") == (root / "fru-banana/fadc28.png").resolve()
