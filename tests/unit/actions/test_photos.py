"""Unit tests of `actions.photos` on the real repository over the seeded in-memory database: the answer to a
photo sent without text, and attachments that could not be used."""

from __future__ import annotations

import json
from typing import Any, Dict

import pytest

from actions.photos import ActionAnswerProductPhoto, ActionAttachmentProblem, recognised_sku
from assistant.keys import ATTACHMENT_PROBLEM, PRODUCT_RECOGNITION, RECOGNISED, UNCERTAIN, UNKNOWN
from tests.unit.actions.harness import (
    buttons,
    make_tracker,
    photo_entity,
    recognition,
    rendered,
    responses,
    run,
    slot_values,
    with_parse,
)


def photo_message(entities=(), **parse_data: Any):
    """A photo sent without text (``send_image``) with the given parse data."""
    return with_parse(make_tracker(intent="send_image", entities=list(entities)), **parse_data)


# ------------------------------------------------------------------------------------------------ photo alone


def test_a_recognised_photo_is_named_with_buttons_and_remembered(repo, spy) -> None:
    get_product = spy(repo, "get_product")
    tracker = photo_message(
        [photo_entity("FRU-BANANA", "Banana")],
        **{PRODUCT_RECOGNITION: recognition(RECOGNISED, "FRU-BANANA", "FRU-MANGO")},
    )
    dispatcher, events = run(ActionAnswerProductPhoto(), tracker)
    assert responses(dispatcher) == ["utter_photo_product"]
    [text] = rendered(dispatcher)
    assert text.startswith("This looks like Banana")
    assert "what would you like to know?" in text
    assert [b["payload"] for b in buttons(dispatcher)] == [
        '/product_price{"product": "Banana"}',
        '/product_availability{"product": "Banana"}',
        '/similar_products{"product": "Banana"}',
    ]
    assert slot_values(events) == {"product": "Banana", "product_sku": "FRU-BANANA"}
    assert [call.args for call in get_product.call_args_list] == [("FRU-BANANA",)]


def test_a_recognised_photo_without_entity_uses_the_recognition(repo) -> None:
    tracker = photo_message(**{PRODUCT_RECOGNITION: recognition(RECOGNISED, "FRU-MANGO")})
    dispatcher, events = run(ActionAnswerProductPhoto(), tracker)
    assert rendered(dispatcher)[0].startswith("This looks like Mango")
    assert slot_values(events)["product_sku"] == "FRU-MANGO"


def test_an_unclear_photo_offers_the_candidates_that_exist(repo) -> None:
    tracker = photo_message(
        **{
            PRODUCT_RECOGNITION: recognition(
                UNCERTAIN, "FRU-MEL-GALIA", "GONE-SKU", "FRU-MEL-CANTALOUPE", "FRU-MANGO", "FRU-BANANA"
            )
        }
    )
    dispatcher, events = run(ActionAnswerProductPhoto(), tracker)
    assert responses(dispatcher) == ["utter_photo_confirm"]
    rendered(dispatcher)
    payloads = [b["payload"] for b in buttons(dispatcher)]
    assert payloads == [
        '/product_info{"product": "Galia Melon"}',
        '/product_info{"product": "Cantaloupe Melon"}',
        '/product_info{"product": "Mango"}',
    ]
    assert [b["title"] for b in buttons(dispatcher)] == ["Galia Melon", "Cantaloupe Melon", "Mango"]
    assert events == []


@pytest.mark.parametrize(
    "parse_data",
    [
        {PRODUCT_RECOGNITION: recognition(UNKNOWN)},
        {PRODUCT_RECOGNITION: recognition(UNCERTAIN, "GONE-SKU")},
        {PRODUCT_RECOGNITION: recognition(RECOGNISED, "GONE-SKU")},
        {PRODUCT_RECOGNITION: "garbage"},
        {},
    ],
    ids=["unknown", "candidates-gone", "recognised-gone", "malformed", "no-recogniser"],
)
def test_an_unrecognised_photo_asks_for_the_name(repo, db, parse_data: Dict) -> None:
    dispatcher, events = run(ActionAnswerProductPhoto(), photo_message(**parse_data))
    assert responses(dispatcher) == ["utter_photo_unknown"]
    assert rendered(dispatcher) == ["I couldn't tell which product this is — could you tell me its name?"]
    assert events == []
    assert db.unchanged()


def test_a_repository_failure_becomes_the_technical_problem_reply(fail_repository) -> None:
    fail_repository(RuntimeError("database down"))
    tracker = photo_message(
        [photo_entity("FRU-BANANA", "Banana")], **{PRODUCT_RECOGNITION: recognition(RECOGNISED, "FRU-BANANA")}
    )
    dispatcher, events = run(ActionAnswerProductPhoto(), tracker)
    assert responses(dispatcher) == ["utter_technical_problem"]
    assert events == []


def test_every_photo_button_payload_is_valid_json(repo, add_product) -> None:
    add_product("FRU-QUOTE", 'Odd "Quoted" Fruit', "Fruit/Odd", "odd fruit")
    tracker = photo_message(
        [photo_entity("FRU-QUOTE", 'Odd "Quoted" Fruit')],
        **{PRODUCT_RECOGNITION: recognition(RECOGNISED, "FRU-QUOTE")},
    )
    dispatcher, _ = run(ActionAnswerProductPhoto(), tracker)
    assert len(buttons(dispatcher)) == 3
    for button in buttons(dispatcher):
        intent, _, payload = button["payload"][1:].partition("{")
        assert json.loads("{" + payload) == {"product": 'Odd "Quoted" Fruit'}


# -------------------------------------------------------------------------------------- attachment problems


def test_an_attachment_problem_is_explained_with_its_friendly_message() -> None:
    message = "That photo seems to be damaged. Could you send it again?"
    problem = {"type": "image", "code": "damaged", "message": message}
    tracker = with_parse(make_tracker(intent="attachment_problem"), **{ATTACHMENT_PROBLEM: problem})
    dispatcher, events = run(ActionAttachmentProblem(), tracker)
    assert [m.get("text") for m in dispatcher.messages] == [problem["message"]]
    assert events == []


@pytest.mark.parametrize("problem", [None, {}, {"message": ""}, {"message": ["x"]}, "damaged"])
def test_an_attachment_problem_without_message_gets_the_general_reply(problem: Any) -> None:
    tracker = with_parse(make_tracker(intent="attachment_problem"), **{ATTACHMENT_PROBLEM: problem})
    dispatcher, _ = run(ActionAttachmentProblem(), tracker)
    assert responses(dispatcher) == ["utter_attachment_problem"]
    assert "photos" in rendered(dispatcher)[0]


def test_an_overlong_problem_message_is_cut() -> None:
    problem = {"message": "x" * 5000}
    tracker = with_parse(make_tracker(intent="attachment_problem"), **{ATTACHMENT_PROBLEM: problem})
    dispatcher, _ = run(ActionAttachmentProblem(), tracker)
    assert len(dispatcher.messages[0]["text"]) <= 300


def test_only_the_recognisers_entity_names_the_photos_product() -> None:
    from assistant.keys import PRODUCT_RECOGNIZER_EXTRACTOR

    ours = photo_entity("FRU-BANANA", "Banana")
    assert ours["extractor"] == PRODUCT_RECOGNIZER_EXTRACTOR
    assert recognised_sku(photo_message([ours])) == "FRU-BANANA"
    assert recognised_sku(photo_message([{**ours, "extractor": "DIETClassifier"}])) is None
