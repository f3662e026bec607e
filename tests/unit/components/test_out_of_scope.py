"""OutOfScopeDetector on hand-made features: gibberish and off-topic text are rejected, the rest is left alone."""
import numpy as np
import pytest
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.keys import SCOPE_CHECK
from components.out_of_scope import OutOfScopeDetector

DIMS = 8
#: Directions of the toy embedding space: one per topic.
ORDERS, GREETING, WEATHER, NOWHERE = (np.eye(DIMS, dtype=np.float32)[i] for i in range(4))
ENGLISH = frozenset({"the", "what", "will", "be", "in", "on", "a", "is", "it", "weather", "saturday", "leeds"})
TOKENIZER = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())


def _message(text, vector, intent=None, **data):
    message = Message({TEXT: text, **data})
    if intent:
        message.set(INTENT, intent)
    TOKENIZER.process([message])
    noise = np.random.default_rng(len(text)).normal(0, 0.05, DIMS).astype(np.float32)
    message.add_features(Features((vector + noise)[None], "sentence", TEXT, "minilm"))
    return message


def _classified(text, vector, predicted="affirm", **data):
    message = _message(text, vector, **data)
    message.set(INTENT, {"name": predicted, "confidence": 0.9}, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [{"name": predicted, "confidence": 0.9}], add_to_output=True)
    return message


@pytest.fixture
def detector(model_storage, execution_context):
    from rasa.engine.storage.resource import Resource

    examples = [
        _message("where is my order", ORDERS, "track_order"),
        _message("track order 10023", ORDERS, "track_order"),
        _message("has my order shipped", ORDERS, "track_order"),
        _message("bananas", ORDERS, "inform"),
        _message("hello", GREETING, "greet"),
        _message("hi there", GREETING, "greet"),
        _message("yes", GREETING, "affirm"),
        _message("what's the weather tomorrow", WEATHER, "out_of_scope"),
        _message("will it rain today", WEATHER, "out_of_scope"),
        _message("is it sunny", WEATHER, "out_of_scope"),
    ]
    resource = Resource("out_of_scope")
    trainer = OutOfScopeDetector(
        {"k": 2, "min_similarity": 0.5, "min_margin": 0.2},
        model_storage, resource, english=ENGLISH,
    )
    trainer.train(TrainingData(examples))
    # what inference uses: the detector as loaded from the model storage
    return OutOfScopeDetector.load(
        {"k": 2, "min_similarity": 0.5, "min_margin": 0.2}, model_storage, resource, execution_context
    )


def _intent(detector, message):
    [out] = detector.process([message])
    return out.get(INTENT)["name"], out


def test_keyboard_mash_and_letter_runs_get_fallback(detector):
    for text in ("asdfghjkl qwerty", "z" * 40, "a" * 1000, "😂😂😂"):
        intent, out = _intent(detector, _classified(text, GREETING))
        assert intent == "nlu_fallback", text
        assert out.get(INTENT_RANKING_KEY)[0]["name"] == "nlu_fallback"
        assert out.get(INTENT_RANKING_KEY)[1]["name"] == "affirm"
        assert out.get(SCOPE_CHECK)["verdict"] == "nlu_fallback"


def test_weather_in_leeds_is_out_of_scope(detector):
    text = " ".join(["what", "will", "the", "weather", "be", "in", "Leeds", "on", "Saturday"])
    intent, out = _intent(detector, _classified(text, 0.4 * ORDERS + WEATHER, predicted="track_order"))
    assert intent == "out_of_scope"
    assert out.get(SCOPE_CHECK)["oos_similarity"] > out.get(SCOPE_CHECK)["similarity"]


def test_far_from_everything_is_unclear(detector):
    assert _intent(detector, _classified("is it the one", NOWHERE))[0] == "nlu_fallback"


@pytest.mark.parametrize("text, vector, predicted", [
    ("where is my order", ORDERS, "track_order"),
    ("yes", GREETING, "affirm"),
    ("hello!", GREETING, "greet"),
    ("bananas", ORDERS, "inform"),
    ("wher is my ordr", ORDERS, "track_order"),  # typos of training words are known words
])
def test_in_domain_messages_keep_their_intent(detector, text, vector, predicted):
    intent, out = _intent(detector, _classified(text, vector, predicted))
    assert intent == predicted
    assert out.get(SCOPE_CHECK)["verdict"] is None


@pytest.mark.parametrize("text, entity", [
    ("10023", {"entity": "order_number", "start": 0, "end": 5, "value": "10023"}),
    ("anna@example.com", {"entity": "email", "start": 0, "end": 16, "value": "anna@example.com"}),
])
def test_slot_answers_with_entities_are_never_overridden(detector, text, entity):
    # a bare answer inside a form may look far from every example; its entity keeps the intent
    message = _classified(text, NOWHERE, predicted="inform")
    message.set(ENTITIES, [entity])
    assert _intent(detector, message)[0] == "inform"


def test_unknown_entity_does_not_protect_gibberish(detector):
    message = _classified("asdfgh", GREETING, predicted="inform")
    message.set(ENTITIES, [{"entity": "product", "start": 0, "end": 6, "value": "asdfgh"}])
    assert _intent(detector, message)[0] == "nlu_fallback"


def test_payloads_and_messages_without_text_are_left_alone(detector):
    for message in (_classified("/affirm", NOWHERE), Message({TEXT: ""}), Message({})):
        before = message.get(INTENT)
        [out] = detector.process([message])
        assert out.get(INTENT) == before
        assert out.get(SCOPE_CHECK) is None


def test_untrained_detector_changes_nothing(model_storage, execution_context):
    from rasa.engine.storage.resource import Resource

    detector = OutOfScopeDetector.load({}, model_storage, Resource("missing"), execution_context)
    assert _intent(detector, _classified("asdfghjkl", GREETING))[0] == "affirm"


def test_bad_config_is_refused():
    with pytest.raises(InvalidConfigException, match="min_similarity"):
        OutOfScopeDetector.validate_config({"min_similarity": 3})
    with pytest.raises(InvalidConfigException, match="k"):
        OutOfScopeDetector.validate_config({"k": 0})
