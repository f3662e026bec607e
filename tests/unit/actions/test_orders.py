"""Unit tests of `actions.orders` on the real repository over the seeded in-memory database: tracking,
cancelling (after a yes), changing the delivery address (after a yes), explaining what can still change, and
the forms that ask for the order number. Orders are verified in these tests (``verified_orders``); the proof
itself is tested in test_verification.py and tests/security/test_verification.py.

Seed orders: 10021 placed (3 items, €11.66), 10022 packed, 10023 shipped (tracking GSX1002372137, expected
Tuesday 11 March 2025), 10024 delivered, 10025 cancelled.
"""

from __future__ import annotations

import logging
from typing import Optional
from unittest import mock

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import update

from actions.orders import (
    ActionAskCancelConfirmed,
    ActionAskTrackOrderFormOrderNumber,
    ActionCancelOrder,
    ActionChangeShippingAddress,
    ActionExplainOrderChanges,
    ActionTrackOrder,
    ValidateCancelOrderForm,
    ValidateChangeAddressForm,
    ValidateTrackOrderForm,
)
from shop.db import unit_of_work
from shop.models import Order
from shop.statuses import OrderStatus
from tests.unit.actions.harness import (
    BAD_ORDER_NUMBERS,
    DOMAIN,
    buttons,
    entity,
    form_tracker,
    make_tracker,
    rendered,
    responses,
    run,
    run_validation,
    slot_values,
    verified,
    customer_metadata,
)

#: An order number as customers type it, and the order it names.
TYPED_ORDER_NUMBERS = [
    ("#10023", "10023"),
    ("order 10023 please", "10023"),
    (" 10023 ", "10023"),
    ("10023", "10023"),
    ("it's order #10021, thanks", "10021"),
]
#: Typed text that is no order number.
NOT_ORDER_NUMBERS = ["-5", "123456789012", "abc"]


def track_form(text: str, verified_orders: Optional[list] = None) -> Tracker:
    """``track_order_form`` validating ``text`` as the answer to "what's the order number?"."""
    candidates = {"order_number": text}
    slots = {"verified_orders": verified_orders}
    return form_tracker("track_order_form", "order_number", candidates, slots, text=text, intent="inform")


# -------------------------------------------------------------------------------------------------- tracking


@pytest.mark.parametrize(
    "status_number, response",
    [
        ("10021", "utter_order_status_placed"),
        ("10022", "utter_order_status_packed"),
        ("10023", "utter_order_status_shipped"),
        ("10024", "utter_order_status_delivered"),
        ("10025", "utter_order_status_cancelled"),
    ],
)
def test_track_order_answers_per_status(repo, status_number: str, response: str) -> None:
    dispatcher, events = run(ActionTrackOrder(), make_tracker(slots=verified(status_number)))
    assert responses(dispatcher) == [response]
    rendered(dispatcher)
    assert slot_values(events)["order_number"] is None  # the next flow asks again


def test_track_shipped_order_tells_tracking_number_and_delivery_date(repo, db) -> None:
    dispatcher, _ = run(ActionTrackOrder(), make_tracker(slots=verified("10023")))
    (text,) = rendered(dispatcher)
    assert "GSX1002372137" in text and "Tuesday 11 March 2025" in text
    assert db.unchanged()


# ---------------------------------------------------------------------------------------- order number forms


async def test_order_number_is_validated_and_normalised(repo) -> None:
    dispatcher, slots = await run_validation(ValidateTrackOrderForm(), track_form("#10023"))
    # not verified yet: only the number, and the form asks for the email address next
    assert slots == {"order_number": "10023", "order_action_allowed": None, "order_email": None}
    assert dispatcher.messages == []


async def test_a_verified_order_number_is_looked_up(repo) -> None:
    dispatcher, slots = await run_validation(ValidateTrackOrderForm(), track_form("#10023", ["10023"]))
    assert slots == {
        "order_number": "10023",
        "order_action_allowed": True,
        "order_email": None,
        "requested_slot": None,  # no email question for a verified order: the form is done
    }
    assert dispatcher.messages == []


@pytest.mark.parametrize("text, number", TYPED_ORDER_NUMBERS)
async def test_a_typed_order_number_finds_the_order(repo, text: str, number: str) -> None:
    dispatcher, slots = await run_validation(ValidateTrackOrderForm(), track_form(text, [number]))
    assert slots["order_number"] == number and slots["order_action_allowed"] is True
    assert dispatcher.messages == []
    dispatcher, _ = run(ActionTrackOrder(), make_tracker(slots=verified(slots["order_number"])))
    assert number in rendered(dispatcher)[0]


@pytest.mark.parametrize("text", NOT_ORDER_NUMBERS + BAD_ORDER_NUMBERS)
async def test_bad_order_numbers_are_asked_again_without_errors(repo, db, text: str) -> None:
    dispatcher, slots = await run_validation(ValidateTrackOrderForm(), track_form(text))
    assert slots["order_number"] is None and slots["order_action_allowed"] is None
    (message,) = rendered(dispatcher)
    assert "five digits" in message
    assert db.unchanged()


async def test_a_malformed_number_never_reaches_the_repository(fail_repository) -> None:
    failing = fail_repository(RuntimeError("must not be called"))
    dispatcher, slots = await run_validation(ValidateTrackOrderForm(), track_form("123456789012"))
    assert slots["order_number"] is None and "five digits" in rendered(dispatcher)[0]
    failing.get_order.assert_not_called()


async def test_an_unknown_order_number_is_treated_like_a_known_one(repo) -> None:
    """Whether an order exists is not told before the proof: the form goes on to ask for the email."""
    unknown = await run_validation(ValidateTrackOrderForm(), track_form("12345"))
    known = await run_validation(ValidateTrackOrderForm(), track_form("10023"))
    assert unknown[1] == {**known[1], "order_number": "12345"}
    assert unknown[0].messages == known[0].messages == []


async def test_database_failure_during_validation_is_a_friendly_reply(
    fail_repository, caplog: pytest.LogCaptureFixture
) -> None:
    fail_repository(RuntimeError("connection refused"))
    with caplog.at_level(logging.ERROR):
        dispatcher, slots = await run_validation(ValidateTrackOrderForm(), track_form("10023"))
    assert slots["order_number"] is None
    assert responses(dispatcher) == ["utter_technical_problem"]
    assert "connection refused" in caplog.text


@pytest.mark.parametrize(
    "text, intent, entities, requested, expected",
    [
        ("10023", "inform", [], "order_number", "10023"),
        # text with digits under another intent: taken, the validator finds the number in it
        ("my order is 10023", "track_order", [], "order_number", "my order is 10023"),
        ("🙂", "nlu_fallback", [], "order_number", "🙂"),
        ("what payment methods do you take?", "check_payment_methods", [], "order_number", None),
        ("no thanks", "deny", [], "order_number", None),
        # the entity mapping fills the slot
        ("10023", "inform", [entity("order_number", "10023")], "order_number", None),
        ("10023", "inform", [], None, None),  # the form is not asking
        ("hello", "greet", [], "order_number", None),
        ("12345", None, [], "order_number", "12345"),  # no NLU model: the text can only be an answer
    ],
)
def test_free_text_is_taken_as_order_number_only_when_it_answers_the_question(
    text: str, intent: str, entities: list, requested: Optional[str], expected: Optional[str]
) -> None:
    tracker = form_tracker("track_order_form", requested, text=text, intent=intent, entities=entities)
    extracted = ValidateTrackOrderForm().extract_order_number(CollectingDispatcher(), tracker, DOMAIN)
    assert extracted.get("order_number") == expected


async def test_a_question_in_the_middle_of_the_form_is_not_validated(repo) -> None:
    tracker = form_tracker(
        "track_order_form", "order_number", text="how long is delivery?", intent="delivery_period"
    )
    dispatcher, slots = await run_validation(ValidateTrackOrderForm(), tracker)
    # no slot: Rasa's form rejects, so the FAQ rule answers and the form asks again afterwards
    assert slots == {} and dispatcher.messages == []


# ---------------------------------------------------------------------------------------------- cancel order


async def test_cancel_form_asks_for_confirmation_of_an_open_order(repo, db) -> None:
    tracker = form_tracker(
        "cancel_order_form",
        None,
        {"order_number": "10021"},
        {"verified_orders": ["10021"]},
        text="cancel 10021",
        intent="cancel_order",
    )
    dispatcher, slots = await run_validation(ValidateCancelOrderForm(), tracker)
    assert slots == {
        "order_number": "10021",
        "order_action_allowed": True,
        "order_email": None,
        "requested_slot": "cancel_confirmed",
    }
    assert db.unchanged()


@pytest.mark.parametrize("number", ["10023", "10024", "10025"])
async def test_cancel_form_ends_without_confirmation_for_orders_that_cannot_be_cancelled(
    repo, db, number: str
) -> None:
    tracker = form_tracker(
        "cancel_order_form",
        None,
        {"order_number": number},
        {"verified_orders": [number]},
        text=number,
        intent="cancel_order",
    )
    _, slots = await run_validation(ValidateCancelOrderForm(), tracker)
    assert slots["order_action_allowed"] is False
    assert "requested_slot" in slots and slots["requested_slot"] is None  # the form is done
    assert db.unchanged()


def test_confirmation_question_shows_the_order(repo, db) -> None:
    dispatcher, events = run(ActionAskCancelConfirmed(), make_tracker(slots=verified("10021")))
    assert responses(dispatcher) == ["utter_ask_cancel_confirmed"]
    (text,) = rendered(dispatcher)
    assert "10021" in text and "3 items" in text and "€11.66" in text
    assert [button["payload"] for button in buttons(dispatcher)] == ["/affirm", "/deny"]
    assert events == [] and db.unchanged()


def test_cancel_after_yes_cancels(repo) -> None:
    tracker = make_tracker(slots=verified("10021", cancel_confirmed=True, order_action_allowed=True))
    dispatcher, events = run(ActionCancelOrder(), tracker)
    assert responses(dispatcher) == ["utter_order_cancelled"]
    rendered(dispatcher)
    order = repo.get_order("10021")
    assert order.status == "cancelled"
    assert order.status_history[-1][0] == "cancelled"
    assert slot_values(events) == {
        "order_number": None,
        "order_action_allowed": None,
        "order_email": None,
        "verification_locked": None,
        "cancel_confirmed": None,
        "shipping_address": None,
        "address_confirmed": None,
    }  # verified_orders stays for the session


@pytest.mark.parametrize("answer", [False, None])
def test_cancel_after_no_writes_nothing(repo, db, answer: Optional[bool]) -> None:
    tracker = make_tracker(slots=verified("10021", cancel_confirmed=answer))
    dispatcher, _ = run(ActionCancelOrder(), tracker)
    assert responses(dispatcher) == ["utter_order_kept"]
    rendered(dispatcher)
    assert db.unchanged()
    assert repo.get_order("10021").status == "placed"


@pytest.mark.parametrize(
    "number, response",
    [
        ("10023", "utter_cannot_cancel"),
        ("10024", "utter_cannot_cancel"),
        ("10025", "utter_already_cancelled"),
    ],
)
def test_cancel_is_refused_with_the_reason(repo, db, spy, number: str, response: str) -> None:
    cancel = spy(repo, "cancel_order")
    dispatcher, _ = run(ActionCancelOrder(), make_tracker(slots=verified(number, cancel_confirmed=True)))
    assert responses(dispatcher) == [response]
    text = rendered(dispatcher)[0]
    assert number in text
    cancel.assert_not_called()
    assert db.unchanged()


def test_cancel_refused_by_the_shop_at_the_last_moment_is_explained(
    repo, shop_session_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order ships between the action's look-up and the cancellation: the repository's rule refuses."""
    real_get_order = repo.get_order

    def read_then_ship(order_number: str):
        order = real_get_order(order_number)
        with unit_of_work(shop_session_factory) as session:
            shipped = update(Order).values(status=OrderStatus.SHIPPED)
            session.execute(shipped.where(Order.order_number == order.order_number))
        return order

    monkeypatch.setattr(repo, "get_order", mock.create_autospec(real_get_order, side_effect=read_then_ship))
    dispatcher, events = run(ActionCancelOrder(), make_tracker(slots=verified("10021", cancel_confirmed=True)))
    assert responses(dispatcher) == [None]
    assert "already been shipped" in rendered(dispatcher)[0]
    assert slot_values(events)["order_number"] is None
    assert real_get_order("10021").status == "shipped"


def test_unexpected_error_is_logged_and_answered_with_an_apology(
    fail_repository, caplog: pytest.LogCaptureFixture
) -> None:
    fail_repository(RuntimeError("database is locked"))
    with caplog.at_level(logging.ERROR):
        dispatcher, events = run(
            ActionCancelOrder(), make_tracker(slots=verified("10021", cancel_confirmed=True))
        )
    assert responses(dispatcher) == ["utter_technical_problem"]
    rendered(dispatcher)
    assert "database is locked" in caplog.text and "Traceback" in caplog.text
    assert slot_values(events)["order_number"] is None


def test_submit_without_order_number_says_it_got_lost(repo, db) -> None:
    dispatcher, _ = run(ActionCancelOrder(), make_tracker(slots={"cancel_confirmed": True}))
    assert responses(dispatcher) == ["utter_order_unknown"]
    assert db.unchanged()


# -------------------------------------------------------------------------------------------- change address


async def test_address_form_skips_the_address_for_a_shipped_order(repo) -> None:
    tracker = form_tracker(
        "change_address_form",
        None,
        {"order_number": "10023"},
        {"verified_orders": ["10023"]},
        text="10023",
        intent="inform",
    )
    _, slots = await run_validation(ValidateChangeAddressForm(), tracker)
    assert slots["order_action_allowed"] is False and slots["requested_slot"] is None


@pytest.mark.parametrize(
    "text, valid",
    [
        ("Market Street 12, 10115 Springfield", True),
        ("  Market   Street 12,\n10115 Springfield ", True),
        ("abc", False),
        ("'; DROP TABLE orders;--", False),
        ("🏠🏠🏠🏠🏠🏠🏠🏠🏠", False),
        ("Street " * 2000 + "1", False),
        ("", False),
    ],
)
async def test_address_validation(repo, text: str, valid: bool) -> None:
    tracker = form_tracker(
        "change_address_form",
        "shipping_address",
        {"shipping_address": text},
        slots=verified("10021", order_action_allowed=True),
        text=text,
        intent="inform",
    )
    dispatcher, slots = await run_validation(ValidateChangeAddressForm(), tracker)
    if valid:
        assert slots["shipping_address"] == "Market Street 12, 10115 Springfield"
        assert dispatcher.messages == []
    else:
        assert slots["shipping_address"] is None
        assert responses(dispatcher) == ["utter_invalid_address"]


def test_address_reply_read_as_an_address_intent_is_still_taken() -> None:
    tracker = form_tracker(
        "change_address_form",
        "shipping_address",
        text="Market Street 12, 10115 Springfield",
        intent="set_up_shipping_address",
    )
    extracted = ValidateChangeAddressForm().extract_shipping_address(CollectingDispatcher(), tracker, DOMAIN)
    assert extracted == {"shipping_address": "Market Street 12, 10115 Springfield"}


def test_a_question_while_the_address_is_asked_is_not_taken_as_the_address() -> None:
    tracker = form_tracker(
        "change_address_form",
        "shipping_address",
        text="which payment methods?",
        intent="check_payment_methods",
    )
    assert ValidateChangeAddressForm().extract_shipping_address(CollectingDispatcher(), tracker, DOMAIN) == {}


def test_address_is_changed_before_shipping_after_a_yes(repo) -> None:
    address = "Market Street 12, 10115 Springfield"
    tracker = make_tracker(slots=verified("10022", shipping_address=address, address_confirmed=True))
    dispatcher, events = run(ActionChangeShippingAddress(), tracker)
    assert responses(dispatcher) == ["utter_address_changed"]
    assert "Market Street 12" in rendered(dispatcher)[0]
    assert repo.get_order("10022").shipping_address == address
    assert slot_values(events)["shipping_address"] is None
    assert slot_values(events)["address_confirmed"] is None


@pytest.mark.parametrize("answer", [False, None])
def test_address_is_kept_without_a_yes(repo, db, answer: Optional[bool]) -> None:
    address = "Market Street 12, 10115 Springfield"
    tracker = make_tracker(slots=verified("10022", shipping_address=address, address_confirmed=answer))
    dispatcher, _ = run(ActionChangeShippingAddress(), tracker)
    assert responses(dispatcher) == ["utter_order_kept"]
    rendered(dispatcher)
    assert db.unchanged()


async def test_address_form_asks_for_confirmation_after_the_address(repo) -> None:
    address = "Market Street 12, 10115 Springfield"
    tracker = form_tracker(
        "change_address_form",
        "shipping_address",
        {"shipping_address": address},
        slots=verified("10021", order_action_allowed=True),
        text=address,
        intent="inform",
    )
    _, slots = await run_validation(ValidateChangeAddressForm(), tracker)
    assert slots["requested_slot"] == "address_confirmed"
    assert DOMAIN["forms"]["change_address_form"]["required_slots"][-1] == "address_confirmed"
    buttons_sent = DOMAIN["responses"]["utter_ask_address_confirmed"][0]["buttons"]
    assert [button["payload"] for button in buttons_sent] == ["/affirm", "/deny"]


def test_address_change_is_refused_after_shipping(repo, db) -> None:
    tracker = make_tracker(
        slots=verified("10023", shipping_address="Market Street 12, 10115 Springfield", address_confirmed=True)
    )
    dispatcher, _ = run(ActionChangeShippingAddress(), tracker)
    assert responses(dispatcher) == ["utter_cannot_change_address"]
    rendered(dispatcher)
    assert db.unchanged()


# ------------------------------------------------------------------------------------------ what can change


@pytest.mark.parametrize(
    "entities, response",
    [
        ([entity("order_number", "10021")], "utter_change_order_open"),
        ([entity("order_number", "10022")], "utter_change_order_open"),
        ([entity("order_number", "#10023")], "utter_change_order_closed"),
        ([entity("order_number", "order 10024 please")], "utter_change_order_closed"),
        ([], "utter_change_order_options"),
    ],
)
def test_explain_order_changes(repo, entities: list, response: str) -> None:
    tracker = make_tracker(
        intent="change_order", entities=entities, slots={"verified_orders": ["10021", "10022", "10023", "10024"]}
    )
    dispatcher, _ = run(ActionExplainOrderChanges(), tracker)
    assert responses(dispatcher) == [response]
    rendered(dispatcher)


@pytest.mark.parametrize("number", ["10021", "10023", "99999"])
def test_explain_order_changes_says_nothing_about_an_unverified_order(repo, number: str) -> None:
    tracker = make_tracker(intent="change_order", entities=[entity("order_number", number)])
    dispatcher, _ = run(ActionExplainOrderChanges(), tracker)
    assert responses(dispatcher) == ["utter_change_order_options"]
    assert number not in rendered(dispatcher)[0]


@pytest.mark.parametrize("number", ["99999999999999999999"] + NOT_ORDER_NUMBERS)
def test_explain_order_changes_with_a_bad_number_still_explains(repo, number: str) -> None:
    tracker = make_tracker(intent="change_order", entities=[entity("order_number", number)])
    dispatcher, _ = run(ActionExplainOrderChanges(), tracker)
    assert responses(dispatcher) == [None, "utter_change_order_options"]
    assert "five digits" in rendered(dispatcher)[0]


# ------------------------------------------------------------------------------------- logged-in customers


def test_a_logged_in_customer_is_offered_their_recent_orders(repo) -> None:
    tracker = make_tracker(events=customer_metadata(1), active_loop="track_order_form")
    dispatcher, events = run(ActionAskTrackOrderFormOrderNumber(), tracker)
    assert responses(dispatcher) == ["utter_ask_which_of_your_orders"] and events == []
    rendered(dispatcher)
    payloads = [button["payload"] for button in buttons(dispatcher)]
    # Anna Berg (customer 1): 10023 (2 days ago), 10017 (20 days), 10029 (45 days): newest first
    assert payloads == [f'/track_order{{"order_number": "{number}"}}' for number in ("10023", "10017", "10029")]
    assert all(button["title"].startswith(number) for button, number in zip(buttons(dispatcher), "10023 10017 10029".split()))


@pytest.mark.parametrize("events", [[], customer_metadata(999), customer_metadata("1"), customer_metadata(True)])
def test_anyone_else_is_asked_for_the_number(repo, events: list) -> None:
    dispatcher, _ = run(ActionAskTrackOrderFormOrderNumber(), make_tracker(events=events))
    assert responses(dispatcher) == ["utter_ask_track_order_form_order_number"]
    assert buttons(dispatcher) == []
