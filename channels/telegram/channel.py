"""``MultimodalTelegramInput``: the Telegram webhook, from an update to at most one Rasa message.

Each update is read by :mod:`channels.telegram.updates` (what the message becomes), its photo or voice note is
downloaded by :mod:`channels.telegram.files` into the attachment store, and Rasa gets one message whose
metadata carries ``{"attachments": [ref.to_metadata()]}`` (an id, never a URL: Telegram file URLs contain the
bot token). A refused file is answered with the store's friendly message (``AttachmentError.user_message``)
and the bot is not called. Settings and the Bot API client are in :mod:`channels.telegram.client`.
"""
from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Sequence, Text
from urllib.parse import urlsplit

from aiogram.bot.api import check_token
from aiogram.utils.exceptions import ValidationError
from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.telegram import TelegramInput
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.common import (
    UNSUPPORTED_CONTENT_REPLY,
    URL_SAFE_TOKEN_RE,
    SenderThrottle,
    UsesAttachmentStore,
    health,
    install_server_guards,
    secrets_match,
    settings_from,
    tracker_store_of,
    webhook_payload,
    with_attachments,
)
from channels.dedupe import hand_over_once
from channels.senders import TELEGRAM, namespaced
from channels.telegram.client import BOT_API_ERRORS, ENV_VARS, MultimodalTelegramOutput, api_server
from channels.telegram.files import fetch_file
from channels.telegram.updates import TelegramFile, as_int, as_str, chat_id, plan_message
from media import AttachmentError, AttachmentRef, AttachmentStore, log_rejection
from stores.replies import ReplyLedger

logger = logging.getLogger(__name__)

SECRET_TOKEN_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: Update types requested from Telegram with setWebhook; everything else is not even sent.
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")


@dataclass(frozen=True)
class _Turn:
    """Where the outcome of one update goes: the bot client (replies), Rasa's handler and its metadata."""

    bot: MultimodalTelegramOutput
    on_new_message: Callable[[UserMessage], Awaitable[Any]]
    metadata: Optional[Dict[Text, Any]]
    #: ``telegram-<update_id>``: Rasa's message id, the key that keeps a re-delivered update from being
    #: handled twice (``None`` for an update without an id).
    message_id: Optional[str] = None
    tracker_store: Any = None


class MultimodalTelegramInput(UsesAttachmentStore, TelegramInput):
    """Telegram webhook channel that passes photos and voice notes to Rasa as stored attachments.

    Routes (under ``/webhooks/telegram``): ``GET /`` health, ``POST /webhook`` updates.

    Args:
        access_token: Bot token from @BotFather.
        verify: Bot user name; when set, updates are dropped unless the token belongs to this bot.
        webhook_url: Public ``https://`` URL of ``/webhooks/telegram/webhook``; registered at server start.
        debug_mode: Kept for Rasa's signature; errors are logged, never raised to Telegram (a 5xx would
            make Telegram deliver the same update again).
        secret_token: The ``X-Telegram-Bot-Api-Secret-Token`` header every update must carry (403 otherwise);
            required, since without it anyone who knows the webhook URL could post updates.
        api_url: Bot API server base URL (default ``https://api.telegram.org``).
        store: Attachment store; the process-wide :func:`media.default_store` by default.
        throttle: Messages per chat (:class:`channels.common.SenderThrottle`; default 30 a minute, bursts of
            10), checked before anything is downloaded.

    Raises:
        RasaException: for a missing or malformed token, a missing or malformed secret, a bad ``api_url`` or
            ``webhook_url``, or a malformed ``NLU_*`` setting of the worker pool it installs
            (:func:`channels.common.install_server_guards`).
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
        throttle: Optional[SenderThrottle] = None,
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
        if secret_token is None:
            raise RasaException(
                f"The Telegram channel needs {ENV_VARS['secret_token']}: without it anyone who knows the "
                "webhook URL can post updates. Choose one with python -c \"import secrets; "
                "print(secrets.token_urlsafe(32))\" (see docs/channels.md)"
            )
        if not URL_SAFE_TOKEN_RE.fullmatch(secret_token):
            raise RasaException(
                f"{ENV_VARS['secret_token']} must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
            )
        self.secret_token = secret_token
        self.server = api_server(api_url)
        self._store = store
        self.throttle = throttle or SenderThrottle()
        self._bot: Optional[MultimodalTelegramOutput] = None
        self._verified: Optional[bool] = None
        install_server_guards(type(self).__name__)
        #: Keeps an update Telegram delivers again from being handled twice (Redis with REDIS_URL).
        self.ledger: Optional[ReplyLedger] = ReplyLedger.from_environ()

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        """Build the channel from ``credentials.yml`` keys, else ``TELEGRAM_*`` variables (an empty entry is
        fine: see :func:`channels.common.settings_from`).

        Raises:
            RasaException: when no bot token or no secret token is set, and as the constructor.
        """
        settings = settings_from(credentials, ENV_VARS, os.environ)
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

        telegram_webhook.add_route(health, "/", methods=["GET"], name="health")

        @telegram_webhook.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            if not self.secret_matches(request.headers.get(SECRET_TOKEN_HEADER)):
                logger.warning("Telegram update refused: missing or wrong %s header", SECRET_TOKEN_HEADER)
                return response.text("forbidden", status=403)
            update = webhook_payload(request.body, "Telegram update")
            if isinstance(update, HTTPResponse):
                return update
            verified = await self._token_belongs_to_verified_bot(bot)
            if verified is None:  # getMe failed: let Telegram deliver the update again later
                return response.text("Bot API unreachable", status=503)
            if not verified:
                return response.text("failed")
            await self.handle_update(
                update, bot, on_new_message, self.get_metadata(request), tracker_store=tracker_store_of(request)
            )
            return response.text("success")

        return telegram_webhook

    def secret_matches(self, header: Optional[str]) -> bool:
        """Whether a request's secret-token header equals the configured secret (constant-time)."""
        return secrets_match(header, self.secret_token)

    async def set_webhook(self, bot: MultimodalTelegramOutput) -> bool:
        """Register :attr:`webhook_url` (with the secret token and :data:`ALLOWED_UPDATES`) with Telegram.

        Returns:
            Whether Telegram accepted it; a failure is logged and the server keeps running.
        """
        payload: Dict[str, Any] = {
            "url": self.webhook_url,
            "allowed_updates": json.dumps(list(ALLOWED_UPDATES)),
            "secret_token": self.secret_token,
        }
        try:
            await bot.request("setWebhook", payload)
        except BOT_API_ERRORS as error:
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
            except BOT_API_ERRORS as error:
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
        tracker_store: Any = None,
    ) -> None:
        """Turn one Telegram update into at most one Rasa message, or a reply, or nothing. Never raises.

        An update delivered again (same ``update_id``: Telegram retries a slow webhook) is not handled twice
        (:func:`channels.dedupe.hand_over_once`).

        Args:
            update: The decoded ``Update`` object.
            bot: Output channel for replies and Bot API calls.
            on_new_message: Rasa's message handler.
            metadata: Channel metadata to pass on (Rasa's ``get_metadata``); attachments are added to it.
            tracker_store: Rasa's tracker store (finds an update a killed server had handled).
        """
        update_id = as_int(update.get("update_id"))
        message_id = f"telegram-{update_id}" if update_id is not None else None
        turn = _Turn(bot, on_new_message, metadata, message_id, tracker_store)
        try:
            if isinstance(update.get("callback_query"), Mapping):
                await self._handle_callback(update["callback_query"], turn)
            elif isinstance(update.get("message"), Mapping):
                await self._handle_message(update["message"], turn)
            elif isinstance(update.get("edited_message"), Mapping):
                edited = update["edited_message"]
                if as_str(edited.get("text")) is None:
                    logger.debug("Telegram edit of a caption or media ignored")
                    return
                await self._handle_message(edited, turn)
            else:
                kinds = sorted(key for key in update if key != "update_id")[:5]
                logger.debug("Telegram update of kind %s ignored", kinds)
        except Exception:  # one bad update must not stop the channel, nor make Telegram resend it
            logger.exception("Telegram update %s could not be handled", as_int(update.get("update_id")))

    async def _handle_callback(self, query: Mapping[str, Any], turn: _Turn) -> None:
        query_id = as_str(query.get("id"))
        if query_id is not None:
            try:  # stops the button's loading indicator; cosmetic, so failures are only logged
                await turn.bot.request("answerCallbackQuery", {"callback_query_id": query_id})
            except BOT_API_ERRORS as error:
                logger.info("Telegram answerCallbackQuery failed: %s", type(error).__name__)
        to_chat = chat_id(query.get("message"))
        if to_chat is None and isinstance(query.get("from"), Mapping):
            to_chat = as_int(query["from"].get("id"))
        data = as_str(query.get("data"))
        if to_chat is None or data is None:
            logger.debug("Telegram callback query without chat or data ignored")
            return
        if await self._over_limit(turn.bot, to_chat):
            return
        await self._forward(turn, to_chat, data, [])

    async def _handle_message(self, message: Mapping[str, Any], turn: _Turn) -> None:
        to_chat = chat_id(message)
        if to_chat is None:
            logger.debug("Telegram message without a chat id ignored")
            return
        if await self._over_limit(turn.bot, to_chat):
            return
        limits = self.store.limits
        plan = plan_message(message, limits.image_max_bytes, limits.image_max_pixels)
        if plan.unsupported is not None:
            logger.info("Telegram %s cannot be read by the assistant: polite reply sent", plan.unsupported)
            await self._reply(turn.bot, to_chat, UNSUPPORTED_CONTENT_REPLY)
            return
        if plan.error is not None:
            await self._refuse(turn.bot, to_chat, plan.error)
            return
        refs: List[AttachmentRef] = []
        if plan.file is not None:
            try:
                refs.append(await self.fetch_file(turn.bot, plan.file))
            except AttachmentError as error:
                await self._refuse(turn.bot, to_chat, error)
                return
        if not plan.text and not refs:
            logger.debug("Telegram service message ignored")
            return
        await self._forward(turn, to_chat, plan.text, refs)

    async def _forward(self, turn: _Turn, to_chat: int, text: str, refs: Sequence[AttachmentRef]) -> None:
        user_message = UserMessage(
            text,
            turn.bot,
            namespaced(TELEGRAM, str(to_chat)),  # replies: MultimodalTelegramOutput strips the namespace
            input_channel=self.name(),
            metadata=with_attachments(turn.metadata, refs),
            message_id=turn.message_id,
        )
        await hand_over_once(
            user_message,
            turn.on_new_message,
            self.ledger,
            turn.tracker_store,
            functools.partial(self._reply, turn.bot, to_chat),
            "Telegram",
        )

    async def _over_limit(self, bot: MultimodalTelegramOutput, to_chat: int) -> bool:
        """Whether the chat is over its message limit (then it is told once and nothing else happens)."""
        reply = self.throttle.check(namespaced(TELEGRAM, str(to_chat)))
        if reply:
            await self._reply(bot, to_chat, reply)
        return reply is not None

    async def _reply(self, bot: MultimodalTelegramOutput, to_chat: int, text: str) -> None:
        try:
            await bot.send_text_message(str(to_chat), text)
        except BOT_API_ERRORS as error:
            detail = self._redact(f"{type(error).__name__}: {error}")
            logger.warning("Telegram reply could not be sent: %s", detail)

    async def _refuse(self, bot: MultimodalTelegramOutput, to_chat: int, error: AttachmentError) -> None:
        await self._reply(bot, to_chat, log_rejection(error, self._redact, logger=logger).user_message)

    def _redact(self, text: str) -> str:
        """``text`` without the bot token (aiohttp errors may quote a request URL)."""
        return text.replace(self.access_token, "<token>") if self.access_token else text

    # ---- files ------------------------------------------------------------------------------------------
    async def fetch_file(self, bot: MultimodalTelegramOutput, file: TelegramFile) -> AttachmentRef:
        """Download a Telegram file into the store: :func:`channels.telegram.files.fetch_file`."""
        return await fetch_file(bot, self.store, file, redact=self._redact)
