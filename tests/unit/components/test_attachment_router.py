"""AttachmentRouter: intents for text-less messages."""
import pytest
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from components.attachment_router import AttachmentRouter


def _classified(text, **extra):
    message = Message({TEXT: text, **extra})
    message.set(INTENT, {"name": "greet", "confidence": 0.6}, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [{"name": "greet", "confidence": 0.6}], add_to_output=True)
    return message


@pytest.mark.parametrize(
    "text, extra, expected",
    [
        ("", {"image_labels": [[{"label": "banana", "confidence": 0.9}]]}, "send_image"),
        ("  ", {"attachment_problems": [{"type": "image", "code": "damaged", "message": "m"}]}, "attachment_problem"),
        ("", {}, "empty_message"),
        ("hello", {"image_labels": [[{"label": "banana", "confidence": 0.9}]]}, "greet"),
        ("hello", {"attachment_problems": [{"type": "audio", "code": "no_speech", "message": "m"}]}, "greet"),
    ],
)
def test_routing(text, extra, expected):
    [message] = AttachmentRouter().process([_classified(text, **extra)])
    assert message.get(INTENT)["name"] == expected
    assert message.get(INTENT_RANKING_KEY)[0]["name"] == expected
    assert [r["name"] for r in message.get(INTENT_RANKING_KEY)].count(expected) == 1


def test_problem_is_exposed_in_parse_result():
    problem = {"type": "audio", "code": "no_speech", "message": "I couldn't hear anything, could you type it?"}
    [message] = AttachmentRouter().process([_classified("", attachment_problems=[problem])])
    output = message.as_dict(only_output_properties=True)
    assert output["attachment_problem"] == problem
    assert output[INTENT]["confidence"] == 1.0


@pytest.mark.parametrize("text_intent, expected", [("nlu_fallback", "send_image"), ("out_of_scope", "send_image"),
                                                   ("product_price", "product_price")])
def test_a_photo_with_an_unclear_caption_is_routed_as_a_photo(text_intent, expected):
    """ "what is this?" with a photo: the caption alone says nothing, the photo is the request."""
    message = Message({TEXT: "what is this?", "image_labels": [[{"label": "banana", "confidence": 0.9}]]})
    message.set(INTENT, {"name": text_intent, "confidence": 0.4}, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [{"name": text_intent, "confidence": 0.4}], add_to_output=True)
    [routed] = AttachmentRouter().process([message])
    assert routed.get(INTENT)["name"] == expected


def test_an_unclear_text_without_a_photo_keeps_its_fallback():
    message = Message({TEXT: "asdfghjkl"})
    message.set(INTENT, {"name": "nlu_fallback", "confidence": 0.3}, add_to_output=True)
    [routed] = AttachmentRouter().process([message])
    assert routed.get(INTENT)["name"] == "nlu_fallback"
