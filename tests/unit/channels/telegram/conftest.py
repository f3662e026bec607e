"""Fixtures of the Telegram channel tests: connections and name look-ups outside loopback fail the test, each
test runs in its own working and temp directory and checks that nothing was written outside its upload
store, the Bot API stub, and the channel started in a Sanic app."""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Tuple

import aiohttp
import pytest

from channels.telegram import ENV_VARS, MultimodalTelegramInput
from media import AttachmentStore
from tests.unit.channels import Recorder, guard_network, isolate_files, serve_channel
from tests.unit.channels.telegram import SECRET, TOKEN, Harness
from tests.unit.channels.telegram.bot_api_stub import BotApiStub


@pytest.fixture(autouse=True)
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Loopback-only network, a private working directory and temp directory; afterwards nothing may have
    been written outside the upload store."""
    guard_network(monkeypatch)
    check_nothing_written_outside_the_store = isolate_files(tmp_path, monkeypatch)
    for variable in ENV_VARS.values():
        monkeypatch.delenv(variable, raising=False)
    yield
    check_nothing_written_outside_the_store()


@pytest.fixture
def store(tmp_path: Path) -> AttachmentStore:
    return AttachmentStore(tmp_path / "uploads")


@pytest.fixture
async def bot_api():
    stub = BotApiStub()
    await stub.start()
    yield stub
    await stub.stop()


@pytest.fixture
async def make_harness(bot_api: BotApiStub, store: AttachmentStore):
    """Start the channel (keyword arguments go to MultimodalTelegramInput) in a Sanic app."""
    started: List[Tuple[Any, aiohttp.ClientSession]] = []

    async def make(**kwargs: Any) -> Harness:
        settings = {"secret_token": SECRET, "api_url": bot_api.url, "store": store, **kwargs}
        verify = settings.pop("verify", None)
        webhook_url = settings.pop("webhook_url", None)
        channel = MultimodalTelegramInput(TOKEN, verify, webhook_url, **settings)
        recorder = Recorder()
        app = await serve_channel(channel, recorder)
        session = aiohttp.ClientSession()
        started.append((app, session))
        return Harness(bot_api, channel, recorder, app.url, session)

    yield make
    for app, session in started:
        await session.close()
        await app.stop()


@pytest.fixture
async def harness(make_harness) -> Harness:
    return await make_harness()

