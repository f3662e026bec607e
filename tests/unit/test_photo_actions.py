"""Unit tests of the photo answers (actions/photos.py), the photo parts of the product form and the
similar-products action (actions/products.py), against the in-memory FakeShopRepository.

The parse results are shaped as the NLU components write them: ``product_recognition`` and the ``product``
entity of the ProductRecognizer, ``similar_products``/``similar_to``, and the AttachmentRouter's
``attachment_problem``. Every message is rendered against domain.yml (response exists, variables provided).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker

from actions.photos import ActionAnswerProductPhoto, ActionAttachmentProblem
from actions.products import ActionAskProduct, ActionSimilarProducts, ValidateProductForm
from tests.unit.fakes import FakeShopRepository, ProductView
from tests.unit.test_actions import (  # noqa: F401  (repo is a fixture)
    buttons,
    entity,
    form_tracker,
    make_tracker,
    rendered,
    repo,
    responses,
    run,
    run_validation,
    slot_values,
)


def recognition(status: str, *candidates: str, method: str = "knn") -> Dict[str, Any]:
    """A ``product_recognition`` as the ProductRecognizer writes it; candidates are skus, best first."""
    items = [
        {"sku": sku, "name": sku.title(), "confidence": round(0.9 / (i + 1), 3)}
        for i, sku in enumerate(candidates)
    ]
    best = items[0] if items else {"sku": None, "name": None, "confidence": 0.0}
    return {"status": status, "method": method if items else None, "sku": best["sku"], "name": best["name"],
            "confidence": best["confidence"], "candidates": items}


def photo_entity(sku: str, name: str) -> Dict[str, Any]:
    """The ``product`` entity the ProductRecognizer adds for a recognised photo (no text span)."""
    return {"entity": "product", "value": name, "sku": sku, "confidence": 0.93, "method": "knn",
            "candidates": [{"sku": sku, "name": name, "confidence": 0.93}], "extractor": "ProductRecognizer"}


def with_parse(tracker: Tracker, **parse_data: Any) -> Tracker:
    """The tracker with extra keys in its latest message's parse data."""
    tracker.latest_message.update(parse_data)
    return tracker


# ------------------------------------------------------------------------------------------------ photo alone


def test_a_recognised_photo_is_named_with_buttons_and_remembered(repo: FakeShopRepository) -> None:
    tracker = with_parse(
        make_tracker(intent="send_image", entities=[photo_entity("FRU-BANANA", "Banana")]),
        product_recognition=recognition("recognised", "FRU-BANANA", "FRU-MANGO"),
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
    assert repo.called("get_product") == [(("FRU-BANANA",), {})]


def test_an_unclear_photo_offers_the_candidates_that_exist(repo: FakeShopRepository) -> None:
    tracker = with_parse(
        make_tracker(intent="send_image"),
        product_recognition=recognition(
            "uncertain", "FRU-MELON-GALIA", "GONE-SKU", "FRU-MELON-CANT", "FRU-MANGO"
        ),
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
        {"product_recognition": recognition("unknown")},
        {"product_recognition": recognition("uncertain", "GONE-SKU")},
        {"product_recognition": recognition("recognised", "GONE-SKU")},
        {"product_recognition": "garbage"},
        {},
    ],
    ids=["unknown", "candidates-gone", "recognised-gone", "malformed", "no-recogniser"],
)
def test_an_unrecognised_photo_asks_for_the_name(repo: FakeShopRepository, parse_data: Dict) -> None:
    tracker = with_parse(make_tracker(intent="send_image"), **parse_data)
    dispatcher, events = run(ActionAnswerProductPhoto(), tracker)
    assert responses(dispatcher) == ["utter_photo_unknown"]
    assert rendered(dispatcher) == ["I couldn't tell which product this is — could you tell me its name?"]
    assert events == []
    assert repo.writes == []


def test_a_repository_failure_becomes_the_technical_problem_reply(repo: FakeShopRepository) -> None:
    repo.fail_with = RuntimeError("database down")
    tracker = with_parse(
        make_tracker(intent="send_image", entities=[photo_entity("FRU-BANANA", "Banana")]),
        product_recognition=recognition("recognised", "FRU-BANANA"),
    )
    dispatcher, events = run(ActionAnswerProductPhoto(), tracker)
    assert responses(dispatcher) == ["utter_technical_problem"]
    assert events == []


# -------------------------------------------------------------------------------------- attachment problems


def test_an_attachment_problem_is_explained_with_its_friendly_message(repo: FakeShopRepository) -> None:
    message = "That photo seems to be damaged. Could you send it again?"
    problem = {"type": "image", "code": "damaged", "message": message}
    tracker = with_parse(make_tracker(intent="attachment_problem"), attachment_problem=problem)
    dispatcher, events = run(ActionAttachmentProblem(), tracker)
    assert [m.get("text") for m in dispatcher.messages] == [problem["message"]]
    assert events == []


@pytest.mark.parametrize("problem", [None, {}, {"message": ""}, {"message": ["x"]}, "damaged"])
def test_an_attachment_problem_without_message_gets_the_general_reply(repo, problem) -> None:
    tracker = with_parse(make_tracker(intent="attachment_problem"), attachment_problem=problem)
    dispatcher, _ = run(ActionAttachmentProblem(), tracker)
    assert responses(dispatcher) == ["utter_attachment_problem"]
    assert "photos" in rendered(dispatcher)[0]


def test_an_overlong_problem_message_is_cut(repo: FakeShopRepository) -> None:
    problem = {"message": "x" * 5000}
    tracker = with_parse(make_tracker(intent="attachment_problem"), attachment_problem=problem)
    dispatcher, _ = run(ActionAttachmentProblem(), tracker)
    assert len(dispatcher.messages[0]["text"]) <= 300


# ------------------------------------------------------------------------------------------ photo + question


async def test_the_product_form_takes_the_sku_recognised_in_the_photo(repo: FakeShopRepository) -> None:
    tracker = form_tracker(
        "product_form",
        None,
        candidates={"product": "Mango"},
        text="how much is this?",
        intent="product_price",
        entities=[entity("product", "this"), photo_entity("FRU-MANGO", "Mango")],
    )
    dispatcher, slots = await run_validation(ValidateProductForm(), tracker)
    assert slots["product"] == "Mango"
    assert slots["product_sku"] == "FRU-MANGO"
    assert slots["product_question"] == "price"
    assert repo.called("find_product") == []
    assert dispatcher.messages == []


async def test_a_recognised_sku_that_is_gone_falls_back_to_the_name(repo: FakeShopRepository) -> None:
    tracker = form_tracker(
        "product_form", None, candidates={"product": "Banana"}, text="is this in stock?",
        intent="product_availability", entities=[photo_entity("GONE-SKU", "Banana")],
    )
    _, slots = await run_validation(ValidateProductForm(), tracker)
    assert (slots["product"], slots["product_sku"]) == ("Banana", "FRU-BANANA")


def test_the_form_asks_to_confirm_an_unclear_photo(repo: FakeShopRepository) -> None:
    tracker = with_parse(
        form_tracker("product_form", "product", text="how much is this?", intent="product_price",
                     slots={"product_question": "price"}),
        product_recognition=recognition("uncertain", "FRU-BLUEBERRY", "FRU-RASPBERRY"),
    )
    dispatcher, events = run(ActionAskProduct(), tracker)
    assert responses(dispatcher) == ["utter_photo_confirm"]
    assert [b["payload"] for b in buttons(dispatcher)] == [
        '/inform{"product": "Blueberries"}', '/inform{"product": "Raspberries"}'
    ]
    assert events == []


def test_the_form_asks_for_the_name_of_an_unrecognised_photo(repo: FakeShopRepository) -> None:
    tracker = with_parse(
        form_tracker("product_form", "product", text="do you have this?", intent="product_availability"),
        product_recognition=recognition("unknown"),
    )
    dispatcher, _ = run(ActionAskProduct(), tracker)
    assert responses(dispatcher) == ["utter_photo_unknown"]


def test_the_form_question_is_unchanged_without_a_photo(repo: FakeShopRepository) -> None:
    tracker = form_tracker("product_form", "product", text="how much?", intent="product_price",
                           slots={"product_question": "price"})
    dispatcher, _ = run(ActionAskProduct(), tracker)
    assert responses(dispatcher) == ["utter_ask_product_price"]


def test_a_photo_sent_while_the_form_asks_leaves_the_question_to_the_form(repo: FakeShopRepository) -> None:
    # The photo-alone rule answers it (send_image); the form's question stays the normal one.
    tracker = with_parse(
        form_tracker("product_form", "product", intent="send_image", slots={"product_question": "price"}),
        product_recognition=recognition("uncertain", "FRU-BLUEBERRY"),
    )
    dispatcher, _ = run(ActionAskProduct(), tracker)
    assert responses(dispatcher) == ["utter_ask_product_price"]


# ------------------------------------------------------------------------------------------ similar products


def similar_tracker(
    ranked: Optional[List[str]] = None,
    reference: Optional[Dict[str, Any]] = None,
    slots: Optional[Dict[str, Any]] = None,
    entities: Optional[List[Dict[str, Any]]] = None,
    nlu: bool = True,
) -> Tracker:
    tracker = make_tracker(slots=slots, text="similar?", intent="similar_products", entities=entities)
    if nlu:
        scored = [{"sku": sku, "score": 0.9 - 0.1 * i} for i, sku in enumerate(ranked or [])]
        with_parse(tracker, similar_products=scored, similar_to=reference)
    return tracker


def test_similar_products_lists_in_stock_products_first_with_prices(repo: FakeShopRepository) -> None:
    reference = {"sku": "FRU-MANGO", "name": "Mango", "query": "mango", "source": "entity"}
    ranked = ["FRU-RASPBERRY", "FRU-AVOCADO", "FRU-MANGO", "GONE-SKU", "FRU-BANANA", "FRU-BLUEBERRY"]
    tracker = similar_tracker(ranked, reference)
    dispatcher, events = run(ActionSimilarProducts(), tracker)
    assert responses(dispatcher) == ["utter_similar_products"]
    [text] = rendered(dispatcher)
    lines = text.splitlines()
    assert lines[0] == "Products similar to Mango:"
    assert lines[1:] == [
        "• Avocado: €0.99 per piece",
        "• Banana: €1.79 per kg",
        "• Blueberries: €2.99 for a 250 g punnet",
        "• Raspberries: €3.49 for a 125 g punnet (sold out)",
    ]
    assert [b["title"] for b in buttons(dispatcher)] == ["Avocado", "Banana", "Blueberries"]
    assert all(b["payload"].startswith("/product_info{") for b in buttons(dispatcher))
    assert slot_values(events) == {"product": "Mango", "product_sku": "FRU-MANGO"}
    assert repo.writes == []


def test_similar_products_for_words_that_are_no_catalog_product(repo: FakeShopRepository) -> None:
    reference = {"sku": None, "name": None, "query": "dragon fruit", "source": "text"}
    tracker = similar_tracker(["FRU-MANGO", "FRU-AVOCADO"], reference)
    dispatcher, events = run(ActionSimilarProducts(), tracker)
    [text] = rendered(dispatcher)
    assert text.startswith("Products similar to dragon fruit:")
    assert events == []


def test_similar_products_without_any_product_asks_which(repo: FakeShopRepository) -> None:
    dispatcher, events = run(ActionSimilarProducts(), similar_tracker([], None))
    assert responses(dispatcher) == ["utter_ask_similar_product"]
    assert events == []


def test_similar_products_for_the_product_being_discussed(repo: FakeShopRepository) -> None:
    tracker = similar_tracker([], None, slots={"product": "Galia Melon", "product_sku": "FRU-MELON-GALIA"})
    dispatcher, events = run(ActionSimilarProducts(), tracker)
    [text] = rendered(dispatcher)
    assert text.splitlines()[:2] == [
        "Products similar to Galia Melon:", "• Cantaloupe Melon: €2.79 per piece"
    ]
    assert "Galia Melon:" not in "\n".join(text.splitlines()[1:])
    assert slot_values(events)["product_sku"] == "FRU-MELON-GALIA"


def test_similar_products_from_a_button_without_nlu_ranking(repo: FakeShopRepository) -> None:
    tracker = similar_tracker(entities=[entity("product", "Galia Melon")], nlu=False)
    dispatcher, _ = run(ActionSimilarProducts(), tracker)
    [text] = rendered(dispatcher)
    assert text.startswith("Products similar to Galia Melon:")
    assert "Cantaloupe Melon" in text


def test_similar_products_when_nothing_is_similar(repo: FakeShopRepository) -> None:
    reference = {"sku": "DAI-MILK-WHOLE", "name": "Arla Whole Milk", "query": None, "source": "photo"}
    dispatcher, _ = run(ActionSimilarProducts(), similar_tracker(["GONE-SKU"], reference))
    assert responses(dispatcher) == ["utter_similar_none"]
    assert "Arla Whole Milk" in rendered(dispatcher)[0]


def test_similar_products_with_a_malformed_parse_result(repo: FakeShopRepository) -> None:
    tracker = make_tracker(text="similar?", intent="similar_products")
    with_parse(tracker, similar_products="junk", similar_to=["junk"])
    dispatcher, _ = run(ActionSimilarProducts(), tracker)
    assert responses(dispatcher) == ["utter_ask_similar_product"]


def test_similar_products_survives_a_repository_failure(repo: FakeShopRepository) -> None:
    repo.fail_with = RuntimeError("database down")
    reference = {"sku": "FRU-MANGO", "name": "Mango", "query": None, "source": "entity"}
    dispatcher, events = run(ActionSimilarProducts(), similar_tracker(["FRU-AVOCADO"], reference))
    assert responses(dispatcher) == ["utter_technical_problem"]
    assert events == []


def test_every_photo_button_payload_is_valid_json(repo: FakeShopRepository) -> None:
    repo.products["FRU-QUOTE"] = ProductView(
        "FRU-QUOTE", 'Odd "Quoted" Fruit', "Fruit/Odd", "Odd", "odd fruit", Decimal("1.00"), "EUR", "piece",
        5, "x",
    )
    tracker = with_parse(
        make_tracker(intent="send_image", entities=[photo_entity("FRU-QUOTE", 'Odd "Quoted" Fruit')]),
        product_recognition=recognition("recognised", "FRU-QUOTE"),
    )
    dispatcher, _ = run(ActionAnswerProductPhoto(), tracker)
    for button in buttons(dispatcher):
        intent, _, payload = button["payload"][1:].partition("{")
        assert json.loads("{" + payload) == {"product": 'Odd "Quoted" Fruit'}
