"""The follow-up requests of a message that asked for several things, read back from the conversation's
events.

The NLU pipeline's MultiRequestCollector writes ``requests`` (:data:`assistant.keys.REQUESTS`) into the parse
result of a message such as "where is order 10023 and can you also cancel 10027": one entry per request, in
the order asked, each with its intent and order numbers. The message's own flow handles the first *task* (one
intent for one order number); every further task is offered, one at a time, after the flow before it ended
("You also asked to cancel order 10027 — shall I do that now?"). A request that names several orders ("cancel
45172, 45173 and 45174") is one task per order.

Nothing is stored for this: the queue is derived from the events each time (this module, used by
``components.multi_request_policy`` to decide *when* to offer and by ``actions.requests`` to know *what* to
offer or start), so every server replica and a restarted one agree. The derivation over the events of the
current session:

* a user message whose ``requests`` give at least two tasks starts a new queue (a later one replaces it);
* each run of the offer action offers the next task;
* the reply to an offer must be a yes or a no (``affirm``/``deny``); any other reply closes the queue, so an
  offer the customer ignored is not followed by more offers.

Pure Python over Rasa's event dictionaries (``{"event": "user", "parse_data": {...}}``, ``{"event": "action",
"name": ...}``): no Rasa import, so both the Rasa side and the action server use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple

from assistant.keys import REQUESTS

#: Action that offers the next task (domain action, actions/requests.py).
OFFER_ACTION = "action_offer_next_request"
#: Intents that answer an offer; any other reply closes the queue.
REPLY_INTENTS = frozenset({"affirm", "deny"})
#: Events after which the session's history no longer counts.
_RESET_EVENTS = frozenset({"restart", "session_started"})


@dataclass(frozen=True)
class FollowUp:
    """One task: an intent for at most one order.

    Attributes:
        intent: The request's intent, e.g. ``"cancel_order"``.
        order_number: The order it is about as the customer wrote it (the flow's validator checks it), or None
            when the request named none (the flow then asks).
        text: The clause the request came from, e.g. ``"can you also cancel 10027"``.
    """

    intent: str
    order_number: Optional[str]
    text: str


@dataclass(frozen=True)
class RequestQueue:
    """Where the conversation stands with the tasks of its latest multi-request message.

    Attributes:
        tasks: Every task of that message in order; the first is the message's own flow.
        offered: How many of the later tasks were offered so far.
        open: False once a reply to an offer was neither a yes nor a no (or there is no queue).
        awaiting_reply: True while the latest offer has not been answered.
    """

    tasks: Tuple[FollowUp, ...] = ()
    offered: int = 0
    open: bool = False
    awaiting_reply: bool = False

    def next_task(self) -> Optional[FollowUp]:
        """The task to offer next, or None when there is none (or the queue is closed or awaits a reply)."""
        index = 1 + self.offered
        if not self.open or self.awaiting_reply or index >= len(self.tasks):
            return None
        return self.tasks[index]

    def last_offered(self) -> Optional[FollowUp]:
        """The task of the latest offer, or None before the first offer."""
        return self.tasks[self.offered] if self.open and 1 <= self.offered < len(self.tasks) else None

    def remaining(self) -> int:
        """How many tasks are still to be offered after the next one (for "and N more")."""
        return max(0, len(self.tasks) - 2 - self.offered) if self.open else 0


def tasks_of(requests: Any) -> Tuple[FollowUp, ...]:
    """The tasks of a ``requests`` parse-result value: one per (request, order number), in order.

    A request without order numbers is one task without a number; a task that repeats an earlier one (same
    intent and order) is left out. Malformed entries (not a dict, no intent) are skipped, so a tampered or old
    tracker gives fewer tasks, never an error.

    Args:
        requests: ``parse_data["requests"]``: a list of dicts with ``intent``, ``order_numbers`` and ``text``.

    Returns:
        The tasks, first the one the message's own flow handles.
    """
    if not isinstance(requests, list):
        return ()
    tasks: List[FollowUp] = []
    for request in requests:
        if not isinstance(request, Mapping) or not isinstance(request.get("intent"), str):
            continue
        numbers = request.get("order_numbers")
        numbers = [str(n) for n in numbers if isinstance(n, (str, int))] if isinstance(numbers, list) else []
        text = request.get("text") if isinstance(request.get("text"), str) else ""
        for number in numbers or [None]:
            task = FollowUp(request["intent"], number, text)
            if all((t.intent, t.order_number) != (task.intent, task.order_number) for t in tasks):
                tasks.append(task)
    return tuple(tasks)


def request_queue(
    events: Iterable[Mapping[str, Any]],
    offer_action: str = OFFER_ACTION,
    reply_intents: Sequence[str] = tuple(REPLY_INTENTS),
) -> RequestQueue:
    """Derive the request queue from a conversation's events (see the module docstring).

    Args:
        events: Rasa event dictionaries, oldest first (``tracker.events`` on the action server, ``[e.as_dict()
            for e in tracker.events]`` in Rasa).
        offer_action: Name of the action that offers the next task.
        reply_intents: Intents that answer an offer without closing the queue.

    Returns:
        The queue after the last event; an empty, closed queue when the session has no multi-request message.
    """
    queue = RequestQueue()
    for event in events:
        if not isinstance(event, Mapping):
            continue
        kind = event.get("event")
        if kind in _RESET_EVENTS:
            queue = RequestQueue()
        elif kind == "user":
            parse_data = event.get("parse_data") or {}
            tasks = tasks_of(parse_data.get(REQUESTS)) if isinstance(parse_data, Mapping) else ()
            if len(tasks) >= 2:
                queue = RequestQueue(tasks=tasks, open=True)
            elif queue.awaiting_reply:
                intent = parse_data.get("intent") if isinstance(parse_data, Mapping) else None
                answered = isinstance(intent, Mapping) and intent.get("name") in reply_intents
                queue = RequestQueue(queue.tasks, queue.offered, open=answered, awaiting_reply=False)
        elif kind == "action" and event.get("name") == offer_action and queue.next_task() is not None:
            queue = RequestQueue(queue.tasks, queue.offered + 1, open=True, awaiting_reply=True)
    return queue
