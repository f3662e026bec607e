"""Downloading a Telegram file through the Bot API into the attachment store, streamed and size-checked.

Files are fetched with ``getFile``, then ``<api>/file/bot<token>/<file_path>``, with the bot's own aiohttp
session, and streamed into :meth:`media.AttachmentStore.save_stream`. The declared ``file_size`` is compared
with the limit before anything is requested, so an oversized voice note costs neither a ``getFile`` call nor a
download.

The Bot API server is trusted configuration (``TELEGRAM_API_URL``), not user input, which is why this
module downloads from it directly instead of through :meth:`media.AttachmentStore.fetch_url` (whose address
checks are meant for URLs that customers or platforms hand over). The file path comes from ``getFile`` and is
checked to be a relative path of plain segments before it is put into the URL.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import re
import time
from functools import partial
from typing import Any, Callable, Iterator, Optional

import aiohttp
from aiogram import Bot

from channels.telegram.client import BOT_API_ERRORS
from channels.telegram.updates import TelegramFile, as_int
from media import AttachmentError, AttachmentLimits, AttachmentRef, AttachmentStore
from media.limits import CHUNK_BYTES

_FILE_PATH_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}(/[A-Za-z0-9_.-]{1,128}){0,4}")


def usable_file_path(file_path: Any) -> bool:
    """Whether getFile's ``file_path`` is a short relative path of plain segments (``voice/file_3.oga``)."""
    return (
        isinstance(file_path, str)
        and _FILE_PATH_RE.fullmatch(file_path) is not None
        and not any(segment in (".", "..") for segment in file_path.split("/"))
    )


def _check_size(size: Optional[int], cap: int, kind: str, source: str, limits: AttachmentLimits) -> None:
    if size is not None and size > cap:
        raise AttachmentError(
            "too_large",
            f"{source} declares {size} bytes > {cap} bytes; not downloaded",
            attachment_type=kind,
            limits=limits,
        )


async def fetch_file(
    bot: Bot, store: AttachmentStore, file: TelegramFile, redact: Callable[[str], str] = str
) -> AttachmentRef:
    """Download a Telegram file through the Bot API server into the attachment store.

    The declared size is checked before ``getFile``, the size ``getFile`` reports before the download,
    ``Content-Length`` before the body, and the streamed bytes while reading. The content then decides
    the type (a ``.jpg`` document holding text is refused).

    Args:
        bot: The channel's bot client (its aiohttp session and Bot API server).
        store: Where the file goes.
        file: The file announced in the message.
        redact: Removes the bot token from error details (aiohttp errors may quote a request URL).

    Raises:
        AttachmentError: ``too_large`` (declared or streamed bytes over the limit), ``fetch_failed``
            (Bot API error, HTTP status, timeout, unusable file path), and everything
            :meth:`AttachmentStore.save_stream` raises.
    """
    limits = store.limits
    cap = limits.max_bytes_for(file.kind)
    _check_size(file.file_size, cap, file.kind, "the update", limits)
    try:
        info = await bot.request("getFile", {"file_id": file.file_id})
    except BOT_API_ERRORS as error:
        code = "too_large" if "too big" in str(error).lower() else "fetch_failed"
        raise AttachmentError(
            code,
            redact(f"getFile for a {file.field}: {type(error).__name__}: {error}")[:300],
            attachment_type=file.kind,
            limits=limits,
        ) from None
    info = info if isinstance(info, dict) else {}
    reported_size = as_int(info.get("file_size"))
    _check_size(reported_size, cap, file.kind, "getFile", limits)
    file_path = info.get("file_path")
    if not usable_file_path(file_path):
        raise AttachmentError(
            "fetch_failed",
            "getFile returned no relative file_path (a Bot API server in --local mode is not supported)",
            attachment_type=file.kind,
            limits=limits,
        )
    name = file.name or file_path.rsplit("/", 1)[-1]
    return await _download(bot, store, file_path, file, name, reported_size or file.file_size)


async def _download(
    bot: Bot,
    store: AttachmentStore,
    file_path: str,
    file: TelegramFile,
    name: str,
    expected_size: Optional[int],
) -> AttachmentRef:
    limits = store.limits
    cap = limits.max_bytes_for(file.kind)
    timeout_s = limits.url_timeout_s
    deadline = time.monotonic() + timeout_s
    loop = asyncio.get_running_loop()
    try:
        async with bot.session.get(
            bot.get_file_url(file_path),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as download:
            if download.status != 200:
                raise AttachmentError(
                    "fetch_failed",
                    f"file download answered HTTP {download.status}",
                    attachment_type=file.kind,
                    limits=limits,
                )
            _check_size(download.content_length, cap, file.kind, "Content-Length", limits)
            chunks = stream_from_loop(download.content, loop, deadline, cap, file.kind, limits)
            return await loop.run_in_executor(
                None,
                partial(
                    store.save_stream,
                    chunks,
                    name=name,
                    declared_mime=file.mime_type,
                    expected_size=expected_size,
                ),
            )
    except AttachmentError:
        raise
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        detail = f"file download: {type(error).__name__}"
        raise AttachmentError("fetch_failed", detail, attachment_type=file.kind, limits=limits) from None


def stream_from_loop(
    content: aiohttp.StreamReader,
    loop: asyncio.AbstractEventLoop,
    deadline: float,
    cap: int,
    kind: str,
    limits: AttachmentLimits,
) -> Iterator[bytes]:
    """Chunks of an aiohttp body for a worker thread: each read runs on the event loop, the thread waits.

    This lets :meth:`AttachmentStore.save_stream` (blocking: disk writes, ffprobe) run off the event loop
    while the body is still streamed.

    Args:
        content: The response body.
        loop: The event loop the response belongs to.
        deadline: ``time.monotonic()`` seconds by which the whole body must have arrived.
        cap: Most bytes accepted.
        kind: ``"image"`` or ``"audio"``, for the errors.
        limits: The store's limits, for the errors.

    Raises:
        AttachmentError: ``too_large`` past ``cap`` bytes; ``fetch_failed`` past ``deadline`` or on any read
            error.
    """
    received = 0
    too_slow = f"download took longer than {limits.url_timeout_s:g} s"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AttachmentError("fetch_failed", too_slow, attachment_type=kind, limits=limits)
        future = asyncio.run_coroutine_threadsafe(content.read(CHUNK_BYTES), loop)
        try:
            chunk = future.result(timeout=remaining)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise AttachmentError("fetch_failed", too_slow, attachment_type=kind, limits=limits) from None
        except Exception as error:  # aiohttp/asyncio errors surface here from the loop
            detail = f"download: {type(error).__name__}"
            raise AttachmentError("fetch_failed", detail, attachment_type=kind, limits=limits) from None
        if not chunk:
            return
        received += len(chunk)
        if received > cap:
            detail = f"download passed {cap} bytes"
            raise AttachmentError("too_large", detail, attachment_type=kind, limits=limits)
        yield chunk
