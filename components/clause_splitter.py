"""`ClauseSplitter`: lets the whole NLU pipeline read each clause of a message as if it had been sent alone.

"where is order 10023 and can you also cancel 10027" holds two requests, and one intent for the whole text can
only name one of them. This component (placed right after the TextSanitizer, before the tokenizer) splits the
text into clauses (:func:`components.multirequest.clauses.split_clauses`) and, when there are several, adds
one extra message per clause to the batch the graph is processing. Every later component — tokenizer,
featurizers, DIET, the fusion classifier, the fallback — then handles the clause messages exactly like
messages of their own, with the same trained models and in the same batch (one MiniLM call for all of them).
The MultiRequestCollector at the end of the pipeline takes the clause messages out of the batch again and
folds their intents into the message's `requests` (components/multi_request.py); nothing after the pipeline
ever sees them, and the message itself stays first in the batch, where Rasa reads its parse result.

A clause message carries `clause_of` (`assistant.keys.CLAUSE_OF`: `{"parent": <message id>, "start",
"end"}`). Only user messages are split: those with a message id (Rasa gives every incoming message one; the
messages Rasa builds from stories and the domain for featurising have none), with text, and not a `/intent`
payload. Training data is left as it is.

Cost: a message that splits into n clauses costs about n + 1 parses of a short text instead of one (at most
`max_clauses` + 1).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import INTENT_MESSAGE_PREFIX
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.configuration import ComponentConfig, Integer, defaults_of, validate_config
from assistant.keys import CLAUSE_OF
from components.multirequest.clauses import split_clauses

logger = logging.getLogger(__name__)

#: Rasa's message attribute of the incoming message's id (`rasa.shared.nlu.constants.MESSAGE_ID` in 3.6).
MESSAGE_ID = "message_id"


class ClauseSplitterConfig(ComponentConfig):
    """The ClauseSplitter's config keys: defaults, valid values, and each key's meaning and unit in its
    comment (`ClauseSplitter.get_default_config` returns the defaults)."""

    #: Fewest words a piece between connectors needs to be a clause of its own (count); shorter pieces stay
    #: with their neighbour, so "bread and butter" and "cancel 45172 and 45173" are not split.
    min_words: int = Integer(2, ge=1, le=20, valid="a whole number of words from 1 to 20")
    #: Most clauses a message may have (count); a message with more is not split, which bounds the extra
    #: parses a message can cause.
    max_clauses: int = Integer(4, ge=2, le=10, valid="a whole number from 2 to 10")


def clause_messages(message: Message, min_words: int, max_clauses: int) -> List[Message]:
    """The clause messages to add for ``message``: none unless it is a user message that splits.

    Args:
        message: A message of the batch being processed.
        min_words: See `ClauseSplitterConfig.min_words`.
        max_clauses: See `ClauseSplitterConfig.max_clauses`.

    Returns:
        One new message per clause, with the clause's text and `clause_of`, in order.
    """
    text = message.get(TEXT)
    message_id = message.get(MESSAGE_ID)
    if not isinstance(text, str) or not text.strip() or not message_id or message.get(CLAUSE_OF):
        return []
    if text.lstrip().startswith(INTENT_MESSAGE_PREFIX):
        return []
    clauses = split_clauses(text, min_words=min_words, max_clauses=max_clauses)
    if len(clauses) < 2:
        return []
    return [
        Message(data={TEXT: c.text, CLAUSE_OF: {"parent": message_id, "start": c.start, "end": c.end}})
        for c in clauses
    ]


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class ClauseSplitter(GraphComponent):
    """Adds one message per clause of a multi-clause user message to the batch (see the module docstring).

    Place it after the TextSanitizer and before the tokenizer; the MultiRequestCollector must close the
    pipeline.
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config: `ClauseSplitterConfig`'s defaults (each key's unit is in its
        comment there)."""
        return defaults_of(ClauseSplitterConfig)

    @staticmethod
    def validate_config(config: Dict[Text, Any]) -> ClauseSplitterConfig:
        """Checks the configuration; missing keys take defaults, unknown ones are refused.

        Raises:
            InvalidConfigException: naming the key and its valid values.
        """
        return validate_config("ClauseSplitter", ClauseSplitterConfig, config)

    def __init__(self, config: Dict[Text, Any]) -> None:
        """Creates the component; see `validate_config` for the accepted keys."""
        checked = self.validate_config(config)
        self._min_words = checked.min_words
        self._max_clauses = checked.max_clauses

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "ClauseSplitter":
        """Creates the component (it has no trained state)."""
        return cls(config)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training examples are single requests: left as they are."""
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """The batch with the clause messages of each multi-clause user message appended after it."""
        added: List[Message] = []
        for message in messages:
            clauses = clause_messages(message, self._min_words, self._max_clauses)
            if clauses:
                logger.debug("Message split into %d clauses.", len(clauses))
            added.extend(clauses)
        return messages + added if added else messages
