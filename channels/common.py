"""What the REST, Telegram and Messenger channels share: replies, settings, secrets, metadata, the store and
the worker pool.

Each function here replaces a piece of logic that two or three channels used to spell out on their own; the
channel modules import it from here instead of repeating it.
"""
from __future__ import annotations

import hmac
import json
import logging
import re
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from rasa.shared.exceptions import RasaException
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from assistant.keys import ATTACHMENT_PROBLEMS, ATTACHMENTS
from channels.ratelimit import token_buckets
from media import AttachmentError, AttachmentRef, AttachmentStore, default_store, sanitise_name

logger = logging.getLogger(__name__)

#: Reply to a message whose content no channel can use (stickers, PDFs and other documents, locations, ...).
UNSUPPORTED_CONTENT_REPLY = (
    "Sorry, I can't open that kind of message. I can read text, photos and voice notes — "
    "could you type your question, or send a photo or a voice note instead?"
)
#: 1-256 characters of ``A-Z a-z 0-9 _ -``: Telegram's webhook secret token and Meta's ``hub.challenge``.
URL_SAFE_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
#: Answer of the webhooks to a body that is not a JSON object (HTTP 400).
NOT_A_JSON_OBJECT = "the body must be a JSON object"
#: Characters of a file's display name kept when a problem reply names the file.
PROBLEM_NAME_CHARS = 60
#: Reply to a Telegram or Messenger user who sends messages faster than :class:`SenderThrottle` allows.
SLOW_DOWN_REPLY = (
    "You're sending messages faster than I can answer them — please wait a moment and try again."
)
#: Reply when a shared store (tracker store, lock store, reply ledger) cannot be reached: the turn was not
#: saved, so the customer can send the same message again (writes to the shop happen once per message id).
TROUBLE_REPLY = "I'm having trouble right now, please try again in a minute."
#: Seconds a readiness check gives each store to answer.
READY_CHECK_TIMEOUT_S = 3.0


# --------------------------------------------------------------------------------------------------------
# Settings and secrets
# --------------------------------------------------------------------------------------------------------
def settings_from(
    credentials: Optional[Mapping[str, Any]], env_vars: Mapping[str, str], environ: Mapping[str, str]
) -> Dict[str, Optional[str]]:
    """A channel's settings: each credentials.yml key, or its environment variable when the key is missing.

    An empty entry in credentials.yml (``channels.telegram.MultimodalTelegramInput:``) is fine: everything
    then comes from the environment, which keeps secrets out of the file and avoids Rasa's failure on an
    unset ``${VAR}``.

    Args:
        credentials: The channel's credentials.yml section (may be ``None``).
        env_vars: Credential key -> environment variable read when the key is missing, ``null`` or blank.
        environ: Where the variables are looked up (``os.environ``).

    Returns:
        Credential key -> the value as stripped text, or ``None`` when neither source has a non-blank value.
    """
    credentials = credentials or {}
    settings: Dict[str, Optional[str]] = {}
    for key, variable in env_vars.items():
        value = credentials.get(key)
        if value is None or not str(value).strip():
            value = environ.get(variable)
        text = str(value).strip() if value is not None else ""
        settings[key] = text or None
    return settings


def secrets_match(given: Optional[str], expected: str) -> bool:
    """Whether a secret sent by a client equals the configured one, compared in constant time (UTF-8 bytes).

    Args:
        given: What the request carried (header, query parameter); ``None`` when it carried nothing.
        expected: The configured secret.
    """
    return hmac.compare_digest((given or "").encode("utf-8"), expected.encode("utf-8"))


# --------------------------------------------------------------------------------------------------------
# Requests and replies
# --------------------------------------------------------------------------------------------------------
async def health(_request: Request) -> HTTPResponse:
    """``GET /`` of every channel: ``{"status": "ok"}`` (liveness: the process answers)."""
    return response.json({"status": "ok"})


def tracker_store_of(request: Request) -> Any:
    """The tracker store of the Rasa agent serving ``request`` (``None`` before the model is loaded)."""
    agent = getattr(request.app.ctx, "agent", None)
    return getattr(agent, "tracker_store", None)


_last_ready: Dict[str, bool] = {}


async def readiness(request: Request) -> HTTPResponse:
    """``GET /ready``: 200 ``{"status": "ready"}`` when the model is loaded and the tracker and lock stores
    answer within :data:`READY_CHECK_TIMEOUT_S`; else 503 ``{"status": "loading" | "unavailable"}``.

    For load balancers and orchestrators: a server that cannot reach its stores takes no customers. A change
    of state is logged once.
    """
    import asyncio

    agent = getattr(request.app.ctx, "agent", None)
    status, reason = "ready", ""
    if agent is None or not agent.is_ready():
        status = "loading"
    else:
        for store in (agent.tracker_store, agent.lock_store):
            ping = getattr(store, "ping", None)
            if ping is None:
                continue
            try:
                await asyncio.wait_for(ping(), READY_CHECK_TIMEOUT_S)
            except Exception as error:  # noqa: BLE001 - any failure means "not ready"
                status, reason = "unavailable", f"{type(store).__name__}: {type(error).__name__} {error}"[:200]
                break
    ready = status == "ready"
    if _last_ready.get("ready") != ready:
        _last_ready["ready"] = ready
        log = logger.info if ready or status == "loading" else logger.error
        log("Readiness: %s%s", status, f" ({reason})" if reason else "")
    return response.json({"status": status}, status=200 if ready else 503)


def json_object(body: Optional[bytes]) -> Dict[str, Any]:
    """A webhook body decoded as a JSON object.

    Raises:
        ValueError: naming what the body is instead: ``"not JSON"`` (bad JSON or UTF-8, or nested too deeply
            for the decoder) or ``"a JSON list"`` and the like.
    """
    try:
        value = json.loads(body or b"")
    except (ValueError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"a JSON {type(value).__name__}")
    return value


def webhook_payload(body: Optional[bytes], what: str) -> Union[Dict[str, Any], HTTPResponse]:
    """A webhook delivery's JSON object, or the 400 answer (logged) when the body is anything else.

    Args:
        body: The raw request body.
        what: Names the request in the log line, e.g. ``"Telegram update"``.

    Returns:
        The decoded object, or ``400 the body must be a JSON object`` to return as it is.
    """
    try:
        return json_object(body)
    except ValueError as error:
        logger.warning("%s refused: the body is %s", what, error)
        return response.text(NOT_A_JSON_OBJECT, status=400)


def problem_replies(problems: Iterable[Tuple[Optional[str], str]], name_files: bool) -> List[str]:
    """The replies for refused attachments: one per distinct text, in order.

    Args:
        problems: ``(file name as the client sent it or None, friendly message)`` per refused attachment.
        name_files: Whether to start each reply with the file's display name (``About “x.jpg”: ...``), for a
            message that carried several files. Names are sanitised (:func:`media.sanitise_name`) and cut
            to :data:`PROBLEM_NAME_CHARS` characters.
    """
    replies: Dict[str, None] = {}
    for name, text in problems:
        shown = sanitise_name((name or "").strip()) if name_files and (name or "").strip() else None
        if shown:
            text = f"About “{shown[:PROBLEM_NAME_CHARS]}”: {text}"
        replies.setdefault(text)
    return list(replies)


def with_attachments(
    metadata: Optional[Mapping[str, Any]],
    refs: Sequence[AttachmentRef],
    problems: Sequence[AttachmentError] = (),
) -> Optional[Dict[str, Any]]:
    """Message metadata with the stored attachments and the refused ones added (the channels' contract).

    Args:
        metadata: What the channel already passes on (Rasa's ``get_metadata``, a client's own keys).
        refs: Stored attachments, in message order: ``metadata["attachments"]``.
        problems: Refused attachments: ``metadata["attachment_problems"]`` as ``{"type", "code", "message"}``.

    Returns:
        A new dict, or ``None`` when it would be empty (Rasa's default for "no metadata").
    """
    result = dict(metadata or {})
    if refs:
        result[ATTACHMENTS] = [ref.to_metadata() for ref in refs]
    if problems:
        result[ATTACHMENT_PROBLEMS] = [error.to_problem() for error in problems]
    return result or None


# --------------------------------------------------------------------------------------------------------
# Message rate limits of the platform channels
# --------------------------------------------------------------------------------------------------------
class SenderThrottle:
    """Messages per sender for Telegram and Messenger, whose requests all come from the platform's servers (so
    the client address says nothing; the platform vouches for the sender id).

    Args:
        rate_per_minute: Messages per minute granted to each sender (token bucket refill rate); 0 = off.
        burst: Messages a sender may send at once after a pause.
        max_senders: Senders remembered (least recently seen forgotten first; in-process buckets only).
        name: The limit's name in Redis (``REDIS_URL`` set: buckets shared by every server).
    """

    def __init__(
        self, rate_per_minute: float = 30.0, burst: int = 10, max_senders: int = 10_000, name: str = "platform-senders"
    ) -> None:
        self._limiter = token_buckets(name, rate_per_minute, burst, max_keys=max_senders)
        self._told: "OrderedDict[str, None]" = OrderedDict()  # senders already sent SLOW_DOWN_REPLY
        self._max_senders = max_senders

    def check(self, sender: str) -> Optional[str]:
        """Spends one of the sender's tokens.

        Returns:
            ``None`` when the message may go on; otherwise the reply to send: :data:`SLOW_DOWN_REPLY` for the
            first refused message since the last one that passed, ``""`` (send nothing) after that, so that a
            flood is not answered message by message. Each refusal is logged.
        """
        if self._limiter.take_all((sender,)) <= 0:
            self._told.pop(sender, None)
            return None
        logger.warning("Message from %.40s refused: over the per-sender message limit", sender)
        if sender in self._told:
            return ""
        self._told[sender] = None
        while len(self._told) > self._max_senders:
            self._told.popitem(last=False)
        return SLOW_DOWN_REPLY


# --------------------------------------------------------------------------------------------------------
# Message understanding off the event loop
# --------------------------------------------------------------------------------------------------------
def install_server_guards(channel: str, environ: Optional[Mapping[str, str]] = None) -> None:
    """Installs what every server that serves one of the project's channels needs; called by every channel's
    constructor (Rasa builds the channels when the server starts, before it serves anything):

    - the bounded worker pool for message understanding (:mod:`channels.worker_pool`; settings from the
      ``NLU_*`` environment variables), so the server never parses on its event loop;
    - the ``Content-Length`` guard (:mod:`channels.http_guard`), so one malformed request cannot freeze it.

    Installing again (several channels, or the run scripts first) keeps what is installed; the settings are
    checked either way.

    Args:
        channel: The channel's class name, for the error message.
        environ: Where the ``NLU_*`` variables are looked up; default ``os.environ``.

    Raises:
        RasaException: a malformed ``NLU_*`` variable, named with its value (Rasa's command line prints it
            and exits 1 at start-up).
    """
    from channels.http_guard import install_content_length_guard
    from channels.worker_pool import WorkerPoolSettings, install_worker_pool

    install_content_length_guard()
    try:
        install_worker_pool(WorkerPoolSettings.from_env(environ))
    except ValueError as error:
        raise RasaException(
            f"{channel}: malformed worker pool setting {error} (NLU_WORKERS, NLU_QUEUE, NLU_DEADLINE_S and "
            "their NLU_MEDIA_* twins: see channels/worker_pool.py)"
        ) from None


# --------------------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------------------
class UsesAttachmentStore:
    """Mixin for an input channel that stores photos and voice notes.

    Attributes:
        _store: The store given to the channel's constructor, or ``None`` for the process-wide default.
    """

    _store: Optional[AttachmentStore] = None

    @property
    def store(self) -> AttachmentStore:
        """Where the channel's photos and voice notes go: :func:`media.default_store` (``ATTACHMENT_DIR``)
        unless one was given. The default store is created on first use of this property: Telegram and
        Messenger reach it with their first download, the REST channel already in its constructor (it checks
        its rate-limit bursts against the store's ``max_attachments``)."""
        if self._store is None:
            self._store = default_store()
        return self._store
