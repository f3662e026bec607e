"""Clause splitting (components.multirequest.clauses) and the ClauseSplitter on real Rasa messages."""
from __future__ import annotations

from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.keys import CLAUSE_OF
from components.clause_splitter import MESSAGE_ID, ClauseSplitter, clause_messages
from components.multirequest.clauses import split_clauses, word_count


def texts(text: str, **kwargs) -> List[str]:
    return [clause.text for clause in split_clauses(text, **kwargs)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("where is order 10023 and cancel 10031", ["where is order 10023", "cancel 10031"]),
        (
            "where is order 10023 and can you also cancel 10027",
            ["where is order 10023", "can you also cancel 10027"],
        ),
        (
            "Where is my order? I also want to cancel 10027.",
            ["Where is my order", "I also want to cancel 10027"],
        ),
        ("track 10023; then refund 10024", ["track 10023", "refund 10024"]),
        ("track order 10023, and then cancel it", ["track order 10023", "cancel it"]),
        ("cancel order 10021 after that track 10023", ["cancel order 10021", "track 10023"]),
        ("我的订单10023在哪里？还有取消订单10027", ["我的订单10023在哪里", "取消订单10027"]),
    ],
)
def test_two_requests_are_two_clauses(text: str, expected: List[str]) -> None:
    assert texts(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "bread and butter",
        "salt and vinegar crisps",
        "cancel and refund order 10023",  # one request: "cancel" alone is no clause
        "cancel order 45172 and 45173 and 45174",  # one request for three orders (folding counts them)
        "where is my order",
        "my email is anna.berg@example.com",  # a dot inside a word is no sentence end
        "I want 4.50 back",
        "and then",
        "hi",
    ],
)
def test_single_requests_stay_whole(text: str) -> None:
    assert texts(text) == [text]


def test_offsets_index_the_original_text() -> None:
    text = "  where is order 10023 ,and   cancel 10031 . "
    clauses = split_clauses(text)
    assert [text[c.start : c.end] for c in clauses] == [c.text for c in clauses]
    assert [c.text for c in clauses] == ["where is order 10023", "cancel 10031"]


def test_too_many_clauses_leave_the_message_whole() -> None:
    text = "track 10021. track 10022. track 10023. track 10024. track 10025."
    assert len(texts(text, max_clauses=5)) == 5
    assert texts(text, max_clauses=4) == [text.strip()]


def test_min_words_decides_what_a_clause_is() -> None:
    assert texts("bread and butter", min_words=1) == ["bread", "butter"]
    crisps = "do you sell salt and vinegar crisps"
    assert texts(crisps, min_words=3) == [crisps]


def test_blank_text_has_no_clauses() -> None:
    assert split_clauses("   ") == []
    assert word_count("取消订单") == 2 and word_count("order 10023!") == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list("ab1 .?;,和还有") + [" and ", " then "]), max_size=30).map("".join))
def test_clauses_are_ordered_disjoint_slices(text: str) -> None:
    clauses = split_clauses(text)
    for clause in clauses:
        assert text[clause.start : clause.end] == clause.text and clause.text.strip() == clause.text
    assert all(a.end <= b.start for a, b in zip(clauses, clauses[1:]))
    assert len(clauses) <= 4


# ------------------------------------------------------------------------------------------------ component


def user_message(text: str, message_id: str = "m-1") -> Message:
    return Message(data={TEXT: text, MESSAGE_ID: message_id})


def test_component_appends_one_message_per_clause_after_the_batch() -> None:
    splitter = ClauseSplitter(ClauseSplitter.get_default_config())
    first, second = user_message("where is order 10023 and cancel 10031"), user_message("hi", "m-2")
    batch = splitter.process([first, second])
    assert batch[:2] == [first, second]
    assert [m.get(TEXT) for m in batch[2:]] == ["where is order 10023", "cancel 10031"]
    assert [m.get(CLAUSE_OF) for m in batch[2:]] == [
        {"parent": "m-1", "start": 0, "end": 20},
        {"parent": "m-1", "start": 25, "end": 37},
    ]
    assert first.get(TEXT) == "where is order 10023 and cancel 10031"


@pytest.mark.parametrize(
    "message",
    [
        Message(data={TEXT: "where is order 10023 and cancel 10031"}),  # no id: not a user message
        user_message('/track_order{"order_number": "10023"} and more'),
        user_message(""),
        Message(data={TEXT: "track 10023 and cancel 10031", MESSAGE_ID: "x", CLAUSE_OF: {"parent": "y"}}),
    ],
)
def test_component_leaves_other_messages_alone(message: Message) -> None:
    assert clause_messages(message, 2, 4) == []


def test_training_data_is_unchanged() -> None:
    example = Message(data={TEXT: "where is order 10023 and cancel 10031", "intent": "track_order"})
    data = TrainingData([example])
    splitter = ClauseSplitter({})
    assert splitter.process_training_data(data).training_examples == data.training_examples


@pytest.mark.parametrize(
    "config", [{"min_words": 0}, {"max_clauses": 1}, {"min_word": 2}, {"min_words": "2"}]
)
def test_bad_config_is_refused(config) -> None:
    with pytest.raises(InvalidConfigException):
        ClauseSplitter(config)
