"""One answer per message, however often it is delivered: the channels' use of :class:`stores.replies.ReplyLedger`.

:func:`handle_once` wraps the handling of a message that carries an id (the REST channel's ``message_id``,
Telegram's ``update_id``, Messenger's ``mid``):

1. claim ``<conversation>:<id>`` in the ledger; a stored reply is returned as it was the first time; a claim
   another server holds is waited for (it ends with a reply, or lapses when that server died);
2. with the claim, look in the tracker store for a user event with this id: a server killed after saving the
   turn but before storing the reply left one, and the reply is rebuilt from the bot events after it;
3. otherwise handle the message (the id goes into Rasa's ``UserMessage.message_id``, so step 2 can find it),
   store the reply, and free the claim if handling failed so the next retry is handled again.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.shared.core.events import BotUttered, UserUttered

from channels.common import TROUBLE_REPLY
from stores.errors import is_store_outage
from stores.replies import ClaimState, ReplyLedger

logger = logging.getLogger(__name__)

#: Seconds a duplicate waits for the copy another server is handling before it is told to try again.
DUPLICATE_WAIT_S = 30.0  # well under Sanic's response timeout (60 s), so the client gets this answer

Replies = List[Dict[str, Any]]


class StillHandling(Exception):
    """A copy of this message is still being handled elsewhere after :data:`DUPLICATE_WAIT_S` seconds."""


def ledger_key(sender_id: str, message_id: str) -> str:
    """The reply ledger's key of a message: ``<len(sender_id)>:<sender_id>:<message_id>``.

    The length prefix keeps it unambiguous although both parts may contain ``:`` (``api:a`` + ``b:c`` and
    ``api:a:b`` + ``c`` are different keys).
    """
    return f"{len(sender_id)}:{sender_id}:{message_id}"


def bot_replies(bot: BotUttered, recipient_id: str) -> Dict[str, Any]:
    """The reply dict a ``CollectingOutputChannel`` produced for ``bot`` (keys with ``None`` left out)."""
    data = bot.data or {}
    return CollectingOutputChannel._message(
        recipient_id,
        text=bot.text,
        image=data.get("image"),
        buttons=data.get("buttons") or data.get("quick_replies"),
        attachment=data.get("attachment"),
        custom=data.get("custom") or data.get("elements"),
    )


async def replies_in_tracker(tracker_store: Any, sender_id: str, message_id: str) -> Optional[Replies]:
    """The replies already given to ``message_id``, rebuilt from the tracker store, or ``None`` if unseen.

    Args:
        tracker_store: Rasa's tracker store (``agent.tracker_store``), or ``None`` (then: unseen).
        sender_id: The conversation id as Rasa knows it.
        message_id: The client's id, as stored in the user event.
    """
    if tracker_store is None:
        return None
    quick_check = getattr(tracker_store, "has_user_message", None)
    if quick_check is not None and not await quick_check(sender_id, message_id):
        return None  # the usual case, answered by one indexed query instead of reading the whole tracker
    # every session: a retry may come after the conversation started a new one
    tracker = await tracker_store.retrieve_full_tracker(sender_id)
    if tracker is None:
        return None
    replies: Optional[Replies] = None
    for event in tracker.events:
        if isinstance(event, UserUttered):
            if replies is not None:
                break
            if event.message_id == message_id:
                replies = []
        elif replies is not None and isinstance(event, BotUttered):
            replies.append(bot_replies(event, sender_id))
    return replies


async def handle_once(
    ledger: ReplyLedger,
    tracker_store: Any,
    sender_id: str,
    message_id: str,
    handle: Callable[[], Awaitable[Replies]],
    wait_s: float = DUPLICATE_WAIT_S,
) -> Replies:
    """Handles a message once per ``(sender_id, message_id)``; a repeat gets the first reply.

    Args:
        ledger: The reply ledger (Redis or memory).
        tracker_store: Rasa's tracker store, for a turn saved by a server that died before storing its reply.
        sender_id: The conversation id as Rasa knows it (namespaced).
        message_id: The message's id from the client or platform.
        handle: Handles the message and returns its replies (JSON-serialisable dicts).
        wait_s: Longest wait for a copy being handled elsewhere.

    Returns:
        The replies: fresh, stored, or rebuilt from the tracker.

    Raises:
        StillHandling: when a copy is still being handled after ``wait_s`` seconds.
        Exception: whatever ``handle`` or the stores raise (the claim is freed first).
    """
    key = ledger_key(sender_id, message_id)
    claim = await ledger.claim(key)
    if claim.state is ClaimState.BUSY:
        logger.info("Message %.64s of %.40s is being handled elsewhere; waiting", message_id, sender_id)
        claim = await ledger.wait(key, wait_s)
    if claim.state is ClaimState.DONE:
        logger.info("Message %.64s of %.40s was answered before; sending that answer again", message_id, sender_id)
        return list(claim.reply or [])
    if claim.state is ClaimState.BUSY:
        raise StillHandling(key)
    try:
        async with ledger.heartbeat(key, claim.token):
            replies = await replies_in_tracker(tracker_store, sender_id, message_id)
            if replies is not None:
                logger.info("Message %.64s of %.40s is already in its conversation; not handled again",
                            message_id, sender_id)
            else:
                replies = await handle()
    except BaseException:
        await ledger.abandon(key, claim.token)
        raise
    await ledger.complete(key, claim.token, replies)
    return replies


async def hand_over_once(
    message: UserMessage,
    on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ledger: Optional[ReplyLedger],
    tracker_store: Any,
    send_text: Callable[[str], Awaitable[Any]],
    channel: str,
) -> None:
    """For the platforms (Telegram, Messenger): passes ``message`` to Rasa once per platform message id. Never
    raises.

    A delivery seen before, or being handled elsewhere, is dropped (the platform's retry of a slow answer); a
    store outage gets :data:`~channels.common.TROUBLE_REPLY` through ``send_text`` and frees the id, so the
    customer can send the message again.

    Args:
        message: The message for Rasa; its ``message_id`` is the platform's id (``None``: no de-duplication).
        on_new_message: Rasa's message handler (replies go out through the message's output channel).
        ledger: The reply ledger; ``None`` turns de-duplication off.
        tracker_store: Rasa's tracker store (see :func:`handle_once`).
        send_text: Sends a text to the message's sender (for the outage reply).
        channel: The channel's name, for the log.
    """

    async def handle() -> Replies:
        await on_new_message(message)
        return []  # the replies went out to the platform already

    try:
        if ledger is None or not message.message_id:
            await handle()
        else:
            await handle_once(ledger, tracker_store, message.sender_id, message.message_id, handle, wait_s=0)
    except StillHandling:
        logger.info("%s delivery %.64s is being handled elsewhere; this copy is dropped", channel, message.message_id)
    except Exception as error:  # noqa: BLE001 - one failed message must not stop the channel
        if not is_store_outage(error):
            logger.exception("Rasa failed on a %s message", channel)
            return
        logger.error("%s message not handled: a store is unreachable (%s)", channel, type(error).__name__)
        try:
            await send_text(TROUBLE_REPLY)
        except Exception as send_error:  # noqa: BLE001
            logger.warning("%s outage reply not sent: %s", channel, type(send_error).__name__)
