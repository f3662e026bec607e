"""The product form's whole-message look-up: a product question whose product the NLU did not mark as an
entity ("how much do strawbery cost") is answered for the product the text names, against the seeded demo
catalog (Strawberries €3.49 for a 400 g punnet, Bananas, Pineapple, Granny Smith Apple); questions about
anything else still ask which product is meant."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest

from actions.products import WHOLE_MESSAGE_MIN_SCORE, ActionAnswerProductQuestion, ValidateProductForm
from tests.unit.actions.harness import (
    entity,
    form_tracker,
    make_tracker,
    rendered,
    responses,
    run,
    run_validation,
)


async def _form_start(text: str, intent: str, entities: Optional[List[Dict[str, Any]]] = None, **slots: Any):
    """Validation of the product form as it starts for ``text`` (no product asked for yet)."""
    tracker = form_tracker(
        "product_form", None, slots=slots, text=text, intent=intent, entities=entities or []
    )
    return await run_validation(ValidateProductForm(), tracker)


@pytest.mark.parametrize(
    "text, intent, question, sku",
    [
        ("how much do strawbery cost", "product_price", "price", "FRU-BER-STRAWBERRY"),
        ("how much do strawberries cost", "product_price", "price", "FRU-BER-STRAWBERRY"),
        ("do you have bananna", "product_availability", "availability", "FRU-BANANA"),
        ("tell me about the granny smth apples", "product_info", "info", "FRU-APL-GRANNY"),
        ("what does a pinapple cost?", "product_price", "price", "FRU-PINEAPPLE"),
    ],
)
async def test_a_question_without_an_entity_finds_the_product_in_its_text(
    repo, text: str, intent: str, question: str, sku: str
) -> None:
    dispatcher, slots = await _form_start(text, intent)
    assert slots["product_question"] == question
    assert slots["product_sku"] == sku and slots["product_miss"] is None
    assert dispatcher.messages == []


async def test_how_much_do_strawbery_cost_answers_the_strawberry_price(repo) -> None:
    _, slots = await _form_start("how much do strawbery cost", "product_price")
    dispatcher, _ = run(ActionAnswerProductQuestion(), make_tracker(slots=slots))
    assert responses(dispatcher) == ["utter_product_price"]
    assert rendered(dispatcher) == ["The price of Strawberries is €3.49 for a 400 g punnet."]


@pytest.mark.parametrize(
    "text, intent",
    [
        ("how much does delivery cost", "product_price"),
        ("how much is the cancellation fee", "product_price"),
        ("how much is it?", "product_price"),
        ("do you have it in stock", "product_availability"),
        ("how much is shipping to orange county", "product_price"),
        ("tell me about your refund policy", "product_info"),
        ("what fruit do you have", "product_availability"),
        ("%_%' OR 1=1 --", "product_price"),
        ("x" * 5000, "product_price"),
    ],
)
async def test_words_about_something_else_name_no_product(repo, spy, text: str, intent: str) -> None:
    find_product = spy(repo, "find_product")
    _, slots = await _form_start(text, intent)
    assert "product" not in slots and "product_sku" not in slots  # the form asks which product next
    for call in list(find_product.call_args_list):
        match = repo.find_product(call.args[0])
        assert match.product is None or match.score < WHOLE_MESSAGE_MIN_SCORE


async def test_a_remembered_product_stays_when_the_question_names_none(repo) -> None:
    _, slots = await _form_start(
        "how much is it?", "product_price", product="Banana", product_sku="FRU-BANANA"
    )
    assert "product" not in slots  # the remembered Banana answers


async def test_an_entity_wins_over_the_message_text(repo, spy) -> None:
    find_product = spy(repo, "find_product")
    tracker = form_tracker(
        "product_form",
        None,
        {"product": "bananas"},
        text="how much are bananas and strawberries",
        intent="product_price",
        entities=[entity("product", "bananas")],
    )
    _, slots = await run_validation(ValidateProductForm(), tracker)
    assert slots["product_sku"] == "FRU-BANANA"
    assert [call.args[0] for call in find_product.call_args_list] == ["bananas"]


async def test_a_search_takes_no_product_from_the_text(repo) -> None:
    _, slots = await _form_start("I'm looking for strawbery", "product_search")
    assert slots["product_question"] == "search" and slots.get("product") is None


async def test_a_failed_lookup_of_the_text_leaves_the_question_to_the_form(fail_repository) -> None:
    fail_repository(RuntimeError("database down"))
    dispatcher, slots = await _form_start("how much do strawbery cost", "product_price")
    assert "product" not in slots and dispatcher.messages == []
