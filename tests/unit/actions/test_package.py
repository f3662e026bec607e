"""The actions package against domain.yml: every domain action is implemented and registered by the action
server, and every response an action names exists."""

from __future__ import annotations

import inspect
import re

from rasa_sdk import Action
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.utils import all_subclasses

import actions  # noqa: F401  (imports every action module, as the action server does)
from tests.unit.actions.harness import DOMAIN, PROJECT_ROOT


def test_every_domain_action_is_implemented_and_every_action_is_in_the_domain() -> None:
    implemented = {
        cls().name()
        for cls in all_subclasses(Action)
        if cls.__module__.startswith("actions.") and not inspect.isabstract(cls)
    }
    assert implemented == set(DOMAIN["actions"])


def test_every_response_used_in_the_actions_exists() -> None:
    source = "\n".join(path.read_text(encoding="utf-8") for path in (PROJECT_ROOT / "actions").glob("*.py"))
    used = set(re.findall(r'"(utter_[a-z_]+)"', source))
    used.discard("utter_ask_product_")  # f-string prefix, checked below
    assert used <= set(DOMAIN["responses"]), used - set(DOMAIN["responses"])
    for question in ("info", "price", "availability", "search"):
        assert f"utter_ask_product_{question}" in DOMAIN["responses"]


def test_confirmation_buttons_send_affirm_and_deny() -> None:
    payloads = [
        button["payload"] for button in DOMAIN["responses"]["utter_ask_cancel_confirmed"][0]["buttons"]
    ]
    assert payloads == ["/affirm", "/deny"]


def test_the_action_server_registers_every_domain_action() -> None:
    executor = ActionExecutor()
    executor.register_package("actions")
    assert set(DOMAIN["actions"]) <= set(executor.actions)


def test_no_sql_in_the_actions() -> None:
    """Actions reach the database through the repository only."""
    for path in (PROJECT_ROOT / "actions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert "sqlalchemy" not in source and "shop.models" not in source, path.name
        assert not re.search(r"\b(SELECT|INSERT|UPDATE|DELETE)\s", source), path.name
