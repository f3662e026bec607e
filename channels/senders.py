"""Sender ids namespaced by channel, so that no channel can name another channel's conversation.

Rasa keys a conversation (its tracker) by the sender id alone. Each channel therefore prefixes the id it hands
Rasa with its own namespace: ``web:<random>`` (web chat, issued and signed by the REST channel),
``api:<caller's id>`` (REST callers with the bearer token), ``telegram:<chat id>``, ``messenger:<page-scoped
id>``. A REST caller that sends ``telegram:123`` as its sender gets ``api:telegram:123`` (with the bearer
token) or a refusal (without it), never the Telegram conversation.

Replies go the other way: Rasa sends them to the tracker's sender id, so each output channel turns the
namespaced id back into the platform's own id with :func:`platform_id` before it calls the platform.
Actions never parse sender ids.
"""
from __future__ import annotations

from typing import Optional

#: Web chat visitors (ids issued by ``POST /webhooks/multimodal/session``).
WEB = "web"
#: Server-to-server callers of the REST channel that present the bearer token.
API = "api"
#: Telegram chats.
TELEGRAM = "telegram"
#: Messenger users (page-scoped ids).
MESSENGER = "messenger"
#: Every namespace a channel of this project gives out.
NAMESPACES = (WEB, API, TELEGRAM, MESSENGER)


def namespaced(namespace: str, local_id: str) -> str:
    """The sender id Rasa gets: ``<namespace>:<local_id>``.

    Args:
        namespace: One of :data:`NAMESPACES`.
        local_id: The platform's id (a Telegram chat id, a Messenger PSID, the API caller's id).

    Raises:
        ValueError: for a namespace that is not one of :data:`NAMESPACES`.
    """
    if namespace not in NAMESPACES:
        raise ValueError(f"unknown sender namespace {namespace!r}")
    return f"{namespace}:{local_id}"


def platform_id(namespace: str, recipient_id: str) -> Optional[str]:
    """The platform's own id of a reply's recipient, or ``None`` when it belongs to another channel.

    Args:
        namespace: The output channel's namespace (``telegram``, ``messenger``).
        recipient_id: Rasa's recipient: a namespaced sender id (``telegram:123``), or a bare platform id as
            the channels' own replies use it (``123``).

    Returns:
        ``"123"`` for ``telegram:123`` and for ``123``; ``None`` for ``web:...``, ``api:...`` and the other
        namespaces of :data:`NAMESPACES`, which no platform id starts with.
    """
    prefix, separator, rest = recipient_id.partition(":")
    if not separator:
        return recipient_id
    if prefix == namespace:
        return rest
    if prefix in NAMESPACES:
        return None
    return recipient_id
