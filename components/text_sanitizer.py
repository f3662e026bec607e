"""`TextSanitizer`: makes user text safe and bounded before tokenisation.

Customers paste anything: NUL bytes, zero-width characters, 10,000-character walls of text, full-width digits.
This component normalises the message text once, at training and at inference time alike, so that every later
component sees the same clean form:

1. Unicode NFKC normalisation (full-width digits → ASCII digits, ligatures split),
2. control characters (category Cc, except tab/newline) and format characters (category Cf: zero-width spaces,
   joiners, bidi marks) removed,
3. runs of white space collapsed to one space, ends stripped,
4. cut at `max_chars` characters (at a word boundary when one is near); `text_truncated` is then set in the
   parse result so actions can say that only the start was read.

A message whose text is blank after cleaning (white space, only zero-width characters, a photo or voice note
without caption or speech) leaves this component with the empty string, which every Rasa component accepts;
the AttachmentRouter later gives it its intent.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.keys import TEXT_TRUNCATED
from assistant.configuration import ComponentConfig, Integer, defaults_of, validate_config

logger = logging.getLogger(__name__)

_WHITESPACE = re.compile(r"\s+")


class SanitizerConfig(ComponentConfig):
    """The TextSanitizer's config keys: defaults, valid values, and each key's meaning and unit in its comment
    (`TextSanitizer.get_default_config` returns the defaults)."""

    #: Longest text passed on, in characters; longer texts are cut (the parse result says so).
    max_chars: int = Integer(1000, ge=16, le=100_000, valid="a whole number of characters from 16 to 100000")


def sanitize_text(text: Optional[str], max_chars: int) -> tuple[str, bool]:
    """Normalise and bound one text.

    Args:
        text: raw user text (None is treated as empty).
        max_chars: maximum length of the result in characters (Unicode code points).

    Returns:
        (clean text, whether it was cut).
    """
    if not text:
        return "", False
    text = unicodedata.normalize("NFKC", text)
    text = "".join(
        ch if ch in "\t\n" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co") else " " for ch in text
    )
    text = _WHITESPACE.sub(" ", text).strip()
    if len(text) <= max_chars:
        return text, False
    cut = text[:max_chars]
    space = cut.rfind(" ")
    if space >= max_chars * 0.8:
        cut = cut[:space]
    return cut.rstrip(), True


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class TextSanitizer(GraphComponent):
    """Normalises message text (NFKC, no control/zero-width characters, collapsed spaces, bounded length).

    Place it before the tokenizer (after the speech recognizer, so transcripts are cleaned too).
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config: `SanitizerConfig`'s defaults (each key's unit is in its comment
        there)."""
        return defaults_of(SanitizerConfig)

    def __init__(self, config: Dict[Text, Any]) -> None:
        """Creates the component; see `validate_config` for the accepted keys."""
        self._max_chars = self.validate_config(config).max_chars

    @staticmethod
    def validate_config(config: Dict[Text, Any]) -> SanitizerConfig:
        """Checks the configuration (`SanitizerConfig`): missing keys take defaults, unknown ones are refused.

        Returns:
            The checked configuration.

        Raises:
            InvalidConfigException: `max_chars` is not a whole number from 16 to 100000, or a key is unknown.
        """
        return validate_config("TextSanitizer", SanitizerConfig, config)

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "TextSanitizer":
        """Creates the component (it has no trained state)."""
        return cls(config)

    def _sanitize(self, message: Message, log: bool) -> None:
        raw = message.get(TEXT)
        if raw is None:
            return
        clean, truncated = sanitize_text(raw, self._max_chars)
        if clean != raw:
            message.set(TEXT, clean)
        if truncated:
            message.set(TEXT_TRUNCATED, True, add_to_output=True)
            if log:
                logger.info("Message text cut from %d to %d characters.", len(raw), len(clean))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Sanitises the text of every training example the same way as at inference."""
        for example in training_data.training_examples:
            self._sanitize(example, log=False)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Sanitises the text of incoming messages; a user message without text gets the empty string."""
        for message in messages:
            if message.get(TEXT) is None:
                message.set(TEXT, "")
            self._sanitize(message, log=True)
        return messages
