"""SentimentHandoffPolicy on trackers built from events (no NLU model, no training data)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.policies.rule_policy import RulePolicy
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
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

from assistant.keys import NEGATIVE, SENTIMENT
from assistant.configuration import defaults_of
from components.sentiment_policy import SentimentHandoffPolicy, SentimentPolicyConfig, sentiment_of

OFFER = "action_offer_human"
DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet, complaint, track_order, inform, affirm, deny, thank_you, contact_human_agent]
actions: [action_offer_human, action_hand_over_to_human, action_file_complaint, utter_sort_it_out]
forms:
  track_order_form:
    required_slots: []
responses:
  utter_sort_it_out:
  - text: "OK, let's sort it out together."
"""
)


def user(intent: str, sentiment: Any = None, confidence: float = 0.9, text: str = "...") -> List[Event]:
    """`action_listen`, then a user message with this intent and sentiment label (None: no sentiment)."""
    parse_data: Dict[str, Any] = {"intent": {"name": intent, "confidence": 0.9}, "text": text}
    if isinstance(sentiment, str):
        parse_data["sentiment"] = {"label": sentiment, "confidence": confidence}
    elif sentiment is not None:
        parse_data["sentiment"] = sentiment
    return [
        ActionExecuted("action_listen"),
        UserUttered(text, intent={"name": intent, "confidence": 0.9}, parse_data=parse_data),
    ]


def bot(action: str) -> List[Event]:
    return [ActionExecuted(action), BotUttered("...")]


def tracker(*turns: List[Event]) -> DialogueStateTracker:
    events: List[Event] = [ActionExecuted("action_session_start"), SessionStarted()]
    for turn in turns:
        events.extend(turn)
    return DialogueStateTracker.from_events("test", events, slots=DOMAIN.slots)


@pytest.fixture
def make_policy(model_storage, execution_context):
    context = dataclasses.replace(execution_context, node_name="sentiment_policy")

    def make(**overrides: Any) -> SentimentHandoffPolicy:
        config = {**SentimentHandoffPolicy.get_default_config(), **overrides}
        return SentimentHandoffPolicy.create(config, model_storage, Resource("sentiment_policy"), context)

    return make


@pytest.fixture
def policy(make_policy) -> SentimentHandoffPolicy:
    return make_policy()


def predicted(policy: SentimentHandoffPolicy, t: DialogueStateTracker) -> Optional[str]:
    prediction = policy.predict_action_probabilities(t, DOMAIN)
    if max(prediction.probabilities) == 0:
        return None
    assert prediction.is_no_user_prediction
    return DOMAIN.action_names_or_texts[prediction.probabilities.index(max(prediction.probabilities))]


# ------------------------------------------------------------------------------------------------ decisions
def test_two_negative_turns_in_a_row_get_the_offer(policy):
    t = tracker(user("track_order", "negative"), bot("track_order_form"), user("inform", "negative"))
    assert predicted(policy, t) == OFFER


def test_one_negative_turn_is_not_enough(policy):
    assert predicted(policy, tracker(user("track_order", "negative"))) is None
    t = tracker(user("greet", "neutral"), bot("utter_greet"), user("track_order", "negative"))
    assert predicted(policy, t) is None


def test_a_negative_complaint_gets_the_offer_at_once(policy):
    assert predicted(policy, tracker(user("complaint", "negative"))) == OFFER


def test_a_calm_complaint_is_left_to_the_rules(policy):
    assert predicted(policy, tracker(user("complaint", "neutral"))) is None


@pytest.mark.parametrize("middle", ["neutral", "positive"])
def test_a_neutral_or_positive_turn_resets_the_streak(policy, middle):
    t = tracker(
        user("track_order", "negative"), bot("utter_x"),
        user("inform", middle), bot("utter_x"),
        user("track_order", "negative"),
    )
    assert predicted(policy, t) is None


def test_a_weak_negative_does_not_count(policy):
    t = tracker(user("track_order", "negative", confidence=0.4), bot("utter_x"), user("inform", "negative"))
    assert predicted(policy, t) is None
    assert predicted(policy, tracker(user("complaint", "negative", confidence=0.3))) is None


def test_messages_without_sentiment_neither_count_nor_reset(policy):
    t = tracker(
        user("track_order", "negative"), bot("utter_x"),
        user("inform", None), bot("utter_x"),  # e.g. a button payload or a photo
        user("track_order", "negative"),
    )
    assert predicted(policy, t) == OFFER
    assert predicted(policy, tracker(user("inform", None))) is None


def test_not_offered_twice_in_a_row(policy):
    first = [user("track_order", "negative"), bot("utter_x"), user("inform", "negative")]
    # right after the offer: listen for the answer
    assert predicted(policy, tracker(*first, bot(OFFER))) == "action_listen"
    # the answer itself (even a negative complaint) is not answered with a second offer
    assert predicted(policy, tracker(*first, bot(OFFER), user("complaint", "negative"))) is None
    assert predicted(policy, tracker(*first, bot(OFFER), user("deny", "negative"))) is None
    # after the denial one more negative message is not enough: the count starts again after an offer
    later = [*first, bot(OFFER), user("deny", "negative"), bot("utter_sort_it_out")]
    assert predicted(policy, tracker(*later, user("track_order", "negative"))) is None
    again = tracker(*later, user("track_order", "negative"), bot("utter_x"), user("inform", "negative"))
    assert predicted(policy, again) == OFFER


def test_counting_starts_again_after_a_hand_over(policy):
    t = tracker(
        user("track_order", "negative"), bot("action_hand_over_to_human"), user("inform", "negative")
    )
    assert predicted(policy, t) is None


def test_asking_for_a_person_is_left_to_the_rules(policy):
    t = tracker(user("track_order", "negative"), bot("utter_x"), user("contact_human_agent", "negative"))
    assert predicted(policy, t) is None


@pytest.mark.parametrize("command", ["restart", "session_start", "back"])
def test_rasa_commands_are_never_answered_with_an_offer(policy, command):
    t = tracker(user("track_order", "negative"), bot("utter_x"), user(command, "negative"))
    assert predicted(policy, t) is None


def test_a_new_session_starts_counting_again(policy):
    events = [*user("track_order", "negative"), *bot("utter_x")]
    new_session = [ActionExecuted("action_session_start"), SessionStarted()]
    t = tracker(events, new_session, user("inform", "negative"))
    assert predicted(policy, t) is None
    t = tracker(events, [Restarted()], user("inform", "negative"))
    assert predicted(policy, t) is None


def test_no_prediction_after_other_bot_actions(policy):
    t = tracker(user("track_order", "negative"), bot("utter_x"), user("inform", "negative"), bot("utter_y"))
    assert predicted(policy, t) is None
    assert predicted(policy, tracker()) is None


def test_configurable_streak_and_triggers(make_policy):
    three = make_policy(negative_turns=3, trigger_intents=[])
    two_turns = [user("track_order", "negative"), bot("utter_x"), user("inform", "negative")]
    assert predicted(three, tracker(*two_turns)) is None
    assert predicted(three, tracker(*two_turns, bot("utter_x"), user("inform", "negative"))) == OFFER
    assert predicted(three, tracker(user("complaint", "negative"))) is None


@pytest.mark.parametrize(
    "value, expected",
    [
        ({"label": "Negative", "confidence": 0.8}, ("negative", 0.8)),
        ({"name": "neutral"}, ("neutral", 1.0)),
        ("positive", ("positive", 1.0)),
        (None, (None, 0.0)),
        ({"label": ""}, (None, 0.0)),
        (42, (None, 0.0)),
    ],
)
def test_sentiment_formats(value, expected):
    assert sentiment_of({SENTIMENT: value}) == expected


# ------------------------------------------------------------------------------------------------ ensemble
def test_the_ensemble_prefers_the_offer_over_a_forced_form_prediction(policy):
    """In a form, RulePolicy forces the form with a "no user" prediction; the offer must still win."""
    t = tracker(
        user("track_order", "negative"), [ActionExecuted("track_order_form"), ActiveLoop("track_order_form")],
        user("inform", "negative"),
    )
    probabilities = [0.0] * DOMAIN.num_actions
    probabilities[DOMAIN.index_for_action("track_order_form")] = 1.0
    form = PolicyPrediction(probabilities, RulePolicy.__name__, RulePolicy.get_default_config()["priority"],
                            is_no_user_prediction=True)
    ours = policy.predict_action_probabilities(t, DOMAIN)
    best = DefaultPolicyPredictionEnsemble().combine_predictions([form, ours], t, DOMAIN)
    assert best.policy_name == SentimentHandoffPolicy.__name__
    assert DOMAIN.action_names_or_texts[best.max_confidence_index] == OFFER


def test_an_abstention_never_wins(policy):
    t = tracker(user("greet", "neutral"))
    probabilities = [0.0] * DOMAIN.num_actions
    probabilities[DOMAIN.index_for_action("utter_sort_it_out")] = 1.0
    rule = PolicyPrediction(probabilities, RulePolicy.__name__, 4)
    best = DefaultPolicyPredictionEnsemble().combine_predictions(
        [rule, policy.predict_action_probabilities(t, DOMAIN)], t, DOMAIN
    )
    assert best.policy_name == RulePolicy.__name__


# --------------------------------------------------------------------------------------------------- storage
def test_registered_as_policy_with_a_priority_above_rules():
    registered = DefaultV1Recipe._registered_components[SentimentHandoffPolicy.__name__]
    assert DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT in registered.types
    ours, rules = SentimentHandoffPolicy.get_default_config(), RulePolicy.get_default_config()
    assert ours["priority"] > rules["priority"]


@pytest.mark.parametrize(
    "key, value",
    [
        ("negative_turns", 0),
        ("min_confidence", 1.5),
        ("offer_action", ""),
        ("trigger_intents", "complaint"),
        ("priority", "high"),
    ],
)
def test_bad_config_names_the_key(make_policy, key, value):
    with pytest.raises(InvalidConfigException, match=f"`{key}`"):
        make_policy(**{key: value})


def test_default_config_is_the_config_model():
    from rasa.core.policies.policy import Policy

    assert Policy.get_default_config() == {}, "Rasa's Policy adds defaults: merge them into get_default_config"
    assert SentimentHandoffPolicy.get_default_config() == defaults_of(SentimentPolicyConfig)
    assert SentimentHandoffPolicy.get_default_config()["negative_label"] == NEGATIVE
    for key, field in SentimentPolicyConfig.__fields__.items():
        assert field.field_info.extra.get("valid"), f"`{key}` has no valid-values text"


def test_unknown_config_keys_are_refused_but_the_policy_base_keys_pass(make_policy):
    with pytest.raises(InvalidConfigException, match="unknown config key.*'negative_turn'.*valid keys are"):
        make_policy(negative_turn=3)
    policy = make_policy(max_history=3)  # read by Rasa's Policy base for its tracker featurizer
    assert policy.featurizer.max_history == 3


def test_bad_config_message_names_the_valid_values(make_policy):
    with pytest.raises(InvalidConfigException) as error:
        make_policy(min_confidence=1.5)
    assert str(error.value) == (
        "SentimentHandoffPolicy: `min_confidence` must be a probability from 0 to 1, got 1.5."
    )


def test_train_refuses_a_domain_without_the_offer_action(make_policy):
    with pytest.raises(InvalidConfigException, match="offer_action"):
        make_policy(offer_action="action_missing").train([], DOMAIN)


def test_config_is_persisted_as_json_and_loaded(make_policy, model_storage, execution_context):
    trained = make_policy(negative_turns=3)
    trained.train([], DOMAIN)
    with model_storage.read_from(Resource("sentiment_policy")) as directory:
        assert [p.name for p in Path(directory).iterdir()] == ["sentiment_handoff_policy.json"]
    loaded = SentimentHandoffPolicy.load(
        SentimentHandoffPolicy.get_default_config(), model_storage, Resource("sentiment_policy"),
        execution_context,
    )
    assert loaded.config["negative_turns"] == 3
    two = tracker(user("track_order", "negative"), bot("utter_x"), user("inform", "negative"))
    assert predicted(loaded, two) is None
