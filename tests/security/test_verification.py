"""The order doors of the action server, tried as an attacker would (issue "Verified customers"): each test
here fails on the code before the issue and passes now.

- Guessing orders: a tracker that names an order without proving it is the customer's learns nothing about
  it (status, items, address, refunds), and an unknown order number gets the very same answers as a known one.
- Changing without proof: the submit actions (cancel, new address, refund) change nothing for an order the
  conversation never verified, even with a yes in the tracker and the server's token.
- Guessing the proof: five wrong email addresses lock the order number and the conversation, and the lock
  holds after a restart (new engine, repository and application on the same database file, or PostgreSQL when
  ``DATABASE_URL`` names it) until the window is over.
- Logged-in customers: offered their own orders and no one else's; their own orders need no email address,
  anyone else's do.

Every call goes to the action server application over HTTP with the token, as Rasa (or anyone who reaches the
server) sends it, and the actions work on the real repository over a seeded database (:mod:`shop.seed`:
10021 placed, 10022 packed, 10023 shipped, 10024 delivered, ...; Anna Berg's orders are 10017, 10023, 10029).
"""
from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional

import pytest

from actions import common
from shop.db import make_engine, make_session_factory
from shop.repository import ShopRepository
from tests.postgres import postgres_schema
from tests.security.action_calls import (
    ORDER_BUTTON_RE,
    ActionServer,
    Reply,
    build_app,
    customer_id,
    database_state,
    form_answer,
    logged_in,
    order_status,
    orders_by_customer,
    serving,
    tracker_state,
)

ANNA = "anna.berg@example.com"
BEN = "ben.okafor@example.com"
#: Wrong tries that lock, and for how long (the issue's policy: 5 within 15 minutes).
LOCK_AFTER = 5
LOCK_WINDOW = timedelta(minutes=15)
#: A well-formed order number that no seeded order has.
UNKNOWN_ORDER = "10999"


def secrets_of(repository: ShopRepository, order_number: str) -> List[str]:
    """Everything about an order that only its customer may learn."""
    order = repository.get_order(order_number)
    found = [order.customer_name, order.customer_email, order.shipping_address, str(order.total)]
    found += [item.name for item in order.items] + [item.sku for item in order.items]
    found += [order.tracking_number] if order.tracking_number else []
    found += [refund.refund_number for refund in repository.list_refunds(order_number)]
    return found


def assert_tells_nothing_about(reply: Reply, repository: ShopRepository, order_number: str) -> None:
    """Neither the messages nor the events of ``reply`` describe the order."""
    assert reply.status == 200, reply.body
    told = [secret for secret in secrets_of(repository, order_number) if secret in reply.text]
    assert told == [], f"the reply tells {told}: {reply.text}"
    assert not any(str(name).startswith("utter_order_status") for name in reply.responses), reply.responses
    assert not any("status" in message for message in reply.messages), reply.messages
    assert not reply.slots.get("verified_orders"), reply.slots


# --------------------------------------------------------------------------------------------------------
# Guessing orders
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "action, order_number, expected",
    [
        ("action_track_order", "10023", "utter_verify_first"),  # status, tracking number, delivery date
        ("action_ask_cancel_confirmed", "10022", "utter_verify_first"),  # items, total, status
        ("action_track_refund", "10018", "utter_verify_first"),  # refund numbers, amounts
        ("action_explain_order_changes", "10021", "utter_change_order_options"),  # whether it is still open
    ],
)
async def test_an_order_is_not_described_to_a_conversation_that_never_proved_it_is_theirs(
    action_server: ActionServer,
    shop_repository: ShopRepository,
    action: str,
    order_number: str,
    expected: str,
) -> None:
    tracker = tracker_state(
        "web:guesser",
        {"order_number": order_number, "order_action_allowed": True},
        text=f"what about order {order_number}",
        intent="track_order",
        entities=[{"entity": "order_number", "value": order_number, "start": 17, "end": 22}],
    )
    reply = await action_server.run(action, tracker)
    assert_tells_nothing_about(reply, shop_repository, order_number)
    assert reply.responses == [expected]


async def _guess(server: ActionServer, sender: str, order_number: str) -> List[Reply]:
    """A guesser's whole try at an order: the number, a made-up address, then the answer they hoped for."""
    replies = [
        await server.run(
            "validate_track_order_form",
            form_answer("track_order_form", "order_number", sender, order_number),
        )
    ]
    slots = {name: value for name, value in replies[0].slots.items() if name != "requested_slot"}
    replies.append(
        await server.run(
            "validate_track_order_form",
            form_answer("track_order_form", "order_email", sender, "guess@example.org", **slots),
        )
    )
    slots.update({name: value for name, value in replies[1].slots.items() if name != "requested_slot"})
    replies.append(await server.run("action_track_order", tracker_state(sender, slots)))
    return replies


async def test_an_unknown_order_number_gets_the_same_answers_as_a_known_one(
    action_server: ActionServer, shop_repository: ShopRepository
) -> None:
    known = await _guess(action_server, "web:guesser-1", "10023")
    unknown = await _guess(action_server, "web:guesser-2", UNKNOWN_ORDER)
    as_seen = [(reply.status, reply.text.replace(UNKNOWN_ORDER, "10023")) for reply in unknown]
    assert as_seen == [(reply.status, reply.text) for reply in known]
    for reply in known:
        assert_tells_nothing_about(reply, shop_repository, "10023")
    assert known[0].slots.get("order_number") == "10023"  # the form goes on to ask for the address ...
    assert known[1].responses == ["utter_email_mismatch"]  # ... and says "doesn't match" for both
    assert known[2].responses == ["utter_verify_first"]


# --------------------------------------------------------------------------------------------------------
# Changing an order without proof
# --------------------------------------------------------------------------------------------------------
SUBMITS = {
    "cancel": (
        "action_cancel_order",
        {"order_number": "10021", "cancel_confirmed": True, "order_action_allowed": True},
    ),
    "new address": (
        "action_change_shipping_address",
        {
            "order_number": "10022",
            "shipping_address": "Damrak 1, 1012 LG Amsterdam, Netherlands",
            "address_confirmed": True,
            "order_action_allowed": True,
        },
    ),
    "refund": (
        "action_request_refund",
        {
            "order_number": "10024",
            "refund_confirmed": True,
            "refund_reason": "The butter arrived melted.",
            "order_action_allowed": True,
        },
    ),
}


@pytest.mark.parametrize("submit", sorted(SUBMITS))
@pytest.mark.parametrize(
    "verified_orders",
    [None, ["10017"], "10021 10022 10024"],
    ids=["nothing verified", "another order verified", "a forged text instead of a list"],
)
async def test_a_submit_action_changes_nothing_for_an_order_never_verified(
    action_server: ActionServer, shop_db: Any, submit: str, verified_orders: Any
) -> None:
    action, slots = SUBMITS[submit]
    before = database_state(shop_db)
    status = order_status(shop_db, slots["order_number"])
    forged = {**slots, "verified_orders": verified_orders}
    tracker = tracker_state("web:forger", forged, text="yes", intent="affirm")
    reply = await action_server.run(action, tracker)
    assert reply.status == 200, reply.body
    assert reply.responses == ["utter_verify_first"]
    assert order_status(shop_db, slots["order_number"]) == status
    assert database_state(shop_db) == before


# --------------------------------------------------------------------------------------------------------
# Guessing the proof: the lock-out, across a restart
# --------------------------------------------------------------------------------------------------------
@dataclass
class LockOutDatabase:
    """A database that outlives the action server: each :meth:`server` is a fresh start on it."""

    url: str
    engine_options: Dict[str, Any]

    @contextlib.asynccontextmanager
    async def server(self, token: str) -> AsyncIterator[ActionServer]:
        """A new engine, repository and application on the database, served until the block ends."""
        engine = make_engine(self.url, **self.engine_options)
        common.set_repository(ShopRepository(make_session_factory(engine)))
        try:
            async with serving(build_app(token)) as url:
                yield ActionServer(url, token)
        finally:
            common.set_repository(None)
            engine.dispose()


@contextlib.contextmanager
def _postgres_schema() -> Iterator[LockOutDatabase]:
    """A seeded, uniquely named schema on ``DATABASE_URL``'s PostgreSQL server, dropped afterwards."""
    from shop.seed import create_and_seed

    url = os.environ.get("DATABASE_URL", "").strip()
    if not url.startswith("postgresql"):
        pytest.skip("DATABASE_URL does not point at PostgreSQL")
    with postgres_schema(url, "security_test") as options:
        engine = make_engine(url, **options)
        try:
            create_and_seed(engine)
        finally:
            engine.dispose()
        yield LockOutDatabase(url, options)


@pytest.fixture(params=["sqlite file", "postgresql"])
def lockout_database(request: pytest.FixtureRequest, shop_url: str) -> Iterator[LockOutDatabase]:
    """The seeded database of the lock-out test: a SQLite file; PostgreSQL when ``DATABASE_URL`` names it."""
    if request.param == "sqlite file":
        yield LockOutDatabase(shop_url, {})
    else:
        with _postgres_schema() as database:
            yield database


async def _give_email(server: ActionServer, sender: str, order_number: str, email: str) -> Reply:
    """The customer answers "which email address did you use?" for ``order_number``."""
    tracker = form_answer("track_order_form", "order_email", sender, email, order_number=order_number)
    return await server.run("validate_track_order_form", tracker)


def assert_locked(reply: Reply) -> None:
    """The try was refused with the lock-out reply, and the form ends without verifying anything."""
    assert reply.status == 200, reply.body
    assert reply.responses == ["utter_verification_locked"], reply.body
    assert reply.slots.get("verification_locked") is True
    assert not reply.slots.get("verified_orders")


async def test_five_wrong_addresses_lock_the_order_and_the_conversation_across_a_restart(
    lockout_database: LockOutDatabase, action_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    order, other_order = "10023", "10029"  # both Anna's
    async with lockout_database.server(action_token) as server:
        for attempt in range(1, LOCK_AFTER):
            reply = await _give_email(server, "web:guesser", order, f"anna.berg{attempt}@example.com")
            assert reply.status == 200, reply.body
            assert reply.responses == ["utter_email_mismatch"], f"try {attempt}: {reply.body}"
            assert not reply.slots.get("verified_orders")
        # the wrong try that reaches the limit is told of the lock-out at once
        assert_locked(await _give_email(server, "web:guesser", order, f"anna.berg{LOCK_AFTER}@example.com"))

    async with lockout_database.server(action_token) as server:  # the restart
        assert_locked(await _give_email(server, "web:guesser", order, ANNA))  # even the right address
        # per order number: another conversation about the same order
        asked = form_answer("track_order_form", "order_number", "web:someone-else", order)
        assert_locked(await server.run("validate_track_order_form", asked))
        assert_locked(await _give_email(server, "web:someone-else", order, ANNA))
        # per conversation: the guesser trying another order
        assert_locked(await _give_email(server, "web:guesser", other_order, ANNA))

    later = datetime.now(timezone.utc) + LOCK_WINDOW + timedelta(minutes=1)
    monkeypatch.setattr("shop.repository.utcnow", lambda: later)  # the repository's clock
    async with lockout_database.server(action_token) as server:
        reply = await _give_email(server, "web:guesser", order, ANNA)
        assert reply.responses == [], reply.body
        assert reply.slots.get("verified_orders") == [order]
        assert reply.slots.get("verification_locked") is None


# --------------------------------------------------------------------------------------------------------
# Logged-in customers
# --------------------------------------------------------------------------------------------------------
def _asked_for_the_number(customer: Optional[int]) -> Dict[str, Any]:
    """The tracker when ``track_order_form`` asks "which order?" after "where is my order?"."""
    return tracker_state(
        f"web:{uuid.uuid4().hex}",
        text="where is my order?",
        intent="track_order",
        metadata=logged_in(customer) if customer is not None else None,
        active_loop="track_order_form",
        requested_slot="order_number",
    )


@pytest.mark.parametrize("email", [ANNA, BEN])
async def test_a_logged_in_customer_is_offered_their_own_orders_and_no_one_elses(
    action_server: ActionServer, shop_db: Any, email: str
) -> None:
    customer = customer_id(shop_db, email)
    orders = orders_by_customer(shop_db)
    others = [number for owner, numbers in orders.items() if owner != customer for number in numbers]
    ask = "action_ask_track_order_form_order_number"
    reply = await action_server.run(ask, _asked_for_the_number(customer))
    assert reply.status == 200, reply.body
    offered = [ORDER_BUTTON_RE.search(button["payload"]).group(1) for button in reply.buttons()]
    assert sorted(offered) == sorted(orders[customer])  # three orders each, all listed
    assert [number for number in others if number in reply.text] == []

    anonymous = await action_server.run(ask, _asked_for_the_number(None))
    assert anonymous.buttons() == [] and anonymous.responses == ["utter_ask_track_order_form_order_number"]


def _answer(customer: int, requested_slot: str, text_: str, **slots: Any) -> Dict[str, Any]:
    """A logged-in customer's answer to the form's question."""
    return tracker_state(
        f"web:customer-{customer}",
        slots,
        text=text_,
        intent="inform",
        metadata=logged_in(customer),
        active_loop="track_order_form",
        requested_slot=requested_slot,
    )


async def test_a_logged_in_customer_needs_no_email_address_for_their_own_order(
    action_server: ActionServer, shop_db: Any
) -> None:
    anna = customer_id(shop_db, ANNA)
    reply = await action_server.run("validate_track_order_form", _answer(anna, "order_number", "10023"))
    assert reply.status == 200, reply.body
    assert not reply.slots.get("verified_orders")  # open through the token, not stored in the session
    assert "requested_slot" in reply.slots and reply.slots["requested_slot"] is None  # nothing more to ask
    slots = {name: value for name, value in reply.slots.items() if name != "requested_slot"}
    tracked = await action_server.run("action_track_order", _answer(anna, None, "10023", **slots))
    assert tracked.responses == ["utter_order_status_shipped"]


def _shared_browser(
    customer: Optional[int], requested_slot: Optional[str], text_: str, **slots: Any
) -> Dict[str, Any]:
    """One conversation of a shared browser, its message with ``customer``'s token (None: no token)."""
    return tracker_state(
        "web:shared-browser",
        slots,
        text=text_,
        intent="affirm" if text_ == "yes" else "inform",
        metadata=logged_in(customer) if customer is not None else None,
        active_loop="cancel_order_form",
        requested_slot=requested_slot,
    )


@pytest.mark.parametrize("after", ["logged out", "another customer"])
async def test_orders_opened_by_a_token_close_when_the_token_goes(
    action_server: ActionServer, shop_db: Any, shop_repository: ShopRepository, after: str
) -> None:
    """A shared browser: Emma, logged in, asks to cancel her open order 10021; the next messages of the same
    conversation come without her token (logged out) or with Ben's. Nothing about 10021 is shown or
    changed."""
    emma = customer_id(shop_db, "emma.kelly@example.com")
    asked = await action_server.run(
        "validate_cancel_order_form", _shared_browser(emma, "order_number", "10021")
    )
    assert asked.status == 200, asked.body
    assert asked.slots.get("order_action_allowed") is True  # her own order: open to her
    slots = {name: value for name, value in asked.slots.items() if name != "requested_slot"}
    later = None if after == "logged out" else customer_id(shop_db, BEN)
    confirm = await action_server.run(
        "action_ask_cancel_confirmed", _shared_browser(later, "cancel_confirmed", "cancel it", **slots)
    )
    assert confirm.responses == ["utter_verify_first"], confirm.body
    assert_tells_nothing_about(confirm, shop_repository, "10021")
    cancel = await action_server.run(
        "action_cancel_order", _shared_browser(later, None, "yes", **slots, cancel_confirmed=True)
    )
    assert cancel.responses == ["utter_verify_first"], cancel.body
    assert order_status(shop_db, "10021") == "placed"


async def test_a_logged_in_customer_is_asked_the_email_address_of_someone_elses_order(
    action_server: ActionServer, shop_db: Any, shop_repository: ShopRepository
) -> None:
    anna = customer_id(shop_db, ANNA)
    bens = "10024"
    reply = await action_server.run("validate_track_order_form", _answer(anna, "order_number", bens))
    assert reply.status == 200, reply.body
    assert reply.slots.get("order_number") == bens
    assert not reply.slots.get("verified_orders")
    # the form is not told to stop: it asks for the next empty slot of track_order_form, the email address
    assert reply.slots.get("requested_slot", "order_email") == "order_email"
    assert reply.slots.get("order_email") is None

    slots = {name: value for name, value in reply.slots.items() if name != "requested_slot"}
    tracked = await action_server.run("action_track_order", _answer(anna, None, bens, **slots))
    assert_tells_nothing_about(tracked, shop_repository, bens)
    assert tracked.responses == ["utter_verify_first"]

    proved = await action_server.run("validate_track_order_form", _answer(anna, "order_email", BEN, **slots))
    assert proved.slots.get("verified_orders") == [bens]


async def test_a_yes_is_only_for_the_order_it_was_asked_about(
    action_server: ActionServer, shop_db: Any
) -> None:
    """Asked "Shall I cancel order 10022?", the customer answers ``/affirm{"order_number": "10028"}``: both
    orders are verified in this session, but the yes was not about 10028, so the form asks again."""
    verified = ["10022", "10028"]
    tracker = tracker_state(
        "web:two-orders",
        {"order_number": "10028", "cancel_confirmed": True, "verified_orders": verified,
         "order_action_allowed": True},
        text='/affirm{"order_number": "10028"}',
        intent="affirm",
        entities=[{"entity": "order_number", "value": "10028"}],
        active_loop="cancel_order_form",
        requested_slot="cancel_confirmed",
    )
    user = next(i for i, event in enumerate(tracker["events"]) if event["event"] == "user")
    tracker["events"].insert(user, {"event": "slot", "name": "order_number", "value": "10022"})
    tracker["events"] += [  # what Rasa's slot extraction set from this message, before the form validates
        {"event": "slot", "name": "order_number", "value": "10028"},
        {"event": "slot", "name": "cancel_confirmed", "value": True},
    ]
    reply = await action_server.run("validate_cancel_order_form", tracker)
    assert reply.status == 200, reply.body
    assert reply.slots.get("order_number") == "10028"
    assert reply.slots.get("cancel_confirmed") is None  # asked again, about 10028 this time
    assert order_status(shop_db, "10022") == "packed" and order_status(shop_db, "10028") == "packed"
