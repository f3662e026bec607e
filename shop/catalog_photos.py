"""Where the shop's catalog photos live on disk, and how a recorded photo path is followed safely.

Photo paths in the database (and in the catalog snapshot) are relative to the catalog image root: `image_root`
in config.yml, else the environment variable CATALOG_IMAGE_DIR, else var/catalog-images. A path is only
followed when it stays inside that root: no absolute paths, no `..`, no symbolic links that lead out. `make
catalog-images` stores photos there, the snapshot writer hashes them, the ProductRecognizer embeds them.

`relative_parts` is the one syntax check of such a relative photo path; `resolve_catalog_image` (here),
`shop.photo_import.relative_file` (photos named by a CSV or the Grocery Store Dataset) and
`shop.validation.clean_image_path` (paths the repository records) call it before their own checks.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Text, Tuple

from assistant.paths import project_path

#: Catalog image root unless configured otherwise (relative to the project root).
DEFAULT_IMAGE_ROOT = "var/catalog-images"
#: Environment variable naming another catalog image root.
IMAGE_ROOT_ENV = "CATALOG_IMAGE_DIR"


def resolve_image_root(image_root: Optional[Text]) -> Path:
    """The catalog image root: `image_root`, else CATALOG_IMAGE_DIR, else var/catalog-images (relative paths
    are taken from the project root)."""
    return project_path(image_root or os.environ.get(IMAGE_ROOT_ENV, "").strip() or DEFAULT_IMAGE_ROOT)


def relative_parts(relative: Any) -> Optional[Tuple[str, ...]]:
    """The parts of a photo path relative to a folder, by syntax alone (the file system is not looked at).

    Surrounding white space is dropped, backslashes count as slashes, and empty and `.` parts are dropped:
    `" .\\Fruit//b.jpg"` → `("Fruit", "b.jpg")`.

    Returns:
        The parts (an empty tuple for a path that names nothing, such as `"."`), or None for a path that could
        lead out of the folder or is no path: not a string, a NUL character, absolute (`/x`, `\\x`,
        `//server/share`), a drive letter or any colon in the first part (`C:x`, `C:\\x`), or a `..` part.
    """
    if not isinstance(relative, str) or "\x00" in relative:
        return None
    clean = relative.strip().replace("\\", "/")
    parts = tuple(part for part in clean.split("/") if part not in ("", "."))
    if clean.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
        return None
    return parts


def resolve_catalog_image(root: Path, relative: str) -> Optional[Path]:
    """The file of a catalog photo, or None when the path leaves the image root or is not a regular file.

    The path must pass `relative_parts`; symbolic links that resolve outside `root` are refused.
    """
    parts = relative_parts(relative)
    if not parts:
        return None
    try:
        base = root.resolve()
        path = (base / Path(*parts)).resolve()
    except (OSError, RuntimeError):
        return None
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path
