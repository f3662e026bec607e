"""MultiRequestPolicy on trackers built from events (no NLU model, no training data)."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

import pytest
from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.policies.rule_policy import RulePolicy
from rasa.engine.storage.resource import Resource
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    Event,
    Restarted,
    SessionStarted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import InvalidConfigException

from assistant.keys import REQUESTS
from components.multi_request_policy import MultiRequestPolicy
from components.sentiment_policy import SentimentHandoffPolicy

OFFER = "action_offer_next_request"
DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [track_order, cancel_order, affirm, deny, product_price, goodbye, inform]
actions: [action_offer_next_request, action_start_next_request, action_skip_next_request, action_track_order,
          action_cancel_order, action_stop_flow]
forms:
  track_order_form:
    required_slots: []
  cancel_order_form:
    required_slots: []
"""
)
TRACK_THEN_CANCEL = [
    {"intent": "track_order", "order_numbers": ["10023"], "text": "where is order 10023"},
    {"intent": "cancel_order", "order_numbers": ["10027"], "text": "can you also cancel 10027"},
]


def user(intent: str, requests: Optional[List[Dict[str, Any]]] = None) -> List[Event]:
    parse_data: Dict[str, Any] = {"intent": {"name": intent, "confidence": 0.9}, "text": "..."}
    if requests is not None:
        parse_data[REQUESTS] = requests
    message = UserUttered("...", intent=parse_data["intent"], parse_data=parse_data)
    return [ActionExecuted("action_listen"), message]


def ran(*actions: str) -> List[Event]:
    return [event for name in actions for event in (ActionExecuted(name), BotUttered("..."))]


def tracker(*turns: List[Event]) -> DialogueStateTracker:
    events: List[Event] = [ActionExecuted("action_session_start"), SessionStarted()]
    for turn in turns:
        events.extend(turn)
    return DialogueStateTracker.from_events("test", events, slots=DOMAIN.slots)


def flow(form: str = "track_order_form", submit: str = "action_track_order") -> List[Event]:
    return [
        ActionExecuted(form), ActiveLoop(form), *user("inform")[1:2],
        ActionExecuted(form), ActiveLoop(None), ActionExecuted(submit),
    ]


@pytest.fixture
def policy(model_storage, execution_context) -> MultiRequestPolicy:
    context = dataclasses.replace(execution_context, node_name="multi_request_policy")
    return MultiRequestPolicy.create(
        MultiRequestPolicy.get_default_config(), model_storage, Resource("multi_request_policy"), context
    )


def test_offers_the_second_request_after_the_first_flow(policy) -> None:
    t = tracker(user("track_order", TRACK_THEN_CANCEL), flow())
    assert policy.decide(t) == OFFER
    prediction = policy.predict_action_probabilities(t, DOMAIN)
    assert DOMAIN.action_names_or_texts[prediction.max_confidence_index] == OFFER
    assert prediction.is_no_user_prediction


def test_listens_after_the_offer_and_leaves_the_answer_to_the_rules(policy) -> None:
    t = tracker(user("track_order", TRACK_THEN_CANCEL), flow(), ran(OFFER))
    assert policy.decide(t) == "action_listen"
    answered = tracker(user("track_order", TRACK_THEN_CANCEL), flow(), ran(OFFER), user("affirm"))
    assert policy.decide(answered) is None


def test_no_second_offer_once_the_second_request_ran(policy) -> None:
    t = tracker(
        user("track_order", TRACK_THEN_CANCEL), flow(), ran(OFFER), user("affirm"),
        ran("action_start_next_request"), flow("cancel_order_form", "action_cancel_order"),
    )
    assert policy.decide(t) is None
    assert max(policy.predict_action_probabilities(t, DOMAIN).probabilities) == 0.0


@pytest.mark.parametrize(
    "turns",
    [
        # a single request
        [user("track_order"), flow()],
        # the flow has not ended yet: the form is active
        [
            user("track_order", TRACK_THEN_CANCEL),
            [ActionExecuted("track_order_form"), ActiveLoop("track_order_form")],
        ],
        # right after the user message: the policy never answers one
        [user("track_order", TRACK_THEN_CANCEL)],
        # an action that ends no flow
        [user("track_order", TRACK_THEN_CANCEL), ran("utter_greet")],
        # the customer said goodbye to stop the first flow
        [user("track_order", TRACK_THEN_CANCEL), [ActionExecuted("track_order_form")], user("goodbye"),
         ran("action_stop_flow")],
        # a restart forgets the request
        [user("track_order", TRACK_THEN_CANCEL), [Restarted()], flow()],
    ],
)
def test_abstains_otherwise(policy, turns) -> None:
    assert policy.decide(tracker(*turns)) is None


def test_a_stopped_flow_is_followed_by_the_offer_unless_the_customer_said_goodbye(policy) -> None:
    def stopped(intent: str) -> DialogueStateTracker:
        return tracker(user("track_order", TRACK_THEN_CANCEL), [ActionExecuted("track_order_form")], user(intent),
                       ran("action_stop_flow"))

    assert policy.decide(stopped("deny")) == OFFER
    assert policy.decide(stopped("goodbye")) is None


def test_a_no_leads_to_the_next_order_of_three(policy) -> None:
    requests = [{"intent": "cancel_order", "order_numbers": ["45172", "45173", "45174"], "text": "cancel"}]
    t = tracker(user("cancel_order", requests), flow("cancel_order_form", "action_cancel_order"), ran(OFFER),
                user("deny"), ran("action_skip_next_request"))
    assert policy.decide(t) == OFFER
    later = tracker(user("cancel_order", requests), ran(OFFER), user("product_price"), flow())
    assert policy.decide(later) is None  # an offer answered with something else closes the queue


def test_the_offer_wins_over_the_rules_listen(policy) -> None:
    t = tracker(user("track_order", TRACK_THEN_CANCEL), flow())
    probabilities = [0.0] * len(DOMAIN.action_names_or_texts)
    probabilities[DOMAIN.index_for_action("action_listen")] = 1.0
    rule = PolicyPrediction(probabilities, RulePolicy.__name__, RulePolicy.get_default_config()["priority"])
    best = DefaultPolicyPredictionEnsemble().combine_predictions(
        [rule, policy.predict_action_probabilities(t, DOMAIN)], t, DOMAIN
    )
    assert DOMAIN.action_names_or_texts[best.max_confidence_index] == OFFER


def test_priority_is_above_the_other_policies() -> None:
    ours = MultiRequestPolicy.get_default_config()["priority"]
    assert ours > RulePolicy.get_default_config()["priority"]
    assert ours > SentimentHandoffPolicy.get_default_config()["priority"]


def test_train_checks_the_domain_and_persists(policy, model_storage, execution_context) -> None:
    policy.train([], DOMAIN)
    loaded = MultiRequestPolicy.load({}, model_storage, Resource("multi_request_policy"), execution_context)
    assert loaded.config["offer_action"] == OFFER
    bare = Domain.from_yaml('version: "3.1"\nintents: [affirm]')
    with pytest.raises(InvalidConfigException):
        policy.train([], bare)


def test_bad_config_is_refused(model_storage, execution_context) -> None:
    with pytest.raises(InvalidConfigException):
        MultiRequestPolicy({"trigger_actions": []}, model_storage, Resource("x"), execution_context)
