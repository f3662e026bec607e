"""From classified clauses to the message's requests, and the parse result of its first request.

Each clause comes with the intent the pipeline gave it when it was classified on its own. A clause is a
*request* when its intent is one of the order intents (``request_intents``) with at least ``min_confidence``;
any other clause ("can you help", "thanks", "and 10024 too") belongs to the request before it (or, at the
start, to the one after it). Consecutive requests with the same intent are one request with several orders
("where is 10023 and when does 10024 come"). A request's orders are the ``order_number`` entities in its
clauses, each once, in order; inside one clause a further number only counts when nothing but a list joins it
to the one before ("45172, 45173 and 45174", not "10023 to 12345 Main Street", where 12345 is a postcode). A
request without an order that points back ("and cancel it") takes the last order of the request before it.

The message is a multi-request message when its requests hold at least two tasks (an intent for one order, see
:func:`assistant.requests.tasks_of`): two requests, or one request for several orders. Its parse result then
becomes that of its first task: the first request's intent, and of the entities only those in its clauses
(plus any email address, the customer's proof for every order) with the first order number alone, so the
form of the first flow asks about 10023 and not about the 10027 of the second request.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from assistant.requests import tasks_of
from components.multirequest.clauses import Clause

#: Entity holding an order number.
ORDER_NUMBER = "order_number"
#: Entity kept for the first request wherever it stands in the message.
EMAIL = "email"
#: What may stand between two order numbers of one list.
_LIST_GAP = re.compile(r"^(?:[\s,&+#/]|and|plus|orders?|numbers?|no\.?|nr\.?|as well as)*$", re.IGNORECASE)
#: Words by which a request without an order number refers to the order of the request before it.
_POINTS_BACK = re.compile(r"\b(?:it|that|this|same)\b", re.IGNORECASE)


@dataclass
class ClassifiedClause:
    """A clause with the intent the pipeline gave it on its own.

    Attributes:
        clause: The clause and its offsets in the message text.
        intent: Its intent name (None when it got none).
        confidence: The intent's probability (0..1).
        ranking: Its ``intent_ranking`` (may be empty).
    """

    clause: Clause
    intent: Optional[str]
    confidence: float
    ranking: List[Dict[str, Any]] = field(default_factory=list)


@dataclass
class Request:
    """One request of a message, as it is built (see :meth:`as_dict` for the parse-result form)."""

    intent: str
    confidence: float
    start: int
    end: int
    order_numbers: List[str]
    ranking: List[Dict[str, Any]]

    def as_dict(self, text: str, entities: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
        """The ``requests`` entry: intent, confidence, text and offsets, orders and entities in its span."""
        return {
            "intent": self.intent,
            "confidence": round(float(self.confidence), 4),
            "text": text[self.start : self.end],
            "start": self.start,
            "end": self.end,
            "order_numbers": list(self.order_numbers),
            "entities": [dict(e) for e in entities if _inside(e, self.start, self.end)],
        }


def _inside(entity: Dict[str, Any], start: int, end: int) -> bool:
    entity_start, entity_end = entity.get("start"), entity.get("end")
    if not isinstance(entity_start, int) or not isinstance(entity_end, int):
        return False
    return start <= entity_start and entity_end <= end


def order_numbers_in(text: str, entities: Sequence[Dict[str, Any]], start: int, end: int) -> List[str]:
    """The order numbers of the ``order_number`` entities inside ``[start, end)``, each once, in order; a
    number after the first counts only when a list joins it to the one before (see the module docstring).

    Args:
        text: The message text (the offsets index it).
        entities: The message's entities (``{"entity", "value", "start", "end"}``; DIET and the regex
            extractor may both give the same number).
        start: Start of the span (characters).
        end: End of the span (characters, exclusive).
    """
    found = sorted(
        (e for e in entities if e.get("entity") == ORDER_NUMBER and _inside(e, start, end)),
        key=lambda e: (e["start"], e["end"]),
    )
    numbers: List[str] = []
    previous_end: Optional[int] = None
    for entity in found:
        value = str(entity.get("value", "")).strip()
        if not value or value in numbers:
            previous_end = max(previous_end or 0, entity["end"])
            continue
        if numbers and previous_end is not None and not _LIST_GAP.match(text[previous_end : entity["start"]]):
            continue
        numbers.append(value)
        previous_end = entity["end"]
    return numbers


def fold_requests(
    text: str,
    entities: Sequence[Dict[str, Any]],
    clauses: Sequence[ClassifiedClause],
    request_intents: Sequence[str],
    min_confidence: float,
) -> List[Request]:
    """The requests of a message from its classified clauses (see the module docstring).

    Args:
        text: The message text.
        entities: The message's entities (offsets into ``text``).
        clauses: The message's clauses in order, each classified on its own (one clause spanning the text for
            a message that was not split, with the message's own intent).
        request_intents: Intents that are requests.
        min_confidence: Lowest intent probability for a clause to be a request (0..1).

    Returns:
        The requests in order (possibly none).
    """
    wanted = set(request_intents)
    requests: List[Request] = []
    lead: Optional[ClassifiedClause] = None  # clauses before the first request
    for item in clauses:
        span = item.clause
        is_request = item.intent in wanted and item.confidence >= min_confidence
        numbers = order_numbers_in(text, entities, span.start, span.end)
        if is_request and requests and requests[-1].intent == item.intent:
            _extend(requests[-1], span, numbers)
        elif is_request:
            start = lead.clause.start if lead is not None and not requests else span.start
            if lead is not None and not requests:
                numbers = order_numbers_in(text, entities, start, span.end)
            elif not numbers and requests and requests[-1].order_numbers and _POINTS_BACK.search(span.text):
                numbers = [requests[-1].order_numbers[-1]]
            requests.append(
                Request(str(item.intent), item.confidence, start, span.end, numbers, list(item.ranking))
            )
        elif requests:
            _extend(requests[-1], span, numbers)
        elif lead is None:
            lead = item
    return requests


def _extend(request: Request, span: Clause, numbers: List[str]) -> None:
    request.end = max(request.end, span.end)
    request.order_numbers.extend(n for n in numbers if n not in request.order_numbers)


def is_multi_request(requests: Sequence[Request]) -> bool:
    """True when the requests hold at least two tasks (two requests, or one request for several orders)."""
    as_dicts = [{"intent": r.intent, "order_numbers": r.order_numbers, "text": ""} for r in requests]
    return len(tasks_of(as_dicts)) >= 2


def first_request_entities(entities: Sequence[Dict[str, Any]], first: Request) -> List[Dict[str, Any]]:
    """The message's entities that belong to its first task: those inside the first request's span, of the
    order numbers only the first one, and every email address."""
    number = first.order_numbers[0] if first.order_numbers else None
    kept: List[Dict[str, Any]] = []
    for entity in entities:
        if entity.get("entity") == ORDER_NUMBER:
            if number is not None and str(entity.get("value", "")).strip() == number and _inside(
                entity, first.start, first.end
            ):
                kept.append(entity)
        elif entity.get("entity") == EMAIL or _inside(entity, first.start, first.end):
            kept.append(entity)
    return kept
