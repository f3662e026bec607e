"""Custom Rasa input channels (multimodal REST and web page, Telegram, Messenger).

Each channel stores photos and voice notes through `media.attachments` and hands Rasa a reference in
the message metadata, never the bytes; `credentials.yml` names the channel classes.
"""
from __future__ import annotations

#: Reply to a message whose content no channel can use (stickers, PDFs and other documents, locations, ...).
UNSUPPORTED_CONTENT_REPLY = (
    "Sorry, I can't open that kind of message. I can read text, photos and voice notes — "
    "could you type your question, or send a photo or a voice note instead?"
)
