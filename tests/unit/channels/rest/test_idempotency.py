"""The REST channel's ``message_id``: a retry is answered with the first reply and never handled twice; a
store outage is a friendly 503 that saves nothing; ``/ready`` tells a load balancer whether to send customers."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from channels.common import TROUBLE_REPLY
from tests.unit.channels import Recorder, serve_channel
from tests.unit.channels.rest import FakeBot, error_of, make_channel, serve


async def test_a_retry_with_the_same_message_id_gets_the_first_reply_and_is_not_handled_again(store):
    async with serve(make_channel(store)) as served:
        sender = await served.new_sender()
        first = await served.post_json({"sender": sender, "message": "hi", "message_id": "m-1"})
        again = await served.post_json({"sender": sender, "message": "hi", "message_id": "m-1"})
        assert first.status == again.status == 200
        assert await first.json() == await again.json()
        assert len(served.bot.messages) == 1
        assert served.bot.last.message_id == "m-1"  # what the tracker's user event will carry
        other = await served.post_json({"sender": sender, "message": "hi", "message_id": "m-2"})
        assert other.status == 200 and len(served.bot.messages) == 2


async def test_the_same_message_id_in_another_conversation_is_another_message(store):
    async with serve(make_channel(store)) as served:
        for _ in range(2):
            sender = await served.new_sender()
            resp = await served.post_json({"sender": sender, "message": "hi", "message_id": "m-1"})
            assert resp.status == 200
        assert len(served.bot.messages) == 2


async def test_messages_without_an_id_are_each_handled(store):
    async with serve(make_channel(store)) as served:
        sender = await served.new_sender()
        for _ in range(2):
            assert (await served.post_json({"sender": sender, "message": "hi"})).status == 200
        assert len(served.bot.messages) == 2


async def test_a_malformed_message_id_is_refused_before_the_bot(store):
    async with serve(make_channel(store)) as served:
        sender = await served.new_sender()
        for bad in ("x" * 65, "has space", "semi;colon", 5, ["m"]):
            resp = await served.post_json({"sender": sender, "message": "hi", "message_id": bad})
            assert resp.status == 400
            assert (await error_of(resp))["code"] == "invalid_message_id"
        assert served.bot.messages == []


class OutageBot(FakeBot):
    """The tracker store is down for the first ``outages`` messages."""

    def __init__(self, outages: int) -> None:
        super().__init__()
        self.outages = outages

    async def __call__(self, message):
        if self.outages > 0:
            self.outages -= 1
            self.messages.append(message)
            raise sa.exc.OperationalError("SELECT", {}, ConnectionRefusedError("connection refused"))
        await super().__call__(message)


async def test_a_store_outage_is_a_friendly_503_and_the_retry_is_handled(store):
    bot = OutageBot(outages=1)
    async with serve(make_channel(store), bot) as served:
        sender = await served.new_sender()
        resp = await served.post_json({"sender": sender, "message": "hi", "message_id": "m-1"})
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "60"
        error = await error_of(resp)
        assert (error["code"], error["message"]) == ("store_unavailable", TROUBLE_REPLY)
        retry = await served.post_json({"sender": sender, "message": "hi", "message_id": "m-1"})
        assert retry.status == 200  # the failed attempt was not stored as the answer
        assert "you said 'hi'" in (await retry.json())[0]["text"]


async def test_a_bug_is_still_a_500_not_the_outage_message(store):
    bot = FakeBot()
    bot.fail = True
    async with serve(make_channel(store), bot) as served:
        sender = await served.new_sender()
        resp = await served.post_json({"sender": sender, "message": "hi", "message_id": "m-1"})
        assert resp.status == 500
        assert (await error_of(resp))["code"] == "internal_error"


class Store:
    def __init__(self, up: bool) -> None:
        self.up = up

    async def ping(self) -> None:
        if not self.up:
            raise ConnectionError("down")


class Agent:
    def __init__(self, ready: bool, tracker_up: bool = True, lock_up: bool = True) -> None:
        self.ready = ready
        self.tracker_store, self.lock_store = Store(tracker_up), Store(lock_up)

    def is_ready(self) -> bool:
        return self.ready


async def test_ready_only_with_a_model_and_stores_that_answer(store):
    import aiohttp

    running = await serve_channel(make_channel(store), Recorder())
    try:
        async with aiohttp.ClientSession() as http:
            async def status() -> tuple:
                resp = await http.get(running.url + "/ready")
                return resp.status, (await resp.json())["status"]

            assert await status() == (503, "loading")  # no agent yet
            app = running.server.app
            app.ctx.agent = Agent(ready=False)
            assert await status() == (503, "loading")
            app.ctx.agent = Agent(ready=True)
            assert await status() == (200, "ready")
            app.ctx.agent = Agent(ready=True, tracker_up=False)
            assert await status() == (503, "unavailable")
            app.ctx.agent = Agent(ready=True, lock_up=False)
            assert await status() == (503, "unavailable")
            live = await http.get(running.url + "/")
            assert live.status == 200  # liveness does not depend on the stores
    finally:
        await running.stop()


class ReadOnlyAfterReplyBot(FakeBot):
    """Replies, then the tracker store refuses the write (a read-only node after a fail-over)."""

    async def __call__(self, message):
        await super().__call__(message)
        raise sa.exc.InternalError("INSERT", {}, Exception("cannot execute INSERT in a read-only transaction"))


async def test_a_turn_whose_save_failed_is_not_answered_as_if_it_had_worked(store):
    """A reply the tracker store could not keep is not sent as a 200 (found by the attacker trial: the
    verification was silently lost)."""
    async with serve(make_channel(store), ReadOnlyAfterReplyBot()) as served:
        sender = await served.new_sender()
        resp = await served.post_json({"sender": sender, "message": "hi", "message_id": "m-1"})
        assert resp.status == 503
        assert (await error_of(resp))["code"] == "store_unavailable"


class SlowActionBot(FakeBot):
    """Counts a side effect (an order change at the action server) half-way through a slow turn."""

    def __init__(self) -> None:
        super().__init__()
        self.side_effects = 0

    async def __call__(self, message):
        import asyncio

        await asyncio.sleep(0.3)
        self.side_effects += 1  # the action server changed something
        await asyncio.sleep(0.3)  # ... and Rasa is still saving the turn
        await super().__call__(message)


async def test_a_client_hanging_up_cannot_cut_a_turn_in_half_and_the_retry_gets_its_reply(store):
    """Found by the attacker trial: the client closed the connection after the refund was made but before the
    turn was saved; the retry with the same message_id made a second refund."""
    import asyncio
    import json

    import aiohttp

    bot = SlowActionBot()
    async with serve(make_channel(store), bot) as served:
        sender = await served.new_sender()
        body = json.dumps({"sender": sender, "message": "yes", "message_id": "m-yes"})
        with pytest.raises(asyncio.TimeoutError):
            async with aiohttp.ClientSession() as impatient:  # hangs up after 0.45 s
                await impatient.post(served.base + "webhook", data=body, headers={"Content-Type": "application/json"},
                                     timeout=aiohttp.ClientTimeout(total=0.45))
        retry = await served.post_json({"sender": sender, "message": "yes", "message_id": "m-yes"}, auth=False)
        assert retry.status == 200
        assert "you said 'yes'" in (await retry.json())[0]["text"]
        assert bot.side_effects == 1 and len(bot.messages) == 1
