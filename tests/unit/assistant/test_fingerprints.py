"""Unit tests for assistant/fingerprints.py: memoised SHA-256 content hashes of files and directories."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import List

import pytest

import assistant.fingerprints as fingerprints
from assistant.fingerprints import UNREADABLE, directory_sha256, file_sha256, file_sha256_or


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> List[Path]:
    """The files whose content the module reads from now on, in order."""
    seen: List[Path] = []
    feed = fingerprints._feed

    def counting_feed(digest, path: Path) -> None:
        seen.append(path)
        feed(digest, path)

    monkeypatch.setattr(fingerprints, "_feed", counting_feed)
    return seen


def touch_later(path: Path, seconds: int = 1) -> None:
    """Moves the modification time of `path` `seconds` into the future, as a rewrite a moment later would."""
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + seconds * 1_000_000_000))


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A small directory tree: two files at the top, one in a sub-folder."""
    root = tmp_path / "model"
    (root / "tokenizer").mkdir(parents=True)
    (root / "config.json").write_text('{"hidden_size": 32}')
    (root / "weights.bin").write_bytes(bytes(range(256)) * 8)
    (root / "tokenizer" / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    return root


# ---------------------------------------------------------------------------------------------- files
def test_file_sha256_is_hashlib_over_the_content(tmp_path: Path) -> None:
    content = os.urandom(3 * (1 << 20) + 17)  # more than one 1 MiB chunk
    path = tmp_path / "weights.bin"
    path.write_bytes(content)
    assert file_sha256(path) == hashlib.sha256(content).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_sha256(empty) == hashlib.sha256(b"").hexdigest()


def test_file_sha256_is_memoised_but_follows_a_changed_file(tmp_path: Path, reads: List[Path]) -> None:
    path = tmp_path / "labels.json"
    path.write_bytes(b"one")
    first = file_sha256(path)
    assert file_sha256(path) == first and reads == [path]  # read once

    path.write_bytes(b"three")  # another size
    assert file_sha256(path) == hashlib.sha256(b"three").hexdigest()

    path.write_bytes(b"fives")  # the same size, a later modification time
    touch_later(path)
    assert file_sha256(path) == hashlib.sha256(b"fives").hexdigest()
    assert len(reads) == 3


def test_file_sha256_of_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        file_sha256(tmp_path / "gone.pth")


# ---------------------------------------------------------------------------------------------- directories
def test_directory_sha256_is_memoised(model_dir: Path, reads: List[Path]) -> None:
    first = directory_sha256(model_dir)
    assert len(first) == 64 and len(reads) == 3
    assert directory_sha256(model_dir) == first and len(reads) == 3


def test_directory_sha256_changes_with_a_file_content(model_dir: Path) -> None:
    before = directory_sha256(model_dir)
    vocab = model_dir / "tokenizer" / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n")
    assert directory_sha256(model_dir) != before
    vocab.write_text("[PAD]\n[UNK]\n")
    touch_later(vocab)
    assert directory_sha256(model_dir) == before  # content and names, not times, make the hash


def test_directory_sha256_changes_with_a_file_name(model_dir: Path) -> None:
    before = directory_sha256(model_dir)
    (model_dir / "weights.bin").rename(model_dir / "weights.safetensors")
    assert directory_sha256(model_dir) != before


def test_directory_sha256_skips_git(model_dir: Path) -> None:
    before = directory_sha256(model_dir)
    (model_dir / ".git" / "objects").mkdir(parents=True)
    (model_dir / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (model_dir / ".git" / "objects" / "ab").write_bytes(b"blob")
    assert directory_sha256(model_dir) == before


def test_a_missing_directory_hashes_distinctly(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    missing, other_missing = tmp_path / "nowhere", tmp_path / "elsewhere"
    assert directory_sha256(missing) == directory_sha256(missing)
    assert len({directory_sha256(missing), directory_sha256(other_missing), directory_sha256(empty)}) == 3


# ---------------------------------------------------------------------------------------------- file or marker
def test_file_sha256_or_is_the_memoised_hash_of_a_readable_file(tmp_path: Path, reads: List[Path]) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"photo")
    assert file_sha256_or(path, None) == hashlib.sha256(b"photo").hexdigest()
    assert file_sha256_or(path, UNREADABLE) == file_sha256(path) and reads == [path]  # read once


def test_file_sha256_or_gives_the_default_for_an_unreadable_file(tmp_path: Path) -> None:
    assert file_sha256_or(tmp_path / "gone.jpg", None) is None
    assert file_sha256_or(tmp_path / "gone.jpg", UNREADABLE) == "unreadable"
    assert file_sha256_or(tmp_path, "a directory") == "a directory"
