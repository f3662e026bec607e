"""Fixtures of the media tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from media import AttachmentStore


@pytest.fixture
def store(tmp_path: Path) -> AttachmentStore:
    """An empty upload store with the default limits in a temporary directory."""
    return AttachmentStore(tmp_path / "uploads")
