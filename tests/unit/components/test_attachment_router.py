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
