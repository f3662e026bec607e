"""Unit tests of `actions.products` on the real repository over the seeded in-memory database: the product
form (tolerant names, suggestions, photos with a question), the answers to info, price, availability and
search questions, and similar products.

Catalog facts used (data/catalog/products.csv): Banana €1.79 per kg, Mango, Avocado €1.29 per piece,
Arla Whole Milk €1.35 for a 1 l carton, Galia Melon sold out beside Cantaloupe (€2.99 per piece), Honeydew and
Watermelon, Blueberries €2.99 for a 250 g punnet, Strawberries, Raspberries €2.79 for a 125 g punnet (sold
out); no dragon fruit.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker

from actions.products import (
    ActionAnswerProductQuestion,
    ActionAskProduct,
    ActionSimilarProducts,
    ValidateProductForm,
)
from assistant.keys import PRODUCT_RECOGNITION, SIMILAR_PRODUCTS, SIMILAR_TO
from tests.unit.actions.harness import (
    BAD_PRODUCT_TEXTS,
    buttons,
    entity,
    form_tracker,
    make_tracker,
    photo_entity,
    recognition,
    rendered,
    responses,
    run,
    run_validation,
    slot_values,
    with_parse,
)

# ------------------------------------------------------------------------------------------- the product form


async def test_product_name_is_matched_tolerantly(repo) -> None:
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


async def test_unknown_product_is_remembered_with_suggestions(repo) -> None:
    tracker = form_tracker(
        "product_form",
        None,
        {"product": "dragon fruit"},
        text="how much is dragon fruit",
        intent="product_price",
        entities=[entity("product", "dragon fruit")],
    )
    dispatcher, slots = await run_validation(ValidateProductForm(), tracker)
    assert slots["product"] is None and slots["product_sku"] is None
    assert slots["product_miss"] == "dragon fruit"
    assert "Passion Fruit" in slots["product_suggestions"] and len(slots["product_suggestions"]) <= 3
    assert dispatcher.messages == []  # action_ask_product offers them next


@pytest.mark.parametrize("text", BAD_PRODUCT_TEXTS)
async def test_bad_product_texts_never_raise(repo, db, spy, text: str) -> None:
    find_product = spy(repo, "find_product")
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
    for call in find_product.call_args_list:
        assert len(call.args[0]) <= 100
    assert db.unchanged()


async def test_product_lookup_failure_is_a_friendly_reply(fail_repository) -> None:
    fail_repository(RuntimeError("database down"))
    tracker = form_tracker(
        "product_form", "product", {"product": "bananas"}, slots={"product_question": "price"},
        text="bananas", intent="inform",
    )
    dispatcher, slots = await run_validation(ValidateProductForm(), tracker)
    assert slots["product"] is None and responses(dispatcher) == ["utter_technical_problem"]


async def test_the_question_is_remembered_while_the_product_is_asked(repo) -> None:
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


async def test_a_new_complete_question_in_the_form_changes_the_question(repo) -> None:
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


async def test_search_ignores_a_product_remembered_from_before(repo) -> None:
    tracker = form_tracker(
        "product_form", None, {"product": "Banana"}, text="I'm looking for something", intent="product_search"
    )
    _, slots = await run_validation(ValidateProductForm(), tracker)
    assert slots["product_question"] == "search" and slots["product"] is None


def test_ask_product_offers_suggestions_as_buttons() -> None:
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


def test_ask_product_without_suggestions() -> None:
    dispatcher, _ = run(ActionAskProduct(), make_tracker(slots={"product_miss": "🍌🍌"}))
    assert responses(dispatcher) == ["utter_product_not_found_no_suggestions"]
    rendered(dispatcher)


@pytest.mark.parametrize("question", ["info", "price", "availability", "search", None])
def test_ask_product_fits_the_question(question: Optional[str]) -> None:
    dispatcher, _ = run(ActionAskProduct(), make_tracker(slots={"product_question": question}))
    assert responses(dispatcher) == [f"utter_ask_product_{question or 'info'}"]


# ------------------------------------------------------------------------------------------ photo + question


async def test_the_product_form_takes_the_sku_recognised_in_the_photo(repo, spy) -> None:
    find_product = spy(repo, "find_product")
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
    find_product.assert_not_called()
    assert dispatcher.messages == []


async def test_a_recognised_sku_that_is_gone_falls_back_to_the_name(repo) -> None:
    tracker = form_tracker(
        "product_form", None, candidates={"product": "Banana"}, text="is this in stock?",
        intent="product_availability", entities=[photo_entity("GONE-SKU", "Banana")],
    )
    _, slots = await run_validation(ValidateProductForm(), tracker)
    assert (slots["product"], slots["product_sku"]) == ("Banana", "FRU-BANANA")


def test_the_form_asks_to_confirm_an_unclear_photo(repo) -> None:
    tracker = with_parse(
        form_tracker("product_form", "product", text="how much is this?", intent="product_price",
                     slots={"product_question": "price"}),
        **{PRODUCT_RECOGNITION: recognition("uncertain", "FRU-BER-BLUEBERRY", "FRU-BER-RASPBERRY")},
    )
    dispatcher, events = run(ActionAskProduct(), tracker)
    assert responses(dispatcher) == ["utter_photo_confirm"]
    assert [b["payload"] for b in buttons(dispatcher)] == [
        '/inform{"product": "Blueberries"}', '/inform{"product": "Raspberries"}'
    ]
    assert events == []


def test_the_form_asks_for_the_name_of_an_unrecognised_photo(repo) -> None:
    tracker = with_parse(
        form_tracker("product_form", "product", text="do you have this?", intent="product_availability"),
        **{PRODUCT_RECOGNITION: recognition("unknown")},
    )
    dispatcher, _ = run(ActionAskProduct(), tracker)
    assert responses(dispatcher) == ["utter_photo_unknown"]


def test_the_form_question_is_unchanged_without_a_photo(repo) -> None:
    tracker = form_tracker("product_form", "product", text="how much?", intent="product_price",
                           slots={"product_question": "price"})
    dispatcher, _ = run(ActionAskProduct(), tracker)
    assert responses(dispatcher) == ["utter_ask_product_price"]


def test_a_photo_sent_while_the_form_asks_leaves_the_question_to_the_form(repo) -> None:
    # The photo-alone rule answers it (send_image); the form's question stays the normal one.
    tracker = with_parse(
        form_tracker("product_form", "product", intent="send_image", slots={"product_question": "price"}),
        **{PRODUCT_RECOGNITION: recognition("uncertain", "FRU-BER-BLUEBERRY")},
    )
    dispatcher, _ = run(ActionAskProduct(), tracker)
    assert responses(dispatcher) == ["utter_ask_product_price"]


# ------------------------------------------------------------------------------------------------ answers


@pytest.mark.parametrize(
    "product",
    [{"product": "Banana", "product_sku": "FRU-BANANA"}, {"product": "bananas"}],
    ids=["by-sku", "by-name-only"],
)
def test_price_of_bananas(repo, product: Dict[str, str]) -> None:
    tracker = make_tracker(slots={"product_question": "price", **product})
    dispatcher, _ = run(ActionAnswerProductQuestion(), tracker)
    assert responses(dispatcher) == ["utter_product_price"]
    assert rendered(dispatcher) == ["The price of Banana is €1.79 per kg."]


def test_product_info(repo) -> None:
    tracker = make_tracker(
        slots={"product_question": "info", "product": "Arla Whole Milk", "product_sku": "MLK-ARLA-WHOLE"}
    )
    dispatcher, _ = run(ActionAnswerProductQuestion(), tracker)
    text = rendered(dispatcher)[0]
    assert "Full-fat milk" in text and "Price: €1.35 for a 1 l carton." in text and "In stock." in text


@pytest.mark.parametrize(
    "sku, quantity, expected",
    [
        ("FRU-AVOCADO", None, ["utter_product_in_stock"]),
        ("FRU-BER-BLUEBERRY", None, ["utter_product_low_stock"]),
        ("FRU-AVOCADO", "500", ["utter_product_not_enough"]),
        ("FRU-AVOCADO", "a few", ["utter_product_in_stock"]),
        ("FRU-MEL-GALIA", None, ["utter_product_out_of_stock", "utter_product_alternatives"]),
    ],
)
def test_availability(repo, set_stock, sku: str, quantity: Optional[str], expected: List[str]) -> None:
    set_stock("FRU-BER-BLUEBERRY", 3)  # only a few left
    tracker = make_tracker(
        slots={"product_question": "availability", "product_sku": sku, "quantity": quantity}
    )
    dispatcher, events = run(ActionAnswerProductQuestion(), tracker)
    assert responses(dispatcher) == expected
    rendered(dispatcher)
    assert slot_values(events)["quantity"] is None


def test_sold_out_product_suggests_in_stock_alternatives(repo) -> None:
    tracker = make_tracker(slots={"product_question": "availability", "product_sku": "FRU-MEL-GALIA"})
    dispatcher, _ = run(ActionAnswerProductQuestion(), tracker)
    assert "Cantaloupe Melon" in rendered(dispatcher)[1]
    assert buttons(dispatcher) == [
        {"title": name, "payload": f'/product_availability{{"product": "{name}"}}'}
        for name in ("Cantaloupe Melon", "Honeydew Melon", "Watermelon")
    ]


def test_answer_without_a_known_product_asks_again(repo) -> None:
    dispatcher, _ = run(ActionAnswerProductQuestion(), make_tracker(slots={"product_question": "price"}))
    assert responses(dispatcher) == ["utter_product_unknown"]


def test_search_lists_results_as_buttons(repo) -> None:
    tracker = make_tracker(slots={"product_question": "search", "product": "berries"})
    dispatcher, events = run(ActionAnswerProductQuestion(), tracker)
    assert responses(dispatcher) == ["utter_search_results"]
    text = rendered(dispatcher)[0]
    assert "Blueberries: €2.99 for a 250 g punnet" in text and "Raspberries" in text and "(sold out)" in text
    assert {button["payload"] for button in buttons(dispatcher)} == {
        '/product_info{"product": "Blueberries"}',
        '/product_info{"product": "Strawberries"}',
        '/product_info{"product": "Raspberries"}',
    }
    assert slot_values(events)["product"] is None  # search words are not a product


def test_search_by_category_and_single_hit(repo, add_product) -> None:
    add_product("BAK-SOURDOUGH", "Sourdough Loaf", "Bakery/Loaves", "sourdough loaf")
    dispatcher, events = run(
        ActionAnswerProductQuestion(), make_tracker(slots={"product_question": "search", "product": "bakery"})
    )
    assert "Sourdough Loaf" in rendered(dispatcher)[0]
    assert slot_values(events)["product"] == "Sourdough Loaf"
    assert slot_values(events)["product_sku"] == "BAK-SOURDOUGH"


@pytest.mark.parametrize("query", ["unicorn steak", "🦄", "'; DROP TABLE products;--"])
def test_search_without_results(repo, db, query: str) -> None:
    dispatcher, _ = run(
        ActionAnswerProductQuestion(), make_tracker(slots={"product_question": "search", "product": query})
    )
    assert responses(dispatcher) == ["utter_search_no_results"]
    rendered(dispatcher)
    assert db.unchanged()


# ------------------------------------------------------------------------------------------ similar products


def similar_tracker(
    ranked: Optional[List[str]] = None,
    reference: Optional[Dict[str, Any]] = None,
    slots: Optional[Dict[str, Any]] = None,
    entities: Optional[List[Dict[str, Any]]] = None,
    nlu: bool = True,
) -> Tracker:
    """A ``similar_products`` message; with ``nlu`` the ProductRecognizer's ranking and reference."""
    tracker = make_tracker(slots=slots, text="similar?", intent="similar_products", entities=entities)
    if nlu:
        scored = [{"sku": sku, "score": 0.9 - 0.1 * i} for i, sku in enumerate(ranked or [])]
        with_parse(tracker, **{SIMILAR_PRODUCTS: scored, SIMILAR_TO: reference})
    return tracker


def test_similar_products_lists_in_stock_products_first_with_prices(repo, db) -> None:
    reference = {"sku": "FRU-MANGO", "name": "Mango", "query": "mango", "source": "entity"}
    ranked = ["FRU-BER-RASPBERRY", "FRU-AVOCADO", "FRU-MANGO", "GONE-SKU", "FRU-BANANA", "FRU-BER-BLUEBERRY"]
    dispatcher, events = run(ActionSimilarProducts(), similar_tracker(ranked, reference))
    assert responses(dispatcher) == ["utter_similar_products"]
    [text] = rendered(dispatcher)
    lines = text.splitlines()
    assert lines[0] == "Products similar to Mango:"
    assert lines[1:] == [
        "• Avocado: €1.29 per piece",
        "• Banana: €1.79 per kg",
        "• Blueberries: €2.99 for a 250 g punnet",
        "• Raspberries: €2.79 for a 125 g punnet (sold out)",
    ]
    assert [b["title"] for b in buttons(dispatcher)] == ["Avocado", "Banana", "Blueberries"]
    assert all(b["payload"].startswith("/product_info{") for b in buttons(dispatcher))
    assert slot_values(events) == {"product": "Mango", "product_sku": "FRU-MANGO"}
    assert db.unchanged()


def test_similar_products_for_words_that_are_no_catalog_product(repo) -> None:
    reference = {"sku": None, "name": None, "query": "dragon fruit", "source": "text"}
    tracker = similar_tracker(["FRU-MANGO", "FRU-AVOCADO"], reference)
    dispatcher, events = run(ActionSimilarProducts(), tracker)
    [text] = rendered(dispatcher)
    assert text.startswith("Products similar to dragon fruit:")
    assert events == []


def test_similar_products_without_any_product_asks_which(repo) -> None:
    dispatcher, events = run(ActionSimilarProducts(), similar_tracker([], None))
    assert responses(dispatcher) == ["utter_ask_similar_product"]
    assert events == []


def test_similar_products_for_the_product_being_discussed(repo) -> None:
    tracker = similar_tracker([], None, slots={"product": "Galia Melon", "product_sku": "FRU-MEL-GALIA"})
    dispatcher, events = run(ActionSimilarProducts(), tracker)
    [text] = rendered(dispatcher)
    assert text.splitlines()[:2] == [
        "Products similar to Galia Melon:", "• Cantaloupe Melon: €2.99 per piece"
    ]
    assert "Galia Melon:" not in "\n".join(text.splitlines()[1:])
    assert slot_values(events)["product_sku"] == "FRU-MEL-GALIA"


def test_similar_products_from_a_button_without_nlu_ranking(repo) -> None:
    tracker = similar_tracker(entities=[entity("product", "Galia Melon")], nlu=False)
    dispatcher, _ = run(ActionSimilarProducts(), tracker)
    [text] = rendered(dispatcher)
    assert text.startswith("Products similar to Galia Melon:")
    assert "Cantaloupe Melon" in text


def test_similar_products_when_nothing_is_similar(repo, add_product) -> None:
    add_product("BAK-SOURDOUGH", "Sourdough Loaf", "Bakery/Loaves", "sourdough loaf")  # alone in its aisle
    reference = {"sku": "BAK-SOURDOUGH", "name": "Sourdough Loaf", "query": None, "source": "photo"}
    dispatcher, _ = run(ActionSimilarProducts(), similar_tracker(["GONE-SKU"], reference))
    assert responses(dispatcher) == ["utter_similar_none"]
    assert "Sourdough Loaf" in rendered(dispatcher)[0]


def test_similar_products_when_nothing_is_similar_to_words(repo) -> None:
    reference = {"sku": None, "name": None, "query": "dragon fruit", "source": "text"}
    dispatcher, _ = run(ActionSimilarProducts(), similar_tracker(["GONE-SKU"], reference))
    assert responses(dispatcher) == ["utter_similar_none"]
    assert "dragon fruit" in rendered(dispatcher)[0]


def test_similar_products_with_a_malformed_parse_result(repo) -> None:
    tracker = make_tracker(text="similar?", intent="similar_products")
    with_parse(tracker, **{SIMILAR_PRODUCTS: "junk", SIMILAR_TO: ["junk"]})
    dispatcher, _ = run(ActionSimilarProducts(), tracker)
    assert responses(dispatcher) == ["utter_ask_similar_product"]


def test_similar_products_survives_a_repository_failure(fail_repository) -> None:
    fail_repository(RuntimeError("database down"))
    reference = {"sku": "FRU-MANGO", "name": "Mango", "query": None, "source": "entity"}
    dispatcher, events = run(ActionSimilarProducts(), similar_tracker(["FRU-AVOCADO"], reference))
    assert responses(dispatcher) == ["utter_technical_problem"]
    assert events == []
