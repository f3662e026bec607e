"""`channels.rest.body`: a 1 GB declared body and an endless chunked body are refused at the byte cap
without being read."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

from media import AttachmentStore
from tests.unit.channels.rest import Served, make_channel, serve, stored_files


# --------------------------------------------------------------------------------------------------------
# The cases list: a 1 GB body
# --------------------------------------------------------------------------------------------------------
async def test_1_gb_declared_body_is_refused_by_size_without_reading_it(served: Served, store):
    head = (
        "POST /webhooks/multimodal/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 1073741824\r\n\r\n"
    ).encode()

    async def body() -> AsyncIterator[bytes]:
        for _ in range(16):  # at most 16 MiB are offered; the server must not wait for the rest
            yield b"\0" * (1024 * 1024)

    answer = await asyncio.wait_for(served.raw(head, body()), timeout=60)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"too_large"' in answer
    print("bytes sent before the answer:", served.raw_sent)
    assert served.raw_sent < 16 * 1024 * 1024  # answered from the headers, not after reading the body
    assert stored_files(store) == [] and served.bot.messages == []
    assert (await served.post_json({"sender": "eve", "message": "still there?"})).status == 200


async def test_chunked_body_is_cut_off_at_the_cap(store: AttachmentStore) -> None:
    async with serve(make_channel(store, max_body_bytes=256 * 1024)) as served:
        head = (
            "POST /webhooks/multimodal/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        chunk = b"a" * 65536

        async def body() -> AsyncIterator[bytes]:
            for _ in range(16 * 1024):  # would be 1 GiB; the server closes long before
                yield b"%x\r\n%s\r\n" % (len(chunk), chunk)

        answer = await asyncio.wait_for(served.raw(head, body()), timeout=60)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert served.raw_sent < 64 * 1024 * 1024
        assert stored_files(store) == [] and served.bot.messages == []

