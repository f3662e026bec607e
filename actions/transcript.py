"""What a support ticket carries from the conversation: the transcript and the customer's sentiment trail.

Both are read from the tracker's events, so the colleague who takes over sees what was said (with a
placeholder such as ``"[image]"`` for a message without text) and how the customer felt along the way.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker

from assistant.keys import ATTACHMENTS, METADATA, SENTIMENT

#: Transcript limits for support tickets: newest turns kept, characters kept per message.
TRANSCRIPT_MAX_TURNS = 100
TRANSCRIPT_MAX_CHARS = 2000


def conversation_transcript(
    tracker: Tracker, max_turns: int = TRANSCRIPT_MAX_TURNS, max_chars: int = TRANSCRIPT_MAX_CHARS
) -> List[Dict[str, Any]]:
    """Build the transcript stored with a support ticket.

    Args:
        tracker: The conversation.
        max_turns: Only the newest this many messages are kept.
        max_chars: Each message text is cut to this many characters (the last one an ellipsis).

    Returns:
        One dict per message, oldest first: ``{"role": "user" | "bot", "text": str, "timestamp": str | None,
        "intent": str | None}``; ``timestamp`` is ISO 8601 in UTC, ``intent`` is set for user messages only.
        Messages without text (e.g. a photo) get a short placeholder such as ``"[image]"``.
    """
    turns: List[Dict[str, Any]] = []
    for event in tracker.events or []:
        kind = event.get("event")
        if kind not in ("user", "bot"):
            continue
        text = event.get("text")
        if not isinstance(text, str) or not text.strip():
            text = _attachment_placeholder(event)
        if len(text) > max_chars:
            text = text[: max_chars - 1] + "…"
        intent = None
        if kind == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        turns.append(
            {
                "role": "user" if kind == "user" else "bot",
                "text": text,
                "timestamp": _iso_timestamp(event.get("timestamp")),
                "intent": intent,
            }
        )
    return turns[-max_turns:]


def sentiment_trail(tracker: Tracker) -> List[str]:
    """Return the sentiment label of each user message that has one, oldest first.

    The NLU pipeline adds the sentiment to the parse result; ``{"label": "negative", ...}``,
    ``{"name": "negative", ...}`` and a plain ``"negative"`` are understood. Messages without a sentiment are
    skipped.
    """
    trail: List[str] = []
    for event in tracker.events or []:
        if event.get("event") != "user":
            continue
        sentiment = (event.get("parse_data") or {}).get(SENTIMENT)
        if isinstance(sentiment, dict):
            sentiment = sentiment.get("name") or sentiment.get("label")
        if isinstance(sentiment, str) and sentiment:
            trail.append(sentiment)
    return trail


def _attachment_placeholder(event: Dict[str, Any]) -> str:
    """``"[image]"``, ``"[audio, image]"``, ... for a message with attachments; empty otherwise."""
    metadata = event.get(METADATA) or {}
    attachments = metadata.get(ATTACHMENTS) if isinstance(metadata, dict) else None
    if isinstance(attachments, list) and attachments:
        kinds = sorted({str(item.get("type", "file")) for item in attachments if isinstance(item, dict)})
        return "[" + ", ".join(kinds or ["file"]) + "]"
    return ""


def _iso_timestamp(value: Any) -> Optional[str]:
    """An event's Unix timestamp (seconds) as ISO 8601 UTC, e.g. ``"2023-11-14T22:13:20+00:00"``."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc).isoformat(timespec="seconds")
    return None
