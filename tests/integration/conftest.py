"""Fixtures for tests that run the trained assistant: a seeded database, the action server and a loaded agent.

The trained model comes from `TEST_MODEL` (set by `make test` after it trained the small-epoch model) or is
trained here on first use with the same script.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def test_model() -> Path:
    """Path of the small-epoch trained model archive."""
    env = os.environ.get("TEST_MODEL")
    if env and Path(env).is_file():
        return Path(env)
    out = ROOT / "var" / "test-models"
    code = subprocess.call(
        [sys.executable, str(ROOT / "scripts" / "train_if_changed.py"), "--max-epochs",
         os.environ.get("TEST_MAX_EPOCHS", "40"), "--out", str(out), "--name", "test"],
        cwd=ROOT,
    )
    assert code == 0, "training the test model failed"
    return max(out.glob("test-*.tar.gz"), key=lambda p: p.stat().st_mtime)


@pytest.fixture(scope="session")
def bot_database_url(tmp_path_factory) -> str:
    """A seeded SQLite database file used by the action server of these tests."""
    from shop.db import make_engine
    from shop.seed import create_and_seed

    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'shop.db'}"
    engine = make_engine(url)
    create_and_seed(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def repository(bot_database_url):
    """A repository on the same database the action server uses (to check what actions wrote)."""
    from shop.db import make_engine, make_session_factory
    from shop.repository import ShopRepository

    return ShopRepository(make_session_factory(make_engine(bot_database_url)))


@pytest.fixture(scope="session")
def action_server_token() -> str:
    """The shared token the action server of these tests requires (Rasa sends it as ``?token=``)."""
    return secrets.token_urlsafe(32)


@pytest.fixture(scope="session")
def action_server(bot_database_url, action_server_token, tmp_path_factory) -> Iterator[str]:
    """The project's action server (`python -m actions.server`: 127.0.0.1, token required) on a free port;
    yields its webhook URL. Callers pass `action_server_token` along (`action_endpoint` does)."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("logs") / "actions.log").open("w")
    env = {**os.environ, "DATABASE_URL": bot_database_url, "ACTION_SERVER_TOKEN": action_server_token}
    env.pop("ACTIONS_HOST", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "actions.server", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"action server exited with {proc.returncode}; see {log.name}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("action server did not start within 120 s")
    yield f"http://127.0.0.1:{port}/webhook"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def action_endpoint(action_server, action_server_token):
    """Rasa's endpoint config for the action server, with its token (as endpoints.yml gives it)."""
    from rasa.utils.endpoints import EndpointConfig

    return EndpointConfig(action_server, token=action_server_token)


@pytest.fixture(scope="session")
def agent(test_model, action_endpoint):
    """The trained assistant, loaded in this process, talking to the action server.

    Message understanding runs in the bounded worker pool, as under `make serve`
    (`channels.worker_pool.install_worker_pool`, default settings).
    """
    from rasa.core.agent import Agent

    from runtime import rasa_speedups
    from channels.worker_pool import install_worker_pool

    install_worker_pool()
    rasa_speedups.install()  # as scripts/rasa_run.py does
    return Agent.load(str(test_model), action_endpoint=action_endpoint)


class Conversation:
    """Sends messages to the agent as one user and keeps what the bot said."""

    def __init__(self, agent, sender_id: str) -> None:
        self.agent = agent
        self.sender_id = sender_id

    def say(self, text: str, metadata: Dict | None = None) -> List[Dict]:
        """Send one message; returns the bot's messages (dicts with `text`, `buttons`, ...)."""
        from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

        output = CollectingOutputChannel()
        message = UserMessage(text, output, self.sender_id, metadata=metadata)
        asyncio.run(self.agent.handle_message(message))
        return output.messages

    def say_text(self, text: str, metadata: Dict | None = None) -> str:
        """Send one message; returns the bot's replies joined as one lower-case string."""
        return " ".join((m.get("text") or "") for m in self.say(text, metadata)).lower()

    def tracker(self):
        """The conversation's tracker."""
        return asyncio.run(self.agent.tracker_store.retrieve(self.sender_id))


@pytest.fixture
def conversation(agent, request) -> Conversation:
    """A new conversation with a unique sender id."""
    return Conversation(agent, f"test-{request.node.name}-{time.time_ns()}")
