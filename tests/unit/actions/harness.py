"""How the action tests drive an action: trackers as Rasa builds them, running actions and validations, and
rendering every message against domain.yml (the response exists and every ``{variable}`` in it is provided).

Parse results are shaped as the NLU components write them (``product_recognition`` and the ``product`` entity
of the ProductRecognizer, ``similar_products``/``similar_to``, the AttachmentRouter's ``attachment_problem``),
with the keys of :mod:`assistant.keys`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from assistant.keys import PRODUCT_ENTITY

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DOMAIN: Dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))

#: Inputs a customer might send instead of an order number; none may raise or reach the database as a match.
BAD_ORDER_NUMBERS = [
    "",
    "   ",
    "🙂📦",
    "x" * 10_000,
    "'; DROP TABLE orders;--",
    "99999999999999999999",
    "-5",
    "1002",
    "100233",
    "ten thousand and twenty three",
]
#: Inputs a customer might send instead of a product name.
BAD_PRODUCT_TEXTS = ["", "   ", "🍌🍌", "a" * 10_000, "'; DROP TABLE products;--", "-5"]


# ------------------------------------------------------------------------------------------------ trackers


def make_tracker(
    slots: Optional[Dict[str, Any]] = None,
    text: str = "",
    intent: Optional[str] = None,
    entities: Optional[List[Dict[str, Any]]] = None,
    events: Optional[List[Dict[str, Any]]] = None,
    active_loop: Optional[str] = None,
    sender_id: str = "customer-1",
) -> Tracker:
    """A tracker whose latest message has ``text``, ``intent`` and ``entities``; unknown slots are None."""
    all_slots = {name: None for name in DOMAIN["slots"]}
    all_slots["requested_slot"] = None
    all_slots.update(slots or {})
    latest_message = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9} if intent else {},
        "entities": entities or [],
    }
    return Tracker(
        sender_id,
        all_slots,
        latest_message,
        list(events or []),
        False,
        None,
        {"name": active_loop} if active_loop else {},
        "action_listen",
    )


def verified(order_number: str, **slots: Any) -> Dict[str, Any]:
    """Slots of a conversation that verified ``order_number`` and is about it (plus ``slots``)."""
    return {"order_number": order_number, "verified_orders": [order_number], **slots}


def customer_metadata(customer_id: Any) -> List[Dict[str, Any]]:
    """Tracker events whose latest user message carries a logged-in customer, as the channels write it."""
    return [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "hi", "metadata": {"customer": {"id": customer_id}}},
    ]


def form_tracker(
    form: str,
    requested_slot: Optional[str],
    candidates: Optional[Dict[str, Any]] = None,
    slots: Optional[Dict[str, Any]] = None,
    **message: Any,
) -> Tracker:
    """A tracker as Rasa's FormAction passes it to ``validate_<form>`` (candidates after the form event)."""
    candidates = candidates or {}
    events = [
        {"event": "slot", "name": "requested_slot", "value": requested_slot},
        {"event": "action", "name": form},
    ] + [{"event": "slot", "name": name, "value": value} for name, value in candidates.items()]
    all_slots = dict(slots or {})
    all_slots.update(candidates)
    all_slots["requested_slot"] = requested_slot
    return make_tracker(slots=all_slots, events=events, active_loop=form, **message)


def with_parse(tracker: Tracker, **parse_data: Any) -> Tracker:
    """The tracker with extra keys in its latest message's parse data."""
    tracker.latest_message.update(parse_data)
    return tracker


def entity(name: str, value: str) -> Dict[str, Any]:
    """An entity as the NLU pipeline reports it."""
    return {"entity": name, "value": value, "start": 0, "end": len(value), "extractor": "test"}


def recognition(status: str, *candidates: str, method: str = "knn") -> Dict[str, Any]:
    """A ``product_recognition`` as the ProductRecognizer writes it; candidates are skus, best first."""
    items = [
        {"sku": sku, "name": sku.title(), "confidence": round(0.9 / (i + 1), 3)}
        for i, sku in enumerate(candidates)
    ]
    best = items[0] if items else {"sku": None, "name": None, "confidence": 0.0}
    return {
        "status": status,
        "method": method if items else None,
        "sku": best["sku"],
        "name": best["name"],
        "confidence": best["confidence"],
        "candidates": items,
    }


def photo_entity(sku: str, name: str) -> Dict[str, Any]:
    """The ``product`` entity the ProductRecognizer adds for a recognised photo (no text span)."""
    return {
        "entity": PRODUCT_ENTITY,
        "value": name,
        "sku": sku,
        "confidence": 0.93,
        "method": "knn",
        "candidates": [{"sku": sku, "name": name, "confidence": 0.93}],
        "extractor": "ProductRecognizer",
    }


# ----------------------------------------------------------------------------------------- running actions


def run(action: Action, tracker: Tracker) -> Tuple[CollectingDispatcher, List[Dict[str, Any]]]:
    """Run a synchronous action; return (dispatcher, events)."""
    dispatcher = CollectingDispatcher()
    events = action.run(dispatcher, tracker, DOMAIN)
    return dispatcher, events


async def run_validation(action: Action, tracker: Tracker) -> Tuple[CollectingDispatcher, Dict[str, Any]]:
    """Run a form validation action; return (dispatcher, {slot: value} of its SlotSet events)."""
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, DOMAIN)
    return dispatcher, {event["name"]: event["value"] for event in events if event["event"] == "slot"}


def slot_values(events: Iterable[Dict[str, Any]]) -> Dict[str, Any]:
    """``{slot: value}`` of the SlotSet events."""
    return {event["name"]: event["value"] for event in events if event.get("event") == "slot"}


def responses(dispatcher: CollectingDispatcher) -> List[Optional[str]]:
    """Names of the responses sent (None for plain-text messages)."""
    return [message.get("response") for message in dispatcher.messages]


def rendered(dispatcher: CollectingDispatcher, slots: Optional[Dict[str, Any]] = None) -> List[str]:
    """Render every message as the customer would see it (first variation); fail on unknown responses or
    missing template variables, and on anything that looks like a traceback."""
    texts = []
    for message in dispatcher.messages:
        name = message.get("response")
        if name:
            assert name in DOMAIN["responses"], f"response {name} missing from domain.yml"
            template = DOMAIN["responses"][name][0]["text"]
            values = dict(slots or {})
            values.update({key: value for key, value in message.items() if value is not None})
            for variation in DOMAIN["responses"][name]:
                for variable in re.findall(r"{([^\n{}]+?)}", variation["text"]):
                    assert variable in values, f"{name} needs {{{variable}}}, got {sorted(values)}"
            text = re.sub(r"{([^\n{}]+?)}", lambda match: str(values[match.group(1)]), template)
        else:
            text = message.get("text") or ""
        assert text.strip(), f"empty message {message}"
        assert "Traceback" not in text and "Error" not in text and "Exception" not in text
        texts.append(text)
    return texts


def buttons(dispatcher: CollectingDispatcher) -> List[Dict[str, str]]:
    """All buttons sent: those passed by the action and those of the domain response."""
    found = []
    for message in dispatcher.messages:
        found += message.get("buttons") or []
        name = message.get("response")
        if name:
            found += DOMAIN["responses"][name][0].get("buttons") or []
    return found
