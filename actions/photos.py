"""Photo answers: the product recognised in a photo, and attachments that could not be used.

The NLU pipeline does the recognising (``components.product_recognizer.ProductRecognizer``); these actions
read what it put in the parse result and fetch current prices and stock from the repository:

- ``product_recognition``: ``{"status": "recognised" | "uncertain" | "unknown", "sku", "name", "confidence",
  "candidates": [{"sku", "name", "confidence"}, ...]}`` for a message with a photo;
- a ``product`` entity with ``"extractor": "ProductRecognizer"`` and the ``sku`` when the photo was
  recognised;
- ``attachment_problem``: ``{"type", "code", "message"}`` from the AttachmentRouter when nothing in the
  message could be used.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import common
from actions.common import ShopAction
from actions.formatting import format_unit_price, product_button, shorten
from actions.tracker_utils import latest_entities, parse_value
from assistant.keys import (
    ATTACHMENT_PROBLEM,
    INTENT_SIMILAR_PRODUCTS,
    PRODUCT_ENTITY,
    PRODUCT_RECOGNITION,
    PRODUCT_RECOGNIZER_EXTRACTOR,
    RECOGNISED,
    UNCERTAIN,
)

logger = logging.getLogger(__name__)

#: Candidates offered when the photo is not clear enough, at most.
MAX_PHOTO_CANDIDATES = 3
#: Longest attachment problem message echoed to the customer, in characters.
MAX_PROBLEM_CHARS = 300


def photo_recognition(tracker: Tracker) -> Optional[Dict[Text, Any]]:
    """The ``product_recognition`` of the latest message, or None when it had no photo."""
    return parse_value(tracker, PRODUCT_RECOGNITION, dict)


def recognised_sku(tracker: Tracker) -> Optional[Text]:
    """The sku of the product the ProductRecognizer found in the latest message's photo, if any."""
    for entity in latest_entities(tracker, PRODUCT_ENTITY):
        sku = entity.get("sku")
        if entity.get("extractor") == PRODUCT_RECOGNIZER_EXTRACTOR and isinstance(sku, str) and sku.strip():
            return sku.strip()
    return None


def candidate_names(recognition: Optional[Dict[Text, Any]]) -> List[Text]:
    """Names of the candidates of an unclear photo that are still in the catalog, best first."""
    if not recognition or recognition.get("status") != UNCERTAIN:
        return []
    repository = common.get_repository()
    names: List[Text] = []
    for candidate in recognition.get("candidates") or []:
        sku = candidate.get("sku") if isinstance(candidate, dict) else None
        product = repository.get_product(sku) if isinstance(sku, str) else None
        if product is not None and product.name not in names:
            names.append(product.name)
        if len(names) == MAX_PHOTO_CANDIDATES:
            break
    return names


class ActionAnswerProductPhoto(ShopAction):
    """Answer to a photo sent without text: the product it shows, candidates to pick from, or a question."""

    def name(self) -> Text:
        """Return the action name."""
        return "action_answer_product_photo"

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Name the recognised product with buttons for price, stock and similar products; offer candidates
        of an unclear photo; otherwise ask for the product's name."""
        recognition = photo_recognition(tracker)
        sku = recognised_sku(tracker) or (
            recognition.get("sku") if recognition and recognition.get("status") == RECOGNISED else None
        )
        product = common.get_repository().get_product(sku) if sku else None
        if product is not None:
            dispatcher.utter_message(
                response="utter_photo_product",
                product_name=product.name,
                price=format_unit_price(product.price, product.currency, product.unit),
                buttons=[
                    product_button(product.name, "product_price", title="Price"),
                    product_button(product.name, "product_availability", title="In stock?"),
                    product_button(product.name, INTENT_SIMILAR_PRODUCTS, title="Similar products"),
                ],
            )
            return [SlotSet("product", product.name), SlotSet("product_sku", product.sku)]
        if sku:
            logger.info("Recognised sku %s is no longer in the catalog", sku)
        names = candidate_names(recognition)
        if names:
            dispatcher.utter_message(
                response="utter_photo_confirm",
                buttons=[product_button(name, "product_info") for name in names],
            )
        else:
            dispatcher.utter_message(response="utter_photo_unknown")
        return []


class ActionAttachmentProblem(ShopAction):
    """Says why the attachment of a message without text could not be used (damaged, too large, ...)."""

    def name(self) -> Text:
        """Return the action name."""
        return "action_attachment_problem"

    def perform(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Send the problem's friendly message, or a general one when the parse result has none."""
        problem = parse_value(tracker, ATTACHMENT_PROBLEM, dict)
        message = problem.get("message") if problem is not None else None
        if isinstance(message, str) and message.strip():
            dispatcher.utter_message(text=shorten(message, MAX_PROBLEM_CHARS))
        else:
            dispatcher.utter_message(response="utter_attachment_problem")
        return []
