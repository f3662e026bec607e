"""The worker pool with the real trained assistant: one customer's heavy photo does not hold up another's text.

The `agent` fixture installs the pool (`channels.worker_pool.install_worker_pool`, default settings) as the
run scripts and channels do. The photo is the heaviest the limits accept (`benchmarks.bench_abuse.heaviest_png`:
an RGBA PNG of ~140 KiB whose bitmap is just under `image_max_decoded_bytes`), so decoding it and running
EfficientNet takes the real graph a second or more. The agent's graph runner is wrapped only to record when
each message's parse finishes (the real graph runs inside); the test then compares the order of events, never
their times:

* with the pool, the second customer's "hi", sent once the photo's parse has started, is answered before that
  parse finishes (so before the photo's answer), and the photo still gets its answer;
* without the pool the photo's parse runs on the event loop: nothing else is read until it finishes, so the
  text turn cannot even begin until then and the test fails.
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Dict, List, Tuple

import pytest

from tests.integration.conftest import ROOT  # noqa: F401  (the project root on sys.path)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _stored_photo() -> Dict[str, Any]:
    """The heaviest accepted photo saved in the process's upload store; the metadata referencing it."""
    from benchmarks.bench_abuse import heaviest_png
    from media import default_store

    ref = default_store().save(heaviest_png(), name="heavy.png")
    return {"attachments": [ref.to_metadata()]}


def test_a_text_turn_is_answered_while_another_customers_heavy_photo_is_understood(agent, monkeypatch):
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

    from channels.worker_pool import installed_pools

    photo_sender, text_sender = f"photo-{time.time_ns()}", f"text-{time.time_ns()}"
    metadata = _stored_photo()
    events: List[Tuple[str, str]] = []  # (what, sender), in the order it happened
    lock = threading.Lock()
    runner = agent.processor.graph_runner
    real_run = runner.run

    def recording_run(inputs: Dict[str, Any], targets: List[str]) -> Any:
        if "__message__" not in inputs:  # the same runner predicts the next action: not a parse
            return real_run(inputs, targets)
        sender = inputs["__message__"][0].sender_id
        with lock:
            events.append(("parse started", sender))
        try:
            return real_run(inputs, targets)
        finally:
            with lock:
                events.append(("parse finished", sender))

    monkeypatch.setattr(runner, "run", recording_run)

    async def turn(text: str, sender: str, meta: Any = None) -> List[Dict[str, Any]]:
        output = CollectingOutputChannel()
        await agent.handle_message(UserMessage(text, output, sender, metadata=meta))
        with lock:
            events.append(("answered", sender))
        return output.messages

    async def scenario() -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
        photo = asyncio.create_task(turn("", photo_sender, metadata))
        for _ in range(6000):  # the photo's parse has begun (without the pool: it has already ended)
            if ("parse started", photo_sender) in events:
                break
            await asyncio.sleep(0.01)
        text_replies = await turn("hi", text_sender)
        return text_replies, await photo

    text_replies, photo_replies = asyncio.run(scenario())

    order = [event for event in events if event[1] in (photo_sender, text_sender)]
    assert order.index(("answered", text_sender)) < order.index(("parse finished", photo_sender)), (
        f"the text turn waited for the other customer's photo: {order} "
        f"(worker pool installed: {installed_pools() is not None})"
    )
    assert order.index(("answered", text_sender)) < order.index(("answered", photo_sender))
    assert any(reply.get("text") for reply in text_replies)
    assert any(reply.get("text") or reply.get("buttons") for reply in photo_replies), photo_replies
    busy = "busy right now"
    assert not any(busy in (reply.get("text") or "") for reply in text_replies + photo_replies)
