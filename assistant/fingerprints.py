"""Content hashes of files and directories, memoised per process.

Rasa decides whether to retrain a component from its config and its ``fingerprint_addon``; components whose
behaviour depends on files outside the config (model weights, label lists, catalog snapshots) hash them here.
"""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Dict, Tuple, TypeVar, Union

_HASH_CHUNK_BYTES = 1 << 20
_FILE_CACHE: Dict[Tuple[str, int, int], str] = {}
_DIRECTORY_CACHE: Dict[Tuple[str, Tuple[Tuple[str, int, int], ...]], str] = {}
_LOCK = threading.Lock()
_Default = TypeVar("_Default")

#: What fingerprints record in place of the hash of a file that cannot be read.
UNREADABLE = "unreadable"


def _feed(digest: "hashlib._Hash", path: Path) -> None:
    """Add a file's content to `digest`, 1 MiB at a time."""
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK_BYTES), b""):
            digest.update(chunk)


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's content, memoised by (path, size, modification time in ns).

    Raises:
        OSError: the file cannot be read (``FileNotFoundError`` when it does not exist).
    """
    status = path.stat()
    key = (str(path), status.st_size, status.st_mtime_ns)
    with _LOCK:
        cached = _FILE_CACHE.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    _feed(digest, path)
    with _LOCK:
        _FILE_CACHE[key] = digest.hexdigest()
    return _FILE_CACHE[key]


def file_sha256_or(path: Path, default: _Default) -> Union[str, _Default]:
    """`file_sha256(path)` (memoised the same way), or `default` when the file cannot be read (missing, a
    directory, no permission): for fingerprints that record an unreadable file instead of failing.

    Args:
        path: the file.
        default: returned for an unreadable file, e.g. None or `UNREADABLE`.
    """
    try:
        return file_sha256(path)
    except OSError:
        return default


def directory_sha256(path: Path) -> str:
    """SHA-256 (hex) over the relative names and contents of every file below ``path`` (``.git`` skipped).

    Memoised by the file names, sizes and modification times, so ~90 MB of weights are read once per
    process. A missing directory hashes its path (so it still differs from every real directory).
    """
    if not path.is_dir():
        return hashlib.sha256(f"missing:{path}".encode()).hexdigest()
    files = sorted(p for p in path.rglob("*") if p.is_file() and ".git" not in p.parts)
    stats = tuple((str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    key = (str(path), stats)
    with _LOCK:
        cached = _DIRECTORY_CACHE.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path)).encode())
        _feed(digest, file)
    with _LOCK:
        _DIRECTORY_CACHE[key] = digest.hexdigest()
    return _DIRECTORY_CACHE[key]
