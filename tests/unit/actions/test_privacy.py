"""action_delete_my_data: the conversation itself is erased only after a verified customer's yes."""
from __future__ import annotations

from typing import Optional

import pytest

from actions.privacy import ActionDeleteMyData
from assistant.keys import ERASE_CONVERSATION_SLOT
from tests.unit.actions.harness import make_tracker, responses, run, slot_values, verified


def _delete(confirmed: Optional[bool], number: Optional[str] = "10024"):
    slots = verified(number, delete_data_confirmed=confirmed) if number else {"delete_data_confirmed": confirmed}
    return run(ActionDeleteMyData(), make_tracker(slots=slots))


def test_a_confirmed_erasure_also_erases_the_conversation(repo) -> None:
    dispatcher, events = _delete(True)
    assert responses(dispatcher) == ["utter_data_deleted"]
    assert slot_values(events)[ERASE_CONVERSATION_SLOT] is True


@pytest.mark.parametrize("confirmed, number", [(False, "10024"), (None, "10024"), (True, None)])
def test_without_a_yes_or_without_proof_the_conversation_stays(repo, confirmed, number) -> None:
    dispatcher, events = _delete(confirmed, number)
    assert responses(dispatcher) != ["utter_data_deleted"]
    assert ERASE_CONVERSATION_SLOT not in slot_values(events)
