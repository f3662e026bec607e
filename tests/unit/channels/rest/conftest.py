"""Fixtures of the REST channel tests: an upload store beside a secret file, the check that nothing outside
the store is ever written, a loopback-only network, and the channel served with the default settings."""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from media import AttachmentStore
from tests.unit.channels import make_jpeg
from tests.unit.channels.rest import Served, make_channel, serve, sha256, snapshot


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A folder beside the store holding a 'secret' file that must never be read or changed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    photo = make_jpeg(shade=99)
    (outside / "photo.jpg").write_bytes(photo)
    (outside / sha256(photo)).write_bytes(photo)  # what a symlinked shard directory would point at
    return outside


@pytest.fixture
def store(tmp_path: Path, sandbox: Path) -> AttachmentStore:
    return AttachmentStore(tmp_path / "uploads")


@pytest.fixture(autouse=True)
def nothing_outside_the_store(tmp_path: Path, sandbox: Path):
    """Only the upload store may change below tmp_path; the secret never changes."""
    before = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("uploads")}
    yield
    after = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("uploads")}
    assert after == before


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any DNS look-up or connection outside loopback fails the test."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo
    allowed = {"127.0.0.1", "::1", "localhost"}

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in allowed:
            raise AssertionError(f"connection to {address[0]} attempted")
        return real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in allowed and host is not None:
            raise AssertionError(f"DNS look-up of {host} attempted")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
async def served(store: AttachmentStore) -> AsyncIterator[Served]:
    async with serve(make_channel(store)) as s:
        yield s

