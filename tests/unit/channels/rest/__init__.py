"""Helpers of the REST channel tests: MultimodalRestInput mounted in a real Sanic server on 127.0.0.1 with a
fake bot (no trained model), requests made by hand or with aiohttp, and the attack inputs of the "Attachments
sent through the REST/web channel" list (ids that climb out of the store, URLs to private addresses).

Requests go in as a server-to-server caller by default (``Authorization: Bearer`` with the channel's token, so
a test's ``sender`` reaches the bot as ``api:<sender>``); ``auth=False`` sends them as the web chat does, and
:meth:`Served.new_sender` asks the channel for a signed web conversation id.

The fixtures (an upload store beside a secret file that must never change, the served channel) are in
conftest.py beside this file; photos and voice notes are made by `tests.unit.channels`.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any, AsyncIterator, Dict, List, Optional

import aiohttp
from aiohttp import ClientResponse as Response

from channels.rest import ChannelSettings, MultimodalRestInput
from tests.unit.channels import serve_channel
from media import AttachmentStore


PRIVATE_URLS = [
    "http://127.0.0.1/admin",
    "https://127.0.0.1/x.jpg",
    "http://localhost:5005/webhooks/rest/webhook",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://10.0.0.7/photo.jpg",
    "http://[::1]:5055/webhook",
    "file:///etc/passwd",
    "ftp://ftp.example.com/photo.jpg",
    "https://api.telegram.org/file/bot123:ABC/photos/file_1.jpg",
]


TRAVERSAL_IDS = [
    "../../etc/passwd",
    "/etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "C:\\Windows\\win.ini",
    "../" + "a" * 61,
    "A" * 64,  # upper-case hex is not an id
    "a" * 63,
    "a" * 65,
    "",
]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_files(store: AttachmentStore) -> List[Path]:
    return sorted(p for p in store.root.rglob("*") if p.is_file())


def snapshot(root: Path) -> Dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------------------------------------
# A fake bot, and the channel in a real Sanic server
# --------------------------------------------------------------------------------------------------------
class FakeBot:
    """Stands in for Rasa's agent: records each UserMessage and answers like the REST channel shows."""

    def __init__(self) -> None:
        self.messages: List[Any] = []
        self.fail = False

    async def __call__(self, message: Any) -> None:
        self.messages.append(message)
        if self.fail:
            raise RuntimeError("the bot fell over")
        out = message.output_channel
        n_attachments = len((message.metadata or {}).get("attachments", []))
        await out.send_response(
            message.sender_id,
            {
                "text": f"you said {message.text!r} with {n_attachments} attachment(s)",
                "buttons": [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}],
            },
        )
        await out.send_response(message.sender_id, {"image": "https://shop.example/bananas.jpg"})
        await out.send_response(message.sender_id, {"custom": {"kind": "product_card", "sku": "B-1"}})

    @property
    def last(self) -> Any:
        return self.messages[-1]


class Served:
    def __init__(self, base: str, port: int, bot: FakeBot, channel: MultimodalRestInput) -> None:
        self.base, self.port, self.bot, self.channel = base, port, bot, channel
        self.http: Optional[aiohttp.ClientSession] = None

    def _headers(self, headers: Optional[Dict[str, str]], auth: bool) -> Dict[str, str]:
        """``headers`` plus the bearer token (when ``auth`` and the channel has one, unless already given)."""
        result = dict(headers or {})
        token = self.channel.expected_token()
        if auth and token and not any(name.lower() == "authorization" for name in result):
            result["Authorization"] = f"Bearer {token}"
        return result

    async def post_json(
        self, payload: Any, headers: Optional[Dict[str, str]] = None, auth: bool = True
    ) -> Response:
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        return await self.http.post(
            self.base + "webhook",
            data=body,
            headers={"Content-Type": "application/json", **self._headers(headers, auth)},
        )

    async def post_form(self, fields: Dict[str, str], files: List[tuple], headers=None, auth: bool = True):
        form = aiohttp.FormData()
        for key, value in fields.items():
            form.add_field(key, value)
        for name, data, content_type in files:
            form.add_field("files", data, filename=name, content_type=content_type)
        return await self.http.post(self.base + "webhook", data=form, headers=self._headers(headers, auth))

    async def new_sender(self) -> str:
        """A signed web conversation id from ``POST /session``."""
        resp = await self.http.post(self.base + "session")
        assert resp.status == 200, await resp.text()
        return (await resp.json())["sender"]

    async def raw(self, request: bytes, body_chunks: Optional[AsyncIterator[bytes]] = None) -> bytes:
        """Sends a hand-made HTTP request, streaming the body until the server answers (as curl does)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(request)
        answer = asyncio.ensure_future(reader.read(65536))
        sent = 0
        if body_chunks is not None:
            async for chunk in body_chunks:
                if answer.done():
                    break
                try:
                    writer.write(chunk)
                    await writer.drain()
                except (ConnectionError, OSError):
                    break
                sent += len(chunk)
        self.raw_sent = sent
        try:
            data = await asyncio.wait_for(answer, timeout=30)
        except ConnectionError:
            data = b""
        writer.close()
        return data


@contextlib.asynccontextmanager
async def serve(channel: MultimodalRestInput, bot: Optional[FakeBot] = None) -> AsyncIterator[Served]:
    """Mounts the channel like `rasa run` does (under /webhooks/multimodal) on a free loopback port."""
    bot = bot or FakeBot()
    running = await serve_channel(channel, bot)
    served = Served(running.url + "/", running.port, bot, channel)
    async with aiohttp.ClientSession() as http:
        served.http = http
        try:
            yield served
        finally:
            await running.stop()


#: The bearer token and the web conversation id key of :func:`make_channel`'s default environment.
API_TOKEN = "test-api-token-0123456789"
SENDER_SECRET = "test-sender-secret-0123456789abcdef"
CUSTOMER_SECRET = "test-customer-secret-0123456789abcdef"
TEST_ENVIRON = {"CHAT_API_TOKEN": API_TOKEN, "SENDER_ID_SECRET": SENDER_SECRET}


def make_channel(store: AttachmentStore, environ: Optional[Dict[str, str]] = None, **settings: Any):
    """The channel with every rate limit off unless given, and ``environ`` (default :data:`TEST_ENVIRON`)."""
    for key in ("upload_rate_per_minute", "address_rate_per_minute", "message_rate_per_minute",
                "address_message_rate_per_minute"):
        settings.setdefault(key, 0)
    environ = dict(TEST_ENVIRON) if environ is None else environ
    return MultimodalRestInput(ChannelSettings(**settings), store=store, environ=environ)


async def error_of(resp: aiohttp.ClientResponse) -> Dict[str, str]:
    body = await resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    return body["error"]


def yarl_url(text: str):
    import yarl

    return yarl.URL(text, encoded=True)  # keep ../ and %2F exactly as written

