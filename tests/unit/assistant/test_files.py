"""Unit tests for assistant/files.py: atomic file replacement."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from assistant.files import NEW_FILE_MODE, write_atomically


def test_the_file_is_replaced_and_folders_are_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "file.bin"
    write_atomically(target, b"one")
    assert target.read_bytes() == b"one"
    assert stat.S_IMODE(target.stat().st_mode) == NEW_FILE_MODE
    target.chmod(0o600)
    write_atomically(target, b"two", tmp_path / "staging")
    assert target.read_bytes() == b"two"
    assert list((tmp_path / "staging").iterdir()) == []
    assert stat.S_IMODE(target.stat().st_mode) == 0o600, "a replaced file keeps its permissions"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "file.bin"
    write_atomically(target, b"old")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_a_named_mode_is_used_for_a_new_and_a_replaced_file(tmp_path: Path) -> None:
    target = tmp_path / "private.json"
    write_atomically(target, b"one", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    target.chmod(0o644)
    write_atomically(target, b"two", mode=0o600)
    assert target.read_bytes() == b"two" and stat.S_IMODE(target.stat().st_mode) == 0o600
