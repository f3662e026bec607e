"""Calling the action server as Rasa does, for the security tests of the order doors.

Rasa runs a custom action by POSTing ``{"next_action", "sender_id", "tracker", "domain", "version"}`` to the
action server's ``/webhook`` (with ``?token=`` when endpoints.yml names one). An attacker who reaches the
server can send the same call with a tracker they wrote themselves, so these helpers build exactly that: a
tracker state as Rasa serialises it (slots, latest message, events, active loop) and the call around it.

The application is served by a real Sanic server on 127.0.0.1 (:func:`tests.serving.serving`) and reached with aiohttp,
and the database the actions use is the real :class:`shop.repository.ShopRepository` on a seeded database.
"""
from __future__ import annotations

import importlib.metadata
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import aiohttp
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from shop.db import unit_of_work
from shop.models import Customer, Order, OrderStatusEvent, Refund, SupportTicket
from tests.serving import serving  # noqa: F401  (re-exported: the security tests serve the action server with it)

ROOT = Path(__file__).resolve().parents[2]
#: The domain as Rasa sends it along with every call (the file's form is what `Domain.as_dict` gives).
DOMAIN: Dict[str, Any] = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
#: The Rasa version a call names (rasa-sdk only warns on a mismatch).
RASA_VERSION = importlib.metadata.version("rasa")
#: The payload of an order button: ``/track_order{"order_number": "10023"}``.
ORDER_BUTTON_RE = re.compile(r'"order_number":\s*"(\d{5})"')


# ------------------------------------------------------------------------------------------------ trackers


def tracker_state(
    sender_id: str,
    slots: Optional[Dict[str, Any]] = None,
    text: str = "",
    intent: Optional[str] = None,
    entities: Optional[List[Dict[str, Any]]] = None,
    metadata: Optional[Dict[str, Any]] = None,
    active_loop: Optional[str] = None,
    requested_slot: Optional[str] = None,
) -> Dict[str, Any]:
    """A tracker as Rasa serialises it for the action server: every domain slot (None unless given), the
    latest user message (with ``metadata`` as the channel set it) and the events that led there."""
    all_slots: Dict[str, Any] = {name: None for name in DOMAIN["slots"]}
    all_slots["requested_slot"] = requested_slot
    all_slots.update(slots or {})
    parse_data = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.95} if intent else {},
        "entities": entities or [],
    }
    events: List[Dict[str, Any]] = [
        {"event": "action", "name": "action_session_start"},
        {"event": "session_started"},
        {"event": "action", "name": "action_listen"},
    ]
    if active_loop:
        events.append({"event": "active_loop", "name": active_loop})
    if requested_slot:
        events.append({"event": "slot", "name": "requested_slot", "value": requested_slot})
    events += [
        {"event": "action", "name": active_loop or "action_listen"},
        {"event": "user", "text": text, "parse_data": parse_data, "metadata": metadata or {}},
    ]
    return {
        "sender_id": sender_id,
        "slots": all_slots,
        "latest_message": parse_data,
        "events": events,
        "paused": False,
        "followup_action": None,
        "active_loop": {"name": active_loop} if active_loop else {},
        "latest_action_name": "action_listen",
    }


def form_answer(form: str, requested_slot: str, sender_id: str, text: str, **slots: Any) -> Dict[str, Any]:
    """The tracker Rasa sends to ``validate_<form>`` when the customer answers the form's question with
    ``text`` (read as ``inform``); ``slots`` are what the conversation holds already."""
    return tracker_state(
        sender_id, slots, text=text, intent="inform", active_loop=form, requested_slot=requested_slot
    )


def logged_in(customer_id: int) -> Dict[str, Any]:
    """Message metadata of a customer the channel vouched for (a checked customer token)."""
    return {"customer": {"id": customer_id}}


# ------------------------------------------------------------------------------------------------ replies


@dataclass
class Reply:
    """The action server's answer: HTTP status and decoded JSON body."""

    status: int
    body: Any

    @property
    def responses(self) -> List[Optional[str]]:
        """Names of the domain responses sent (None for plain-text messages)."""
        return [message.get("response") for message in self.messages]

    @property
    def messages(self) -> List[Dict[str, Any]]:
        """The bot messages of a 200 answer."""
        return list(self.body.get("responses") or []) if isinstance(self.body, dict) else []

    @property
    def slots(self) -> Dict[str, Any]:
        """``{slot: value}`` of the SlotSet events of a 200 answer."""
        events = self.body.get("events") or [] if isinstance(self.body, dict) else []
        return {event["name"]: event["value"] for event in events if event.get("event") == "slot"}

    @property
    def text(self) -> str:
        """The whole body as JSON text, to look for anything it must not tell."""
        return json.dumps(self.body, ensure_ascii=False)

    def buttons(self) -> List[Dict[str, str]]:
        """Every button of the messages."""
        return [button for message in self.messages for button in message.get("buttons") or []]


@dataclass
class ActionServer:
    """A running action server: its base URL and the token it was built with."""

    url: str
    token: Optional[str]

    async def post(self, body: Any, token: Optional[str] = "default", path: str = "/webhook") -> Reply:
        """POST ``body`` as JSON; ``token`` is the server's own unless given (None sends none)."""
        params = self._params(token)
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{self.url}{path}", json=body, params=params) as response:
                return Reply(response.status, await _json_or_text(response))

    async def get(self, path: str, token: Optional[str] = "default") -> Reply:
        """GET ``path``; ``token`` as for :meth:`post`."""
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{self.url}{path}", params=self._params(token)) as response:
                return Reply(response.status, await _json_or_text(response))

    async def run(
        self, next_action: str, tracker: Dict[str, Any], token: Optional[str] = "default"
    ) -> Reply:
        """Run ``next_action`` on ``tracker`` with the domain, as Rasa's ``RemoteAction`` calls it."""
        call = {
            "next_action": next_action,
            "sender_id": tracker["sender_id"],
            "tracker": tracker,
            "domain": DOMAIN,
            "version": RASA_VERSION,
        }
        return await self.post(call, token)

    def _params(self, token: Optional[str]) -> Dict[str, str]:
        chosen = self.token if token == "default" else token
        return {} if chosen is None else {"token": chosen}


async def _json_or_text(response: aiohttp.ClientResponse) -> Any:
    raw = await response.text()
    try:
        return json.loads(raw)
    except ValueError:
        return raw


# ------------------------------------------------------------------------------------------------ serving


def build_app(token: Optional[str]) -> Any:
    """The action server application the project ships: ``actions.server.create_app(token)``.

    Before the issue the project had no launcher of its own and served its actions with rasa-sdk's
    ``rasa run actions`` (no token), so when ``actions.server`` is missing (the code before the issue, on
    which these tests must show the doors open) that application is served instead.
    """
    try:
        from actions.server import create_app
    except ModuleNotFoundError as error:
        if error.name != "actions.server":
            raise
        from rasa_sdk.endpoint import create_app as create_sdk_app

        return create_sdk_app("actions", cors_origins="")
    return create_app(token)


# ------------------------------------------------------------------------------------------------ database


def database_state(session_factory: sessionmaker) -> Dict[str, Any]:
    """What an order action could change: orders (status, address), their history, refunds and tickets."""
    with unit_of_work(session_factory) as session:

        def rows(*columns: Any) -> List[Tuple[Any, ...]]:
            return sorted(tuple(row) for row in session.execute(select(*columns)).all())

        return {
            "orders": rows(Order.order_number, Order.status, Order.shipping_address, Order.updated_at),
            "events": session.execute(select(func.count()).select_from(OrderStatusEvent)).scalar_one(),
            "refunds": rows(Refund.refund_number, Refund.amount, Refund.status),
            "tickets": session.execute(select(func.count()).select_from(SupportTicket)).scalar_one(),
        }


def order_status(session_factory: sessionmaker, order_number: str) -> str:
    """The stored status of one order (its enum value)."""
    with unit_of_work(session_factory) as session:
        status = session.execute(select(Order.status).where(Order.order_number == order_number)).scalar_one()
        return getattr(status, "value", status)


def customer_id(session_factory: sessionmaker, email: str) -> int:
    """The id of the seeded customer with this email address."""
    with unit_of_work(session_factory) as session:
        return int(session.execute(select(Customer.id).where(Customer.email == email)).scalar_one())


def orders_by_customer(session_factory: sessionmaker) -> Dict[int, List[str]]:
    """Every customer's order numbers."""
    found: Dict[int, List[str]] = {}
    with unit_of_work(session_factory) as session:
        for number, customer in session.execute(select(Order.order_number, Order.customer_id)).all():
            found.setdefault(int(customer), []).append(number)
    return found
