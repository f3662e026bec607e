"""Where the shop's catalog photos live on disk, and how a recorded photo path is followed safely.

Photo paths in the database (and in the catalog snapshot) are relative to the catalog image root: `image_root`
in config.yml, else the environment variable CATALOG_IMAGE_DIR, else var/catalog-images. A path is only
followed when it stays inside that root: no absolute paths, no `..`, no symbolic links that lead out. `make
catalog-images` stores photos there, the snapshot writer hashes them, the ProductRecognizer embeds them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Text

from assistant.paths import project_path

#: Catalog image root unless configured otherwise (relative to the project root).
DEFAULT_IMAGE_ROOT = "var/catalog-images"
#: Environment variable naming another catalog image root.
IMAGE_ROOT_ENV = "CATALOG_IMAGE_DIR"


def resolve_image_root(image_root: Optional[Text]) -> Path:
    """The catalog image root: `image_root`, else CATALOG_IMAGE_DIR, else var/catalog-images (relative paths
    are taken from the project root)."""
    return project_path(image_root or os.environ.get(IMAGE_ROOT_ENV, "").strip() or DEFAULT_IMAGE_ROOT)


def resolve_catalog_image(root: Path, relative: str) -> Optional[Path]:
    """The file of a catalog photo, or None when the path leaves the image root or is not a regular file.

    Absolute paths, `..` parts and symbolic links that resolve outside `root` are refused.
    """
    if not isinstance(relative, str) or not relative.strip() or "\x00" in relative:
        return None
    clean = relative.strip().replace("\\", "/")
    parts = [part for part in clean.split("/") if part not in ("", ".")]
    if clean.startswith("/") or ".." in parts or not parts or ":" in parts[0]:
        return None
    try:
        base = root.resolve()
        path = (base / Path(*parts)).resolve()
    except (OSError, RuntimeError):
        return None
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path
