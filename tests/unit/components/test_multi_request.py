"""Folding clause intents into requests (components.multirequest.folding) and the MultiRequestCollector on a
batch as the ClauseSplitter and the classifiers leave it (intents and entities set as they would set them)."""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from assistant.keys import REQUESTS
from components.clause_splitter import MESSAGE_ID, ClauseSplitter
from components.multi_request import ORDER_REQUEST_INTENTS, MultiRequestCollector
from components.multirequest.clauses import split_clauses
from components.multirequest.folding import (
    ClassifiedClause,
    first_request_entities,
    fold_requests,
    is_multi_request,
    order_numbers_in,
)


def order_entities(text: str, extractors: Sequence[str] = ("RegexEntityExtractor",)) -> List[Dict[str, Any]]:
    """The order_number entities a regex extractor (and DIET, when named too) would find in ``text``."""
    return [
        {"entity": "order_number", "value": m.group(0), "start": m.start(), "end": m.end(), "extractor": name}
        for m in re.finditer(r"\b\d{5}\b", text)
        for name in extractors
    ]


def classify(text: str, intents: Sequence[Tuple[Optional[str], float]]) -> List[ClassifiedClause]:
    clauses = split_clauses(text)
    assert len(clauses) == len(intents), [c.text for c in clauses]
    return [ClassifiedClause(c, name, confidence) for c, (name, confidence) in zip(clauses, intents)]


def fold(text: str, *intents: Tuple[Optional[str], float], entities=None):
    entities = order_entities(text) if entities is None else entities
    return fold_requests(text, entities, classify(text, intents), ORDER_REQUEST_INTENTS, 0.5)


# ------------------------------------------------------------------------------------------------- folding


def test_track_then_cancel_are_two_requests_with_their_own_orders() -> None:
    text = "where is order 10023 and can you also cancel 10027"
    requests = fold(text, ("track_order", 0.9), ("cancel_order", 0.8))
    assert [(r.intent, r.order_numbers) for r in requests] == [
        ("track_order", ["10023"]), ("cancel_order", ["10027"])
    ]
    assert is_multi_request(requests)


def test_one_request_for_several_orders() -> None:
    text = "cancel order 45172 and 45173 and 45174"
    requests = fold(text, ("cancel_order", 0.95), entities=order_entities(text, ("DIETClassifier", "Regex")))
    assert [(r.intent, r.order_numbers) for r in requests] == [("cancel_order", ["45172", "45173", "45174"])]
    assert is_multi_request(requests)


def test_one_request_for_one_order_is_no_multi_request() -> None:
    assert not is_multi_request(fold("cancel and refund order 10023", ("cancel_order", 0.7)))
    crisps = fold("do you sell salt and vinegar crisps", ("product_availability", 0.9), ("inform", 0.6))
    assert not is_multi_request(crisps)


def test_a_postcode_after_an_order_number_is_no_second_order() -> None:
    text = "change the address of order 10023 to 12345 Main Street"
    assert order_numbers_in(text, order_entities(text), 0, len(text)) == ["10023"]
    listed = "cancel 45172, 45173 & order 45174"
    assert order_numbers_in(listed, order_entities(listed), 0, len(listed)) == ["45172", "45173", "45174"]


def test_a_clause_that_is_no_request_belongs_to_the_request_before_it() -> None:
    requests = fold("where is order 10023 and order 10024 too", ("track_order", 0.9), ("inform", 0.9))
    assert [(r.intent, r.order_numbers) for r in requests] == [("track_order", ["10023", "10024"])]


def test_an_unsure_clause_is_no_request() -> None:
    requests = fold("where is order 10023 and cancel 10031", ("track_order", 0.9), ("cancel_order", 0.3))
    assert [(r.intent, r.order_numbers) for r in requests] == [("track_order", ["10023", "10031"])]


def test_same_intent_twice_is_one_request() -> None:
    requests = fold("track 10023 and where is 10024", ("track_order", 0.9), ("track_order", 0.9))
    assert [(r.intent, r.order_numbers) for r in requests] == [("track_order", ["10023", "10024"])]


def test_a_request_that_points_back_takes_the_order_before_it() -> None:
    requests = fold("where is order 10023 and cancel it", ("track_order", 0.9), ("cancel_order", 0.9))
    assert [(r.intent, r.order_numbers) for r in requests] == [
        ("track_order", ["10023"]), ("cancel_order", ["10023"])
    ]
    other = fold(
        "where is order 10023 and cancel my other order", ("track_order", 0.9), ("cancel_order", 0.9)
    )
    assert other[1].order_numbers == []


def test_a_lead_clause_joins_the_first_request() -> None:
    requests = fold("hello there and where is 10023", ("greet", 0.9), ("track_order", 0.9))
    assert requests[0].start == 0 and requests[0].order_numbers == ["10023"]


def test_first_request_entities_keep_its_order_and_the_email() -> None:
    text = "where is order 10023 and cancel 10027, my email is anna.berg@example.com"
    email = {"entity": "email", "value": "anna.berg@example.com", "start": 51, "end": 72}
    entities = order_entities(text, ("DIETClassifier", "Regex")) + [email]
    requests = fold_requests(text, entities, classify(text, [("track_order", 0.9), ("cancel_order", 0.9)]),
                             ORDER_REQUEST_INTENTS, 0.5)
    kept = first_request_entities(entities, requests[0])
    assert sorted({e["value"] for e in kept}) == ["10023", "anna.berg@example.com"]
    assert len(kept) == 3  # both extractors' 10023 and the email


# ----------------------------------------------------------------------------------------------- component


def parsed(message: Message, intent: Optional[str], confidence: float = 0.9, entities=None) -> Message:
    """Sets what the classifiers would (intent, ranking) and the extractors' entities."""
    message.set(INTENT, {"name": intent, "confidence": confidence}, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [{"name": intent, "confidence": confidence}], add_to_output=True)
    found = order_entities(message.get(TEXT)) if entities is None else entities
    message.set(ENTITIES, found, add_to_output=True)
    return message


def batch(text: str, whole: Optional[str], *clause_intents: Tuple[str, float]) -> List[Message]:
    messages = ClauseSplitter({}).process([Message(data={TEXT: text, MESSAGE_ID: "m-1"})])
    assert len(messages) == 1 + len(clause_intents)
    parsed(messages[0], whole)
    for message, (name, confidence) in zip(messages[1:], clause_intents):
        parsed(message, name, confidence)
    return messages


def collect(messages: List[Message], **config: Any) -> List[Message]:
    return MultiRequestCollector({**MultiRequestCollector.get_default_config(), **config}).process(messages)


def test_collector_narrows_the_message_to_its_first_request() -> None:
    text = "where is order 10023 and can you also cancel 10027"
    out = collect(batch(text, "cancel_order", ("track_order", 0.91), ("cancel_order", 0.88)))
    assert len(out) == 1
    message = out[0]
    assert message.get(INTENT)["name"] == "track_order"
    assert [e["value"] for e in message.get(ENTITIES)] == ["10023"]
    requests = message.get(REQUESTS)
    assert [(r["intent"], r["order_numbers"], r["text"]) for r in requests] == [
        ("track_order", ["10023"], "where is order 10023"),
        ("cancel_order", ["10027"], "can you also cancel 10027"),
    ]
    assert requests[1]["entities"][0]["value"] == "10027"
    assert REQUESTS in message.as_dict(only_output_properties=True)


def test_collector_handles_one_request_for_three_orders_without_clauses() -> None:
    out = collect(batch("cancel order 45172 and 45173 and 45174", "cancel_order"))
    assert out[0].get(REQUESTS)[0]["order_numbers"] == ["45172", "45173", "45174"]
    assert [e["value"] for e in out[0].get(ENTITIES)] == ["45172"]


def test_collector_overrides_the_fallback_with_clear_requests() -> None:
    text = "where is order 10023 and cancel 10031"
    out = collect(batch(text, "nlu_fallback", ("track_order", 0.9), ("cancel_order", 0.9)))
    assert out[0].get(INTENT)["name"] == "track_order"


@pytest.mark.parametrize(
    "text, whole, clauses",
    [
        ("bread and butter", "product_info", ()),
        (
            "do you sell salt and vinegar crisps",
            "product_availability",
            (("product_availability", 0.9), ("inform", 0.8)),
        ),
        ("where is my order 10023", "track_order", ()),
        # a complaint that names two orders stays a complaint (the hand-over must not be lost)
        (
            "this is awful, order 10023 is late and cancel 10031",
            "complaint",
            (("complaint", 0.9), ("cancel_order", 0.9)),
        ),
    ],
)
def test_collector_leaves_single_requests_alone(text: str, whole: str, clauses) -> None:
    messages = batch(text, whole, *clauses)
    before = (messages[0].get(INTENT), list(messages[0].get(ENTITIES)))
    out = collect(messages)
    assert len(out) == 1 and out[0].get(REQUESTS) is None
    assert (out[0].get(INTENT), out[0].get(ENTITIES)) == before


def test_collector_keeps_messages_without_text_and_payloads() -> None:
    photo = Message(data={TEXT: "", MESSAGE_ID: "p"})
    numbers = [{"entity": "order_number", "value": "10023"}, {"entity": "order_number", "value": "10024"}]
    payload = Message(data={TEXT: '/cancel_order{"order_number":"10023"}', MESSAGE_ID: "q"})
    parsed(payload, "cancel_order", entities=numbers)
    assert collect([photo, payload]) == [photo, payload]
    assert payload.get(REQUESTS) is None


def test_collector_config_is_checked() -> None:
    with pytest.raises(InvalidConfigException):
        MultiRequestCollector({"request_intents": []})
    with pytest.raises(InvalidConfigException):
        MultiRequestCollector({"min_confidence": 2})
