"""Product actions: information, price, availability and search, with tolerant product matching.

All four questions go through ``product_form``. The question is remembered in ``product_question`` (set from
the intent that started the form), so when the customer asks "how much is it?" the form first asks which
product and the answer comes once it is named. Names are matched with ``find_product``; when nothing matches,
the next question offers the closest products as buttons.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions import common, photos
from actions.common import ShopAction
from actions.formatting import format_unit_price, join_alternatives, product_button, shorten
from actions.tracker_utils import (
    free_text_answer,
    has_entity,
    latest_entities,
    latest_intent,
    latest_text,
    parse_value,
    reset_slots,
)
from assistant.keys import PRODUCT_ENTITY, SIMILAR_PRODUCTS, SIMILAR_TO
from shop.errors import ShopError

if TYPE_CHECKING:
    from shop.views import ProductView

logger = logging.getLogger(__name__)

#: The question each product intent asks (values of the ``product_question`` slot).
QUESTION_BY_INTENT = {
    "product_info": "info",
    "product_price": "price",
    "product_availability": "availability",
    "product_search": "search",
}
QUESTIONS = frozenset(QUESTION_BY_INTENT.values())
DEFAULT_QUESTION = "info"

#: Stock at or below this is reported as "only N left".
LOW_STOCK = 5
#: Longest product query passed to the repository, in characters.
MAX_QUERY_CHARS = 100
#: Suggestions offered after a miss; results listed for a search.
MAX_SUGGESTIONS = 3
MAX_SEARCH_RESULTS = 5
#: Similar products listed at most.
MAX_SIMILAR = 4
#: Match score a whole message needs to name a product when the NLU found no product entity in it. Above
#: shop.matching.MATCH_THRESHOLD (0.6): with the name matched fully, at least half of the message's content
#: words must belong to it ("how much do strawbery cost": 0.95; "shipping to orange county": 0.67, refused).
WHOLE_MESSAGE_MIN_SCORE = 0.75


def current_question(tracker: Tracker) -> Text:
    """Return the product question being answered (``info`` when none is known)."""
    question = tracker.get_slot("product_question")
    return question if question in QUESTIONS else DEFAULT_QUESTION


def stock_note(product: "ProductView") -> Text:
    """One sentence about the stock of ``product``."""
    if not product.in_stock:
        return "Sold out at the moment."
    if product.stock <= LOW_STOCK:
        return f"In stock, but only {product.stock} left."
    return "In stock."


class ValidateProductForm(FormValidationAction):
    """Validates ``product_form``: matches the product name against the catalog.

    For a search any words are accepted. Otherwise a name that matches no product is refused and remembered in
    ``product_miss`` with the closest products in ``product_suggestions``, which ``action_ask_product``
    offers.
    """

    def name(self) -> Text:
        """Return the action name."""
        return "validate_product_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Settle which question is being answered, then extract and validate the product as usual."""
        question_events = self.question_events(tracker)
        tracker.add_slots(question_events)
        return question_events + await super().run(dispatcher, tracker, domain)

    @staticmethod
    def question_events(tracker: Tracker) -> List[EventType]:
        """Set ``product_question`` from the latest intent when it asks a new question.

        That is the intent that starts the form, or a complete question ("how much are apples?") while the
        form asks for the product. A bare reply ("bananas", whatever intent it gets) keeps the question.
        """
        question = QUESTION_BY_INTENT.get(latest_intent(tracker) or "")
        if question is None:
            return []
        asking = tracker.get_slot("requested_slot") == "product"
        if asking and not has_entity(tracker, PRODUCT_ENTITY):
            return []
        if tracker.get_slot("product_question") == question:
            return []
        return [SlotSet("product_question", question)]

    def extract_product(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Take a bare reply ("bananas") as the product while the form asks for it, or the product a question
        names without a ``product`` entity ("how much do strawbery cost")."""
        text = free_text_answer(tracker, "product", extra_intents=QUESTION_BY_INTENT)
        if text is None:
            text = self.product_named_in_question(tracker)
        return {} if text is None else {"product": text}

    @staticmethod
    def product_named_in_question(tracker: Tracker) -> Optional[Text]:
        """The catalog product a product question names when the NLU marked no ``product`` entity in it.

        The entity extractor misses names it has not seen written that way (``strawbery``), so the whole
        message goes through the tolerant look-up; filler and question words are dropped there. Only a
        confident match counts (:data:`WHOLE_MESSAGE_MIN_SCORE`, above the look-up's own threshold, as the
        message may hold words of another topic: "how much does delivery cost" names no product). Searches,
        bare replies (taken as the answer already), photos and failed look-ups give None.

        Returns:
            The product's catalog name, or None.
        """
        question = QUESTION_BY_INTENT.get(latest_intent(tracker) or "")
        if question in (None, "search") or has_entity(tracker, PRODUCT_ENTITY):
            return None
        if tracker.get_slot("requested_slot") == "product" or photos.recognised_sku(tracker):
            return None
        text = " ".join(latest_text(tracker).split())[:MAX_QUERY_CHARS]
        if not text:
            return None
        try:
            match = common.get_repository().find_product(text)
        except Exception:
            logger.exception("Product lookup in the message text failed")
            return None
        if match.product is None or match.score < WHOLE_MESSAGE_MIN_SCORE:
            return None
        logger.info("Product %s named in a message without an entity (%.2f)", match.product.sku, match.score)
        return match.product.name

    def validate_product(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Resolve the product name, or remember the miss for the next question.

        Returns:
            Slot updates: ``product`` (catalog name or search words, None when refused), ``product_sku``,
            ``product_miss`` and ``product_suggestions``.
        """
        question = current_question(tracker)
        query = " ".join(str(slot_value or "").split())[:MAX_QUERY_CHARS]
        cleared = {"product_sku": None, "product_miss": None, "product_suggestions": None}
        if not query:
            return {**cleared, "product": None}
        if question == "search":
            # Search words come from this request; a product remembered from earlier is not what to search
            # for.
            fresh = tracker.get_slot("requested_slot") == "product" or has_entity(tracker, PRODUCT_ENTITY)
            return {**cleared, "product": query if fresh else None}
        photo_sku = photos.recognised_sku(tracker)
        if photo_sku:
            # The product recognised in this message's photo: its sku, not a name match.
            try:
                product = common.get_repository().get_product(photo_sku)
            except Exception:
                logger.exception("Product lookup failed")
                product = None
            if product is not None:
                return {**cleared, "product": product.name, "product_sku": product.sku}
        try:
            match = common.get_repository().find_product(query)
        except Exception:
            logger.exception("Product lookup failed")
            dispatcher.utter_message(response=common.TECHNICAL_PROBLEM_RESPONSE)
            return {**cleared, "product": None}
        if match.product is None:
            names = [product.name for product in match.suggestions[:MAX_SUGGESTIONS]]
            logger.info("No product matches %r (%d suggestions)", shorten(query), len(names))
            return {
                "product": None,
                "product_sku": None,
                "product_miss": shorten(query),
                "product_suggestions": names or None,
            }
        return {**cleared, "product": match.product.name, "product_sku": match.product.sku}


class ActionAskProduct(ShopAction):
    """Question of ``product_form``: suggestions after a miss, else a question that fits what was asked."""

    def name(self) -> Text:
        """Return the action name."""
        return "action_ask_product"

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Offer the closest products as buttons, or ask which product the question is about."""
        miss = tracker.get_slot("product_miss")
        if miss:
            names = [name for name in tracker.get_slot("product_suggestions") or [] if isinstance(name, str)]
            if names:
                dispatcher.utter_message(
                    response="utter_product_not_found",
                    query=miss,
                    suggestions=join_alternatives(names),
                    buttons=[product_button(name) for name in names],
                )
            else:
                dispatcher.utter_message(response="utter_product_not_found_no_suggestions", query=miss)
            return reset_slots("product_miss", "product_suggestions")
        if latest_intent(tracker) in QUESTION_BY_INTENT and self._ask_about_photo(dispatcher, tracker):
            return []
        dispatcher.utter_message(response=f"utter_ask_product_{current_question(tracker)}")
        return []

    @staticmethod
    def _ask_about_photo(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
        """A question that came with a photo the recogniser was unsure about or did not recognise: offer its
        candidates, or ask for the name. Returns False when the message had no photo."""
        recognition = photos.photo_recognition(tracker)
        if recognition is None:
            return False
        names = photos.candidate_names(recognition)
        if names:
            dispatcher.utter_message(
                response="utter_photo_confirm", buttons=[product_button(name) for name in names]
            )
        else:
            dispatcher.utter_message(response="utter_photo_unknown")
        return True


class ActionAnswerProductQuestion(ShopAction):
    """Submit of ``product_form``: answers the remembered question about the product."""

    def name(self) -> Text:
        """Return the action name."""
        return "action_answer_product_question"

    def events_on_error(self, tracker: Tracker) -> List[EventType]:
        """Forget the per-question details after an error."""
        return reset_slots("quantity", "product_miss", "product_suggestions")

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Answer info, price, availability or search."""
        question = current_question(tracker)
        if question == "search":
            return self._search(dispatcher, tracker)
        product = self._product(tracker)
        if product is None:
            dispatcher.utter_message(response="utter_product_unknown")
            return reset_slots("product", "product_sku", "quantity")
        details = {
            "product_name": product.name,
            "price": format_unit_price(product.price, product.currency, product.unit),
            "unit": product.unit,
            "stock": product.stock,
        }
        if question == "price":
            dispatcher.utter_message(response="utter_product_price", **details)
        elif question == "availability":
            self._availability(dispatcher, tracker, product, details)
        else:
            dispatcher.utter_message(
                response="utter_product_info",
                description=product.description.strip() or product.kind,
                stock_note=stock_note(product),
                **details,
            )
        return self.events_on_error(tracker)

    @staticmethod
    def _product(tracker: Tracker) -> Optional["ProductView"]:
        repository = common.get_repository()
        sku = tracker.get_slot("product_sku")
        product = repository.get_product(str(sku)) if sku else None
        if product is None and tracker.get_slot("product"):
            product = repository.find_product(str(tracker.get_slot("product"))).product
        return product

    @staticmethod
    def _requested_quantity(tracker: Tracker) -> Optional[Decimal]:
        try:
            return common.parse_amount(tracker.get_slot("quantity"))
        except ShopError:
            return None  # "a few", "some": no number to compare with

    def _availability(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        product: "ProductView",
        details: Dict[Text, Any],
    ) -> None:
        wanted = self._requested_quantity(tracker)
        if not product.in_stock:
            dispatcher.utter_message(response="utter_product_out_of_stock", **details)
            alternatives = [
                other.name
                for other in common.get_repository().search_products(
                    category=product.category, in_stock_only=True, limit=MAX_SUGGESTIONS + 1
                )
                if other.sku != product.sku
            ][:MAX_SUGGESTIONS]
            if alternatives:
                dispatcher.utter_message(
                    response="utter_product_alternatives",
                    alternatives=join_alternatives(alternatives),
                    buttons=[product_button(name, "product_availability") for name in alternatives],
                )
        elif wanted is not None and wanted > product.stock:
            dispatcher.utter_message(
                response="utter_product_not_enough",
                quantity=shorten(tracker.get_slot("quantity"), 30),
                **details,
            )
        elif product.stock <= LOW_STOCK:
            dispatcher.utter_message(response="utter_product_low_stock", **details)
        else:
            dispatcher.utter_message(response="utter_product_in_stock", **details)

    def _search(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
        query = " ".join(str(tracker.get_slot("product") or "").split())[:MAX_QUERY_CHARS]
        repository = common.get_repository()
        results = repository.search_products(query=query, limit=MAX_SEARCH_RESULTS) if query else []
        if not results and query:
            results = repository.search_products(category=query, limit=MAX_SEARCH_RESULTS)
        events = self.events_on_error(tracker)
        if not results:
            dispatcher.utter_message(response="utter_search_no_results", query=shorten(query))
            return events + reset_slots("product", "product_sku")
        lines = [
            f"• {product.name}: {format_unit_price(product.price, product.currency, product.unit)}"
            + ("" if product.in_stock else " (sold out)")
            for product in results
        ]
        dispatcher.utter_message(
            response="utter_search_results",
            query=shorten(query),
            result_lines="\n".join(lines),
            buttons=[product_button(product.name, "product_info") for product in results],
        )
        # One hit is "the product" from now on ("how much is it?"); search words are not.
        only = results[0] if len(results) == 1 else None
        return events + [
            SlotSet("product", only.name if only else None),
            SlotSet("product_sku", only.sku if only else None),
        ]


class ActionSimilarProducts(ShopAction):
    """Similar products: the ranking the NLU pipeline computed, with current prices, in-stock products first.

    The ProductRecognizer puts ``similar_products`` (``[{"sku", "score"}]``, best first) and ``similar_to``
    (``{"sku", "name", "query", "source"}`` or None) in the parse result of a ``similar_products`` message.
    When the message itself named no product, the product being discussed (``product_sku`` / ``product``
    slots) is the reference and products of its category are offered; with no product at all, the action
    asks for one.
    """

    def name(self) -> Text:
        """Return the action name."""
        return "action_similar_products"

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """List up to four similar products (in stock first, with price) or ask which product is meant."""
        reference = parse_value(tracker, SIMILAR_TO, dict)
        ranked = parse_value(tracker, SIMILAR_PRODUCTS, list) or []
        product = self._reference_product(tracker, reference)
        label = product.name if product is not None else shorten((reference or {}).get("query"), 40)
        similar = self._ranked_products(ranked, product)
        if not similar and product is not None:
            similar = self._same_category(product)
        if not label:
            dispatcher.utter_message(response="utter_ask_similar_product")
            return []
        events = [SlotSet("product", product.name), SlotSet("product_sku", product.sku)] if product else []
        if not similar:
            dispatcher.utter_message(response="utter_similar_none", reference=label)
            return events
        similar = sorted(similar, key=lambda item: not item.in_stock)[:MAX_SIMILAR]  # stable: keeps the rank
        lines = [
            f"• {item.name}: {format_unit_price(item.price, item.currency, item.unit)}"
            + ("" if item.in_stock else " (sold out)")
            for item in similar
        ]
        dispatcher.utter_message(
            response="utter_similar_products",
            reference=label,
            result_lines="\n".join(lines),
            buttons=[product_button(item.name, "product_info") for item in similar if item.in_stock],
        )
        return events

    @staticmethod
    def _reference_product(
        tracker: Tracker, reference: Optional[Dict[Text, Any]]
    ) -> Optional["ProductView"]:
        """The product to find alternatives for: named in this message, else the one being discussed."""
        repository = common.get_repository()
        if reference is not None:
            sku = reference.get("sku")
            found = repository.get_product(sku) if isinstance(sku, str) and sku else None
            # A reference given only as words ("almond milk") has no catalog product, and that is fine.
            return found
        entities = [e for e in latest_entities(tracker, PRODUCT_ENTITY) if isinstance(e.get("value"), str)]
        for entity in entities:
            if isinstance(entity.get("sku"), str):
                found = repository.get_product(entity["sku"])
                if found is not None:
                    return found
        if entities:
            found = repository.find_product(entities[0]["value"][:MAX_QUERY_CHARS]).product
            if found is not None:
                return found
        sku = tracker.get_slot("product_sku")
        found = repository.get_product(str(sku)) if sku else None
        if found is None and tracker.get_slot("product"):
            found = repository.find_product(str(tracker.get_slot("product"))[:MAX_QUERY_CHARS]).product
        return found

    @staticmethod
    def _ranked_products(ranked: List[Any], reference: Optional["ProductView"]) -> List["ProductView"]:
        repository = common.get_repository()
        found = []
        for item in ranked:
            sku = item.get("sku") if isinstance(item, dict) else None
            product = repository.get_product(sku) if isinstance(sku, str) else None
            if product is not None and (reference is None or product.sku != reference.sku):
                found.append(product)
        return found

    @staticmethod
    def _same_category(reference: "ProductView") -> List["ProductView"]:
        """Products of the reference's category, then of its top-level category (without embeddings)."""
        repository = common.get_repository()
        found: List["ProductView"] = []
        top_level = reference.category.split("/")[0]
        for category in (reference.category, top_level):
            for product in repository.search_products(category=category, limit=MAX_SIMILAR * 3):
                if product.sku != reference.sku and product not in found:
                    found.append(product)
        return found
