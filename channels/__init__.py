"""Custom Rasa input channels (multimodal REST and web page, Telegram, Messenger).

Each channel stores photos and voice notes through the `media` package and hands Rasa a reference in the
message metadata, never the bytes; `credentials.yml` names the channel classes. What the channels share
(replies, settings from the environment, secrets, metadata, the store) is in `channels.common`.
"""
from __future__ import annotations

from channels.common import UNSUPPORTED_CONTENT_REPLY

__all__ = ["UNSUPPORTED_CONTENT_REPLY"]
