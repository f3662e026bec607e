"""Telegram input channel that carries photos and voice notes: ``channels.telegram.MultimodalTelegramInput``.

Rasa's own ``TelegramInput`` passes text, button presses and locations on and silently drops everything
else. This subclass maps each Telegram update to at most one Rasa message (the table is in
:mod:`channels.telegram.updates`), downloads a photo or voice note through the Bot API into the attachment
store (:mod:`channels.telegram.files`) and passes its id, never its URL, in ``metadata["attachments"]``.

The modules: ``updates`` (what an update becomes; no network), ``files`` (getFile and the streamed download),
``client`` (settings, the Bot API server and client) and ``channel`` (the input channel and its webhook).
"""
from __future__ import annotations

from channels.common import UNSUPPORTED_CONTENT_REPLY
from channels.telegram.channel import ALLOWED_UPDATES, SECRET_TOKEN_HEADER, MultimodalTelegramInput
from channels.telegram.client import DEFAULT_API_URL, ENV_VARS, MultimodalTelegramOutput, api_server
from channels.telegram.updates import (
    START_COMMAND_TEXT,
    MessagePlan,
    TelegramFile,
    command_text,
    plan_message,
    select_photo,
)

__all__ = [
    "ALLOWED_UPDATES",
    "DEFAULT_API_URL",
    "ENV_VARS",
    "SECRET_TOKEN_HEADER",
    "START_COMMAND_TEXT",
    "UNSUPPORTED_CONTENT_REPLY",
    "MessagePlan",
    "MultimodalTelegramInput",
    "MultimodalTelegramOutput",
    "TelegramFile",
    "api_server",
    "command_text",
    "plan_message",
    "select_photo",
]
