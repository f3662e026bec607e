"""`OutOfScopeDetector`: an honest "I don't know" for gibberish and off-topic text.

The intent classifier always names one of the shop's intents, however far a message is from anything it
was trained on ("asdfghjkl qwerty" came out as `affirm`). This component runs after the classifiers and the
FallbackClassifier and, for each message with text, measures

* **familiarity**: the share of its tokens that are known (training vocabulary, English words of the text
  encoder's WordPiece vocabulary, typos of training words, numbers and emails);
* **similarity**: the mean cosine similarity of its MiniLM sentence feature to the ``k`` nearest in-domain
  training examples, and to the ``k`` nearest ``out_of_scope`` examples

(:mod:`components.scope.signals`). Below the calibrated thresholds (:mod:`components.scope.calibration`,
`benchmarks/calibrate_ood.py`) the intent becomes ``nlu_fallback`` (gibberish, unclear: "Sorry, I didn't
understand") or ``out_of_scope`` (closer to the out-of-scope examples: "I can't help with that"), with
confidence 1.0 and first in the ranking; the classifier's ranking follows.

Left alone: messages without text (the AttachmentRouter routes photos and voice notes), button payloads
(``/intent``; Rasa's RegexMessageHandler decides them), and messages with an entity whose words are all known
(an order number, an email, a catalog product given as a form's answer), whatever the signals say.

The parse result gets ``scope_check`` (`assistant.keys.SCOPE_CHECK`): ``{"familiarity", "similarity",
"oos_similarity", "verdict"}`` (``verdict`` is the intent set, or None).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.configuration import defaults_of, validate_config
from assistant.keys import SCOPE_CHECK
from components.scope import NAME
from components.scope.config import OutOfScopeConfig
from components.scope.persistence import ScopeIndex, load_index, save_index
from components.scope.signals import (
    INTENT_OUT_OF_SCOPE,
    Signals,
    Thresholds,
    Vocabulary,
    english_words,
    normalise_token,
    top_k_similarity,
    verdict,
)

logger = logging.getLogger(__name__)

__all__ = ["OutOfScopeDetector"]

#: Rasa's prefix of button payloads (``/affirm``).
_PAYLOAD_PREFIX = "/"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class OutOfScopeDetector(GraphComponent, IntentClassifier):
    """Sets ``nlu_fallback`` / ``out_of_scope`` for gibberish and off-topic text (see the module docstring).

    Place it after the intent classifier and the FallbackClassifier, before the AttachmentRouter.

    Args:
        config: Component configuration (:class:`OutOfScopeConfig`); missing keys take the defaults.
        model_storage, resource: Where the trained index is written.
        index: The trained index (None before training).
        english: Whole English words, used at training time (None: read from the text encoder's vocabulary).

    Raises:
        InvalidConfigException: a config value is out of range.
    """

    @classmethod
    def required_components(cls) -> List[type]:
        """The sentence features of a dense featurizer.

        It must also follow the intent classifiers in the pipeline (it overrides their intent), but Rasa checks
        required components on the training graph too, where a trainable component's training node does not
        descend from the classifiers', so that order is the configuration's to keep (as config.yml does).
        """
        return [DenseFeaturizer]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Default configuration; every key and its unit is documented in :class:`OutOfScopeConfig`."""
        return defaults_of(OutOfScopeConfig)

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> OutOfScopeConfig:
        """Checks the configuration (defaults filled in first) and returns it.

        Raises:
            InvalidConfigException: naming the key and its valid values.
        """
        return validate_config(NAME, OutOfScopeConfig, config)

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: Optional[ModelStorage] = None,
        resource: Optional[Resource] = None,
        index: Optional[ScopeIndex] = None,
        english: Optional[frozenset] = None,
        text_model_path: Optional[str] = None,
    ) -> None:
        """See the class docstring."""
        self._config = self.validate_config(config)
        self._model_storage = model_storage
        self._resource = resource
        self._english = english
        self._text_model_path = text_model_path
        self._set_index(index)

    def _set_index(self, index: Optional[ScopeIndex]) -> None:
        self._index = index
        self._vocabulary = (
            Vocabulary(index.training_words, index.english_words, float(self._config.typo_ratio))
            if index is not None
            else None
        )

    @property
    def thresholds(self) -> Thresholds:
        """The configured rejection thresholds."""
        config = self._config
        return Thresholds(float(config.min_familiarity), float(config.min_similarity), float(config.min_margin))

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "OutOfScopeDetector":
        """A detector to train; the text encoder's model path is read from the graph schema."""
        return cls(config, model_storage, resource, text_model_path=_text_model_path(execution_context))

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "OutOfScopeDetector":
        """The trained detector; without a stored index (no training data) it changes nothing."""
        try:
            index = load_index(model_storage, resource)
        except ValueError:
            logger.warning("%s: no trained index; it will not change any intent.", NAME)
            index = None
        return cls(config, model_storage, resource, index=index)

    # ---- training -------------------------------------------------------------------------------------
    def _english_words(self) -> frozenset:
        if self._english is None:
            from encoders.text import load_model, resolve_model_path

            loaded = load_model(resolve_model_path(self._text_model_path))
            self._english = frozenset(english_words(loaded.tokenizer.get_vocab()))
        return self._english

    def train(self, training_data: TrainingData) -> Resource:
        """Stores the training examples' sentence features and vocabulary (safetensors + JSON).

        Args:
            training_data: Featurised training data (intent examples need dense sentence features).

        Returns:
            The resource it was written to.
        """
        inside: List[np.ndarray] = []
        outside: List[np.ndarray] = []
        words = set()
        for example in training_data.training_examples:
            words.update(normalise_token(t.text) for t in example.get(TOKENS_NAMES[TEXT]) or [])
            vector = self._sentence_vector(example)
            intent = example.get(INTENT)
            if vector is None or not intent:
                continue
            (outside if intent == INTENT_OUT_OF_SCOPE else inside).append(vector)
        for table in training_data.lookup_tables:
            elements = table.get("elements")
            if isinstance(elements, list):
                for element in elements:
                    words.update(normalise_token(w) for w in str(element).split())
        for pair in training_data.entity_synonyms.items():
            for value in pair:
                words.update(normalise_token(w) for w in str(value).split())
        words.discard("")
        dims = inside[0].shape[0] if inside else (outside[0].shape[0] if outside else 0)
        index = ScopeIndex(
            in_domain=np.stack(inside) if inside else np.zeros((0, dims), np.float32),
            out_of_scope=np.stack(outside) if outside else np.zeros((0, dims), np.float32),
            training_words=frozenset(words),
            english_words=self._english_words(),
        )
        if self._model_storage is not None and self._resource is not None:
            save_index(index, self._model_storage, self._resource)
        self._set_index(index)
        logger.info(
            "%s: %d in-domain and %d out-of-scope examples, %d training words.",
            NAME, len(index.in_domain), len(index.out_of_scope), len(index.training_words),
        )
        return self._resource

    # ---- inference ------------------------------------------------------------------------------------
    def _sentence_vector(self, message: Message) -> Optional[np.ndarray]:
        """``float32 (d,)`` sentence feature of the first configured featurizer that has one, or None."""
        for name in self._config.featurizers:
            _, sentence = message.get_dense_features(TEXT, [name])
            if sentence is not None:
                vector = np.asarray(sentence.features, dtype=np.float32).reshape(-1)
                norm = float(np.linalg.norm(vector))
                return vector / norm if norm > 0 else None
        return None

    def signals(self, message: Message) -> Optional[Signals]:
        """The message's :class:`Signals`, or None when it cannot be judged (no index, tokens or features)."""
        if self._index is None or self._vocabulary is None:
            return None
        tokens = [t.text for t in message.get(TOKENS_NAMES[TEXT]) or []][: int(self._config.max_tokens)]
        vector = self._sentence_vector(message)
        if vector is None:
            return None
        k = int(self._config.k)
        return Signals(
            familiarity=self._vocabulary.familiarity(tokens),
            similarity=float(top_k_similarity(vector[None], self._index.in_domain, k)[0]),
            oos_similarity=float(top_k_similarity(vector[None], self._index.out_of_scope, k)[0]),
        )

    def _has_known_entity(self, message: Message) -> bool:
        """Whether an entity's words are all known: a slot answer (order number, email, product)."""
        text = message.get(TEXT) or ""
        for entity in message.get(ENTITIES) or []:
            start, end = entity.get(ENTITY_ATTRIBUTE_START), entity.get(ENTITY_ATTRIBUTE_END)
            if not isinstance(start, int) or not isinstance(end, int) or end <= start:
                continue
            words = text[start:end].split()
            if words and all(self._vocabulary.is_known(w) for w in words):
                return True
        return False

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets ``nlu_fallback`` / ``out_of_scope`` where the signals say so; see the module docstring."""
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str) or not text.strip() or text.lstrip().startswith(_PAYLOAD_PREFIX):
                continue
            signals = self.signals(message)
            if signals is None:
                continue
            intent = verdict(signals, self.thresholds)
            if intent is not None and self._has_known_entity(message):
                intent = None
            message.set(
                SCOPE_CHECK,
                {
                    "familiarity": round(signals.familiarity, 4),
                    "similarity": round(signals.similarity, 4),
                    "oos_similarity": round(signals.oos_similarity, 4),
                    "verdict": intent,
                },
                add_to_output=True,
            )
            if intent is None:
                continue
            previous = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
            if previous == intent:
                continue
            prediction = {INTENT_NAME_KEY: intent, PREDICTED_CONFIDENCE_KEY: 1.0}
            ranking = [r for r in (message.get(INTENT_RANKING_KEY) or []) if r.get(INTENT_NAME_KEY) != intent]
            message.set(INTENT, prediction, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [dict(prediction)] + ranking, add_to_output=True)
            logger.info(
                "%s: '%s' instead of '%s' (familiarity %.2f, similarity %.2f, out-of-scope similarity %.2f).",
                NAME, intent, previous, signals.familiarity, signals.similarity, signals.oos_similarity,
            )
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training data passes untouched."""
        return training_data


def _text_model_path(execution_context: ExecutionContext) -> Optional[str]:
    """The TransformerTextFeaturizer's ``model_path`` in the graph schema (None: the packaged MiniLM)."""
    from components.text_featurizer import TransformerTextFeaturizer

    schema = getattr(execution_context, "graph_schema", None)
    for node in getattr(schema, "nodes", {}).values():
        uses = getattr(node, "uses", None)
        if isinstance(uses, type) and issubclass(uses, TransformerTextFeaturizer):
            return (node.config or {}).get("model_path")
    return None
