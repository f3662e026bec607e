"""Tests for channels.http_guard: a malformed Content-Length gets a 400 and the server keeps serving (Sanic
21.12 without the guard spins for ever on ``Content-Length: -1`` and answers ``abc`` with a 500)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import uuid
from typing import Any, Iterator

import pytest

from channels.http_guard import content_length_is_valid, install_content_length_guard
from tests.serving import serving

#: Seconds a raw request may take before the server counts as frozen.
ANSWER_TIMEOUT_S = 10


@pytest.mark.parametrize(
    "values, valid",
    [
        ([], True), (["0"], True), (["12"], True), (["12", "12"], True), ([" 12 "], True),
        (["-1"], False), (["abc"], False), (["1e9"], False), (["+5"], False), (["12", "13"], False),
        ([""], False), (["1" * 20], False), (["１２"], False),
    ],
)
def test_content_length_values(values: list, valid: bool) -> None:
    assert content_length_is_valid(values) is valid


def _app() -> Any:
    from sanic import Sanic, response

    Sanic.test_mode = True
    app = Sanic(f"guard_test_{uuid.uuid4().hex[:12]}", configure_logging=False)

    @app.route("/", methods=["GET", "POST"])
    async def root(request):  # type: ignore[no-untyped-def]
        return response.json({"ok": True})

    return app


@contextlib.contextmanager
def serving_in_a_thread() -> Iterator[int]:
    """A small Sanic app served (:func:`tests.serving.serving`) on its own event loop in a daemon thread; yields
    its port. Its own thread, so that a server that freezes its loop makes the client's timeout fail the test
    instead of hanging the test run (a frozen server's thread is left behind)."""
    loop = asyncio.new_event_loop()
    started: "queue.Queue[int]" = queue.Queue()
    stop = asyncio.Event()

    async def serve() -> None:
        async with serving(_app()) as url:
            started.put(int(url.rsplit(":", 1)[1]))
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True, name="guard-server")
    thread.start()
    try:
        yield started.get(timeout=30)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(ANSWER_TIMEOUT_S)


async def _raw(port: int, request: bytes) -> bytes:
    """Send ``request`` on a new connection; the whole answer until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), ANSWER_TIMEOUT_S)
    finally:
        writer.close()


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e9", b"-0x10"])
async def test_a_malformed_content_length_is_a_400_and_the_server_keeps_serving(
    length: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    install_content_length_guard()
    install_content_length_guard()  # twice is harmless
    with serving_in_a_thread() as port:
        with caplog.at_level(logging.WARNING, logger="channels.http_guard"):
            answer = await _raw(
                port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n" + b"x" * 29
            )
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert [r.message for r in caplog.records] == ["Request refused: malformed Content-Length header"]
        ok = await _raw(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert ok.startswith(b"HTTP/1.1 200") and b'{"ok":true}' in ok, ok[:200]


async def test_a_valid_body_is_still_read() -> None:
    install_content_length_guard()
    with serving_in_a_thread() as port:
        answer = await _raw(
            port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody"
        )
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
