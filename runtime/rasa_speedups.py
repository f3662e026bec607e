"""Two of Rasa 3.6's per-turn costs removed without changing a result; installed by ``scripts/rasa_run.py``.

Measured on this project's server under load (py-spy, issue 13's first profile): 23 % of the time went to
validating the action server's answers, 7 % to finding event classes while trackers were read back.

1. ``RemoteAction._validate_action_result`` calls ``jsonschema.validate``, which checks the (constant, large)
   response schema against its meta-schema and builds a new validator on every call: about 18.6 ms per action
   call here. The replacement checks the schema once and keeps the validator (about 1.2 ms); the instance is
   validated against the same schema by the same draft's validator, and the error raised is the same
   ``best_match`` with the same message suffix.
2. ``Event.resolve_by_type`` walks every subclass of ``Event`` (recursively, with ``inspect.isabstract``) for each
   event of a tracker being deserialised, about 24 us each. The replacement keeps a ``type_name -> class`` table,
   rebuilt when the number of known subclasses changes, and falls back to Rasa's own lookup for anything the
   table does not hold (unknown names, the ``topic`` and ``default`` cases).
"""
from __future__ import annotations

import functools
from typing import Any, Dict, Optional, Text, Type

_installed = False


def install() -> None:
    """Installs both replacements (idempotent)."""
    global _installed
    if _installed:
        return
    _install_action_result_validation()
    _install_event_lookup()
    _installed = True


def _install_action_result_validation() -> None:
    from jsonschema import exceptions
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    original = RemoteAction._validate_action_result

    @functools.lru_cache(maxsize=1)
    def validator() -> Any:
        schema = RemoteAction.action_response_format_spec()
        cls = validator_for(schema)
        cls.check_schema(schema)  # once, instead of once per call
        return cls(schema)

    def _validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
        error = exceptions.best_match(validator().iter_errors(result))
        if error is None:
            return True
        # Rasa's message, by running its own code on the failing result
        return original(self, result)

    RemoteAction._validate_action_result = _validate_action_result


def _install_event_lookup() -> None:
    import rasa.shared.utils.common
    from rasa.shared.core.events import Event

    original = Event.__dict__["resolve_by_type"].__func__
    table: Dict[str, Type[Event]] = {}
    known = -1

    def _subclass_count() -> int:
        return len(rasa.shared.utils.common.all_subclasses(Event))

    def resolve_by_type(type_name: Text, default: Optional[Type[Event]] = None) -> Optional[Type[Event]]:
        nonlocal known
        found = table.get(type_name)
        if found is not None:
            return found
        count = _subclass_count()
        if count != known:
            table.clear()
            for cls in rasa.shared.utils.common.all_subclasses(Event):
                table.setdefault(cls.type_name, cls)  # the first match wins, as in Rasa's loop
            known = count
            if type_name in table:
                return table[type_name]
        return original(type_name, default)

    Event.resolve_by_type = staticmethod(resolve_by_type)
