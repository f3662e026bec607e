"""Writing a file so that a reader sees either the old content or the new one, never half of it.

The content goes to a temporary file in `temporary_dir` (default: the target's folder; it must be on the same
file system), is flushed to disk (`os.fsync`) and renamed over the target (`os.replace`, atomic on POSIX and
Windows). A new file is readable by everyone (`NEW_FILE_MODE`), a replaced one keeps its permissions, unless
the caller names the mode. On any error the temporary file is removed and the target is left as it was.

Users: the catalog snapshot (`shop.catalog_snapshot`), the content-addressed catalog photos
(`shop.photo_import`) and the upload store's sidecars (`media.store`, private: 0600). Nothing here imports the
project's other packages.
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Optional

#: Permissions of a file that did not exist before (rw-r--r--); a replaced file keeps its own.
NEW_FILE_MODE = 0o644


def write_atomically(
    path: Path, data: bytes, temporary_dir: Optional[Path] = None, mode: Optional[int] = None
) -> None:
    """Replaces `path` with `data` atomically, creating its folder (and `temporary_dir`) when missing.

    Args:
        path: the target file.
        data: its new content.
        temporary_dir: where the temporary file is written (on the file system of `path`); None: `path`'s
            folder.
        mode: permission bits of the written file (e.g. `0o600` for a file only its owner may read); None:
            `NEW_FILE_MODE` for a new file, the old file's own for a replaced one.

    Raises:
        OSError: if a folder cannot be created or the file not written or renamed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(temporary_dir) if temporary_dir is not None else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            mode = NEW_FILE_MODE
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)  # mkstemp creates 0600: readers running as another user need more
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
