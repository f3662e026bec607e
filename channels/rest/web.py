"""What the REST channel serves to browsers: stored uploads by id, the web chat page and the widget script.

- ``GET /files/<id>``: a stored upload by its SHA-256 id, with its stored MIME type when that is one the store
  produces (:data:`SERVED_MIME_TYPES`, else ``application/octet-stream``), ``nosniff`` and a sandboxing CSP;
  404 for anything that is not the id of a stored file.
- ``GET /chat``, ``/chat.js``, ``/chat.css``, ``/widget.js``: the files of ``channels/web/`` (a fixed list,
  read once; no path from a request is ever used), the page with a strict CSP whose ``frame-ancestors`` comes
  from the settings.
"""
from __future__ import annotations

import asyncio
import html
import logging
from pathlib import Path
from typing import Awaitable, Callable, Dict, Tuple

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.rest.errors import ChannelError
from media import AUDIO_DEMUXER_MIME, IMAGE_MIME, AttachmentError, AttachmentStore
from media.schema import ID_RE

logger = logging.getLogger(__name__)

#: The web chat's static files.
WEB_DIR = Path(__file__).resolve().parents[1] / "web"

#: MIME types the store produces (a photo's from :data:`media.IMAGE_MIME`, a voice note's from
#: :data:`media.AUDIO_DEMUXER_MIME`), and so the only ones a stored file is served with.
SERVED_MIME_TYPES = frozenset(IMAGE_MIME.values()) | frozenset(AUDIO_DEMUXER_MIME.values())

#: Headers of a served upload: never sniffed, never run, cached for good (the id is the content hash).
FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, max-age=31536000, immutable",
    "Content-Disposition": "inline",
}

#: The web chat's static files: URL path (below the channel prefix) -> (file in channels/web/, Content-Type).
WEB_FILES: Dict[str, Tuple[str, str]] = {
    "chat": ("index.html", "text/html; charset=utf-8"),
    "chat.js": ("chat.js", "text/javascript; charset=utf-8"),
    "chat.css": ("chat.css", "text/css; charset=utf-8"),
    "widget.js": ("widget.js", "text/javascript; charset=utf-8"),
}


async def serve_file(store: AttachmentStore, file_id: str) -> HTTPResponse:
    """A stored upload by id, with its stored MIME type; 404 ``not_found`` for anything else.

    The store's blocking reads run in a worker thread.
    """
    not_found = ChannelError(404, "not_found", "No such file.")
    if not ID_RE.fullmatch(file_id or ""):
        logger.info("File request refused: not an upload id")
        return not_found.to_response()
    loop = asyncio.get_running_loop()
    try:
        info = await loop.run_in_executor(None, store.info, file_id)
        data = await loop.run_in_executor(None, store.read, file_id)
    except AttachmentError:
        return not_found.to_response()
    mime = info.get("mime_type")
    if mime not in SERVED_MIME_TYPES:
        mime = "application/octet-stream"
    return response.raw(data, content_type=mime, headers=dict(FILE_HEADERS))


def page_headers(path: str, frame_ancestors: str) -> Dict[str, str]:
    """Response headers of one web file (``path`` is a key of :data:`WEB_FILES`).

    Args:
        path: ``chat`` gets the page's CSP and ``Referrer-Policy``; ``widget.js`` may be loaded cross-origin.
        frame_ancestors: The CSP ``frame-ancestors`` sources from the settings.
    """
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    if path == "chat":
        headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data: https:; "
            "media-src 'self' blob:; connect-src 'self'; form-action 'none'; base-uri 'none'; "
            f"frame-ancestors {frame_ancestors}"
        )
        headers["Referrer-Policy"] = "no-referrer"
    if path == "widget.js":
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return headers


def load_web_files() -> Dict[str, bytes]:
    """The static files of the web chat, read once (a fixed list: no path from a request is ever used)."""
    return {path: (WEB_DIR / filename).read_bytes() for path, (filename, _) in WEB_FILES.items()}


def _static_handler(
    path: str, body: bytes, frame_ancestors: str
) -> Callable[[Request], Awaitable[HTTPResponse]]:
    content_type = WEB_FILES[path][1]
    headers = page_headers(path, frame_ancestors)

    async def handler(request: Request) -> HTTPResponse:
        data = body
        if path == "chat":
            # Links in the page are made absolute to this prefix, whatever the trailing slash.
            base = request.path.rstrip("/")
            base = base[: base.rfind("/") + 1]
            data = body.replace(b"__BASE__", html.escape(base, quote=True).encode("utf-8"))
        return response.raw(data, content_type=content_type, headers=dict(headers))

    return handler


def add_web_routes(blueprint: Blueprint, frame_ancestors: str) -> None:
    """Adds ``GET`` routes for every file of :data:`WEB_FILES` (read now, once) to ``blueprint``."""
    web_files = load_web_files()
    for index, path in enumerate(WEB_FILES):
        handler = _static_handler(path, web_files[path], frame_ancestors)
        blueprint.add_route(handler, f"/{path}", methods=["GET"], name=f"web_{index}")
