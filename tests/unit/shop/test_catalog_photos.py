"""Tests for `shop.catalog_photos`: the catalog image root and safe photo paths."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from assistant.paths import PROJECT_ROOT
from shop import validation
from shop.catalog_photos import relative_parts, resolve_catalog_image, resolve_image_root
from shop.errors import InvalidInput
from shop.photo_import import relative_file


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


@pytest.mark.parametrize(
    "path, parts",
    [
        ("Fruit/Banana/b.jpg", ("Fruit", "Banana", "b.jpg")),
        (" .\\Fruit//b.jpg ", ("Fruit", "b.jpg")),
        ("a/./b.jpg", ("a", "b.jpg")),
        (".", ()),
        ("", ()),
        ("/etc/passwd", None),
        ("\\x.jpg", None),
        ("\\\\server\\share\\x.jpg", None),
        ("../x.jpg", None),
        ("a/../../x.jpg", None),
        ("C:\\x.jpg", None),
        ("c:x.jpg", None),
        ("photo:1/x.jpg", None),
        ("a\x00b", None),
        (None, None),
        (3, None),
    ],
)
def test_relative_parts_is_the_syntax_of_a_relative_photo_path(path, parts) -> None:
    assert relative_parts(path) == parts


@pytest.mark.parametrize(
    "path",
    [
        "fru-banana/fadc28.png", "./fru-banana\\fadc28.png", "../x.png", "/x.png", "c:x.png", "ab:c/x.png",
        ".", "a\x00b",
    ],
)
def test_the_recorder_and_both_readers_agree_on_a_path(tmp_path: Path, path: str) -> None:
    """A path the repository would record is one the catalog reader and the photo import follow, and back."""
    (tmp_path / "fru-banana").mkdir()
    (tmp_path / "fru-banana" / "fadc28.png").write_bytes(b"photo")
    try:
        recorded = validation.clean_image_path(path)
    except InvalidInput:
        recorded = None
    followed = resolve_catalog_image(tmp_path, path)
    assert (recorded is None) == (followed is None) == (relative_file(tmp_path, path) is None)
    if recorded is not None:
        assert followed == (tmp_path / recorded).resolve()
