"""`MultiRequestCollector`: the requests of a message that asks for several things, and its first one's parse.

Last component of the pipeline. It takes the clause messages the ClauseSplitter added out of the batch and,
for each message, folds the intents the pipeline gave its clauses (or, for a message that was not split, its
own intent) and its entities into requests (:func:`components.multirequest.folding.fold_requests`). When they
hold at least two tasks — two order requests ("where is order 10023 and cancel 10027"), or one request for
several orders ("cancel order 45172 and 45173 and 45174") — the message gets

- `requests` in the parse result (`assistant.keys.REQUESTS`): `[{"intent", "confidence", "text", "start",
  "end", "order_numbers", "entities"}]` in the order asked;
- the first request's intent as its intent (with the clause's ranking), and of the entities only those of the
  first task (its clauses, the first order number, any email address), so the first flow starts for the right
  order; Rasa fills a text slot from the *last* entity of its type, which would otherwise be 10027.

The later tasks are offered one by one after the first flow ends: `components.multi_request_policy` predicts
`action_offer_next_request`, which says "You also asked to cancel order 10027 — shall I do that now?"; a yes
starts that flow with its order number, and the flow verifies the customer and asks its own yes as usual.

A message is left as the pipeline made it when it holds fewer than two tasks, and also when its own intent is
something else than an order request or the fallback (a complaint that mentions two orders stays a complaint,
so the hand-over still happens).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.constants import INTENT_MESSAGE_PREFIX
from rasa.shared.nlu.constants import (
    ENTITIES,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from assistant.configuration import ComponentConfig, Names, Number, defaults_of, validate_config
from assistant.keys import CLAUSE_OF, REQUESTS
from components.clause_splitter import MESSAGE_ID
from components.multirequest.clauses import Clause
from components.multirequest.folding import (
    ClassifiedClause,
    first_request_entities,
    fold_requests,
    is_multi_request,
)

logger = logging.getLogger(__name__)

#: The intents of the order flows that take an order number (data/rules.yml starts a form for each).
ORDER_REQUEST_INTENTS = [
    "track_order", "cancel_order", "change_shipping_address", "get_refund", "track_refund"
]
#: FallbackClassifier's intent: a message it gave up on may still be two clear requests.
FALLBACK_INTENT = "nlu_fallback"


class MultiRequestConfig(ComponentConfig):
    """The MultiRequestCollector's config keys: defaults, valid values, and each key's meaning and unit in its
    comment (`MultiRequestCollector.get_default_config` returns the defaults)."""

    #: Intents a clause must have to be a request of its own (list of intent names); other clauses belong to
    #: the request before them.
    request_intents: Any = Names(ORDER_REQUEST_INTENTS, min_items=1, valid="a non-empty list of intent names")
    #: Lowest intent probability for a clause to count as a request (probability 0..1).
    min_confidence: float = Number(0.5, ge=0, le=1, valid="a probability from 0 to 1")


def _intent(message: Message) -> tuple[Optional[str], float]:
    value = message.get(INTENT) or {}
    name = value.get(INTENT_NAME_KEY) if isinstance(value, dict) else None
    confidence = value.get(PREDICTED_CONFIDENCE_KEY, 0.0) if isinstance(value, dict) else 0.0
    return name, float(confidence or 0.0)


def classified(message: Message, start: int, end: int, text: str) -> ClassifiedClause:
    """A clause of ``text`` with the intent the pipeline gave ``message``."""
    name, confidence = _intent(message)
    ranking = message.get(INTENT_RANKING_KEY) or []
    return ClassifiedClause(Clause(start, end, text[start:end]), name, confidence, list(ranking))


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class MultiRequestCollector(GraphComponent, IntentClassifier):
    """Folds clause intents into `requests` and narrows the message to its first request (module docstring).

    Place it last in the pipeline, after every intent classifier and entity extractor.
    """

    @classmethod
    def required_components(cls) -> List[type]:
        """An intent classifier must run before this component."""
        return [IntentClassifier]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config: `MultiRequestConfig`'s defaults (meaning and unit of each key in
        its comment there)."""
        return defaults_of(MultiRequestConfig)

    @staticmethod
    def validate_config(config: Dict[Text, Any]) -> MultiRequestConfig:
        """Checks the configuration; missing keys take defaults, unknown ones are refused.

        Raises:
            InvalidConfigException: naming the key and its valid values.
        """
        return validate_config("MultiRequestCollector", MultiRequestConfig, config)

    def __init__(self, config: Dict[Text, Any]) -> None:
        """Creates the component; see `validate_config` for the accepted keys."""
        checked = self.validate_config(config)
        self._intents = list(checked.request_intents)
        self._min_confidence = float(checked.min_confidence)

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "MultiRequestCollector":
        """Creates the component (it has no trained state)."""
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        """The batch without clause messages; multi-request messages get `requests` and their first request's
        intent and entities."""
        clauses: Dict[Any, List[Message]] = defaultdict(list)
        parents: List[Message] = []
        for message in messages:
            link = message.get(CLAUSE_OF)
            if isinstance(link, dict):
                clauses[link.get("parent")].append(message)
            else:
                parents.append(message)
        for message in parents:
            self._collect(message, clauses.get(message.get(MESSAGE_ID), []))
        return parents

    def _collect(self, message: Message, clause_messages: List[Message]) -> None:
        text = message.get(TEXT)
        if not isinstance(text, str) or not text.strip() or text.lstrip().startswith(INTENT_MESSAGE_PREFIX):
            return
        name, confidence = _intent(message)
        unsure = name in (None, FALLBACK_INTENT) or confidence < self._min_confidence
        if name not in self._intents and not unsure:
            return
        if clause_messages:
            items = [
                classified(m, int(m.get(CLAUSE_OF)["start"]), int(m.get(CLAUSE_OF)["end"]), text)
                for m in clause_messages
            ]
        else:
            items = [classified(message, 0, len(text), text)]
        entities = [e for e in (message.get(ENTITIES) or []) if isinstance(e, dict)]
        requests = fold_requests(text, entities, items, self._intents, self._min_confidence)
        if not is_multi_request(requests):
            return
        first = requests[0]
        message.set(REQUESTS, [r.as_dict(text, entities) for r in requests], add_to_output=True)
        message.set(ENTITIES, first_request_entities(entities, first), add_to_output=True)
        if name != first.intent:
            ranking = first.ranking or [
                {INTENT_NAME_KEY: first.intent, PREDICTED_CONFIDENCE_KEY: float(first.confidence)}
            ]
            message.set(
                INTENT,
                {INTENT_NAME_KEY: first.intent, PREDICTED_CONFIDENCE_KEY: float(first.confidence)},
                add_to_output=True,
            )
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        logger.info(
            "Message with %d requests (%s); first: %s.",
            len(requests),
            ", ".join(r.intent for r in requests),
            first.intent,
        )
