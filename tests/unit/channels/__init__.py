"""Helpers shared by the channel tests: generated media, a loopback-only network guard, a Sanic runner, a
recorder standing in for Rasa, and the replay of the team's shared payload files.

Photos are JPEGs drawn with Pillow and voice notes are tones encoded by ffmpeg into a pipe (tests that need
audio skip when ffmpeg is missing), so no test depends on files outside the repository.
"""
from __future__ import annotations

import functools
import io
import json
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional
from urllib.parse import urljoin

import pytest

HAS_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
requires_ffmpeg = pytest.mark.skipif(not HAS_FFMPEG, reason="ffmpeg/ffprobe not installed")

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def make_jpeg(width: int = 64, height: int = 48, shade: int = 0) -> bytes:
    """A small JPEG with some structure (so the encoder produces real entropy-coded data)."""
    from PIL import Image

    image = Image.new("RGB", (width, height), color=(230, 200, 40 + shade % 200))
    for x in range(width):
        image.putpixel((x, (x * 3 + shade) % height), (x * 5 % 256, 30, 160))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


_AUDIO_ARGS = {
    "ogg": ["-c:a", "libopus", "-ar", "48000", "-f", "ogg"],  # a Telegram voice note
    "mp3": ["-c:a", "libmp3lame", "-f", "mp3"],
    "mp4": ["-c:a", "aac", "-movflags", "+frag_keyframe+empty_moov", "-f", "mp4"],  # a Messenger voice clip
}


@functools.lru_cache(maxsize=None)
def make_audio(kind: str, seconds: float = 1.0) -> bytes:
    """A tone of ``seconds`` seconds encoded by ffmpeg into memory: ``ogg`` (Opus), ``mp3``, ``mp4`` (AAC)."""
    if not HAS_FFMPEG:
        pytest.skip("ffmpeg/ffprobe not installed")
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-ac", "1", *_AUDIO_ARGS[kind], "pipe:1"],
        check=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    return result.stdout


def files_under(root: Path) -> List[Path]:
    """Every regular file below ``root``, sorted."""
    return sorted(path for path in root.rglob("*") if path.is_file())


def isolate_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Run the test in ``tmp_path/cwd`` with ``tempfile`` writing to ``tmp_path/tmp``; the returned check
    asserts that every file written below ``tmp_path`` is inside the upload store ``tmp_path/uploads``."""
    import tempfile

    for name in ("cwd", "tmp", "uploads"):
        (tmp_path / name).mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))

    def check() -> None:
        outside = [p for p in files_under(tmp_path) if (tmp_path / "uploads") not in p.parents]
        assert outside == [], f"files written outside the upload store: {outside}"

    return check


def guard_network(monkeypatch: pytest.MonkeyPatch, dns: Optional[Dict[str, List[str]]] = None) -> None:
    """Allow connections and name look-ups for loopback only (the local stubs); anything else fails.

    Args:
        monkeypatch: The test's monkeypatch.
        dns: Fake answers for other host names (``{"scontent.xx.fbcdn.net": ["157.240.1.35"]}``), for code
            that checks addresses before it fetches through an in-memory transport; connecting to those
            addresses still fails the test.
    """
    table = dns or {}
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def allowed(address: Any) -> bool:
        return not isinstance(address, tuple) or address[0] in _LOOPBACK

    def connect(self: socket.socket, address: Any) -> Any:
        if not allowed(address):
            raise AssertionError(f"a network connection to {address[0]} was attempted")
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        if not allowed(address):
            raise AssertionError(f"a network connection to {address[0]} was attempted")
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, port: Any = None, *args: Any, **kwargs: Any) -> Any:
        if host in table:
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port or 0, 0, 0))
                if ":" in ip
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 0))
                for ip in table[host]
            ]
        if host is not None and host not in _LOOPBACK:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: look-ups outside loopback are off in tests")
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@dataclass
class RunningApp:
    """A Sanic app serving one input channel on 127.0.0.1, as `rasa run` mounts it (``/webhooks/<name>``)."""

    url: str
    server: Any
    port: int

    async def stop(self) -> None:
        await self.server.before_stop()
        self.server.close()
        await self.server.wait_closed()
        await self.server.after_stop()


async def serve_channel(channel: Any, on_new_message: Callable[[Any], Awaitable[Any]]) -> RunningApp:
    """Mount ``channel.blueprint(on_new_message)`` like Rasa's ``register`` and start serving it."""
    from sanic import Sanic

    # As sanic-testing does: several apps per process need test mode (Sanic otherwise rewrites its HTTP
    # methods again on every start and fails). It stays on, since the rewrite it guards cannot be undone.
    Sanic.test_mode = True
    app = Sanic(f"channel_test_{uuid.uuid4().hex[:12]}", configure_logging=False)
    prefix = urljoin("/webhooks/", channel.url_prefix())
    app.blueprint(channel.blueprint(on_new_message), url_prefix=prefix)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # Sanic 21.12 reads port=0 as "the default port" (8000); hand it a bound socket
    port = sock.getsockname()[1]
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.before_start()
    await server.after_start()
    return RunningApp(url=f"http://127.0.0.1:{port}{prefix}", server=server, port=port)


class Recorder:
    """Rasa's `on_new_message`: records messages, optionally runs an action (a bot reply, a crash)."""

    def __init__(self) -> None:
        self.messages: List[Any] = []
        self.action: Optional[Callable[[Any], Any]] = None

    async def __call__(self, message: Any) -> None:
        self.messages.append(message)
        if self.action is not None:
            await self.action(message)


# --------------------------------------------------------------------------------------------------------
# The team's shared payload files (../shared/cases/payloads; the tests skip when the folder is absent)
# --------------------------------------------------------------------------------------------------------
def shared_payload(shared_dir: Path, name: str) -> Dict[str, Any]:
    """The shared payload file ``name``, decoded; skips the test when it is not there."""
    path = shared_dir / "cases" / "payloads" / name
    if not path.is_file():
        pytest.skip(f"{name} is not in the shared folder")
    return json.loads(path.read_text(encoding="utf-8"))


def check_every_shared_payload_is_expected(shared_dir: Path, prefix: str, expected: Iterable[str]) -> None:
    """Every shared payload file named ``<prefix>*.json`` has an expectation in ``expected``."""
    names = {p.name for p in (shared_dir / "cases" / "payloads").glob(f"{prefix}*.json")}
    known = set(expected)
    assert names <= known, f"payloads without an expectation here: {sorted(names - known)}"


def check_payloads_match_the_shared_ones(shared_dir: Path, payloads: Dict[str, Any]) -> None:
    """The payloads written in a test module equal the shared files of the same name, where those exist."""
    for name, body in payloads.items():
        path = shared_dir / "cases" / "payloads" / name
        if path.is_file():
            assert json.loads(path.read_text(encoding="utf-8")) == body, name
