"""TextSanitizer: normalisation, bounds and train/inference symmetry."""
import pytest
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.keys import TEXT_TRUNCATED
from assistant.configuration import defaults_of
from components.text_sanitizer import SanitizerConfig, TextSanitizer, sanitize_text


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("where is my order\x00 10023", "where is my order 10023"),
        ("ban\u200bana\u200d price", "ban ana price"),
        ("  lots   of\n\n space\t", "lots of space"),
        ("ｏｒｄｅｒ １００２３", "order 10023"),
        ("😡😡😡", "😡😡😡"),
        ("", ""),
        ("\u200b\u200b", ""),
        ("مرحبا 你好", "مرحبا 你好"),
    ],
)
def test_sanitize_text(raw, expected):
    assert sanitize_text(raw, 1000) == (expected, False)


def test_long_text_is_cut_at_a_word_boundary():
    text = "word " * 3000
    clean, truncated = sanitize_text(text, 100)
    assert truncated and len(clean) <= 100 and clean.endswith("word")


def test_one_long_token_is_cut_hard():
    clean, truncated = sanitize_text("a" * 10_000, 1000)
    assert truncated and clean == "a" * 1000


def test_process_marks_truncation_in_output():
    component = TextSanitizer({"max_chars": 50})
    message = Message({TEXT: "hello " * 100})
    component.process([message])
    assert len(message.get(TEXT)) <= 50
    assert message.as_dict(only_output_properties=True)[TEXT_TRUNCATED] is True


def test_training_and_inference_agree():
    component = TextSanitizer(TextSanitizer.get_default_config())
    raw = "Wh\u200bere\x00 is  ｍｙ order"
    training = TrainingData([Message({TEXT: raw, "intent": "track_order"})])
    component.process_training_data(training)
    [message] = component.process([Message({TEXT: raw})])
    assert training.training_examples[0].get(TEXT) == message.get(TEXT) == "Wh ere is my order"


@pytest.mark.parametrize("raw", ["", "   ", "\u200b\u200d", "\x00\n\t"])
def test_blank_text_becomes_the_empty_string(raw):
    component = TextSanitizer(TextSanitizer.get_default_config())
    [message] = component.process([Message({TEXT: raw})])
    assert message.get(TEXT) == ""


def test_user_message_without_text_gets_the_empty_string():
    component = TextSanitizer(TextSanitizer.get_default_config())
    message = Message({"metadata": {"attachments": []}})
    component.process([message])
    assert message.get(TEXT) == ""


def test_training_examples_without_text_stay_without_text():
    component = TextSanitizer(TextSanitizer.get_default_config())
    training = TrainingData([Message({"intent": "greet"})])
    component.process_training_data(training)
    assert training.training_examples[0].get(TEXT) is None


@pytest.mark.parametrize("value", [0, 5, -1, "100", None, True, 10**7])
def test_invalid_config_names_the_key(value):
    with pytest.raises(InvalidConfigException, match="max_chars"):
        TextSanitizer({"max_chars": value})


def test_invalid_config_says_what_is_valid():
    with pytest.raises(InvalidConfigException) as error:
        TextSanitizer({"max_chars": 5})
    assert str(error.value) == (
        "TextSanitizer: `max_chars` must be a whole number of characters from 16 to 100000, got 5."
    )


def test_default_config_is_the_config_model_and_unknown_keys_are_refused():
    assert TextSanitizer.get_default_config() == defaults_of(SanitizerConfig)
    assert TextSanitizer({})._max_chars == 1000
    unknown = "unknown config key.*'max_char'.*valid keys are max_chars"
    with pytest.raises(InvalidConfigException, match=unknown):
        TextSanitizer({"max_char": 100})
