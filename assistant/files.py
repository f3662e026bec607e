"""Writing a file so that a reader sees either the old content or the new one, never half of it.

The content goes to a temporary file in `temporary_dir` (default: the target's folder; it must be on the same
file system), is flushed to disk (`os.fsync`) and renamed over the target (`os.replace`, atomic on POSIX and
Windows). On any error the temporary file is removed and the target is left as it was.

Users: the catalog snapshot (`shop.catalog_snapshot`) and the content-addressed catalog photos
(`components.products.photo_import`). Nothing here imports the project's other packages.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional


def write_atomically(path: Path, data: bytes, temporary_dir: Optional[Path] = None) -> None:
    """Replaces `path` with `data` atomically, creating its folder (and `temporary_dir`) when missing.

    Args:
        path: the target file.
        data: its new content.
        temporary_dir: where the temporary file is written (same file system as `path`); None: `path`'s folder.

    Raises:
        OSError: if a folder cannot be created or the file not written or renamed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(temporary_dir) if temporary_dir is not None else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
