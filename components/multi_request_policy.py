"""`MultiRequestPolicy`: offers the customer's next request once the flow before it has ended.

A message such as "where is order 10023 and can you also cancel 10027" carries `requests` in its parse result
(components/multi_request.py); its first task runs as any single request would (track_order_form, with the
email check, then `action_track_order`). When that flow's last action ran — one of `trigger_actions`: the
order flows' submit actions, `action_stop_flow` (the customer stopped the flow) and the action that skips a
declined offer — and no form is active, this policy predicts `offer_action` (confidence 1.0) if the
conversation still holds a task that was not offered (`assistant.requests.request_queue`), and `action_listen`
right after that action (nothing after a goodbye, `quiet_intents`). Otherwise it abstains (all-zero
probabilities) and the other policies decide as before. The answers are rules in data/rules.yml: yes →
`action_start_next_request` (starts that flow with its order number; the flow asks for the email address on
that order and for its own yes before changing anything), no → `action_skip_next_request` (after which the
next task, if any, is offered).

Like the SentimentHandoffPolicy, its predictions are marked "no user" and its priority is above RulePolicy's,
so they win over the rule's `action_listen` at the end of a flow (Rasa's ensemble ranks "no user" predictions
first, then confidence, then priority).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Text

from rasa.core.constants import RULE_POLICY_PRIORITY
from rasa.core.policies.policy import PolicyPrediction
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Restarted, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from assistant.configuration import ComponentConfig, Integer, Names, TextValue, defaults_of
from assistant.requests import OFFER_ACTION, request_queue
from components.config_policy import ConfigOnlyPolicy

logger = logging.getLogger(__name__)

CONFIG_FILE = "multi_request_policy.json"
_NAME = "MultiRequestPolicy"
#: Events the request queue is derived from.
_QUEUE_EVENTS = (UserUttered, ActionExecuted, Restarted, SessionStarted)


class MultiRequestPolicyConfig(ComponentConfig):
    """The MultiRequestPolicy's config keys: defaults, valid values, and each key's meaning and unit in its
    comment (`MultiRequestPolicy.get_default_config` returns the defaults)."""

    #: Rank among policies on equal confidence (int, Rasa's `priority`); above RulePolicy's (4) and the
    #: SentimentHandoffPolicy's (5), whose predictions never fall on the same turn.
    priority: int = Integer(RULE_POLICY_PRIORITY + 2, valid="an integer")
    #: Action that offers the next request (action name in the domain).
    offer_action: str = TextValue(OFFER_ACTION, valid="a non-empty string")
    #: Actions that end a flow, after which the next request is offered (list of action names).
    trigger_actions: Any = Names(
        [
            "action_track_order",
            "action_cancel_order",
            "action_change_shipping_address",
            "action_request_refund",
            "action_track_refund",
            "action_stop_flow",
            "action_skip_next_request",
        ],
        min_items=1,
        valid="a non-empty list of action names",
    )
    #: Intents after which nothing more is offered: the customer said goodbye (list of intent names).
    quiet_intents: Any = Names(["goodbye"], valid="a list of intent names")


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT], is_trainable=True
)
class MultiRequestPolicy(ConfigOnlyPolicy):
    """Predicts `offer_action` after a flow ended while a further request waits (see the module docstring).

    Nothing is learned: `train` checks the configured actions against the domain and stores the config as
    JSON, `load` reads it back.
    """

    NAME = _NAME
    CONFIG_FILE = CONFIG_FILE
    CONFIG_SCHEMA = MultiRequestPolicyConfig
    ACTIONS_KEY = "trigger_actions"

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The policy's default config: `MultiRequestPolicyConfig`'s defaults."""
        return defaults_of(MultiRequestPolicyConfig)

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
        self._triggers = frozenset(config["trigger_actions"])
        self._quiet = frozenset(config["quiet_intents"])

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[Text, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """`offer_action` (1.0) after a flow ended with a request waiting, `action_listen` (1.0) right after
        the offer, otherwise all zeros (abstain)."""
        action = self.decide(tracker)
        probabilities = self._default_predictions(domain)
        if action is None or action not in domain.action_names_or_texts:
            return self._prediction(probabilities)
        probabilities[domain.index_for_action(action)] = 1.0
        return self._prediction(probabilities, is_no_user_prediction=True)

    def decide(self, tracker: DialogueStateTracker) -> Optional[Text]:
        """The action this policy predicts for the tracker's current state, or None to abstain."""
        last = next(
            (e for e in reversed(tracker.events) if isinstance(e, (ActionExecuted, UserUttered))), None
        )
        if not isinstance(last, ActionExecuted):
            return None
        if last.action_name == self._offer_action:
            return ACTION_LISTEN_NAME
        if last.action_name not in self._triggers or tracker.active_loop_name:
            return None
        if tracker.latest_message is not None and tracker.latest_message.intent_name in self._quiet:
            return None
        queue = request_queue(
            (e.as_dict() for e in tracker.events if isinstance(e, _QUEUE_EVENTS)), self._offer_action
        )
        task = queue.next_task()
        if task is None:
            return None
        logger.debug("%s: %s after %s.", _NAME, self._offer_action, last.action_name)
        return self._offer_action
