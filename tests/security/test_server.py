"""The action server's own door (issue "Verified customers"): whoever reaches it must hold the token.

rasa-sdk's ``rasa run actions`` listened on every interface and ran any action for anyone, so a forged tracker
with ``verified_orders`` filled in was enough to cancel someone's order. ``actions.server`` serves the same
actions on 127.0.0.1, requires ``?token=`` on every request but ``GET /health``, and refuses to listen on
another address without a token. These tests fail on the code before the issue (it has no ``actions.server``).
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any, Dict, List

import pytest

from actions.server import TOKEN_PARAMETER, ServerConfigError, check_settings, create_app, main
from tests.security.action_calls import (
    DOMAIN,
    RASA_VERSION,
    ROOT,
    ActionServer,
    database_state,
    order_status,
    serving,
    tracker_state,
)

#: A call that cancels order 10021 (placed): what the server runs for a caller with the token.
CANCEL_SLOTS = {
    "order_number": "10021",
    "verified_orders": ["10021"],
    "cancel_confirmed": True,
    "order_action_allowed": True,
}


def _cancel_call() -> Dict[str, Any]:
    return tracker_state("web:forger", CANCEL_SLOTS, text="yes", intent="affirm")


@pytest.mark.parametrize(
    "token",
    [None, "", "wrong-token-wrong-token-wrong-token", "prefix"],
    ids=["no token", "empty token", "wrong token", "a prefix of the token"],
)
async def test_a_call_without_the_right_token_is_refused_and_runs_nothing(
    action_server: ActionServer, shop_db: Any, caplog: pytest.LogCaptureFixture, token: Any
) -> None:
    if token == "prefix":
        token = action_server.token[:-1]
    before = database_state(shop_db)
    with caplog.at_level(logging.WARNING, logger="actions.server"):
        refused = await action_server.run("action_cancel_order", _cancel_call(), token=token)
        listed = await action_server.get("/actions", token=token)
    assert (refused.status, listed.status) == (401, 401)
    assert "responses" not in refused.text and "action_cancel_order" not in listed.text
    assert database_state(shop_db) == before and order_status(shop_db, "10021") == "placed"
    logged = [record.getMessage() for record in caplog.records if record.name == "actions.server"]
    assert len(logged) == 2 and all("Refused" in line for line in logged), logged
    assert not any(action_server.token in line or (token and token in line) for line in logged)

    # the same call with the token is run: the refusal above was the token's doing
    done = await action_server.run("action_cancel_order", _cancel_call())
    assert done.status == 200 and done.responses == ["utter_order_cancelled"]
    assert order_status(shop_db, "10021") == "cancelled"


async def test_the_token_is_only_taken_from_the_query(action_server: ActionServer, shop_db: Any) -> None:
    import aiohttp

    call = {
        "next_action": "action_cancel_order",
        "tracker": _cancel_call(),
        "domain": DOMAIN,
        "version": RASA_VERSION,
    }
    async with aiohttp.ClientSession() as session:
        for headers in ({"Authorization": f"Bearer {action_server.token}"}, {"token": action_server.token}):
            async with session.post(f"{action_server.url}/webhook", json=call, headers=headers) as response:
                assert response.status == 401
        body = {**call, "token": action_server.token}
        async with session.post(f"{action_server.url}/webhook", json=body) as response:
            assert response.status == 401
    assert order_status(shop_db, "10021") == "placed"


async def test_health_answers_without_the_token(action_server: ActionServer) -> None:
    reply = await action_server.get("/health", token=None)
    assert reply.status == 200 and reply.body == {"status": "ok"}


async def test_without_a_token_the_app_serves_loopback_callers(shop_repository: Any) -> None:
    """No token (loopback only, see check_settings): the app is rasa-sdk's, with nothing required."""
    async with serving(create_app(None)) as url:
        reply = await ActionServer(url, None).get("/actions")
    assert reply.status == 200 and {"name": "action_cancel_order"} in reply.body


# --------------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "actions.example.com", "127.0.0.1.nip.io"])
def test_another_address_than_loopback_needs_a_token(host: str) -> None:
    with pytest.raises(ServerConfigError, match="ACTION_SERVER_TOKEN"):
        check_settings(host, None)
    check_settings(host, "x" * 32)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_may_be_served_without_a_token(host: str) -> None:
    check_settings(host, None)


def test_a_short_token_is_refused() -> None:
    with pytest.raises(ServerConfigError, match="at least"):
        check_settings("127.0.0.1", "short")


@pytest.fixture
def sanic_runs(monkeypatch: pytest.MonkeyPatch) -> List[Dict[str, Any]]:
    """Records what the server would be started with instead of starting it."""
    from sanic import Sanic

    Sanic.test_mode = True  # main() builds an app named "rasa_sdk" again (see tests.unit.channels)
    started: List[Dict[str, Any]] = []
    monkeypatch.setattr(Sanic, "run", lambda self, *args, **kwargs: started.append(dict(kwargs, args=args)))
    for name in ("ACTIONS_HOST", "ACTIONS_PORT", "ACTION_SERVER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return started


def test_main_refuses_every_interface_without_a_token(
    sanic_runs: List[Dict[str, Any]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    assert main(["--host", "0.0.0.0"]) == 2
    monkeypatch.setenv("ACTIONS_HOST", "0.0.0.0")
    assert main([]) == 2
    assert sanic_runs == []
    assert "ACTION_SERVER_TOKEN" in capsys.readouterr().err


def test_main_binds_loopback_by_default(
    sanic_runs: List[Dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main([]) == 0
    monkeypatch.setenv("ACTION_SERVER_TOKEN", "t" * 32)
    monkeypatch.setenv("ACTIONS_HOST", "0.0.0.0")
    assert main([]) == 0
    assert [(run["host"], run["port"]) for run in sanic_runs] == [("127.0.0.1", 5055), ("0.0.0.0", 5055)]


def test_the_launcher_exits_instead_of_listening_on_every_interface() -> None:
    unset = ("ACTION_SERVER_TOKEN", "ACTIONS_PORT")
    env = {key: value for key, value in os.environ.items() if key not in unset}
    env["ACTIONS_HOST"] = "0.0.0.0"
    done = subprocess.run(
        [sys.executable, "-m", "actions.server"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "refusing to serve the actions on 0.0.0.0 without a token" in done.stderr


def test_endpoints_yml_makes_rasa_send_the_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rasa reads the shipped endpoints.yml with ACTION_SERVER_TOKEN expanded (a quoted ``"${...}"`` would be
    sent literally, and every action call of `make run`/`make serve` would be refused)."""
    from rasa.core.utils import read_endpoints_from_path

    token = "t0-ken_" + "x" * 30
    monkeypatch.setenv("ACTION_SERVER_TOKEN", token)
    endpoints = read_endpoints_from_path(ROOT / "endpoints.yml")
    assert endpoints.action is not None
    assert endpoints.action.token == token
    assert endpoints.action.token_name == TOKEN_PARAMETER


def test_rasa_refuses_to_start_with_endpoints_yml_when_the_token_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ACTION_SERVER_TOKEN Rasa stops at start-up with a message naming it, instead of calling the
    action server without a token."""
    from rasa.core.utils import read_endpoints_from_path
    from rasa.shared.exceptions import RasaException

    monkeypatch.delenv("ACTION_SERVER_TOKEN", raising=False)
    with pytest.raises(RasaException, match="ACTION_SERVER_TOKEN"):
        read_endpoints_from_path(ROOT / "endpoints.yml")
