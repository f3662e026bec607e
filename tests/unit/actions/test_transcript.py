"""Unit tests of `actions.transcript`: the transcript and the sentiment trail a support ticket carries."""

from __future__ import annotations

from actions.transcript import TRANSCRIPT_MAX_CHARS, conversation_transcript, sentiment_trail
from tests.unit.actions.harness import make_tracker


def test_transcript_has_roles_intents_timestamps_and_is_capped() -> None:
    events = [
        {"event": "action", "name": "action_listen"},
        {
            "event": "user",
            "text": "hi",
            "timestamp": 1_700_000_000.0,
            "parse_data": {"intent": {"name": "greet"}},
        },
        {"event": "bot", "text": "Hello!", "timestamp": 1_700_000_001.0},
        {"event": "user", "text": "y" * 5000, "timestamp": 1_700_000_002.0, "parse_data": {"intent": {}}},
        {
            "event": "user",
            "text": "",
            "timestamp": 1_700_000_003.0,
            "metadata": {"attachments": [{"type": "image", "id": "ab" * 32}]},
            "parse_data": {"intent": {"name": "product_info"}},
        },
    ]
    transcript = conversation_transcript(make_tracker(events=events))
    assert [turn["role"] for turn in transcript] == ["user", "bot", "user", "user"]
    assert transcript[0] == {
        "role": "user",
        "text": "hi",
        "timestamp": "2023-11-14T22:13:20+00:00",
        "intent": "greet",
    }
    assert transcript[1]["intent"] is None
    assert len(transcript[2]["text"]) == TRANSCRIPT_MAX_CHARS and transcript[2]["text"].endswith("…")
    assert transcript[3]["text"] == "[image]"
    assert len(conversation_transcript(make_tracker(events=events), max_turns=2)) == 2


def test_messages_with_several_attachments_or_none_at_all() -> None:
    events = [
        {
            "event": "user",
            "metadata": {"attachments": [{"type": "image"}, {"type": "audio"}, {"type": "image"}]},
        },
        {"event": "user", "metadata": {"attachments": ["junk"]}},
        {"event": "bot", "text": None},
    ]
    texts = [turn["text"] for turn in conversation_transcript(make_tracker(events=events))]
    assert texts == ["[audio, image]", "[file]", ""]


def test_sentiment_trail_reads_dicts_and_strings() -> None:
    events = [
        {"event": "user", "text": "a", "parse_data": {"sentiment": {"name": "neutral", "confidence": 0.8}}},
        {"event": "user", "text": "b", "parse_data": {"sentiment": "negative"}},
        {"event": "user", "text": "c", "parse_data": {}},
        {"event": "user", "text": "d", "parse_data": {"sentiment": {"label": "positive", "confidence": 0.7}}},
        {"event": "bot", "text": "e", "parse_data": {"sentiment": "negative"}},
    ]
    assert sentiment_trail(make_tracker(events=events)) == ["neutral", "negative", "positive"]
