"""Tests for `channels.worker_pool`: the NLU graph off the event loop, in bounded lanes with a deadline.

The processor is Rasa's own `MessageProcessor` (wrapped by `install_worker_pool`) with a fake graph runner
whose parse blocks until the test releases it, so "still being parsed" is a fact, not a race.
"""
from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace
from typing import Dict, List, Optional

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.processor import MessageProcessor
from rasa.shared.core.domain import Domain
from rasa.shared.nlu.training_data.message import Message

from assistant.keys import ATTACHMENTS, INTENT_SERVER_BUSY
from channels import worker_pool
from channels.worker_pool import (
    BoundedPool,
    LaneSettings,
    PoolBusy,
    WorkerPoolSettings,
    install_worker_pool,
    installed_pools,
    uninstall_worker_pool,
)

PHOTO = [{"type": "image", "id": "a" * 64, "mime_type": "image/png", "size": 76_000, "name": "x.png"}]


class FakeGraph:
    """A graph runner whose parse of a text listed in `blocked` waits until `release(text)`."""

    def __init__(self) -> None:
        self.blocked: Dict[str, threading.Event] = {}
        self.started: Dict[str, threading.Event] = {}
        self.threads: List[str] = []
        self.sleep_s = 0.0

    def block(self, text: str) -> None:
        self.blocked[text] = threading.Event()
        self.started[text] = threading.Event()

    def release(self, text: str) -> None:
        self.blocked[text].set()

    def run(self, inputs, targets):
        message = inputs["__message__"][0]
        self.threads.append(threading.current_thread().name)
        if message.text in self.blocked:
            self.started[message.text].set()
            assert self.blocked[message.text].wait(10), "the test never released the parse"
        if self.sleep_s:
            time.sleep(self.sleep_s)
        parsed = Message(data={"text": message.text, "intent": {"name": "greet", "confidence": 0.9},
                               "entities": []}, output_properties={"intent", "entities"})
        return {"nlu": [parsed]}


def make_processor(graph: FakeGraph, http_interpreter=None) -> MessageProcessor:
    processor = MessageProcessor.__new__(MessageProcessor)  # the real class, without loading a model
    processor.graph_runner = graph
    processor.model_metadata = SimpleNamespace(nlu_target="nlu")
    processor.http_interpreter = http_interpreter
    processor.domain = Domain.empty()
    return processor


def message(text: str, sender: str, metadata: Optional[dict] = None) -> UserMessage:
    return UserMessage(text, CollectingOutputChannel(), sender, metadata=metadata)


@pytest.fixture
def install(no_worker_pool):
    """Installs the pool with the given settings (none installed before: a pool left by anything else would
    be returned instead); uninstalled after the test."""

    def _install(text=LaneSettings(2, 4, 5.0), media=LaneSettings(1, 0, 5.0)):
        return install_worker_pool(WorkerPoolSettings(text=text, media=media))

    yield _install
    uninstall_worker_pool()


async def _wait_started(graph: FakeGraph, text: str) -> None:
    for _ in range(500):
        if graph.started[text].is_set():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the parse of {text!r} never started")


def test_a_text_turn_is_answered_while_another_senders_photo_is_still_parsed(install):
    install()
    graph = FakeGraph()
    graph.block("my photo")
    processor = make_processor(graph)

    async def scenario():
        photo = asyncio.create_task(processor.parse_message(message("my photo", "web:a", {ATTACHMENTS: PHOTO})))
        await _wait_started(graph, "my photo")
        text = await asyncio.wait_for(processor.parse_message(message("hello", "web:b")), timeout=5)
        assert not photo.done()  # the first sender's message is still being parsed ...
        graph.release("my photo")
        return text, await photo

    text, photo = asyncio.run(scenario())
    assert text["intent"]["name"] == "greet" and photo["intent"]["name"] == "greet"
    assert all(name.startswith("parse-") for name in graph.threads)  # never on the event loop's thread


def test_the_event_loop_keeps_running_while_a_parse_blocks(install):
    install()
    graph = FakeGraph()
    graph.block("slow")
    processor = make_processor(graph)

    async def scenario():
        slow = asyncio.create_task(processor.parse_message(message("slow", "web:a")))
        await _wait_started(graph, "slow")
        ticks = 0
        for _ in range(10):
            await asyncio.sleep(0.01)
            ticks += 1
        graph.release("slow")
        await slow
        return ticks

    assert asyncio.run(scenario()) == 10


def test_a_full_lane_answers_server_busy_and_the_other_lane_still_works(install, caplog):
    install(media=LaneSettings(workers=1, queue=0, deadline_s=5.0))
    graph = FakeGraph()
    graph.block("photo 1")
    processor = make_processor(graph)

    async def scenario():
        first = asyncio.create_task(processor.parse_message(message("photo 1", "web:a", {ATTACHMENTS: PHOTO})))
        await _wait_started(graph, "photo 1")
        second = await processor.parse_message(message("photo 2", "web:b", {ATTACHMENTS: PHOTO}))
        text = await processor.parse_message(message("hi", "web:c"))
        graph.release("photo 1")
        return await first, second, text

    with caplog.at_level("WARNING", logger="channels.worker_pool"):
        first, second, text = asyncio.run(scenario())
    assert first["intent"]["name"] == "greet"
    assert second["intent"] == {"name": INTENT_SERVER_BUSY, "confidence": 1.0}
    assert second["text"] == "photo 2" and second["entities"] == []
    assert text["intent"]["name"] == "greet"
    assert "media lane is full" in caplog.text


def test_past_the_deadline_the_answer_is_server_busy_and_the_worker_stays_counted(install):
    pools = install(text=LaneSettings(workers=1, queue=1, deadline_s=0.2))
    graph = FakeGraph()
    graph.block("stuck")
    processor = make_processor(graph)

    async def scenario():
        started = time.monotonic()
        result = await processor.parse_message(message("stuck", "web:a"))
        waited = time.monotonic() - started
        assert pools.text.admitted == 1  # still running in its thread: the lane stays bounded
        graph.release("stuck")
        for _ in range(200):
            if pools.text.admitted == 0:
                break
            await asyncio.sleep(0.01)
        return result, waited

    result, waited = asyncio.run(scenario())
    assert result["intent"]["name"] == INTENT_SERVER_BUSY
    assert 0.15 < waited < 2.0
    assert pools.text.admitted == 0


def test_a_parse_still_queued_at_its_deadline_never_runs():
    pool = BoundedPool("text", LaneSettings(workers=1, queue=1, deadline_s=0.2))
    gate = threading.Event()
    ran = []

    async def scenario():
        running = asyncio.create_task(pool.run(lambda: gate.wait(5)))
        await asyncio.sleep(0.05)
        with pytest.raises(PoolBusy) as raised:
            await pool.run(lambda: ran.append("queued"))
        gate.set()
        await asyncio.gather(running, return_exceptions=True)
        return raised.value

    busy = asyncio.run(scenario())
    time.sleep(0.1)
    assert busy.reason == "deadline" and ran == []
    assert pool.admitted == 0
    pool.shutdown()


def test_errors_of_the_graph_propagate_and_free_the_slot():
    pool = BoundedPool("text", LaneSettings(workers=1, queue=0, deadline_s=5.0))

    def broken():
        raise RuntimeError("graph failed")

    with pytest.raises(RuntimeError, match="graph failed"):
        asyncio.run(pool.run(broken))
    assert pool.admitted == 0
    pool.shutdown()


def test_the_external_nlu_server_branch_is_left_alone(install):
    install()

    class Interpreter:
        async def parse(self, msg):
            return {"text": msg.text, "intent": {"name": "from_http", "confidence": 1.0}, "entities": []}

    processor = make_processor(FakeGraph(), http_interpreter=Interpreter())
    result = asyncio.run(processor.parse_message(message("hi", "web:a")))
    assert result["intent"]["name"] == "from_http"


def test_the_pooled_parse_gives_what_rasa_gives(install):
    graph = FakeGraph()
    processor = make_processor(graph)
    plain = asyncio.run(processor.parse_message(message("hello there", "web:a")))
    install()
    pooled = asyncio.run(processor.parse_message(message("hello there", "web:a")))
    assert pooled == plain


def test_install_is_idempotent_and_uninstall_restores_rasa(install):
    original = MessageProcessor.parse_message
    pools = install()
    assert MessageProcessor.parse_message is not original
    assert install_worker_pool() is pools and installed_pools() is pools
    uninstall_worker_pool()
    assert MessageProcessor.parse_message is original and installed_pools() is None


def test_settings_come_from_the_environment_with_defaults_for_two_cores():
    default = WorkerPoolSettings.from_env({})
    assert default.text == LaneSettings(2, 30, 10.0)
    assert default.media == LaneSettings(1, 4, 45.0)
    custom = WorkerPoolSettings.from_env({"NLU_WORKERS": "4", "NLU_MEDIA_QUEUE": "0", "NLU_DEADLINE_S": "2.5"})
    assert custom.text == LaneSettings(4, 30, 2.5) and custom.media == LaneSettings(1, 0, 45.0)


@pytest.mark.parametrize("name, value", [("NLU_WORKERS", "0"), ("NLU_MEDIA_WORKERS", "two"),
                                         ("NLU_QUEUE", "-1"), ("NLU_MEDIA_DEADLINE_S", "0"),
                                         ("NLU_DEADLINE_S", "inf")])
def test_malformed_settings_are_refused_by_name(name, value):
    with pytest.raises(ValueError, match=name):
        WorkerPoolSettings.from_env({name: value})


def test_the_busy_answer_is_the_contract_intent():
    result = worker_pool.busy_parse_data(message("where is my order", "web:a"))
    assert result["intent"]["name"] == INTENT_SERVER_BUSY == "server_busy"
    assert result["intent_ranking"][0]["name"] == INTENT_SERVER_BUSY
