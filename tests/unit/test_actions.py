"""Unit tests of the custom actions, run against the in-memory FakeShopRepository.

Each action runs with a real ``rasa_sdk`` Tracker and CollectingDispatcher. Every message an action sends is
checked against domain.yml: the response exists and every ``{variable}`` in it is provided.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import pytest
import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.utils import all_subclasses

from actions import common
from actions.orders import (
    ActionAskCancelConfirmed,
    ActionCancelOrder,
    ActionChangeShippingAddress,
    ActionExplainOrderChanges,
    ActionTrackOrder,
    ValidateCancelOrderForm,
    ValidateChangeAddressForm,
    ValidateTrackOrderForm,
)
from actions.products import ActionAnswerProductQuestion, ActionAskProduct, ValidateProductForm
from actions.refunds import ActionRequestRefund, ActionTrackRefund, ValidateRefundForm
from actions.support import ActionDefaultFallback, ActionFileComplaint, ActionHandOverToHuman, ActionStopFlow
from shop.errors import InvalidOrderNumber, OrderNotCancellable
from tests.unit.fakes import FakeShopRepository, fake_parse_order_number

PROJECT_ROOT = Path(__file__).resolve().parents[2]
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


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def repo(monkeypatch: pytest.MonkeyPatch) -> FakeShopRepository:
    """A fresh fake repository installed as the actions' repository, with the fake order-number parser."""
    fake = FakeShopRepository()
    common.set_repository(fake)
    monkeypatch.setattr(common, "parse_order_number", fake_parse_order_number)
    yield fake
    common.set_repository(None)


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


def form_tracker(
    form: str,
    requested_slot: Optional[str],
    candidates: Optional[Dict[str, Any]] = None,
    slots: Optional[Dict[str, Any]] = None,
    **message: Any,
) -> Tracker:
    """A tracker as Rasa's FormAction passes it to ``validate_<form>`` (candidates follow the form's event)."""
    candidates = candidates or {}
    events = [
        {"event": "slot", "name": "requested_slot", "value": requested_slot},
        {"event": "action", "name": form},
    ] + [{"event": "slot", "name": name, "value": value} for name, value in candidates.items()]
    all_slots = dict(slots or {})
    all_slots.update(candidates)
    all_slots["requested_slot"] = requested_slot
    return make_tracker(slots=all_slots, events=events, active_loop=form, **message)


def entity(name: str, value: str) -> Dict[str, Any]:
    """An entity as the NLU pipeline reports it."""
    return {"entity": name, "value": value, "start": 0, "end": len(value), "extractor": "test"}


def run(action: Action, tracker: Tracker) -> tuple:
    """Run a synchronous action; return (dispatcher, events)."""
    dispatcher = CollectingDispatcher()
    events = action.run(dispatcher, tracker, DOMAIN)
    return dispatcher, events


async def run_validation(action: Action, tracker: Tracker) -> tuple:
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


# -------------------------------------------------------------------------------------------- domain contract


def test_every_domain_action_is_implemented_and_every_action_is_in_the_domain() -> None:
    implemented = {
        cls().name()
        for cls in all_subclasses(Action)
        if cls.__module__.startswith("actions.") and not inspect.isabstract(cls)
    }
    assert implemented == set(DOMAIN["actions"])


def test_every_response_used_in_the_actions_exists() -> None:
    source = "\n".join(path.read_text(encoding="utf-8") for path in (PROJECT_ROOT / "actions").glob("*.py"))
    used = set(re.findall(r'"(utter_[a-z_]+)"', source))
    used.discard("utter_ask_product_")  # f-string prefix, checked below
    assert used <= set(DOMAIN["responses"]), used - set(DOMAIN["responses"])
    for question in ("info", "price", "availability", "search"):
        assert f"utter_ask_product_{question}" in DOMAIN["responses"]


def test_confirmation_buttons_send_affirm_and_deny() -> None:
    payloads = [
        button["payload"] for button in DOMAIN["responses"]["utter_ask_cancel_confirmed"][0]["buttons"]
    ]
    assert payloads == ["/affirm", "/deny"]


def test_fake_parser_agrees_with_the_real_one_when_available() -> None:
    repository = pytest.importorskip("shop.validation")
    for text in ["10023", "#10023", "order 10023", "Order no. 10023"] + BAD_ORDER_NUMBERS:
        try:
            expected = repository.parse_order_number(text)
        except InvalidOrderNumber:
            expected = None
        try:
            got = fake_parse_order_number(text)
        except InvalidOrderNumber:
            got = None
        assert got == expected, text


# --------------------------------------------------------------------------------------------- common helpers


def test_repository_is_created_lazily_once_and_can_be_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    created = []
    fake_db = types.ModuleType("shop.db")
    fake_db.make_engine = lambda: "engine"  # type: ignore[attr-defined]
    fake_db.make_session_factory = lambda engine: f"factory({engine})"  # type: ignore[attr-defined]
    fake_repository_module = types.ModuleType("shop.repository")

    class Repository:
        def __init__(self, factory: str) -> None:
            created.append(factory)

    fake_repository_module.ShopRepository = Repository  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "shop.db", fake_db)
    monkeypatch.setitem(sys.modules, "shop.repository", fake_repository_module)
    common.set_repository(None)
    try:
        first = common.get_repository()
        assert common.get_repository() is first
        assert created == ["factory(engine)"]
        replacement = FakeShopRepository()
        common.set_repository(replacement)
        assert common.get_repository() is replacement
    finally:
        common.set_repository(None)


@pytest.mark.parametrize(
    "amount, currency, expected",
    [
        (Decimal("1.79"), "EUR", "€1.79"),
        (Decimal("1234.5"), "EUR", "€1,234.50"),
        (Decimal("3"), "GBP", "£3.00"),
        (Decimal("3.5"), "CHF", "3.50 CHF"),
        (Decimal("-2"), "EUR", "-€2.00"),
    ],
)
def test_format_money(amount: Decimal, currency: str, expected: str) -> None:
    assert common.format_money(amount, currency) == expected


def test_format_unit_price() -> None:
    assert common.format_unit_price(Decimal("1.79"), "EUR", "kg") == "€1.79 per kg"
    assert common.format_unit_price(Decimal("1.29"), "EUR", "1 l carton") == "€1.29 for a 1 l carton"
    assert common.format_unit_price(Decimal("1.29"), "EUR", "") == "€1.29"


@pytest.mark.parametrize(
    "text, expected",
    [("10023", "10023"), ("#10023", "10023"), ("it's order 10023, thanks!", "10023"), ("(10021)", "10021")],
)
def test_find_order_number_in_a_reply(repo: FakeShopRepository, text: str, expected: str) -> None:
    assert common.find_order_number(text) == expected


@pytest.mark.parametrize("text", BAD_ORDER_NUMBERS + [None, 10023])
def test_find_order_number_refuses_anything_else(repo: FakeShopRepository, text: Any) -> None:
    with pytest.raises(InvalidOrderNumber):
        common.find_order_number(text)


def test_parse_amount() -> None:
    assert common.parse_amount("4.50") == Decimal("4.50")
    assert common.parse_amount("4,50 €") == Decimal("4.50")
    assert common.parse_amount("5 euros") == Decimal("5")
    assert common.parse_amount(None) is None
    assert common.parse_amount("  ") is None
    with pytest.raises(common.InvalidAmount):
        common.parse_amount("lots")


def test_transcript_has_roles_intents_timestamps_and_is_capped() -> None:
    events = [
        {"event": "action", "name": "action_listen"},
        {
            "event": "user",
            "text": "hi",
            "timestamp": 1_700_000_000.0,
            "parse_data": {"intent": {"name": "greet"}},
        },
        {"event": "bot", "text": "Hello!", "timestamp": 1_700_000_001.0},
        {"event": "user", "text": "y" * 5000, "timestamp": 1_700_000_002.0, "parse_data": {"intent": {}}},
        {
            "event": "user",
            "text": "",
            "timestamp": 1_700_000_003.0,
            "metadata": {"attachments": [{"type": "image", "id": "ab" * 32}]},
            "parse_data": {"intent": {"name": "product_info"}},
        },
    ]
    transcript = common.conversation_transcript(make_tracker(events=events))
    assert [turn["role"] for turn in transcript] == ["user", "bot", "user", "user"]
    assert transcript[0] == {
        "role": "user",
        "text": "hi",
        "timestamp": "2023-11-14T22:13:20+00:00",
        "intent": "greet",
    }
    assert transcript[1]["intent"] is None
    assert len(transcript[2]["text"]) == common.TRANSCRIPT_MAX_CHARS
    assert transcript[3]["text"] == "[image]"
    assert len(common.conversation_transcript(make_tracker(events=events), max_turns=2)) == 2


def test_sentiment_trail_reads_dicts_and_strings() -> None:
    events = [
        {"event": "user", "text": "a", "parse_data": {"sentiment": {"name": "neutral", "confidence": 0.8}}},
        {"event": "user", "text": "b", "parse_data": {"sentiment": "negative"}},
        {"event": "user", "text": "c", "parse_data": {}},
    ]
    assert common.sentiment_trail(make_tracker(events=events)) == ["neutral", "negative"]


# ----------------------------------------------------------------------------------------- order number forms


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
def test_track_order_answers_per_status(repo: FakeShopRepository, status_number: str, response: str) -> None:
    dispatcher, events = run(ActionTrackOrder(), make_tracker(slots={"order_number": status_number}))
    assert responses(dispatcher) == [response]
    rendered(dispatcher)
    assert slot_values(events)["order_number"] is None  # the next flow asks again


def test_track_shipped_order_tells_tracking_number_and_delivery_date(repo: FakeShopRepository) -> None:
    dispatcher, _ = run(ActionTrackOrder(), make_tracker(slots={"order_number": "10023"}))
    (text,) = rendered(dispatcher)
    assert "TRK-1002-3XYZ" in text and "Tuesday 4 June 2024" in text
    assert repo.writes == []


async def test_order_number_is_validated_and_normalised(repo: FakeShopRepository) -> None:
    tracker = form_tracker(
        "track_order_form", "order_number", {"order_number": "#10023"}, text="#10023", intent="inform"
    )
    dispatcher, slots = await run_validation(ValidateTrackOrderForm(), tracker)
    assert slots == {"order_number": "10023", "order_action_allowed": True}
    assert dispatcher.messages == []


@pytest.mark.parametrize("text", BAD_ORDER_NUMBERS)
async def test_bad_order_numbers_are_asked_again_without_errors(repo: FakeShopRepository, text: str) -> None:
    tracker = form_tracker(
        "track_order_form", "order_number", {"order_number": text}, text=text, intent="inform"
    )
    dispatcher, slots = await run_validation(ValidateTrackOrderForm(), tracker)
    assert slots["order_number"] is None
    (message,) = rendered(dispatcher)
    assert "five digits" in message
    assert repo.writes == []


async def test_unknown_order_number_is_asked_again(repo: FakeShopRepository) -> None:
    tracker = form_tracker(
        "track_order_form", "order_number", {"order_number": "12345"}, text="12345", intent="inform"
    )
    dispatcher, slots = await run_validation(ValidateTrackOrderForm(), tracker)
    assert slots["order_number"] is None
    assert "12345" in rendered(dispatcher)[0]


async def test_database_failure_during_validation_is_a_friendly_reply(
    repo: FakeShopRepository, caplog: pytest.LogCaptureFixture
) -> None:
    repo.fail_with = RuntimeError("connection refused")
    tracker = form_tracker(
        "track_order_form", "order_number", {"order_number": "10023"}, text="10023", intent="inform"
    )
    with caplog.at_level(logging.ERROR):
        dispatcher, slots = await run_validation(ValidateTrackOrderForm(), tracker)
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
async def test_free_text_is_taken_as_order_number_only_when_it_answers_the_question(
    repo: FakeShopRepository,
    text: str,
    intent: str,
    entities: list,
    requested: Optional[str],
    expected: Optional[str],
) -> None:
    tracker = form_tracker("track_order_form", requested, text=text, intent=intent, entities=entities)
    extracted = ValidateTrackOrderForm().extract_order_number(CollectingDispatcher(), tracker, DOMAIN)
    assert extracted.get("order_number") == expected


async def test_a_question_in_the_middle_of_the_form_is_not_validated(repo: FakeShopRepository) -> None:
    tracker = form_tracker(
        "track_order_form", "order_number", text="how long is delivery?", intent="delivery_period"
    )
    dispatcher, slots = await run_validation(ValidateTrackOrderForm(), tracker)
    # no slot: Rasa's form rejects, so the FAQ rule answers and the form asks again afterwards
    assert slots == {} and dispatcher.messages == []


# ----------------------------------------------------------------------------------------------- cancel order


async def test_cancel_form_asks_for_confirmation_of_an_open_order(repo: FakeShopRepository) -> None:
    tracker = form_tracker(
        "cancel_order_form", None, {"order_number": "10021"}, text="cancel 10021", intent="cancel_order"
    )
    dispatcher, slots = await run_validation(ValidateCancelOrderForm(), tracker)
    # no requested_slot override: Rasa goes on to ask cancel_confirmed
    assert slots == {"order_number": "10021", "order_action_allowed": True}
    assert repo.writes == []


@pytest.mark.parametrize("number", ["10023", "10024", "10025"])
async def test_cancel_form_ends_without_confirmation_for_orders_that_cannot_be_cancelled(
    repo: FakeShopRepository, number: str
) -> None:
    tracker = form_tracker(
        "cancel_order_form", None, {"order_number": number}, text=number, intent="cancel_order"
    )
    _, slots = await run_validation(ValidateCancelOrderForm(), tracker)
    assert slots["order_action_allowed"] is False
    assert "requested_slot" in slots and slots["requested_slot"] is None  # the form is done
    assert repo.writes == []


def test_confirmation_question_shows_the_order(repo: FakeShopRepository) -> None:
    dispatcher, events = run(ActionAskCancelConfirmed(), make_tracker(slots={"order_number": "10021"}))
    assert responses(dispatcher) == ["utter_ask_cancel_confirmed"]
    (text,) = rendered(dispatcher)
    assert "10021" in text and "2 items" in text and "€7.45" in text
    assert [button["payload"] for button in buttons(dispatcher)] == ["/affirm", "/deny"]
    assert events == [] and repo.writes == []


def test_cancel_after_yes_cancels(repo: FakeShopRepository) -> None:
    tracker = make_tracker(
        slots={"order_number": "10021", "cancel_confirmed": True, "order_action_allowed": True}
    )
    dispatcher, events = run(ActionCancelOrder(), tracker)
    assert responses(dispatcher) == ["utter_order_cancelled"]
    rendered(dispatcher)
    assert repo.writes == ["cancel_order"]
    assert repo.orders["10021"].status == "cancelled"
    assert slot_values(events) == {
        "order_number": None,
        "order_action_allowed": None,
        "cancel_confirmed": None,
        "shipping_address": None,
    }


@pytest.mark.parametrize("answer", [False, None])
def test_cancel_after_no_writes_nothing(repo: FakeShopRepository, answer: Optional[bool]) -> None:
    tracker = make_tracker(slots={"order_number": "10021", "cancel_confirmed": answer})
    dispatcher, _ = run(ActionCancelOrder(), tracker)
    assert responses(dispatcher) == ["utter_order_kept"]
    rendered(dispatcher)
    assert repo.writes == [] and not repo.called("cancel_order")
    assert repo.orders["10021"].status == "placed"


@pytest.mark.parametrize(
    "number, response",
    [
        ("10023", "utter_cannot_cancel"),
        ("10024", "utter_cannot_cancel"),
        ("10025", "utter_already_cancelled"),
    ],
)
def test_cancel_is_refused_with_the_reason(repo: FakeShopRepository, number: str, response: str) -> None:
    dispatcher, _ = run(
        ActionCancelOrder(), make_tracker(slots={"order_number": number, "cancel_confirmed": True})
    )
    assert responses(dispatcher) == [response]
    text = rendered(dispatcher)[0]
    assert number in text
    assert not repo.called("cancel_order") and repo.writes == []


def test_cancel_refused_by_the_shop_at_the_last_moment_is_explained(
    repo: FakeShopRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    def shipped_meanwhile(order_number: str, reason: Optional[str] = None) -> None:
        raise OrderNotCancellable(order_number, "shipped")

    monkeypatch.setattr(repo, "cancel_order", shipped_meanwhile)
    dispatcher, events = run(
        ActionCancelOrder(), make_tracker(slots={"order_number": "10021", "cancel_confirmed": True})
    )
    assert responses(dispatcher) == [None]
    assert "already been shipped" in rendered(dispatcher)[0]
    assert slot_values(events)["order_number"] is None


def test_unexpected_error_is_logged_and_answered_with_an_apology(
    repo: FakeShopRepository, caplog: pytest.LogCaptureFixture
) -> None:
    repo.fail_with = RuntimeError("database is locked")
    with caplog.at_level(logging.ERROR):
        dispatcher, events = run(
            ActionCancelOrder(), make_tracker(slots={"order_number": "10021", "cancel_confirmed": True})
        )
    assert responses(dispatcher) == ["utter_technical_problem"]
    rendered(dispatcher)
    assert "database is locked" in caplog.text and "Traceback" in caplog.text
    assert slot_values(events)["order_number"] is None


def test_submit_without_order_number_says_it_got_lost(repo: FakeShopRepository) -> None:
    dispatcher, _ = run(ActionCancelOrder(), make_tracker(slots={"cancel_confirmed": True}))
    assert responses(dispatcher) == ["utter_order_unknown"]
    assert repo.writes == []


# --------------------------------------------------------------------------------------------- change address


async def test_address_form_skips_the_address_for_a_shipped_order(repo: FakeShopRepository) -> None:
    tracker = form_tracker(
        "change_address_form", None, {"order_number": "10023"}, text="10023", intent="inform"
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
async def test_address_validation(repo: FakeShopRepository, text: str, valid: bool) -> None:
    tracker = form_tracker(
        "change_address_form",
        "shipping_address",
        {"shipping_address": text},
        slots={"order_number": "10021", "order_action_allowed": True},
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


def test_address_reply_read_as_an_address_intent_is_still_taken(repo: FakeShopRepository) -> None:
    tracker = form_tracker(
        "change_address_form",
        "shipping_address",
        text="Market Street 12, 10115 Springfield",
        intent="set_up_shipping_address",
    )
    extracted = ValidateChangeAddressForm().extract_shipping_address(CollectingDispatcher(), tracker, DOMAIN)
    assert extracted == {"shipping_address": "Market Street 12, 10115 Springfield"}


def test_a_question_while_the_address_is_asked_is_not_taken_as_the_address(repo: FakeShopRepository) -> None:
    tracker = form_tracker(
        "change_address_form",
        "shipping_address",
        text="which payment methods?",
        intent="check_payment_methods",
    )
    assert ValidateChangeAddressForm().extract_shipping_address(CollectingDispatcher(), tracker, DOMAIN) == {}


def test_address_is_changed_before_shipping(repo: FakeShopRepository) -> None:
    tracker = make_tracker(
        slots={"order_number": "10022", "shipping_address": "Market Street 12, 10115 Springfield"}
    )
    dispatcher, events = run(ActionChangeShippingAddress(), tracker)
    assert responses(dispatcher) == ["utter_address_changed"]
    assert "Market Street 12" in rendered(dispatcher)[0]
    assert repo.orders["10022"].shipping_address == "Market Street 12, 10115 Springfield"
    assert slot_values(events)["shipping_address"] is None


def test_address_change_is_refused_after_shipping(repo: FakeShopRepository) -> None:
    tracker = make_tracker(
        slots={"order_number": "10023", "shipping_address": "Market Street 12, 10115 Springfield"}
    )
    dispatcher, _ = run(ActionChangeShippingAddress(), tracker)
    assert responses(dispatcher) == ["utter_cannot_change_address"]
    rendered(dispatcher)
    assert repo.writes == []


@pytest.mark.parametrize(
    "entities, response",
    [
        ([entity("order_number", "10021")], "utter_change_order_open"),
        ([entity("order_number", "10023")], "utter_change_order_closed"),
        ([], "utter_change_order_options"),
    ],
)
def test_explain_order_changes(repo: FakeShopRepository, entities: list, response: str) -> None:
    dispatcher, _ = run(ActionExplainOrderChanges(), make_tracker(intent="change_order", entities=entities))
    assert responses(dispatcher) == [response]
    rendered(dispatcher)


def test_explain_order_changes_with_a_bad_number_still_explains(repo: FakeShopRepository) -> None:
    tracker = make_tracker(intent="change_order", entities=[entity("order_number", "99999999999999999999")])
    dispatcher, _ = run(ActionExplainOrderChanges(), tracker)
    assert responses(dispatcher) == [None, "utter_change_order_options"]
    rendered(dispatcher)


# ----------------------------------------------------------------------------------------------- refunds


def test_refund_is_requested_with_the_customers_reason(repo: FakeShopRepository) -> None:
    reason = "I want a refund for order 10024, the milk was sour"
    tracker = make_tracker(slots={"order_number": "10024", "refund_reason": reason})
    dispatcher, events = run(ActionRequestRefund(), tracker)
    assert responses(dispatcher) == ["utter_refund_requested"]
    text = rendered(dispatcher)[0]
    assert "RF-10024-1" in text and "€7.45" in text
    (refund,) = repo.refunds["10024"]
    assert refund.reason == reason and refund.amount == Decimal("7.45")
    assert slot_values(events)["refund_reason"] is None and slot_values(events)["amount"] is None


def test_partial_refund_reads_the_amount(repo: FakeShopRepository) -> None:
    tracker = make_tracker(
        slots={"order_number": "10024", "refund_reason": "two bananas were bad", "amount": "2,50 €"}
    )
    run(ActionRequestRefund(), tracker)
    assert repo.refunds["10024"][0].amount == Decimal("2.50")


@pytest.mark.parametrize("amount", ["lots", "-5", "1000000"])
def test_bad_refund_amounts_are_explained(repo: FakeShopRepository, amount: str) -> None:
    tracker = make_tracker(slots={"order_number": "10024", "refund_reason": "bad", "amount": amount})
    dispatcher, _ = run(ActionRequestRefund(), tracker)
    assert responses(dispatcher) == [None]
    assert "amount" in rendered(dispatcher)[0].lower()
    assert repo.writes == []


def test_refund_for_an_order_not_delivered_yet_is_refused(repo: FakeShopRepository) -> None:
    dispatcher, _ = run(
        ActionRequestRefund(), make_tracker(slots={"order_number": "10021", "refund_reason": "x"})
    )
    assert "placed" in rendered(dispatcher)[0]
    assert repo.writes == []


def test_huge_refund_reason_is_cut(repo: FakeShopRepository) -> None:
    run(ActionRequestRefund(), make_tracker(slots={"order_number": "10024", "refund_reason": "z" * 10_000}))
    assert len(repo.refunds["10024"][0].reason) == 1000


async def test_refund_form_validates_the_order_number(repo: FakeShopRepository) -> None:
    tracker = form_tracker("refund_form", "order_number", {"order_number": "-5"}, text="-5", intent="inform")
    dispatcher, slots = await run_validation(ValidateRefundForm(), tracker)
    assert slots["order_number"] is None
    rendered(dispatcher)


def test_track_refund_lists_refunds(repo: FakeShopRepository) -> None:
    dispatcher, _ = run(ActionTrackRefund(), make_tracker(slots={"order_number": "10024"}))
    assert responses(dispatcher) == ["utter_no_refunds"]
    repo.request_refund("10024", "sour milk", Decimal("1.29"))
    dispatcher, events = run(ActionTrackRefund(), make_tracker(slots={"order_number": "10024"}))
    assert responses(dispatcher) == ["utter_refund_list"]
    text = rendered(dispatcher)[0]
    assert "RF-10024-1" in text and "€1.29" in text and "being checked" in text
    assert slot_values(events)["order_number"] is None


# ----------------------------------------------------------------------------------------------- products


async def test_product_name_is_matched_tolerantly(repo: FakeShopRepository) -> None:
    tracker = form_tracker(
        "product_form",
        None,
        {"product": "bananas"},
        slots={"product_question": "price"},
        text="how much are bananas",
        intent="product_price",
        entities=[entity("product", "bananas")],
    )
    dispatcher, slots = await run_validation(ValidateProductForm(), tracker)
    assert slots["product"] == "Banana" and slots["product_sku"] == "FRU-BANANA"
    assert slots["product_miss"] is None and dispatcher.messages == []


async def test_unknown_product_is_remembered_with_suggestions(repo: FakeShopRepository) -> None:
    tracker = form_tracker(
        "product_form",
        None,
        {"product": "honeydew melons"},
        text="how much are honeydew melons",
        intent="product_price",
        entities=[entity("product", "honeydew melons")],
    )
    dispatcher, slots = await run_validation(ValidateProductForm(), tracker)
    assert slots["product"] is None and slots["product_sku"] is None
    assert slots["product_miss"] == "honeydew melons"
    assert "Galia Melon" in slots["product_suggestions"] and len(slots["product_suggestions"]) <= 3
    assert dispatcher.messages == []  # action_ask_product offers them next


@pytest.mark.parametrize("text", BAD_PRODUCT_TEXTS)
async def test_bad_product_texts_never_raise(repo: FakeShopRepository, text: str) -> None:
    tracker = form_tracker(
        "product_form",
        "product",
        {"product": text},
        slots={"product_question": "price"},
        text=text,
        intent="inform",
    )
    dispatcher, slots = await run_validation(ValidateProductForm(), tracker)
    assert slots["product"] is None
    # the question (with suggestions, if any) follows from action_ask_product
    assert dispatcher.messages == []
    for args, _ in repo.called("find_product"):
        assert len(args[0]) <= 100


async def test_the_question_is_remembered_while_the_product_is_asked(repo: FakeShopRepository) -> None:
    start = form_tracker("product_form", None, text="how much is it?", intent="product_price")
    _, slots = await run_validation(ValidateProductForm(), start)
    assert slots == {"product_question": "price"}
    # "bananas" read as a search is only the answer to "which product?"
    reply = form_tracker(
        "product_form",
        "product",
        slots={"product_question": "price"},
        text="bananas",
        intent="product_search",
    )
    _, slots = await run_validation(ValidateProductForm(), reply)
    assert "product_question" not in slots
    assert slots["product"] == "Banana"


async def test_a_new_complete_question_in_the_form_changes_the_question(repo: FakeShopRepository) -> None:
    tracker = form_tracker(
        "product_form",
        "product",
        {"product": "mango"},
        slots={"product_question": "price"},
        text="is mango in stock?",
        intent="product_availability",
        entities=[entity("product", "mango")],
    )
    _, slots = await run_validation(ValidateProductForm(), tracker)
    assert slots["product_question"] == "availability" and slots["product"] == "Mango"


async def test_search_ignores_a_product_remembered_from_before(repo: FakeShopRepository) -> None:
    tracker = form_tracker(
        "product_form", None, {"product": "Banana"}, text="I'm looking for something", intent="product_search"
    )
    _, slots = await run_validation(ValidateProductForm(), tracker)
    assert slots["product_question"] == "search" and slots["product"] is None


def test_ask_product_offers_suggestions_as_buttons(repo: FakeShopRepository) -> None:
    tracker = make_tracker(
        slots={"product_miss": "melns", "product_suggestions": ["Galia Melon", "Cantaloupe Melon"]}
    )
    dispatcher, events = run(ActionAskProduct(), tracker)
    assert responses(dispatcher) == ["utter_product_not_found"]
    assert rendered(dispatcher)[0].startswith(
        'I couldn\'t find "melns". Did you mean Galia Melon or Cantaloupe Melon?'
    )
    payloads = [button["payload"] for button in buttons(dispatcher)]
    assert payloads == ['/inform{"product": "Galia Melon"}', '/inform{"product": "Cantaloupe Melon"}']
    assert json.loads(payloads[0][len("/inform") :]) == {"product": "Galia Melon"}
    assert slot_values(events) == {"product_miss": None, "product_suggestions": None}


def test_ask_product_without_suggestions(repo: FakeShopRepository) -> None:
    dispatcher, _ = run(ActionAskProduct(), make_tracker(slots={"product_miss": "🍌🍌"}))
    assert responses(dispatcher) == ["utter_product_not_found_no_suggestions"]
    rendered(dispatcher)


@pytest.mark.parametrize("question", ["info", "price", "availability", "search", None])
def test_ask_product_fits_the_question(repo: FakeShopRepository, question: Optional[str]) -> None:
    dispatcher, _ = run(ActionAskProduct(), make_tracker(slots={"product_question": question}))
    assert responses(dispatcher) == [f"utter_ask_product_{question or 'info'}"]


def test_price_of_bananas(repo: FakeShopRepository) -> None:
    tracker = make_tracker(
        slots={"product_question": "price", "product": "Banana", "product_sku": "FRU-BANANA"}
    )
    dispatcher, _ = run(ActionAnswerProductQuestion(), tracker)
    assert responses(dispatcher) == ["utter_product_price"]
    assert rendered(dispatcher) == ["The price of Banana is €1.79 per kg."]


def test_product_info(repo: FakeShopRepository) -> None:
    tracker = make_tracker(
        slots={"product_question": "info", "product": "Arla Whole Milk", "product_sku": "DAI-MILK-WHOLE"}
    )
    dispatcher, _ = run(ActionAnswerProductQuestion(), tracker)
    text = rendered(dispatcher)[0]
    assert "Fresh whole milk" in text and "Price: €1.29 for a 1 l carton." in text and "In stock." in text


@pytest.mark.parametrize(
    "sku, quantity, expected",
    [
        ("FRU-AVOCADO", None, ["utter_product_in_stock"]),
        ("FRU-BLUEBERRY", None, ["utter_product_low_stock"]),
        ("FRU-AVOCADO", "500", ["utter_product_not_enough"]),
        ("FRU-AVOCADO", "a few", ["utter_product_in_stock"]),
        ("FRU-MELON-GALIA", None, ["utter_product_out_of_stock", "utter_product_alternatives"]),
    ],
)
def test_availability(
    repo: FakeShopRepository, sku: str, quantity: Optional[str], expected: List[str]
) -> None:
    tracker = make_tracker(
        slots={"product_question": "availability", "product_sku": sku, "quantity": quantity}
    )
    dispatcher, events = run(ActionAnswerProductQuestion(), tracker)
    assert responses(dispatcher) == expected
    rendered(dispatcher)
    assert slot_values(events)["quantity"] is None


def test_sold_out_product_suggests_in_stock_alternatives(repo: FakeShopRepository) -> None:
    tracker = make_tracker(slots={"product_question": "availability", "product_sku": "FRU-MELON-GALIA"})
    dispatcher, _ = run(ActionAnswerProductQuestion(), tracker)
    assert "Cantaloupe Melon" in rendered(dispatcher)[1]
    assert buttons(dispatcher) == [
        {"title": "Cantaloupe Melon", "payload": '/product_availability{"product": "Cantaloupe Melon"}'}
    ]


def test_answer_without_a_known_product_asks_again(repo: FakeShopRepository) -> None:
    dispatcher, _ = run(ActionAnswerProductQuestion(), make_tracker(slots={"product_question": "price"}))
    assert responses(dispatcher) == ["utter_product_unknown"]


def test_search_lists_results_as_buttons(repo: FakeShopRepository) -> None:
    tracker = make_tracker(slots={"product_question": "search", "product": "berries"})
    dispatcher, events = run(ActionAnswerProductQuestion(), tracker)
    assert responses(dispatcher) == ["utter_search_results"]
    text = rendered(dispatcher)[0]
    assert "Blueberries: €2.99 for a 250 g punnet" in text and "Raspberries" in text and "(sold out)" in text
    assert {button["payload"] for button in buttons(dispatcher)} == {
        '/product_info{"product": "Blueberries"}',
        '/product_info{"product": "Raspberries"}',
    }
    assert slot_values(events)["product"] is None  # search words are not a product


def test_search_by_category_and_single_hit(repo: FakeShopRepository) -> None:
    dispatcher, events = run(
        ActionAnswerProductQuestion(), make_tracker(slots={"product_question": "search", "product": "dairy"})
    )
    assert "Arla Whole Milk" in rendered(dispatcher)[0]
    assert slot_values(events)["product"] == "Arla Whole Milk"


@pytest.mark.parametrize("query", ["unicorn steak", "🦄", "'; DROP TABLE products;--"])
def test_search_without_results(repo: FakeShopRepository, query: str) -> None:
    dispatcher, _ = run(
        ActionAnswerProductQuestion(), make_tracker(slots={"product_question": "search", "product": query})
    )
    assert responses(dispatcher) == ["utter_search_no_results"]
    rendered(dispatcher)


# ----------------------------------------------------------------------------------------------- support


def conversation() -> List[Dict[str, Any]]:
    """A short conversation with a negative turn, as tracker events."""
    return [
        {"event": "action", "name": "action_listen"},
        {
            "event": "user",
            "text": "where is order 10023?",
            "timestamp": 1_700_000_000.0,
            "parse_data": {"intent": {"name": "track_order"}, "sentiment": "neutral"},
        },
        {"event": "bot", "text": "Good news: order 10023 is on its way!", "timestamp": 1_700_000_001.0},
        {
            "event": "user",
            "text": "it's late again, I want a person",
            "timestamp": 1_700_000_002.0,
            "parse_data": {"intent": {"name": "contact_human_agent"}, "sentiment": {"name": "negative"}},
        },
    ]


def test_handover_creates_a_ticket_with_the_transcript(repo: FakeShopRepository) -> None:
    tracker = make_tracker(
        text="it's late again, I want a person",
        intent="contact_human_agent",
        events=conversation(),
        slots={"order_number": "10023"},
    )
    dispatcher, events = run(ActionHandOverToHuman(), tracker)
    (ticket,) = repo.tickets
    assert responses(dispatcher) == ["utter_handoff_ticket"]
    assert ticket["ticket_number"] in rendered(dispatcher)[0]
    assert ticket["sender_id"] == "customer-1"
    assert [(turn["role"], turn["text"]) for turn in ticket["transcript"]] == [
        ("user", "where is order 10023?"),
        ("bot", "Good news: order 10023 is on its way!"),
        ("user", "it's late again, I want a person"),
    ]
    assert ticket["transcript"][0]["intent"] == "track_order"
    assert ticket["sentiment_trail"] == ["neutral", "negative"]
    assert ticket["priority"] == "high"  # the customer sounded negative
    assert ticket["order_number"] == "10023"
    assert events == []


def test_handover_of_a_calm_customer_is_normal_priority(repo: FakeShopRepository) -> None:
    run(ActionHandOverToHuman(), make_tracker(text="can I talk to someone?", intent="contact_human_agent"))
    assert repo.tickets[0]["priority"] == "normal" and repo.tickets[0]["order_number"] is None


def test_complaint_creates_an_urgent_ticket(repo: FakeShopRepository) -> None:
    text = "half the eggs were broken"
    dispatcher, _ = run(
        ActionFileComplaint(), make_tracker(text=text, intent="complaint", events=conversation())
    )
    assert responses(dispatcher) == ["utter_complaint_ticket"]
    rendered(dispatcher)
    (ticket,) = repo.tickets
    assert ticket["subject"] == f"Complaint: {text}" and ticket["priority"] == "high"
    assert len(ticket["transcript"]) == 3


@pytest.mark.parametrize("text", ["x" * 10_000, "'; DROP TABLE support_tickets;--", "🤬🤬🤬", ""])
def test_complaint_with_odd_text(repo: FakeShopRepository, text: str) -> None:
    dispatcher, _ = run(ActionFileComplaint(), make_tracker(text=text, intent="complaint"))
    assert responses(dispatcher) == ["utter_complaint_ticket"]
    assert len(repo.tickets[0]["subject"]) <= 140


def test_ticket_failure_does_not_send_the_customer_in_circles(repo: FakeShopRepository) -> None:
    repo.fail_with = RuntimeError("disk full")
    dispatcher, _ = run(ActionHandOverToHuman(), make_tracker(intent="contact_human_agent"))
    assert responses(dispatcher) == ["utter_handoff_failed"]
    rendered(dispatcher)


def test_fallback_asks_to_rephrase_then_offers_a_person() -> None:
    dispatcher, events = run(ActionDefaultFallback(), make_tracker(intent="nlu_fallback"))
    assert responses(dispatcher) == ["utter_default"]
    assert events == [UserUtteranceReverted()]
    earlier = [
        {"event": "action", "name": "utter_greet"},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "blorf"},
        {"event": "action", "name": "action_default_fallback"},
        {"event": "bot", "text": "Sorry, I didn't quite get that."},
        {"event": "rewind"},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "snargle"},
    ]
    dispatcher, _ = run(ActionDefaultFallback(), make_tracker(intent="nlu_fallback", events=earlier))
    assert responses(dispatcher) == ["utter_default_handoff"]
    assert "/contact_human_agent" in [button["payload"] for button in buttons(dispatcher)]


@pytest.mark.parametrize("intent, response", [("deny", "utter_flow_stopped"), ("goodbye", "utter_goodbye")])
def test_stop_flow_forgets_the_flow(intent: str, response: str) -> None:
    tracker = make_tracker(intent=intent, slots={"order_number": "10021", "cancel_confirmed": True})
    dispatcher, events = run(ActionStopFlow(), tracker)
    assert responses(dispatcher) == [response]
    values = slot_values(events)
    assert values["order_number"] is None and values["cancel_confirmed"] is None


def test_the_action_server_registers_every_domain_action() -> None:
    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package("actions")
    assert set(DOMAIN["actions"]) <= set(executor.actions)
