"""`AttachmentRouter`: intents for messages that carry no usable text.

An image-only or audio-only message is a normal message. After the text intent classifier (and the
FallbackClassifier) this component looks at what the multimodal components found and, when there is no text to
classify, sets one of these intents with confidence 1.0:

| intent | when |
|---|---|
| `send_image` | no text and an image was decoded; or an image whose caption is `nlu_fallback` / `out_of_scope` |
| `attachment_problem` | no text, every attachment was rejected (damaged, too large, no speech, ...) |
| `empty_message` | no text and no attachment at all |

For `attachment_problem`, the first problem is put in the parse result under `attachment_problem`.

Other messages with text keep the intent the classifier predicted.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from assistant.keys import (
    ATTACHMENT_PROBLEM,
    ATTACHMENT_PROBLEMS,
    IMAGE_LABELS,
    INTENT_ATTACHMENT_PROBLEM,
    INTENT_EMPTY_MESSAGE,
    INTENT_SEND_IMAGE,
)

logger = logging.getLogger(__name__)


#: Text intents that mean "the words alone say nothing the shop can act on".
UNCLEAR_TEXT_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})


def route_intent(message: Message) -> Optional[str]:
    """The intent a message gets from its attachments, or None when its text's intent stands.

    A text-less message is routed by what it carries. A photo whose caption was not understood ("what is
    this?", "??") is routed as a photo too: the picture is the request, and the photo answer says which product
    it shows (or that it could not tell).
    """
    if (message.get(TEXT) or "").strip():
        text_intent = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
        if message.get(IMAGE_LABELS) and text_intent in UNCLEAR_TEXT_INTENTS:
            return INTENT_SEND_IMAGE
        return None
    if message.get(IMAGE_LABELS):
        return INTENT_SEND_IMAGE
    if message.get(ATTACHMENT_PROBLEMS):
        return INTENT_ATTACHMENT_PROBLEM
    return INTENT_EMPTY_MESSAGE


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class AttachmentRouter(GraphComponent, IntentClassifier):
    """Sets `send_image` / `attachment_problem` / `empty_message` for messages without text.

    Place it last among the intent classifiers (after FallbackClassifier).
    """

    @classmethod
    def required_components(cls) -> List[type]:
        """An intent classifier must run before this component."""
        return [IntentClassifier]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """No configuration."""
        return {}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "AttachmentRouter":
        """Creates the component (it has no trained state)."""
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        """Overrides the intent of text-less messages and of photos with an unclear caption (`route_intent`)."""
        for message in messages:
            intent = route_intent(message)
            if intent is None:
                continue
            prediction = {INTENT_NAME_KEY: intent, PREDICTED_CONFIDENCE_KEY: 1.0}
            message.set(INTENT, prediction, add_to_output=True)
            ranking = [r for r in (message.get(INTENT_RANKING_KEY) or []) if r.get(INTENT_NAME_KEY) != intent]
            message.set(INTENT_RANKING_KEY, [dict(prediction)] + ranking, add_to_output=True)
            if intent == INTENT_ATTACHMENT_PROBLEM:
                message.set(ATTACHMENT_PROBLEM, message.get(ATTACHMENT_PROBLEMS)[0], add_to_output=True)
            logger.debug("Message routed by its attachments to intent '%s'.", intent)
        return messages
