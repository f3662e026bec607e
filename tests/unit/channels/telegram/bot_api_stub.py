"""A local Telegram Bot API for the channel tests.

An aiohttp server on 127.0.0.1 that answers `getMe`, `getFile`, `setWebhook` and `answerCallbackQuery`, serves
file bytes under `/file/bot<token>/<path>` (whole, chunked, with an error status, or stalling) and records
every call, `sendMessage` and `sendPhoto` included.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from aiohttp import web

#: The bot token the stub accepts (not a real one) and the bot user name it reports with getMe.
TOKEN = "123456789:AAE-test_token_not_real_0123456789abcdef"
BOT_USERNAME = "grocery_test_bot"


@dataclass
class StubFile:
    path: str  # file_path returned by getFile
    data: bytes = b""
    reported_size: Optional[int] = None  # file_size in getFile's answer (default: len(data))
    status: int = 200  # HTTP status of the download
    chunked: bool = False  # send without Content-Length
    stall: bool = False  # send one chunk, then hang until the stub stops


@dataclass
class BotApiStub:
    """A local Telegram Bot API: records calls, answers from `files`."""

    token: str = TOKEN
    username: str = BOT_USERNAME
    files: Dict[str, StubFile] = field(default_factory=dict)
    calls: List[Tuple[str, Dict[str, str]]] = field(default_factory=list)
    downloads: List[str] = field(default_factory=list)
    url: str = ""
    _runner: Optional[web.AppRunner] = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def methods(self, name: str) -> List[Dict[str, str]]:
        return [params for method, params in self.calls if method == name]

    @property
    def sent_texts(self) -> List[str]:
        return [params["text"] for params in self.methods("sendMessage")]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, access_log=None)  # access logs would print the token
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        method = request.match_info["method"]
        params = {key: str(value) for key, value in (await request.post()).items()}
        self.calls.append((method, params))
        if method == "getMe":
            return self._ok({"id": 123456789, "is_bot": True, "first_name": "Shop",
                             "username": self.username})
        if method == "getFile":
            stub = self.files.get(params.get("file_id", ""))
            if stub is None:
                return self._error(400, "Bad Request: invalid file_id")
            size = stub.reported_size if stub.reported_size is not None else len(stub.data)
            return self._ok({"file_id": params["file_id"], "file_unique_id": "x", "file_size": size,
                             "file_path": stub.path})
        if method in ("sendMessage", "sendPhoto"):
            message = {"message_id": len(self.calls), "date": 1764500000,
                       "chat": {"id": int(params["chat_id"]), "type": "private"}}
            return self._ok({**message, "text": params.get("text", "")})
        if method in ("setWebhook", "answerCallbackQuery"):
            return self._ok(True)
        return self._error(404, "Not Found")

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=404)
        path = request.match_info["path"]
        self.downloads.append(path)
        stub = next((f for f in self.files.values() if f.path == path), None)
        if stub is None:
            return web.Response(status=404)
        if stub.status != 200:
            return web.Response(status=stub.status)
        if not (stub.chunked or stub.stall):
            return web.Response(body=stub.data, content_type="application/octet-stream")
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        half = max(1, len(stub.data) // 2)
        await response.write(stub.data[:half])
        if stub.stall:
            await self._released.wait()
            return response
        await response.write(stub.data[half:])
        await response.write_eof()
        return response

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(status: int, description: str) -> web.Response:
        body = {"ok": False, "error_code": status, "description": description}
        return web.json_response(body, status=status)

