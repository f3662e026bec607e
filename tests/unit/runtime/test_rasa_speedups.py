"""runtime.rasa_speedups changes no result: the same event classes, the same validation outcomes and errors."""
from __future__ import annotations

import pytest
import rasa.shared.utils.common
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import Event, UserUttered

from runtime import rasa_speedups

GOOD = {"events": [{"event": "slot", "name": "order_number", "value": "10021", "timestamp": None}],
        "responses": [{"text": "hi"}]}
BAD = [
    {"events": [{"event": "slot", "name": 5}]},
    {"events": "not a list"},
    {"responses": ["not an object"]},
    {"events": [{"event": "no_such_event"}]},
]


def _outcome(result):
    try:
        return RemoteAction("action_x", None)._validate_action_result(result)
    except ValidationError as error:
        return ("error", error.message)


def test_the_same_classes_and_validation_outcomes_before_and_after():
    names = sorted({cls.type_name for cls in rasa.shared.utils.common.all_subclasses(Event)})
    classes_before = {name: Event.resolve_by_type(name) for name in names}
    outcomes_before = [_outcome(result) for result in [GOOD, *BAD]]
    rasa_speedups.install()
    rasa_speedups.install()  # idempotent
    assert {name: Event.resolve_by_type(name) for name in names} == classes_before
    assert Event.resolve_by_type("user") is UserUttered
    assert [_outcome(result) for result in [GOOD, *BAD]] == outcomes_before
    assert outcomes_before[0] is True
    assert all(outcome[0] == "error" and "Failed to validate Action server response" in outcome[1]
               for outcome in outcomes_before[1:])


def test_unknown_names_behave_as_in_rasa():
    rasa_speedups.install()
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no_such_event", default=UserUttered) is UserUttered
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("no_such_event")
