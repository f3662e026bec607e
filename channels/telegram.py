"""Telegram input channel that carries photos and voice notes: ``channels.telegram.MultimodalTelegramInput``.

Rasa's own ``TelegramInput`` passes text, button presses and locations on and silently drops everything
else. This subclass maps each Telegram update to at most one Rasa message:

=========================================  =================================================================
update                                     what reaches Rasa (``UserMessage``)
=========================================  =================================================================
``message.text``                           the text (``/start`` becomes :data:`START_COMMAND_TEXT`; a
                                           ``@botname`` suffix on a command is dropped)
``message.photo`` (+ ``caption``)          caption (or ``""``) + the largest photo size that fits the limits
``message.voice`` / ``message.audio``      caption (or ``""``) + the audio file
``message.document``, image or audio       caption (or ``""``) + the file, when the content confirms it
``edited_message`` with text               the new text, as a new message; other edits are ignored
``callback_query`` (inline button)         the button's ``data``
stickers, PDFs, other documents, videos,   nothing; the customer gets ``channels.UNSUPPORTED_CONTENT_REPLY``
locations, contacts, polls, ...
service messages, other update types       nothing (acknowledged and ignored)
=========================================  =================================================================

Files are fetched through the Bot API (``getFile``, then ``<api>/file/bot<token>/<file_path>``) with the
bot's own aiohttp session and streamed into :meth:`media.attachments.AttachmentStore.save_stream`; the
message metadata then carries ``{"attachments": [ref.to_metadata()]}`` (an id, never a URL: Telegram file
URLs contain the bot token). The declared ``file_size`` is compared with the limit before anything is
requested, so an oversized voice note costs neither a ``getFile`` call nor a download. A refused file is
answered with the store's friendly message (``AttachmentError.user_message``) and the bot is not called.

The Bot API server is trusted configuration (``TELEGRAM_API_URL``), not user input, which is why this
channel downloads from it directly instead of through :meth:`AttachmentStore.fetch_url` (whose address
checks are meant for URLs that customers or platforms hand over). The file path comes from ``getFile`` and
is checked to be a relative path of plain segments before it is put into the URL.

Settings (credential keys in ``credentials.yml`` win over environment variables; secrets belong in the
environment):

========================  ==========================  ======================================================
credential key            environment variable        meaning
========================  ==========================  ======================================================
``access_token``          ``TELEGRAM_ACCESS_TOKEN``   bot token from @BotFather (required)
``verify``                ``TELEGRAM_VERIFY``         bot user name; updates are refused when the token
                                                      belongs to another bot (checked once, with getMe)
``webhook_url``           ``TELEGRAM_WEBHOOK_URL``    ``https://<host>/webhooks/telegram/webhook``; when set,
                                                      the webhook is registered when the server starts
``secret_token``          ``TELEGRAM_SECRET_TOKEN``   1-256 characters ``A-Z a-z 0-9 _ -``; when set, every
                                                      update must carry it in ``X-Telegram-Bot-Api-Secret-
                                                      Token`` (403 otherwise) and it is sent with setWebhook
``api_url``               ``TELEGRAM_API_URL``        Bot API server (default ``https://api.telegram.org``)
========================  ==========================  ======================================================
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import json
import logging
import os
import re
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Text, Tuple
from urllib.parse import urlsplit

import aiohttp
from aiogram import Bot
from aiogram.bot.api import TELEGRAM_PRODUCTION, TelegramAPIServer, check_token
from aiogram.utils.exceptions import TelegramAPIError, ValidationError
from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.telegram import TelegramInput, TelegramOutput
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels import UNSUPPORTED_CONTENT_REPLY
from media import (
    AttachmentError,
    AttachmentLimits,
    AttachmentRef,
    AttachmentStore,
    default_store,
)

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.telegram.org"
SECRET_TOKEN_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: Update types requested from Telegram with setWebhook; everything else is not even sent.
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
#: Telegram sends ``/start`` when a customer opens the bot; Rasa receives this instead (the greet intent).
START_COMMAND_TEXT = "/greet"

#: Credential key -> environment variable read when the key is missing or empty.
ENV_VARS = {
    "access_token": "TELEGRAM_ACCESS_TOKEN",
    "verify": "TELEGRAM_VERIFY",
    "webhook_url": "TELEGRAM_WEBHOOK_URL",
    "secret_token": "TELEGRAM_SECRET_TOKEN",
    "api_url": "TELEGRAM_API_URL",
}

# Message fields that carry content this assistant cannot use; they get the polite reply.
UNSUPPORTED_FIELDS = (
    "sticker",
    "video",
    "video_note",
    "animation",
    "location",
    "venue",
    "contact",
    "poll",
    "dice",
    "game",
    "story",
    "invoice",
    "paid_media",
)
# Documents: declared image types worth downloading (the content still decides), and file extensions.
_DOCUMENT_IMAGE_MIMES = frozenset({"image/jpeg", "image/pjpeg", "image/png", "image/webp", "image/gif"})
_IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jfif", ".png", ".webp", ".gif"})
_AUDIO_EXTENSIONS = frozenset({".ogg", ".oga", ".opus", ".mp3", ".m4a", ".wav", ".flac", ".aac"})
_AUDIO_MIMES = frozenset({"application/ogg"})

_SECRET_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_FILE_PATH_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}(/[A-Za-z0-9_.-]{1,128}){0,4}")
_COMMAND_RE = re.compile(r"^/([A-Za-z0-9_]{1,64})(@[A-Za-z0-9_]{1,64})?(?=\s|$)")
_CHUNK_BYTES = 64 * 1024


# --------------------------------------------------------------------------------------------------------
# Output channel
# --------------------------------------------------------------------------------------------------------
class MultimodalTelegramOutput(TelegramOutput):
    """Rasa's ``TelegramOutput`` (text, buttons, images, custom JSON) talking to a configurable server.

    Args:
        access_token: Bot token from @BotFather.
        server: Bot API server; the production server by default.
    """

    def __init__(self, access_token: Optional[Text], server: TelegramAPIServer = TELEGRAM_PRODUCTION) -> None:
        Bot.__init__(self, access_token, server=server)


# --------------------------------------------------------------------------------------------------------
# Reading updates (pure functions; nothing here touches the network)
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TelegramFile:
    """A file announced in a message, before it is downloaded.

    Attributes:
        kind: ``"image"`` or ``"audio"``: what Telegram says it is; the content decides in the end.
        field: The message field it came from (``photo``, ``voice``, ``audio``, ``document``), for logs.
        file_id: Telegram's id for ``getFile``.
        file_size: Declared size in bytes, if Telegram gave one.
        name: Display name (``file_name`` of audio files and documents), if any.
        mime_type: Declared MIME type, if any.
    """

    kind: str
    field: str
    file_id: str
    file_size: Optional[int] = None
    name: Optional[str] = None
    mime_type: Optional[str] = None


@dataclass(frozen=True)
class MessagePlan:
    """What to do with one Telegram message.

    Exactly one of these holds: ``unsupported`` is set (polite reply), ``error`` is set (a file refused
    before download: reply with its message), or the message is passed on with ``text`` and ``file``
    (either may be empty; both empty means "nothing to do").
    """

    text: str = ""
    file: Optional[TelegramFile] = None
    unsupported: Optional[str] = None
    error: Optional[AttachmentError] = None


def _as_int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _as_str(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _file_from(field: str, kind: str, item: Any) -> Optional[TelegramFile]:
    if not isinstance(item, Mapping) or _as_str(item.get("file_id")) is None:
        return None
    mime = _as_str(item.get("mime_type"))
    return TelegramFile(
        kind=kind,
        field=field,
        file_id=item["file_id"],
        file_size=_as_int(item.get("file_size")),
        name=_as_str(item.get("file_name")),
        mime_type=mime.lower() if mime else None,
    )


def select_photo(sizes: Any, image_max_bytes: int, image_max_pixels: int) -> TelegramFile:
    """The largest photo size whose declared bytes and pixels fit the limits.

    Args:
        sizes: ``message.photo``: a list of ``PhotoSize`` objects (``file_id``, ``file_size`` in bytes,
            ``width``/``height`` in pixels).
        image_max_bytes: Byte limit for photos.
        image_max_pixels: Pixel limit (width × height) for photos.

    Raises:
        AttachmentError: ``too_large`` when no size fits, ``invalid_reference`` when there is no usable size.
    """
    candidates: List[Tuple[int, int, TelegramFile]] = []
    too_big = 0
    for item in sizes if isinstance(sizes, list) else []:
        photo = _file_from("photo", "image", item)
        if photo is None:
            continue
        pixels = (_as_int(item.get("width")) or 0) * (_as_int(item.get("height")) or 0)
        if (photo.file_size or 0) > image_max_bytes or pixels > image_max_pixels:
            too_big += 1
            continue
        candidates.append((photo.file_size or 0, pixels, photo))
    if candidates:
        return max(candidates, key=lambda c: (c[1], c[0]))[2]
    if too_big:
        raise AttachmentError(
            "too_large", f"none of {too_big} photo sizes fits the limits", attachment_type="image"
        )
    raise AttachmentError("invalid_reference", "photo without a usable size", attachment_type="image")


def _document_kind(document: TelegramFile) -> Optional[str]:
    """``"image"``, ``"audio"`` or ``None`` (not worth downloading) from the declared MIME type and name."""
    mime = document.mime_type or ""
    extension = os.path.splitext(document.name or "")[1].lower()
    undeclared = mime in ("", "application/octet-stream")
    if mime in _DOCUMENT_IMAGE_MIMES or (undeclared and extension in _IMAGE_EXTENSIONS):
        return "image"
    if mime.startswith("audio/") or mime in _AUDIO_MIMES or (undeclared and extension in _AUDIO_EXTENSIONS):
        return "audio"
    return None


def command_text(text: str) -> str:
    """Telegram's bot commands as Rasa should see them: ``/start`` → :data:`START_COMMAND_TEXT`,
    ``/cmd@botname args`` → ``/cmd args``; any other text is returned unchanged."""
    match = _COMMAND_RE.match(text)
    if match is None:
        return text
    if match.group(1) == "start":
        return START_COMMAND_TEXT
    return f"/{match.group(1)}{text[match.end():]}"


def plan_message(message: Mapping[str, Any], image_max_bytes: int, image_max_pixels: int) -> MessagePlan:
    """Decide what one Telegram ``Message`` becomes (see the module docstring for the mapping).

    Args:
        message: The ``message`` (or ``edited_message``) object of an update.
        image_max_bytes: Byte limit for photos, used to pick a photo size.
        image_max_pixels: Pixel limit for photos, used to pick a photo size.
    """
    text = _as_str(message.get("text"))
    if text is not None:
        return MessagePlan(text=command_text(text))
    caption = _as_str(message.get("caption")) or ""
    if "photo" in message:
        try:
            photo = select_photo(message["photo"], image_max_bytes, image_max_pixels)
        except AttachmentError as error:
            return MessagePlan(error=error)
        return MessagePlan(text=caption, file=photo)
    for field in ("voice", "audio"):
        if field in message:
            audio = _file_from(field, "audio", message[field])
            if audio is None:
                detail = f"{field} without a file_id"
                error = AttachmentError("invalid_reference", detail, attachment_type="audio")
                return MessagePlan(error=error)
            return MessagePlan(text=caption, file=audio)
    if "document" in message:
        document = _file_from("document", "image", message["document"])
        if document is None:
            return MessagePlan(unsupported="document")
        kind = _document_kind(document)
        if kind is None:
            if (document.mime_type or "").startswith("image/"):  # HEIC, SVG, TIFF, ...: name the formats
                return MessagePlan(
                    error=AttachmentError("unsupported_type", f"document of type {document.mime_type}")
                )
            return MessagePlan(unsupported=f"document ({document.mime_type or 'no MIME type'})")
        return MessagePlan(text=caption, file=replace(document, kind=kind))
    for field in UNSUPPORTED_FIELDS:
        if field in message:
            return MessagePlan(unsupported=field)
    return MessagePlan()


def _usable_file_path(file_path: Any) -> bool:
    """Whether getFile's ``file_path`` is a short relative path of plain segments (``voice/file_3.oga``)."""
    return (
        isinstance(file_path, str)
        and _FILE_PATH_RE.fullmatch(file_path) is not None
        and not any(segment in (".", "..") for segment in file_path.split("/"))
    )


def _chat_id(message: Any) -> Optional[int]:
    if not isinstance(message, Mapping) or not isinstance(message.get("chat"), Mapping):
        return None
    return _as_int(message["chat"].get("id"))


# --------------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------------
def _setting(credentials: Mapping[str, Any], key: str, environ: Mapping[str, str]) -> Optional[str]:
    value = credentials.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        value = environ.get(ENV_VARS[key])
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def api_server(api_url: Optional[str]) -> TelegramAPIServer:
    """The Bot API server for ``TELEGRAM_API_URL`` (``http(s)://host[:port][/path]``, nothing else).

    Raises:
        RasaException: for a URL with another scheme, credentials, a query or a fragment.
    """
    url = (api_url or DEFAULT_API_URL).strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as error:
        raise RasaException(f"{ENV_VARS['api_url']} is not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise RasaException(f"{ENV_VARS['api_url']} must be an http(s)://host[:port] URL without credentials")
    if parts.query or parts.fragment:
        raise RasaException(f"{ENV_VARS['api_url']} must not have a query or fragment")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("Telegram Bot API server %s is reached over plain http", parts.hostname)
    return TelegramAPIServer.from_base(url)


# --------------------------------------------------------------------------------------------------------
# Input channel
# --------------------------------------------------------------------------------------------------------
class MultimodalTelegramInput(TelegramInput):
    """Telegram webhook channel that passes photos and voice notes to Rasa as stored attachments.

    Routes (under ``/webhooks/telegram``): ``GET /`` health, ``POST /webhook`` updates.

    Args:
        access_token: Bot token from @BotFather.
        verify: Bot user name; when set, updates are dropped unless the token belongs to this bot.
        webhook_url: Public ``https://`` URL of ``/webhooks/telegram/webhook``; registered at server start.
        debug_mode: Kept for Rasa's signature; errors are logged, never raised to Telegram (a 5xx would
            make Telegram deliver the same update again).
        secret_token: When set, the ``X-Telegram-Bot-Api-Secret-Token`` header must equal it (403 otherwise).
        api_url: Bot API server base URL (default ``https://api.telegram.org``).
        store: Attachment store; the process-wide :func:`media.attachments.default_store` by default.

    Raises:
        RasaException: for a missing or malformed token, a bad ``api_url``, ``webhook_url`` or secret.
    """

    def __init__(
        self,
        access_token: Optional[Text],
        verify: Optional[Text],
        webhook_url: Optional[Text],
        debug_mode: bool = False,
        *,
        secret_token: Optional[Text] = None,
        api_url: Optional[Text] = None,
        store: Optional[AttachmentStore] = None,
    ) -> None:
        super().__init__(access_token, verify, webhook_url, debug_mode=debug_mode)
        try:
            check_token(access_token)  # type: ignore[arg-type]
        except ValidationError:
            raise RasaException(
                "Telegram needs a bot token '<digits>:<secret>' from @BotFather in "
                f"{ENV_VARS['access_token']}"
            ) from None
        if webhook_url is not None and urlsplit(webhook_url).scheme != "https":
            raise RasaException(f"{ENV_VARS['webhook_url']} must be an https:// URL (Telegram requires TLS)")
        if secret_token is not None and not _SECRET_TOKEN_RE.fullmatch(secret_token):
            raise RasaException(
                f"{ENV_VARS['secret_token']} must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
            )
        self.secret_token = secret_token
        self.server = api_server(api_url)
        self._store = store
        self._bot: Optional[MultimodalTelegramOutput] = None
        self._verified: Optional[bool] = None
        if secret_token is None:
            logger.warning(
                "%s is not set: anyone who knows the webhook URL can post updates", ENV_VARS["secret_token"]
            )

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        """Build the channel from ``credentials.yml`` keys, falling back to ``TELEGRAM_*`` variables.

        An empty entry (``channels.telegram.MultimodalTelegramInput:``) is fine: everything then comes
        from the environment, which keeps secrets out of the file and avoids Rasa's failure on an unset
        ``${VAR}``.
        """
        settings = {key: _setting(credentials or {}, key, os.environ) for key in ENV_VARS}
        if settings["access_token"] is None:
            raise RasaException(
                f"The Telegram channel needs a bot token: set {ENV_VARS['access_token']} "
                "(see docs/channels.md)"
            )
        return cls(
            settings["access_token"],
            settings["verify"],
            settings["webhook_url"],
            secret_token=settings["secret_token"],
            api_url=settings["api_url"],
        )

    @property
    def store(self) -> AttachmentStore:
        """Where downloaded photos and voice notes go."""
        if self._store is None:
            self._store = default_store()
        return self._store

    def get_output_channel(self) -> MultimodalTelegramOutput:
        """The channel's bot client (one per input channel, so one aiohttp session); no network calls."""
        if self._bot is None:
            self._bot = MultimodalTelegramOutput(self.access_token, server=self.server)
        return self._bot

    # ---- HTTP -------------------------------------------------------------------------------------------
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Sanic routes: ``GET /`` (health) and ``POST /webhook`` (updates)."""
        telegram_webhook = Blueprint("telegram_webhook", __name__)
        bot = self.get_output_channel()

        @telegram_webhook.listener("after_server_start")
        async def register_webhook(_app: Any, _loop: Any) -> None:
            if self.webhook_url:
                await self.set_webhook(bot)

        @telegram_webhook.listener("after_server_stop")
        async def close_session(_app: Any, _loop: Any) -> None:
            if bot._session is not None and not bot._session.closed:
                await bot._session.close()

        @telegram_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @telegram_webhook.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            if not self.secret_matches(request.headers.get(SECRET_TOKEN_HEADER)):
                logger.warning("Telegram update refused: missing or wrong %s header", SECRET_TOKEN_HEADER)
                return response.text("forbidden", status=403)
            try:
                update = json.loads(request.body or b"")
            except ValueError:
                logger.warning("Telegram update refused: the body is not JSON")
                return response.text("the body must be a JSON object", status=400)
            if not isinstance(update, dict):
                logger.warning("Telegram update refused: the body is a JSON %s", type(update).__name__)
                return response.text("the body must be a JSON object", status=400)
            verified = await self._token_belongs_to_verified_bot(bot)
            if verified is None:  # getMe failed: let Telegram deliver the update again later
                return response.text("Bot API unreachable", status=503)
            if not verified:
                return response.text("failed")
            await self.handle_update(update, bot, on_new_message, self.get_metadata(request))
            return response.text("success")

        return telegram_webhook

    def secret_matches(self, header: Optional[str]) -> bool:
        """Whether a request's secret-token header is acceptable (always, when no secret is configured)."""
        if self.secret_token is None:
            return True
        return hmac.compare_digest((header or "").encode("utf-8"), self.secret_token.encode("utf-8"))

    async def set_webhook(self, bot: MultimodalTelegramOutput) -> bool:
        """Register :attr:`webhook_url` (with the secret token and :data:`ALLOWED_UPDATES`) with Telegram.

        Returns:
            Whether Telegram accepted it; a failure is logged and the server keeps running.
        """
        payload: Dict[str, Any] = {
            "url": self.webhook_url,
            "allowed_updates": json.dumps(list(ALLOWED_UPDATES)),
        }
        if self.secret_token is not None:
            payload["secret_token"] = self.secret_token
        try:
            await bot.request("setWebhook", payload)
        except (TelegramAPIError, aiohttp.ClientError, asyncio.TimeoutError) as error:
            logger.error("Telegram setWebhook failed: %s", self._redact(f"{type(error).__name__}: {error}"))
            return False
        logger.info("Telegram webhook registered at %s", urlsplit(self.webhook_url or "").hostname)
        return True

    async def _token_belongs_to_verified_bot(self, bot: MultimodalTelegramOutput) -> Optional[bool]:
        """Stock Rasa's ``verify`` check (the token's bot user name), done once with getMe and remembered.

        Returns:
            ``True``/``False``, or ``None`` when getMe failed (not remembered; tried again next update).
        """
        if not self.verify:
            return True
        if self._verified is None:
            try:
                me = await bot.request("getMe")
            except (TelegramAPIError, aiohttp.ClientError, asyncio.TimeoutError) as error:
                logger.error("Telegram getMe failed: %s", self._redact(f"{type(error).__name__}: {error}"))
                return None
            username = me.get("username") if isinstance(me, dict) else None
            self._verified = username == self.verify
            if not self._verified:
                logger.error(
                    "The Telegram token belongs to @%s, not @%s (%s): updates are dropped",
                    username,
                    self.verify,
                    ENV_VARS["verify"],
                )
        return self._verified

    # ---- updates ----------------------------------------------------------------------------------------
    async def handle_update(
        self,
        update: Mapping[str, Any],
        bot: MultimodalTelegramOutput,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        metadata: Optional[Dict[Text, Any]] = None,
    ) -> None:
        """Turn one Telegram update into at most one Rasa message, or a reply, or nothing. Never raises.

        Args:
            update: The decoded ``Update`` object.
            bot: Output channel for replies and Bot API calls.
            on_new_message: Rasa's message handler.
            metadata: Channel metadata to pass on (Rasa's ``get_metadata``); attachments are added to it.
        """
        try:
            if isinstance(update.get("callback_query"), Mapping):
                await self._handle_callback(update["callback_query"], bot, on_new_message, metadata)
            elif isinstance(update.get("message"), Mapping):
                await self._handle_message(update["message"], bot, on_new_message, metadata)
            elif isinstance(update.get("edited_message"), Mapping):
                edited = update["edited_message"]
                if _as_str(edited.get("text")) is None:
                    logger.debug("Telegram edit of a caption or media ignored")
                    return
                await self._handle_message(edited, bot, on_new_message, metadata)
            else:
                kinds = sorted(key for key in update if key != "update_id")[:5]
                logger.debug("Telegram update of kind %s ignored", kinds)
        except Exception:  # one bad update must not stop the channel, nor make Telegram resend it
            logger.exception("Telegram update %s could not be handled", _as_int(update.get("update_id")))

    async def _handle_callback(
        self,
        query: Mapping[str, Any],
        bot: MultimodalTelegramOutput,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        metadata: Optional[Dict[Text, Any]],
    ) -> None:
        query_id = _as_str(query.get("id"))
        if query_id is not None:
            try:  # stops the button's loading indicator; cosmetic, so failures are only logged
                await bot.request("answerCallbackQuery", {"callback_query_id": query_id})
            except (TelegramAPIError, aiohttp.ClientError, asyncio.TimeoutError) as error:
                logger.info("Telegram answerCallbackQuery failed: %s", type(error).__name__)
        chat_id = _chat_id(query.get("message"))
        if chat_id is None and isinstance(query.get("from"), Mapping):
            chat_id = _as_int(query["from"].get("id"))
        data = _as_str(query.get("data"))
        if chat_id is None or data is None:
            logger.debug("Telegram callback query without chat or data ignored")
            return
        await self._forward(on_new_message, data, bot, chat_id, [], metadata)

    async def _handle_message(
        self,
        message: Mapping[str, Any],
        bot: MultimodalTelegramOutput,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        metadata: Optional[Dict[Text, Any]],
    ) -> None:
        chat_id = _chat_id(message)
        if chat_id is None:
            logger.debug("Telegram message without a chat id ignored")
            return
        limits = self.store.limits
        plan = plan_message(message, limits.image_max_bytes, limits.image_max_pixels)
        if plan.unsupported is not None:
            logger.info("Telegram %s cannot be read by the assistant: polite reply sent", plan.unsupported)
            await self._reply(bot, chat_id, UNSUPPORTED_CONTENT_REPLY)
            return
        if plan.error is not None:
            await self._refuse(bot, chat_id, plan.error)
            return
        attachments: List[Dict[str, Any]] = []
        if plan.file is not None:
            try:
                ref = await self.fetch_file(bot, plan.file)
            except AttachmentError as error:
                await self._refuse(bot, chat_id, error)
                return
            attachments.append(ref.to_metadata())
        if not plan.text and not attachments:
            logger.debug("Telegram service message ignored")
            return
        await self._forward(on_new_message, plan.text, bot, chat_id, attachments, metadata)

    async def _forward(
        self,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        text: str,
        bot: MultimodalTelegramOutput,
        chat_id: int,
        attachments: Sequence[Dict[str, Any]],
        metadata: Optional[Dict[Text, Any]],
    ) -> None:
        message_metadata = dict(metadata or {})
        if attachments:
            message_metadata["attachments"] = list(attachments)
        user_message = UserMessage(
            text,
            bot,
            str(chat_id),
            input_channel=self.name(),
            metadata=message_metadata or None,
        )
        try:
            await on_new_message(user_message)
        except Exception:
            logger.exception("Rasa failed on a Telegram message")

    async def _reply(self, bot: MultimodalTelegramOutput, chat_id: int, text: str) -> None:
        try:
            await bot.send_text_message(str(chat_id), text)
        except (TelegramAPIError, aiohttp.ClientError, asyncio.TimeoutError) as error:
            detail = self._redact(f"{type(error).__name__}: {error}")
            logger.warning("Telegram reply could not be sent: %s", detail)

    async def _refuse(self, bot: MultimodalTelegramOutput, chat_id: int, error: AttachmentError) -> None:
        if not error.logged:
            logger.warning("Attachment rejected (%s)", self._redact(str(error)))
            error.logged = True
        await self._reply(bot, chat_id, error.user_message)

    def _redact(self, text: str) -> str:
        """``text`` without the bot token (aiohttp errors may quote a request URL)."""
        return text.replace(self.access_token, "<token>") if self.access_token else text

    # ---- files ------------------------------------------------------------------------------------------
    async def fetch_file(self, bot: MultimodalTelegramOutput, file: TelegramFile) -> AttachmentRef:
        """Download a Telegram file through the Bot API server into the attachment store.

        The declared size is checked before ``getFile``, the size ``getFile`` reports before the download,
        ``Content-Length`` before the body, and the streamed bytes while reading. The content then decides
        the type (a ``.jpg`` document holding text is refused).

        Raises:
            AttachmentError: ``too_large`` (declared or streamed bytes over the limit), ``fetch_failed``
                (Bot API error, HTTP status, timeout, unusable file path), and everything
                :meth:`AttachmentStore.save_stream` raises.
        """
        limits = self.store.limits
        cap = limits.max_bytes_for(file.kind)
        self._check_size(file.file_size, cap, file.kind, "the update")
        try:
            info = await bot.request("getFile", {"file_id": file.file_id})
        except (TelegramAPIError, aiohttp.ClientError, asyncio.TimeoutError) as error:
            code = "too_large" if "too big" in str(error).lower() else "fetch_failed"
            raise AttachmentError(
                code,
                self._redact(f"getFile for a {file.field}: {type(error).__name__}: {error}")[:300],
                attachment_type=file.kind,
                limits=limits,
            ) from None
        info = info if isinstance(info, dict) else {}
        reported_size = _as_int(info.get("file_size"))
        self._check_size(reported_size, cap, file.kind, "getFile")
        file_path = info.get("file_path")
        if not _usable_file_path(file_path):
            raise AttachmentError(
                "fetch_failed",
                "getFile returned no relative file_path (a Bot API server in --local mode is not supported)",
                attachment_type=file.kind,
                limits=limits,
            )
        name = file.name or file_path.rsplit("/", 1)[-1]
        return await self._download(bot, file_path, file, name, cap, reported_size or file.file_size)

    def _check_size(self, size: Optional[int], cap: int, kind: str, source: str) -> None:
        if size is not None and size > cap:
            raise AttachmentError(
                "too_large",
                f"{source} declares {size} bytes > {cap} bytes; not downloaded",
                attachment_type=kind,
                limits=self.store.limits,
            )

    async def _download(
        self,
        bot: MultimodalTelegramOutput,
        file_path: str,
        file: TelegramFile,
        name: str,
        cap: int,
        expected_size: Optional[int],
    ) -> AttachmentRef:
        limits = self.store.limits
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
                self._check_size(download.content_length, cap, file.kind, "Content-Length")
                chunks = _stream_from_loop(download.content, loop, deadline, cap, file.kind, limits)
                return await loop.run_in_executor(
                    None,
                    partial(
                        self.store.save_stream,
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


def _stream_from_loop(
    content: aiohttp.StreamReader,
    loop: asyncio.AbstractEventLoop,
    deadline: float,
    cap: int,
    kind: str,
    limits: AttachmentLimits,
) -> Iterator[bytes]:
    """Chunks of an aiohttp body for a worker thread: each read runs on the event loop, the thread waits.

    This lets :meth:`AttachmentStore.save_stream` (blocking: disk writes, ffprobe) run off the event loop
    while the body is still streamed. Stops with ``too_large`` past ``cap`` bytes and ``fetch_failed`` past
    ``deadline`` (``time.monotonic()`` seconds) or on any read error.
    """
    received = 0
    too_slow = f"download took longer than {limits.url_timeout_s:g} s"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AttachmentError("fetch_failed", too_slow, attachment_type=kind, limits=limits)
        future = asyncio.run_coroutine_threadsafe(content.read(_CHUNK_BYTES), loop)
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
