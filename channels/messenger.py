"""Messenger input channel with photos and voice clips: ``channels.messenger.MultimodalMessengerInput``.

Rasa's own ``FacebookInput`` turns an attachment into its URL as message text, reads only the first event
of a webhook delivery and accepts the old SHA-1 signature. This subclass maps every messaging event of a
delivery to at most one Rasa message:

=====================================  =====================================================================
event                                  what reaches Rasa (``UserMessage``)
=====================================  =====================================================================
``message.text``                       the text
``message.quick_reply.payload``        the payload
``postback.payload``                   the payload
``message.attachments``                text (or ``""``) + every ``image``/``audio`` attachment, downloaded
  of type ``image``/``audio``          with :meth:`AttachmentStore.fetch_url` and passed as
                                       ``metadata["attachments"]`` (ids, never URLs); one message, however
                                       many attachments
attachments of other types (``file``,  nothing; the customer gets ``channels.UNSUPPORTED_CONTENT_REPLY``.
``location``, ``fallback``, ``video``, Stickers (an ``image`` with a ``sticker_id``) count as unsupported
``template``, ...)
echoes, deliveries, reads, reactions   nothing
=====================================  =====================================================================

Rasa gets the sender as ``messenger:<page-scoped id>`` (:mod:`channels.senders`); replies go through
:class:`PageClient`, which turns that back into the PSID for the Send API.

An attachment that cannot be stored (host not allowed, private address, too large, damaged, ...) is
answered with its :attr:`AttachmentError.user_message`. When at least one attachment was stored the
message goes on with those; when none was, the bot is not called and only the replies are sent.

:meth:`AttachmentStore.fetch_url` does every check a user-supplied URL needs: ``https`` on port 443, a host
in the allow-list (``ATTACHMENT_ALLOWED_HOSTS``; by default ``*.fbcdn.net`` and ``*.fbsbx.com``, where
Messenger keeps images and voice clips), public addresses only, redirects re-checked, size and time caps.
It runs in a worker thread so the server keeps serving meanwhile.

Requests must carry ``X-Hub-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the raw body with the app
secret (compared in constant time); anything else is answered 403 before the body is parsed. The legacy
SHA-1 ``X-Hub-Signature`` is not accepted.

Settings (credential keys in ``credentials.yml`` win over environment variables; secrets belong in the
environment):

======================  ===============================  ==================================================
credential key          environment variable             meaning
======================  ===============================  ==================================================
``verify``              ``MESSENGER_VERIFY_TOKEN``       the verify token typed into the app's webhook form
``secret``              ``MESSENGER_APP_SECRET``         the app secret (App settings → Basic)
``page-access-token``   ``MESSENGER_PAGE_ACCESS_TOKEN``  the page access token used to send replies
======================  ===============================  ==================================================
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import functools
from functools import partial
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Text, Tuple

import requests
from fbmessenger import MessengerClient
from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.facebook import FacebookInput, Messenger, MessengerBot
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from assistant.keys import ATTACHMENT_TYPES
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
from channels.senders import MESSENGER, namespaced, platform_id
from media import AttachmentError, AttachmentRef, AttachmentStore, log_rejection
from stores.replies import ReplyLedger

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
#: Seconds one Graph API call (reply, typing indicator) may take before it is given up.
GRAPH_TIMEOUT_S = 10.0
#: Attachment types downloaded and passed on; every other type gets the polite reply.
SUPPORTED_TYPES = ATTACHMENT_TYPES

#: Credential key -> environment variable read when the key is missing or empty.
ENV_VARS = {
    "verify": "MESSENGER_VERIFY_TOKEN",
    "secret": "MESSENGER_APP_SECRET",
    "page-access-token": "MESSENGER_PAGE_ACCESS_TOKEN",
}


class _GraphSession(requests.Session):
    """A requests session whose calls time out after :data:`GRAPH_TIMEOUT_S` seconds unless told otherwise
    (fbmessenger passes ``timeout=None``, which would let a stalled Graph API hang the server)."""

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = GRAPH_TIMEOUT_S
        return super().request(method, url, *args, **kwargs)


class PageClient(MessengerClient):
    """fbmessenger's Send API client, addressing a conversation's sender id ``messenger:<PSID>`` as the PSID.

    Raises (from :meth:`send` and :meth:`send_action`):
        ValueError: for a recipient of another channel (``web:...``, ``telegram:...``); nothing is sent.
    """

    @staticmethod
    def _psid(recipient_id: str) -> str:
        psid = platform_id(MESSENGER, str(recipient_id))
        if psid is None:
            logger.error("Messenger reply not sent: the recipient belongs to another channel")
            raise ValueError("the recipient is not a Messenger user")
        return psid

    def send(self, payload: Any, recipient_id: str, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        return super().send(payload, self._psid(recipient_id), *args, **kwargs)

    def send_action(  # noqa: D102
        self, sender_action: str, recipient_id: str, *args: Any, **kwargs: Any
    ) -> Any:
        return super().send_action(sender_action, self._psid(recipient_id), *args, **kwargs)


def signature_is_valid(app_secret: Optional[str], body: bytes, header: Optional[str]) -> bool:
    """Whether ``header`` is ``sha256=<hex HMAC-SHA256 of body keyed with app_secret>`` (constant-time).

    Args:
        app_secret: The Facebook app secret.
        body: The raw request body, exactly as received.
        header: The ``X-Hub-Signature-256`` header value, or ``None`` when missing.
    """
    if not app_secret or not header:
        return False
    method, separator, given = header.strip().partition("=")
    if not separator or method.lower() != "sha256" or not given:
        return False
    expected = hmac.new(app_secret.encode("utf-8"), body or b"", hashlib.sha256).hexdigest()
    return secrets_match(given.strip().lower(), expected)


# --------------------------------------------------------------------------------------------------------
# Event handling
# --------------------------------------------------------------------------------------------------------
class MultimodalMessenger(Messenger):
    """Rasa's ``Messenger`` event handler, with every event of a delivery read and attachments stored.

    Args:
        page_access_token: Page access token (for the reply client when ``client`` is not given).
        on_new_message: Rasa's message handler.
        store: Where attachments are stored.
        client: The Graph API client for replies; a :class:`PageClient` with the page token when ``None``.
        throttle: Messages per sender, checked before anything is downloaded; none when ``None``.
        ledger: Keeps an event Meta delivers again (same ``mid``) from being handled twice; ``None``: off.
        tracker_store: Rasa's tracker store (finds an event a killed server had handled).
    """

    def __init__(
        self,
        page_access_token: Text,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        store: AttachmentStore,
        client: Optional[MessengerClient] = None,
        throttle: Optional[SenderThrottle] = None,
        ledger: Optional[ReplyLedger] = None,
        tracker_store: Any = None,
    ) -> None:
        super().__init__(page_access_token, on_new_message)
        self.client = client if client is not None else PageClient(page_access_token)
        self.store = store
        self.throttle = throttle
        self.ledger = ledger
        self.tracker_store = tracker_store

    async def handle(self, payload: Dict, metadata: Optional[Dict[Text, Any]]) -> None:
        """Handle every messaging event of a webhook delivery, one after the other. Never raises."""
        entries = payload.get("entry") if isinstance(payload, Mapping) else None
        for entry in entries if isinstance(entries, list) else []:
            events = entry.get("messaging") if isinstance(entry, Mapping) else None
            for event in events if isinstance(events, list) else []:
                sender = self._sender_of(event) if isinstance(event, Mapping) else None
                if sender is None:
                    continue
                self.last_message = dict(event)
                try:
                    if await self._over_limit(event, sender):
                        continue
                    if isinstance(event.get("message"), Mapping):
                        await self.message(self.last_message, metadata)
                    elif isinstance(event.get("postback"), Mapping):
                        await self._handle_postback(event["postback"], metadata)
                    else:
                        logger.debug("Messenger event of kind %s ignored", sorted(event)[:5])
                except Exception:  # one bad event must not cost the others
                    logger.exception("Messenger event could not be handled")

    async def _over_limit(self, event: Mapping[str, Any], sender: str) -> bool:
        """Whether a customer's message or postback is over the sender's limit (told once, then dropped)."""
        message = event.get("message")
        from_customer = isinstance(message, Mapping) and not message.get("is_echo")
        if self.throttle is None or not (from_customer or isinstance(event.get("postback"), Mapping)):
            return False
        reply = self.throttle.check(namespaced(MESSENGER, sender))
        if reply:
            await self._send_text(sender, reply)
        return reply is not None

    @staticmethod
    def _sender_of(event: Mapping[str, Any]) -> Optional[str]:
        sender = event.get("sender")
        sender_id = sender.get("id") if isinstance(sender, Mapping) else None
        return sender_id if isinstance(sender_id, str) and sender_id else None

    async def message(self, message: Dict[Text, Any], metadata: Optional[Dict[Text, Any]]) -> None:
        """Handle one ``message`` event (see the module docstring for the mapping)."""
        content = message["message"]
        if content.get("is_echo"):
            return
        sender_id = self.get_user_id()
        quick_reply = content.get("quick_reply")
        if isinstance(quick_reply, Mapping) and isinstance(quick_reply.get("payload"), str):
            await self._handle_user_message(quick_reply["payload"], sender_id, metadata)
            return
        text = content.get("text") if isinstance(content.get("text"), str) else ""
        attachments = content.get("attachments")
        if not attachments:
            if text:
                await self._handle_user_message(text, sender_id, metadata)
            return
        refs, replies = await self._store_attachments(attachments if isinstance(attachments, list) else [])
        for reply in dict.fromkeys(replies):
            await self._send_text(sender_id, reply)  # each distinct reply once, in order
        if refs:
            await self._handle_user_message(text, sender_id, with_attachments(metadata, refs))

    async def _handle_postback(
        self, postback: Mapping[str, Any], metadata: Optional[Dict[Text, Any]]
    ) -> None:
        payload = postback.get("payload")
        if isinstance(payload, str) and payload:
            await self._handle_user_message(payload, self.get_user_id(), metadata)

    async def _store_attachments(self, attachments: List[Any]) -> Tuple[List[AttachmentRef], List[str]]:
        """Download the supported attachments; returns the stored references and the replies for the rest."""
        limits = self.store.limits
        refs: List[AttachmentRef] = []
        replies: List[str] = []
        if len(attachments) > limits.max_attachments:
            error = AttachmentError("too_many", f"{len(attachments)} attachments", limits=limits)
            replies.append(log_rejection(error, logger=logger).user_message)
            attachments = attachments[: limits.max_attachments]
        loop = asyncio.get_running_loop()
        for attachment in attachments:
            kind, url = self._supported(attachment)
            if kind is None:
                shown = attachment.get("type") if isinstance(attachment, Mapping) else None
                logger.info("Messenger %s attachment cannot be read by the assistant: polite reply sent",
                            shown if isinstance(shown, str) else "unknown")
                replies.append(UNSUPPORTED_CONTENT_REPLY)
                continue
            if url is None:
                detail = f"{kind} attachment without a URL"
                error = AttachmentError("invalid_reference", detail, attachment_type=kind, limits=limits)
                replies.append(log_rejection(error, logger=logger).user_message)
                continue
            try:
                refs.append(await loop.run_in_executor(None, partial(self.store.fetch_url, url)))
            except AttachmentError as error:  # fetch_url logged it; re-worded for the kind expected
                replies.append(error.with_type(kind, limits).user_message)
        return refs, replies

    @staticmethod
    def _supported(attachment: Any) -> Tuple[Optional[str], Optional[str]]:
        """``(kind, url)`` for an image or audio attachment, ``(None, None)`` for anything else."""
        if not isinstance(attachment, Mapping) or attachment.get("type") not in SUPPORTED_TYPES:
            return None, None
        payload = attachment.get("payload")
        payload = payload if isinstance(payload, Mapping) else {}
        if payload.get("sticker_id") is not None:  # the "like" thumb and other stickers are images too
            return None, None
        url = payload.get("url")
        return attachment["type"], url if isinstance(url, str) and url else None

    async def _send_text(self, recipient_id: Text, text: Text) -> None:
        try:
            await MessengerBot(self.client).send_text_message(recipient_id, text)
        except (requests.RequestException, ValueError) as error:
            logger.warning("Messenger reply could not be sent: %s", type(error).__name__)

    async def _send_action(self, out_channel: MessengerBot, recipient_id: Text, action: Text) -> None:
        try:
            await out_channel.send_action(recipient_id, sender_action=action)
        except (requests.RequestException, ValueError) as error:
            logger.info("Messenger sender action %s failed: %s", action, type(error).__name__)

    async def _handle_user_message(
        self, text: Text, sender_id: Text, metadata: Optional[Dict[Text, Any]]
    ) -> None:
        """Pass a message to Rasa between "seen"/"typing" indicators whose failures are only logged."""
        out_channel = MessengerBot(self.client)
        await self._send_action(out_channel, sender_id, "mark_seen")
        await self._send_action(out_channel, sender_id, "typing_on")
        user_message = UserMessage(
            text,
            out_channel,
            namespaced(MESSENGER, sender_id),
            input_channel=self.name(),
            metadata=metadata,
            message_id=self._platform_message_id(),
        )
        try:
            await hand_over_once(
                user_message,
                self.on_new_message,
                self.ledger,
                self.tracker_store,
                functools.partial(self._send_text, sender_id),
                "Messenger",
            )
        finally:
            await self._send_action(out_channel, sender_id, "typing_off")

    def _platform_message_id(self) -> Optional[str]:
        """``messenger-<mid>`` of the event being handled (message or postback), ``None`` when it has none."""
        event = self.last_message if isinstance(self.last_message, Mapping) else {}
        for kind in ("message", "postback"):
            part = event.get(kind)
            mid = part.get("mid") if isinstance(part, Mapping) else None
            if isinstance(mid, str) and mid and mid.isprintable() and len(mid) <= 256:
                return f"messenger-{mid}"
        return None


# --------------------------------------------------------------------------------------------------------
# Input channel
# --------------------------------------------------------------------------------------------------------
class MultimodalMessengerInput(UsesAttachmentStore, FacebookInput):
    """Messenger webhook channel that passes photos and voice clips to Rasa as stored attachments.

    Routes (under ``/webhooks/facebook``): ``GET /`` health, ``GET /webhook`` Meta's verification
    handshake, ``POST /webhook`` signed event deliveries.

    Args:
        fb_verify: Verify token of the webhook subscription.
        fb_secret: App secret; the signature key. Required.
        fb_access_token: Page access token for replies.
        store: Attachment store; the process-wide :func:`media.default_store` by default.
        graph_session: requests session for the Graph API (tests inject one); a session with a
            :data:`GRAPH_TIMEOUT_S` default timeout otherwise.
        throttle: Messages per sender (:class:`channels.common.SenderThrottle`; default 30 a minute, bursts
            of 10), checked before anything is downloaded.

    Raises:
        RasaException: when one of the three settings is missing, or for a malformed ``NLU_*`` setting of the
            worker pool it installs (:func:`channels.common.install_server_guards`).
    """

    def __init__(
        self,
        fb_verify: Text,
        fb_secret: Text,
        fb_access_token: Text,
        *,
        store: Optional[AttachmentStore] = None,
        graph_session: Optional[requests.Session] = None,
        throttle: Optional[SenderThrottle] = None,
    ) -> None:
        given = {"verify": fb_verify, "secret": fb_secret, "page-access-token": fb_access_token}
        missing = [ENV_VARS[key] for key, value in given.items() if not value]
        if missing:
            raise RasaException(f"The Messenger channel needs {', '.join(missing)} (see docs/channels.md)")
        super().__init__(fb_verify, fb_secret, fb_access_token)
        self._store = store
        self._graph_session = graph_session
        self.throttle = throttle or SenderThrottle()
        install_server_guards(type(self).__name__)
        #: Keeps an event Meta delivers again from being handled twice (Redis with REDIS_URL).
        self.ledger = ReplyLedger.from_environ()

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        """Build the channel from ``credentials.yml`` keys, else ``MESSENGER_*`` variables (an empty entry is
        fine: see :func:`channels.common.settings_from`).

        Raises:
            RasaException: as the constructor, when a setting is missing.
        """
        settings = settings_from(credentials, ENV_VARS, os.environ)
        return cls(
            settings["verify"], settings["secret"], settings["page-access-token"]  # type: ignore[arg-type]
        )

    def client(self) -> "PageClient":
        """A Graph API client for replies (with ``appsecret_proof`` and a bounded timeout)."""
        if self._graph_session is None:
            self._graph_session = _GraphSession()
        return PageClient(self.fb_access_token, session=self._graph_session, app_secret=self.fb_secret)

    def get_output_channel(self) -> MessengerBot:
        """Rasa's Messenger output channel (text, images, buttons, quick replies, templates)."""
        return MessengerBot(self.client())

    @staticmethod
    def validate_hub_signature(app_secret: Text, request_payload: bytes, hub_signature_header: Text) -> bool:
        """SHA-256 only, constant-time: see :func:`signature_is_valid`."""
        return signature_is_valid(app_secret, request_payload, hub_signature_header)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Sanic routes: ``GET /``, ``GET /webhook`` (verification), ``POST /webhook`` (events)."""
        fb_webhook = Blueprint("fb_webhook", __name__)

        fb_webhook.add_route(health, "/", methods=["GET"], name="health")

        @fb_webhook.route("/webhook", methods=["GET"])
        async def token_verification(request: Request) -> HTTPResponse:
            mode = request.args.get("hub.mode")
            token = request.args.get("hub.verify_token") or ""
            challenge = request.args.get("hub.challenge") or ""
            token_ok = secrets_match(token, self.fb_verify)
            if mode != "subscribe" or not token_ok:
                logger.warning("Messenger webhook verification refused: wrong hub.mode or hub.verify_token")
                return response.text("forbidden", status=403)
            if not URL_SAFE_TOKEN_RE.fullmatch(challenge):
                logger.warning("Messenger webhook verification refused: unexpected hub.challenge")
                return response.text("hub.challenge missing or malformed", status=400)
            return response.text(challenge)

        @fb_webhook.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            signature = request.headers.get(SIGNATURE_HEADER)
            if not self.validate_hub_signature(self.fb_secret, request.body, signature):
                logger.warning("Messenger delivery refused: missing or wrong %s", SIGNATURE_HEADER)
                return response.text("forbidden", status=403)
            payload = webhook_payload(request.body, "Messenger delivery")
            if isinstance(payload, HTTPResponse):
                return payload
            if payload.get("object") != "page":
                logger.debug("Messenger delivery for object %r ignored", str(payload.get("object"))[:40])
                return response.text("EVENT_RECEIVED")
            messenger = MultimodalMessenger(
                self.fb_access_token,
                on_new_message,
                self.store,
                client=self.client(),
                throttle=self.throttle,
                ledger=self.ledger,
                tracker_store=tracker_store_of(request),
            )
            await messenger.handle(payload, self.get_metadata(request))
            return response.text("EVENT_RECEIVED")

        return fb_webhook
