"""``MultimodalRestInput``: the REST channel's routes and what one ``POST /webhook`` does, step by step.

messages per client address (:mod:`channels.rest.limits`, before the body is read) → bearer token
(:mod:`channels.rest.auth`) → body under the cap (:mod:`channels.rest.body`) → parse
(:mod:`channels.rest.parsing`) → the sender: ``api:<id>`` for a caller with the token, else a web id the
server signed (:mod:`channels.rest.senders`) → messages per sender → upload rate limit → the customer token
(:mod:`channels.rest.customer`) → store the uploads (the attachment store, in a worker thread) → hand one
``UserMessage`` to Rasa → the replies, after one reply per refused attachment. ``POST /session`` issues web
conversation ids. Files and the web page are served by :mod:`channels.rest.web`.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Optional, Sequence, Text, Tuple

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.common import (
    UsesAttachmentStore,
    health,
    install_server_guards,
    problem_replies,
    readiness,
    tracker_store_of,
    with_attachments,
)
from channels.dedupe import StillHandling, handle_once
from channels.rest import customer
from channels.rest.auth import expected_token as token_from
from channels.rest.auth import is_api_caller
from channels.rest.body import read_body, stop_reading
from channels.rest.customer import CustomerTokens
from channels.rest.errors import ChannelError, trouble_response
from channels.rest.limits import MessageRateLimit, UploadRateLimit
from channels.rest.parsing import IncomingMessage, RequestParser, Upload
from channels.rest.senders import WebSenderIds
from channels.rest.settings import ChannelSettings
from channels.rest.web import add_web_routes, serve_file
from channels.senders import API, namespaced
from media import AttachmentError, AttachmentRef, AttachmentStore
from media.limits import CHUNK_BYTES
from stores.errors import is_store_outage
from stores.replies import ReplyLedger

logger = logging.getLogger(__name__)

#: URL prefix (``/webhooks/multimodal``) and ``input_channel`` of the messages.
CHANNEL_NAME = "multimodal"


async def run_to_completion(turn: Awaitable[List[Dict[str, Any]]], sender: str) -> List[Dict[str, Any]]:
    """Awaits ``turn`` so that a client hanging up (or Sanic's response timeout) cannot cut it in half.

    Sanic cancels a request's handler when its client disconnects. Cancelled inside Rasa, a turn could have
    changed an order through the action server without the tracker store ever recording it, and the client's
    retry with the same ``message_id`` would do it again (found by the attacker trial: two refunds from one
    yes). Shielded, the turn runs to its end, its reply is stored in the reply ledger, and the retry gets it.
    """
    task = asyncio.ensure_future(turn)
    orphaned = []

    def _log_orphan_failure(done: "asyncio.Future[Any]") -> None:
        if done.cancelled():
            return
        error = done.exception()  # retrieved here, so an orphan's failure is never "never retrieved"
        if error is not None and orphaned:
            logger.error("Multimodal message from %.40s failed after its client left: %s", sender,
                         type(error).__name__)

    task.add_done_callback(_log_orphan_failure)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        orphaned.append(True)  # the callback logs its outcome instead
        logger.info("Client of %.40s left before the answer; the turn is finished and its reply kept", sender)
        raise


def _chunks(data: memoryview, size: int = CHUNK_BYTES) -> Iterator[memoryview]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


class MultimodalRestInput(UsesAttachmentStore, InputChannel):
    """REST channel for text, photos and voice notes; also serves the web chat page and widget.

    Args:
        settings: Channel settings (see :class:`~channels.rest.settings.ChannelSettings`); checked again here.
        store: Upload store; defaults to :func:`media.default_store` (``ATTACHMENT_DIR``), created here
            because the settings are checked against its limits.
        environ: Where the bearer token (read per request), ``SENDER_ID_SECRET``, ``CUSTOMER_TOKEN_SECRET``
            and the worker pool's ``NLU_*`` settings (read here, once) are looked up; default ``os.environ``.

    Raises:
        RasaException: for bad settings, a burst smaller than the store's ``max_attachments`` while its
            rate limit is on (a full message could never be sent), a secret shorter than 32 characters, or a
            malformed ``NLU_*`` setting of the worker pool it installs
            (:func:`channels.common.install_server_guards`).
    """

    @classmethod
    def name(cls) -> Text:
        """URL prefix and ``input_channel`` of the messages: ``multimodal``."""
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "MultimodalRestInput":
        """Builds the channel from its credentials.yml section (may be empty)."""
        return cls(ChannelSettings.from_credentials(credentials))

    def __init__(
        self,
        settings: Optional[ChannelSettings] = None,
        store: Optional[AttachmentStore] = None,
        environ: Optional[Dict[str, str]] = None,
    ) -> None:
        self.settings = settings or ChannelSettings()
        self._store = store
        self._environ = environ
        limits = self.store.limits
        for rate_key, burst_key in (
            ("upload_rate_per_minute", "upload_burst"),
            ("address_rate_per_minute", "address_burst"),
        ):
            burst = getattr(self.settings, burst_key)
            if getattr(self.settings, rate_key) > 0 and burst < limits.max_attachments:
                raise RasaException(
                    f"{type(self).__name__}: '{burst_key}' is {burst}; it must be at least max_attachments "
                    f"({limits.max_attachments}) or a full message could never be sent"
                )
        self.parser = RequestParser(self.settings, limits.max_attachments)
        environ_now = os.environ if environ is None else environ
        self.rate_limit = UploadRateLimit(self.settings, environ_now)
        self.message_limit = MessageRateLimit(self.settings, environ_now)
        self.web_senders = WebSenderIds.from_environ(environ_now)
        self.customers = CustomerTokens.from_environ(environ_now, self.settings.customer_token_leeway_s)
        install_server_guards(type(self).__name__, environ_now)
        self.ledger = ReplyLedger.from_environ(environ_now)

    def expected_token(self) -> Optional[str]:
        """The bearer token of server-to-server callers, or ``None`` when there are none (variable unset or
        empty): then every POST needs a signed web conversation id."""
        return token_from(self.settings.token_env, os.environ if self._environ is None else self._environ)

    # ---- storing -------------------------------------------------------------------------------------
    def _store_one(self, upload: Upload) -> AttachmentRef:
        store = self.store
        if upload.kind == "id":
            return store.ref_for(upload.payload)
        if upload.kind == "base64":
            return store.save_base64(upload.payload, name=upload.name, declared_mime=upload.declared_mime)
        data: memoryview = upload.payload
        return store.save_stream(
            _chunks(data), name=upload.name, declared_mime=upload.declared_mime, expected_size=len(data)
        )

    async def store_uploads(
        self, uploads: Sequence[Upload]
    ) -> Tuple[List[AttachmentRef], List[Tuple[Upload, AttachmentError]]]:
        """Stores every upload (in a worker thread: the store hashes, writes and runs ffprobe).

        Returns:
            The stored references in request order, and the refused uploads with their errors.
        """
        loop = asyncio.get_running_loop()
        refs: List[AttachmentRef] = []
        problems: List[Tuple[Upload, AttachmentError]] = []
        for upload in uploads:
            try:
                ref = await loop.run_in_executor(None, functools.partial(self._store_one, upload))
            except AttachmentError as error:
                problems.append((upload, error))
                continue
            if upload.declared_type and upload.declared_type != ref.type:
                logger.info(
                    "Attachment declared as %.20s is %s by its content; the content wins",
                    upload.declared_type,
                    ref.type,
                )
            refs.append(ref)
        return refs, problems

    # ---- the webhook ---------------------------------------------------------------------------------
    def conversation_of(self, incoming: IncomingMessage, api_caller: bool) -> str:
        """The sender id Rasa gets: ``api:<sender>`` for a caller with the bearer token, else the web id.

        Raises:
            ChannelError: 403 ``unknown_sender`` for a sender the server did not sign (a made-up id, another
                channel's id, a changed signature, an id signed with another ``SENDER_ID_SECRET``).
        """
        if api_caller:
            return namespaced(API, incoming.sender)
        sender = self.web_senders.verify(incoming.sender)
        if sender is None:
            raise ChannelError(
                403,
                "unknown_sender",
                "This conversation id was not issued by this server: start a conversation with "
                "POST .../session, or call the API with its bearer token.",
                detail=f"unsigned sender {incoming.sender[:40]!r}",
            )
        return sender

    async def handle_post(
        self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> HTTPResponse:
        """The whole POST: limits, auth, size, parse, sender, store, hand to Rasa, collect the replies."""
        body_read = False
        try:
            self.message_limit.check_address(request)  # before a byte of the body is read
            api_caller = is_api_caller(request.headers.get("authorization"), self.expected_token())
            body = await read_body(request, self.settings.max_body_bytes, self.store.limits)
            body_read = True
            incoming = self.parser.parse(request.headers.get("content-type", ""), body)
            sender = self.conversation_of(incoming, api_caller)
            self.message_limit.check_sender(sender)
            if incoming.uploads:
                self.rate_limit.check(request, sender, len(incoming.uploads))
        except ChannelError as error:
            self._log_refusal(error)
            if not body_read:
                stop_reading(request)
            return error.to_response()

        metadata = {**incoming.metadata, **self.customers.metadata(request.headers.get(customer.HEADER))}
        refs, problems = await self.store_uploads(incoming.uploads)
        del body  # the request's bytes are not needed any more
        texts = problem_replies(
            [(upload.name, error.user_message) for upload, error in problems], len(incoming.uploads) > 1
        )
        replies = [{"recipient_id": incoming.sender, "text": text} for text in texts]
        has_text = bool((incoming.text or "").strip())
        if problems and not has_text and not refs:
            return response.json(replies)

        try:
            bot_replies = await self.handle_message(
                request, on_new_message, incoming, sender, with_attachments(metadata, refs, [e for _, e in problems])
            )
        except StillHandling:
            return ChannelError(
                503, "still_handling", "I'm still working on that message - please try again in a moment.",
                headers={"Retry-After": "5"},
            ).to_response()
        except Exception as error:  # noqa: BLE001 - every failure becomes a friendly answer, never a traceback
            if is_store_outage(error):
                logger.error("Multimodal message from %.40s not handled: a store is unreachable (%s: %s)",
                             sender, type(error).__name__, str(error).splitlines()[0][:200] if str(error) else "")
                return trouble_response()
            logger.exception("Multimodal message from %.40s failed in the bot", sender)
            return self._internal_error()
        # Replies name the conversation as the client does (its own id, not the namespaced one).
        return response.json(replies + [{**reply, "recipient_id": incoming.sender} for reply in bot_replies])

    async def handle_message(
        self,
        request: Request,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        incoming: IncomingMessage,
        sender: str,
        metadata: Dict[str, Any],
    ) -> List[Dict[str, Any]]:
        """Hands the message to Rasa and returns the bot's replies; once per ``message_id`` when it has one.

        Raises:
            StillHandling: a copy with the same ``message_id`` is still being handled elsewhere.
            Exception: what Rasa or the stores raised, when the bot produced no reply at all.
        """

        async def handle() -> List[Dict[str, Any]]:
            collector = CollectingOutputChannel()
            message = UserMessage(
                incoming.text or "",  # photo/voice-only: Rasa's NLU components need a string, never None
                collector,
                sender,
                input_channel=self.name(),
                metadata=metadata,
                message_id=incoming.message_id,
            )
            try:
                await on_new_message(message)
            except asyncio.CancelledError:
                if not collector.messages:
                    raise TimeoutError("the bot was cancelled before it replied") from None
                logger.error("Multimodal message from %.40s timed out in the bot after a reply", sender)
            except Exception as error:
                if not collector.messages or is_store_outage(error):
                    raise
                logger.exception("Multimodal message from %.40s failed in the bot after a reply", sender)
            return list(collector.messages)

        if incoming.message_id is None:
            turn = handle()
        else:
            turn = handle_once(self.ledger, tracker_store_of(request), sender, incoming.message_id, handle)
        return await run_to_completion(turn, sender)

    async def new_session(self, request: Request) -> HTTPResponse:
        """``POST /session``: a new signed web conversation id, ``{"sender": "web:<hex>.<signature>"}``.

        Spends one token of the client address's message bucket (429 when empty); a body is never read.
        """
        try:
            self.message_limit.check_address(request)
        except ChannelError as error:
            self._log_refusal(error)
            stop_reading(request)
            return error.to_response()
        has_body = request.headers.get("content-length", "0").strip() != "0"
        if has_body or "transfer-encoding" in request.headers:
            stop_reading(request)  # nothing to read: close the connection rather than drain a body
        elif request.stream is not None and hasattr(request.stream, "request_body"):
            request.stream.request_body = None  # "Content-Length: 0": the empty body counts as read
        return response.json({"sender": self.web_senders.issue()}, headers={"Cache-Control": "no-store"})

    @staticmethod
    def _log_refusal(error: ChannelError) -> None:
        logger.warning(
            "Multimodal request refused (%s %s): %s", error.status, error.code, error.detail or error.message
        )

    @staticmethod
    def _internal_error() -> HTTPResponse:
        return ChannelError(
            500, "internal_error", "Sorry, something went wrong on my side — please try again in a moment."
        ).to_response()

    # ---- blueprint -----------------------------------------------------------------------------------
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The channel's routes: health, the webhook, new web conversations, files by id and (unless turned
        off) the web chat."""
        module = inspect.getmodule(self)
        bp = Blueprint(f"multimodal_webhook_{type(self).__name__}", module.__name__ if module else None)

        async def receive(request: Request) -> HTTPResponse:
            return await self.handle_post(request, on_new_message)

        async def new_session(request: Request) -> HTTPResponse:
            return await self.new_session(request)

        async def get_file(request: Request, file_id: str) -> HTTPResponse:
            return await serve_file(self.store, file_id)

        bp.add_route(health, "/", methods=["GET"], name="health")
        bp.add_route(readiness, "/ready", methods=["GET"], name="ready")
        bp.add_route(receive, "/webhook", methods=["POST"], name="receive", stream=True)
        bp.add_route(new_session, "/session", methods=["POST"], name="session", stream=True)
        bp.add_route(get_file, "/files/<file_id:str>", methods=["GET"], name="file")
        if self.settings.web_chat:
            add_web_routes(bp, self.settings.frame_ancestors)
        return bp
