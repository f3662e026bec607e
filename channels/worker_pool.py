"""Message understanding off the event loop: bounded worker threads with a queue limit and a deadline.

Rasa 3.6 runs the NLU graph of every message — photo decoding, ffmpeg + Vosk, MiniLM, EfficientNet —
synchronously on the server's one event loop (`MessageProcessor.parse_message` calls
`_parse_message_with_graph`), so while one customer's photo decodes, no other customer gets an answer.
:func:`install_worker_pool` wraps `MessageProcessor.parse_message` so that the graph runs in a worker thread
and the event loop keeps serving everyone else:

* Two lanes: messages with attachments (``metadata["attachments"]``) go to the *media* lane, the others to
  the *text* lane, so photos and voice notes can only ever occupy the media workers and text turns keep
  theirs.
* Each lane has a fixed number of workers and a queue limit: a message that finds ``workers + queue`` parses
  already admitted is not queued.
* Each message has a deadline, counted from its arrival (queueing included).
* A message refused for either reason gets the parse result of intent ``server_busy``
  (`assistant.keys.INTENT_SERVER_BUSY`; rule → ``utter_server_busy``: "I'm busy right now — please send that
  again in a moment") and one log line, instead of a hang. A parse past its deadline cannot be interrupted: it
  finishes in its thread, keeps its worker until then (so the lane stays bounded) and its result is dropped;
  a parse still queued at its deadline never starts.

Threads, not processes: the models (MiniLM, EfficientNet, Vosk, DIET, the fusion classifier) are loaded once
per process and shared by every worker, and the heavy parts release the GIL (torch and TensorFlow kernels,
Pillow's decoders, Vosk's recogniser, waiting on the ffmpeg subprocess). Worker processes would each load
their own copy (~1.5 GB of models a worker) and pay to copy messages and results between processes.

Settings (environment variables; defaults chosen for 2 cores):

=====================  =======  ================================================================================
variable               default  why
=====================  =======  ================================================================================
NLU_WORKERS            2        text lane: one parse per core; a text parse (~30–60 ms) is torch/TensorFlow
                                work that releases the GIL, more threads would only queue inside the CPU
NLU_QUEUE              30       text turns waiting: ~1.5 s of work at 50 ms each, far inside the deadline
NLU_DEADLINE_S         10       seconds a text turn may wait and parse before the customer is told to resend
NLU_MEDIA_WORKERS      1        media lane: one photo or voice note at a time leaves the other core to text
                                turns and bounds memory (the worst accepted photo adds ~290 MiB while decoding)
NLU_MEDIA_QUEUE        4        photos/voice notes waiting behind the one in progress
NLU_MEDIA_DEADLINE_S   45       a 2-minute voice note takes up to ~47 s at Vosk's slowest measured real-time
                                factor (0.39); kept under Rasa's 60 s conversation lock lifetime
=====================  =======  ================================================================================

Installing: the project's channels install it from their constructors (`channels.common.install_server_guards`,
which turns malformed settings into a start-up `RasaException`; Rasa builds the input channels when the server
starts, before it loads the agent); the run scripts also install it before handing over to Rasa's command line
(``scripts/rasa_run.py``). Installing again returns the pools already installed. Rasa's `http_interpreter`
branch (an external NLU server) is left as it is.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, TypeVar

from assistant.keys import ATTACHMENTS, INTENT_SERVER_BUSY

if TYPE_CHECKING:  # hints only
    from rasa.core.channels.channel import UserMessage

logger = logging.getLogger(__name__)

__all__ = [
    "LaneSettings",
    "PoolBusy",
    "BoundedPool",
    "ParsePools",
    "WorkerPoolSettings",
    "busy_parse_data",
    "install_worker_pool",
    "installed_pools",
    "uninstall_worker_pool",
]

T = TypeVar("T")

#: Lane names (also the worker threads' name prefix `parse-<lane>`).
TEXT_LANE = "text"
MEDIA_LANE = "media"


@dataclass(frozen=True)
class LaneSettings:
    """One lane's limits.

    Attributes:
        workers: Worker threads (parses running at once), >= 1.
        queue: Parses admitted beyond the running ones, >= 0.
        deadline_s: Seconds from a message's arrival to its parse result, > 0.
    """

    workers: int
    queue: int
    deadline_s: float

    def __post_init__(self) -> None:
        if not (isinstance(self.workers, int) and self.workers >= 1):
            raise ValueError(f"workers must be an integer >= 1, got {self.workers!r}")
        if not (isinstance(self.queue, int) and self.queue >= 0):
            raise ValueError(f"queue must be an integer >= 0, got {self.queue!r}")
        if not (isinstance(self.deadline_s, (int, float)) and 0 < self.deadline_s < float("inf")):
            raise ValueError(f"deadline_s must be a positive number of seconds, got {self.deadline_s!r}")


@dataclass(frozen=True)
class WorkerPoolSettings:
    """The two lanes' limits (defaults: see the module docstring)."""

    text: LaneSettings = LaneSettings(workers=2, queue=30, deadline_s=10.0)
    media: LaneSettings = LaneSettings(workers=1, queue=4, deadline_s=45.0)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "WorkerPoolSettings":
        """Settings from ``NLU_WORKERS``, ``NLU_QUEUE``, ``NLU_DEADLINE_S`` and their ``NLU_MEDIA_*`` twins.

        Raises:
            ValueError: a variable that is not a valid number for its setting (the message names it).
        """
        env = os.environ if environ is None else environ
        default = cls()

        def lane(prefix: str, fallback: LaneSettings) -> LaneSettings:
            values: Dict[str, Any] = {}
            for field, suffix, kind in (("workers", "WORKERS", int), ("queue", "QUEUE", int),
                                        ("deadline_s", "DEADLINE_S", float)):
                name = f"{prefix}_{suffix}"
                raw = (env.get(name) or "").strip()
                try:
                    values[field] = kind(raw) if raw else getattr(fallback, field)
                    LaneSettings(**{**fallback.__dict__, field: values[field]})
                except ValueError as error:
                    raise ValueError(f"{name}={raw!r}: {error}") from None
            return LaneSettings(**values)

        return cls(text=lane("NLU", default.text), media=lane("NLU_MEDIA", default.media))


class PoolBusy(Exception):
    """A lane had no room for a parse (``reason="full"``) or it passed its deadline (``reason="deadline"``)."""

    def __init__(self, lane: str, reason: str) -> None:
        super().__init__(f"{lane} lane: {reason}")
        self.lane = lane
        self.reason = reason


class BoundedPool:
    """Worker threads with a limit on admitted work and a deadline per call.

    Args:
        name: Lane name, for logs and thread names.
        settings: Workers, queue limit and deadline.
    """

    def __init__(self, name: str, settings: LaneSettings) -> None:
        self.name = name
        self.settings = settings
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix=f"parse-{name}"
        )
        self._lock = threading.Lock()
        self._admitted = 0

    @property
    def capacity(self) -> int:
        """Parses admitted at most at once: running plus queued."""
        return self.settings.workers + self.settings.queue

    @property
    def admitted(self) -> int:
        """Parses admitted and not finished (running, queued, or past their deadline but still running)."""
        with self._lock:
            return self._admitted

    async def run(self, function: Callable[[], T]) -> T:
        """Run ``function()`` in a worker thread and wait for its result, within the lane's limits.

        Returns:
            What ``function`` returned; what it raised propagates.

        Raises:
            PoolBusy: ``full`` when `capacity` parses are already admitted; ``deadline`` when no result came
                within ``deadline_s`` seconds (a queued call is cancelled; a running one finishes unseen).
        """
        with self._lock:
            if self._admitted >= self.capacity:
                raise PoolBusy(self.name, "full")
            self._admitted += 1
        try:
            future = self._executor.submit(function)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=self.settings.deadline_s)
        except asyncio.TimeoutError:
            raise PoolBusy(self.name, "deadline") from None

    def _release(self, _: Optional[concurrent.futures.Future]) -> None:
        with self._lock:
            self._admitted -= 1

    def shutdown(self) -> None:
        """Stop taking work; running parses finish in their threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class ParsePools:
    """The text and media lanes, and which message goes where."""

    def __init__(self, settings: WorkerPoolSettings) -> None:
        self.settings = settings
        self.text = BoundedPool(TEXT_LANE, settings.text)
        self.media = BoundedPool(MEDIA_LANE, settings.media)

    def lane_for(self, message: "UserMessage") -> BoundedPool:
        """The media lane for a message with attachments in its metadata, else the text lane."""
        metadata = getattr(message, "metadata", None)
        attachments = metadata.get(ATTACHMENTS) if isinstance(metadata, dict) else None
        return self.media if attachments else self.text

    def shutdown(self) -> None:
        self.text.shutdown()
        self.media.shutdown()


def busy_parse_data(message: "UserMessage") -> Dict[str, Any]:
    """The parse result of a message the server had no capacity to read: intent ``server_busy``."""
    intent = {"name": INTENT_SERVER_BUSY, "confidence": 1.0}
    return {"text": message.text or "", "intent": intent, "entities": [], "intent_ranking": [dict(intent)]}


_install_lock = threading.Lock()
_installed: Optional[ParsePools] = None
_original_parse_message: Optional[Callable[..., Any]] = None


def installed_pools() -> Optional[ParsePools]:
    """The pools of the installed wrapper, None when it is not installed."""
    return _installed


def install_worker_pool(settings: Optional[WorkerPoolSettings] = None) -> ParsePools:
    """Wrap `MessageProcessor.parse_message` so that the NLU graph runs in the bounded worker pools.

    Idempotent: once installed, later calls return the installed pools and ignore ``settings``.

    Args:
        settings: The lanes' limits; default :meth:`WorkerPoolSettings.from_env`.

    Returns:
        The installed pools.

    Raises:
        ValueError: a malformed ``NLU_*`` environment variable (when ``settings`` is None).
    """
    global _installed, _original_parse_message
    with _install_lock:
        if _installed is not None:
            return _installed
        from rasa.core.processor import MessageProcessor

        pools = ParsePools(settings or WorkerPoolSettings.from_env())
        original = MessageProcessor.parse_message
        MessageProcessor.parse_message = _pooled_parse_message(original, pools)  # type: ignore[assignment]
        _installed, _original_parse_message = pools, original
    logger.info(
        "Message understanding runs in worker threads: text %d workers + %d queued, %g s; media %d + %d, %g s",
        pools.settings.text.workers, pools.settings.text.queue, pools.settings.text.deadline_s,
        pools.settings.media.workers, pools.settings.media.queue, pools.settings.media.deadline_s,
    )
    return pools


def uninstall_worker_pool() -> None:
    """Restore Rasa's own `MessageProcessor.parse_message` and stop the pools (tests)."""
    global _installed, _original_parse_message
    with _install_lock:
        if _installed is None:
            return
        from rasa.core.processor import MessageProcessor

        MessageProcessor.parse_message = _original_parse_message  # type: ignore[assignment]
        _installed.shutdown()
        _installed, _original_parse_message = None, None


def _pooled_parse_message(original: Callable[..., Any], pools: ParsePools) -> Callable[..., Any]:
    """`MessageProcessor.parse_message` with the graph run in ``pools`` (Rasa 3.6's body otherwise)."""

    @functools.wraps(original)
    async def parse_message(
        self: Any, message: "UserMessage", tracker: Any = None, only_output_properties: bool = True
    ) -> Dict[str, Any]:
        if self.http_interpreter:
            return await original(self, message, tracker, only_output_properties)
        if tracker is None:
            from rasa.shared.core.trackers import DialogueStateTracker

            tracker = DialogueStateTracker.from_events(message.sender_id, [])
        lane = pools.lane_for(message)
        try:
            parse_data = await lane.run(
                lambda: self._parse_message_with_graph(message, tracker, only_output_properties)
            )
        except PoolBusy as busy:
            logger.warning(
                "Answered %s with %s: the %s lane is %s (%d admitted, %d workers, %g s deadline)",
                str(message.sender_id)[:40], INTENT_SERVER_BUSY, busy.lane,
                "full" if busy.reason == "full" else "past the deadline", lane.admitted,
                lane.settings.workers, lane.settings.deadline_s,
            )
            return busy_parse_data(message)
        self._update_full_retrieval_intent(parse_data)
        logger.debug("Parsed in the %s lane: intent %s", lane.name, parse_data.get("intent"))
        self._check_for_unseen_features(parse_data)
        return parse_data

    return parse_message
