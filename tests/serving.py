"""Serving a Sanic app for a test: a real server on a free loopback port, in the test's event loop."""
from __future__ import annotations

import contextlib
import socket
from typing import Any, AsyncIterator


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve the Sanic ``app`` on a free port of 127.0.0.1 in the running event loop, with its start-up and
    shut-down hooks; yields its base URL (``http://127.0.0.1:<port>``).

    Sanic 21.12 reads ``port=0`` as "the default port" (8000), so the server gets a socket already bound to a
    free port. Sanic's test mode is switched on (and stays on): several apps in one process need it, since
    Sanic otherwise rewrites its HTTP methods again at every start and fails.
    """
    from sanic import Sanic

    Sanic.test_mode = True
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()
        sock.close()
