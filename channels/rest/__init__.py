"""`MultimodalRestInput`: the REST API for text, photos and voice notes, and the web chat page.

Rasa mounts it under ``/webhooks/multimodal/`` when credentials.yml names
``channels.rest.MultimodalRestInput``:

- ``GET  /`` health, ``{"status": "ok"}``;
- ``POST /session`` a new web conversation id, ``{"sender": "web:<random>.<signature>"}``;
- ``POST /webhook`` one user message as ``application/json``, ``multipart/form-data`` or a URL-encoded form;
  the answer is the bot's messages as Rasa's REST channel gives them (a JSON list of ``{"recipient_id",
  "text", "buttons", "image", "custom", "attachment"}``, ``recipient_id`` being the ``sender`` as sent);
- ``GET  /files/<id>`` a stored upload by its SHA-256 id, with its stored MIME type;
- ``GET  /chat`` the web chat page (``chat.js`` and ``chat.css`` beside it);
- ``GET  /widget.js`` the one-script-tag embed: a floating button that opens the chat page in an iframe.

Uploads are checked and stored by :class:`media.AttachmentStore`; the message that reaches Rasa carries
references only: ``metadata = {"attachments": [ref.to_metadata(), ...]}``. Attachments that the store refuses
(damaged, too large, not a photo or voice note, unknown id) do not fail a message that still has text or
another good attachment: they are listed in ``metadata["attachment_problems"]`` as ``{"type", "code",
"message"}`` and the channel puts their friendly message first in the reply. A message left with nothing
usable is answered by the channel itself (HTTP 200, the friendly message as a bot message). Malformed requests
get a 4xx answer ``{"error": {"code", "message"}}``.

Who may talk: a ``sender`` the server issued and signed (``POST /session``; Rasa gets ``web:<random>``), or
any ``sender`` from a caller with ``Authorization: Bearer <CHAT_API_TOKEN>`` (Rasa gets ``api:<sender>``).
Anything else is refused (403 ``unknown_sender``). An ``X-Customer-Token`` header with a valid customer token
(a JWT signed with ``CUSTOMER_TOKEN_SECRET``) adds ``metadata["customer"] = {"id": <int>}``.

Configuration (credentials.yml, every key optional; secrets are never written there; all keys in
:class:`~channels.rest.settings.ChannelSettings`)::

    channels.rest.MultimodalRestInput:
      token_env: CHAT_API_TOKEN     # env variable holding the bearer token; unset or empty = no API callers
      max_body_bytes: 33554432      # bytes per request, checked from Content-Length and while reading
      message_rate_per_minute: 30   # messages per minute per sender; 0 = off
      message_burst: 10
      address_message_rate_per_minute: 120  # messages per minute per client address, before the body is read
      address_message_burst: 60
      upload_rate_per_minute: 20    # attachments per minute per sender; 0 = off
      upload_burst: 20              # attachments a sender may send at once after being idle
      address_rate_per_minute: 120  # attachments per minute per client address (all senders); 0 = off
      address_burst: 60

The modules: ``settings`` (credentials.yml keys), ``errors`` (the 4xx answer), ``auth`` (bearer token),
``senders`` (signed web conversation ids), ``customer`` (customer tokens), ``body`` (reading under the byte
cap), ``forms`` (multipart framing by python-multipart), ``parsing`` (JSON and form bodies to a checked
message), ``limits`` (message and upload rate limits), ``web`` (files by id, chat page, widget) and
``channel`` (the input channel and its routes).
"""
from __future__ import annotations

from channels.rest.channel import CHANNEL_NAME, MultimodalRestInput
from channels.rest.errors import ChannelError
from channels.rest.parsing import IncomingMessage, RequestParser, Upload, looks_like_base64
from channels.rest.settings import ChannelSettings

__all__ = [
    "CHANNEL_NAME",
    "ChannelError",
    "ChannelSettings",
    "IncomingMessage",
    "MultimodalRestInput",
    "RequestParser",
    "Upload",
    "looks_like_base64",
]
