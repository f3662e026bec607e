"""`SentimentHandoffPolicy`: offers an unhappy customer a person, based on the sentiment of their messages.

The NLU pipeline puts a sentiment into every parse result (`MultimodalFusionClassifier`:
`{"sentiment": {"label": "negative", "confidence": 0.93}}`), so the tracker's `UserUttered.parse_data` holds
the mood of the whole conversation. Right after a user message this policy predicts `action_offer_human`
(confidence 1.0) when

1. the message is negative and its intent is a trigger intent (default: `complaint`), or
2. the last `negative_turns` (default 2) user messages in a row were negative,

and otherwise abstains (all-zero probabilities), leaving the turn to the other policies. Messages without a
sentiment (button payloads such as `/affirm`, photo-only messages) neither count nor break a streak; a neutral
or positive message, or a negative one below `min_confidence`, ends it. Only user messages after the latest
offer or hand-over (and after the latest restart / session start) are looked at; the answer to an offer
neither triggers another offer nor counts, so the customer is asked once, and again only after two fresh
negative messages.
Messages whose intent already asks for a person (`ignore_intents`, default `contact_human_agent`) and Rasa's
`/restart`, `/back` and `/session_start` are left to the rules.

After its own action the policy predicts `action_listen`: the answer to the offer (yes → `action_hand_over_to_
human`, no → a friendly "let's sort it out together") is handled by two rules in data/rules.yml.

Why Rasa's ensemble picks this prediction: `DefaultPolicyPredictionEnsemble` ranks "no user" predictions
first, then confidence, then policy priority. While a form is active, RulePolicy predicts the form with
`is_no_user_prediction=True`, which would beat any ordinary prediction, so this policy marks its predictions
as "no user" as well (they are made from the sentiment, not from what was asked) and has a higher priority
(`RULE_POLICY_PRIORITY + 1`): on a tie at confidence 1.0 it wins. `action_offer_human` then ends the active
form (like the rules that hand over or take a complaint in the middle of a form), so a "yes" to the offer is
not taken as the form's answer. In every other turn the policy abstains and forms work as before.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa.core.constants import RULE_POLICY_PRIORITY
from rasa.core.policies.policy import PolicyPrediction
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import (
    ACTION_LISTEN_NAME,
    USER_INTENT_BACK,
    USER_INTENT_RESTART,
    USER_INTENT_SESSION_START,
)
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event, Restarted, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from assistant.configuration import (
    ComponentConfig,
    Integer,
    Names,
    Number,
    TextValue,
    defaults_of,
)
from assistant.keys import NEGATIVE, SENTIMENT
from components.config_policy import ConfigOnlyPolicy

logger = logging.getLogger(__name__)

CONFIG_FILE = "sentiment_handoff_policy.json"
#: Rasa's own commands: never answered with an offer.
COMMAND_INTENTS = frozenset({USER_INTENT_RESTART, USER_INTENT_BACK, USER_INTENT_SESSION_START})
_NAME = "SentimentHandoffPolicy"


class SentimentPolicyConfig(ComponentConfig):
    """The SentimentHandoffPolicy's config keys: defaults, valid values, and each key's meaning and unit in
    its comment (`SentimentHandoffPolicy.get_default_config` returns the defaults)."""

    #: Rank among policies on equal confidence (int, Rasa's `priority`); above RulePolicy's (4) so the offer
    #: wins ties.
    priority: int = Integer(RULE_POLICY_PRIORITY + 1, valid="an integer")
    #: Action that apologises and offers a person (action name in the domain).
    offer_action: str = TextValue("action_offer_human", valid="a non-empty string")
    #: Sentiment label that counts as unhappy (str, compared in lower case).
    negative_label: str = TextValue(NEGATIVE, valid="a non-empty string")
    #: Negative user messages in a row that trigger the offer (count ≥ 1).
    negative_turns: int = Integer(2, ge=1, valid="an integer >= 1")
    #: Lowest sentiment confidence for a message to count as negative (probability 0..1).
    min_confidence: float = Number(0.5, ge=0, le=1, valid="a probability from 0 to 1")
    #: Intents for which one negative message is enough (list of intent names).
    trigger_intents: Any = Names(["complaint"], valid="a list of names")
    #: Intents never answered with an offer, e.g. the customer already asked for a person (list).
    ignore_intents: Any = Names(["contact_human_agent"], valid="a list of names")
    #: Actions after which counting starts again, besides `offer_action` (list of action names).
    reset_actions: Any = Names(["action_hand_over_to_human"], valid="a list of names")


def sentiment_of(parse_data: Optional[Dict[Text, Any]]) -> Tuple[Optional[Text], float]:
    """The sentiment label (lower case) and its confidence in a parse result, or `(None, 0.0)`.

    Understands `{"label": ..., "confidence": ...}` (MultimodalFusionClassifier), `{"name": ...}` and a plain
    string (confidence 1.0 then).
    """
    value = (parse_data or {}).get(SENTIMENT)
    if isinstance(value, str) and value.strip():
        return value.strip().lower(), 1.0
    if isinstance(value, dict):
        label = value.get("label") or value.get("name")
        confidence = value.get("confidence", 1.0)
        if isinstance(label, str) and label.strip():
            try:
                return label.strip().lower(), float(confidence)
            except (TypeError, ValueError):
                return label.strip().lower(), 0.0
    return None, 0.0


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT], is_trainable=True
)
class SentimentHandoffPolicy(ConfigOnlyPolicy):
    """Predicts `action_offer_human` after a negative complaint or a run of negative messages.

    The policy learns nothing from stories: `train` checks the configuration against the domain and stores it
    as JSON, `load` reads it back. See the module docstring for the decision and how it wins in the ensemble.
    """

    NAME = _NAME
    CONFIG_FILE = CONFIG_FILE
    CONFIG_SCHEMA = SentimentPolicyConfig
    ACTIONS_KEY = "reset_actions"

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The policy's default config: `SentimentPolicyConfig`'s defaults (each key's meaning and unit is in
        its comment there). Rasa's `Policy` base class has no defaults of its own (`{}`; it reads `priority`,
        which the model declares, and `max_history` / `featurizer` only when given)."""
        return defaults_of(SentimentPolicyConfig)

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        featurizer: Optional[Any] = None,
    ) -> None:
        """Validates the config (`ConfigOnlyPolicy`) and reads this policy's keys."""
        super().__init__(config, model_storage, resource, execution_context, featurizer)
        self._negative: Text = config["negative_label"].strip().lower()
        self._turns: int = config["negative_turns"]
        self._min_confidence = float(config["min_confidence"])
        self._triggers = frozenset(config["trigger_intents"])
        self._ignored = frozenset(config["ignore_intents"]) | COMMAND_INTENTS
        self._resets = frozenset(config["reset_actions"]) | {self._offer_action}

    # ------------------------------------------------------------------ prediction
    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[Text, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """`offer_action` (1.0) when the customer should be offered a person, `action_listen` (1.0) right
        after that action, otherwise all zeros (abstain)."""
        action = self.decide(tracker)
        probabilities = self._default_predictions(domain)
        if action is None or action not in domain.action_names_or_texts:
            return self._prediction(probabilities)
        probabilities[domain.index_for_action(action)] = 1.0
        return self._prediction(probabilities, is_no_user_prediction=True)

    def decide(self, tracker: DialogueStateTracker) -> Optional[Text]:
        """The action this policy predicts for the tracker's current state, or None to abstain."""
        events = self._current_session(tracker.events)
        last = next((e for e in reversed(events) if isinstance(e, (ActionExecuted, UserUttered))), None)
        if isinstance(last, ActionExecuted):
            return ACTION_LISTEN_NAME if last.action_name == self._offer_action else None
        if not isinstance(last, UserUttered):
            return None
        if last.intent_name in self._ignored or self._replies_to_offer(events):
            return None
        if not self._is_negative(last):
            return None
        if last.intent_name in self._triggers:
            logger.debug("%s: negative '%s' → %s.", _NAME, last.intent_name, self._offer_action)
            return self._offer_action
        streak = 0
        for event in reversed(self._since_last_reset(events)):
            if not isinstance(event, UserUttered):
                continue
            label, _ = sentiment_of(event.parse_data)
            if label is None:
                continue  # no sentiment (a button, a photo): neither counts nor breaks the streak
            if not self._is_negative(event):
                break
            streak += 1
            if streak >= self._turns:
                logger.debug("%s: %d negative messages in a row → %s.", _NAME, streak, self._offer_action)
                return self._offer_action
        return None

    def _is_negative(self, event: UserUttered) -> bool:
        label, confidence = sentiment_of(event.parse_data)
        return label == self._negative and confidence >= self._min_confidence

    @staticmethod
    def _current_session(events: Any) -> List[Event]:
        """The events after the latest restart or session start."""
        current: List[Event] = []
        for event in events:
            if isinstance(event, (Restarted, SessionStarted)):
                current = []
            else:
                current.append(event)
        return current

    def _since_last_reset(self, events: List[Event]) -> List[Event]:
        """The events after the latest offer or hand-over action; after an offer, the answer to it is left
        out too (a cross "no!" is about the offer, not about the shop)."""
        for index in range(len(events) - 1, -1, -1):
            event = events[index]
            if isinstance(event, ActionExecuted) and event.action_name in self._resets:
                rest = events[index + 1 :]
                if event.action_name == self._offer_action:
                    answer = next((i for i, e in enumerate(rest) if isinstance(e, UserUttered)), None)
                    rest = rest if answer is None else rest[answer + 1 :]
                return rest
        return events

    def _replies_to_offer(self, events: List[Event]) -> bool:
        """True when the bot's last action before the latest user message was the offer."""
        seen_user = False
        for event in reversed(events):
            if isinstance(event, UserUttered):
                if seen_user:
                    return False
                seen_user = True
            elif isinstance(event, ActionExecuted) and event.action_name != ACTION_LISTEN_NAME and seen_user:
                return event.action_name == self._offer_action
        return False
