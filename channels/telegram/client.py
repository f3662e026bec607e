"""Talking to the Telegram Bot API: where the server is, the bot client, and the errors a call may raise.

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
``secret_token``          ``TELEGRAM_SECRET_TOKEN``   1-256 characters ``A-Z a-z 0-9 _ -`` (required); every
                                                      update must carry it in ``X-Telegram-Bot-Api-Secret-
                                                      Token`` (403 otherwise) and it is sent with setWebhook
``api_url``               ``TELEGRAM_API_URL``        Bot API server (default ``https://api.telegram.org``)
========================  ==========================  ======================================================
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional, Text, Union
from urllib.parse import urlsplit

import aiohttp
from aiogram import Bot
from aiogram.bot.api import TELEGRAM_PRODUCTION, TelegramAPIServer
from aiogram.utils.exceptions import ChatNotFound, TelegramAPIError
from rasa.core.channels.telegram import TelegramOutput
from rasa.shared.exceptions import RasaException

from channels.senders import TELEGRAM, platform_id

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.telegram.org"
#: Credential key -> environment variable read when the key is missing or empty.
ENV_VARS = {
    "access_token": "TELEGRAM_ACCESS_TOKEN",
    "verify": "TELEGRAM_VERIFY",
    "webhook_url": "TELEGRAM_WEBHOOK_URL",
    "secret_token": "TELEGRAM_SECRET_TOKEN",
    "api_url": "TELEGRAM_API_URL",
}
#: What a Bot API call may raise: an error answer, a transport failure, a timeout.
BOT_API_ERRORS = (TelegramAPIError, aiohttp.ClientError, asyncio.TimeoutError)


class MultimodalTelegramOutput(TelegramOutput):
    """Rasa's ``TelegramOutput`` (text, buttons, images, custom JSON) talking to a configurable server.

    Rasa sends replies to the conversation's sender id, ``telegram:<chat id>``; every Bot API call goes
    through :meth:`request`, which turns a ``chat_id`` of that form back into the chat id (a bare chat id, as
    the channel's own replies use, passes unchanged).

    Args:
        access_token: Bot token from @BotFather.
        server: Bot API server; the production server by default.
    """

    def __init__(self, access_token: Optional[Text], server: TelegramAPIServer = TELEGRAM_PRODUCTION) -> None:
        Bot.__init__(self, access_token, server=server)

    async def request(
        self, method: str, data: Optional[Dict[str, Any]] = None, files: Optional[Dict] = None, **kwargs: Any
    ) -> Union[List, Dict, bool]:
        """aiogram's Bot API call, with a namespaced ``chat_id`` turned into Telegram's chat id.

        Raises:
            ChatNotFound: for a recipient of another channel (``web:...``, ``messenger:...``), not sent.
            TelegramAPIError, aiohttp.ClientError, asyncio.TimeoutError: as aiogram.
        """
        if data is not None and isinstance(data.get("chat_id"), str):
            chat = platform_id(TELEGRAM, data["chat_id"])
            if chat is None:
                logger.error("Telegram %s not sent: the recipient belongs to another channel", method)
                raise ChatNotFound("the recipient is not a Telegram chat")
            data = {**data, "chat_id": chat}
        return await super().request(method, data, files, **kwargs)


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
