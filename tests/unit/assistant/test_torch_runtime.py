"""Unit tests for assistant/torch_runtime.py: seeds and torch CPU thread counts."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from assistant.torch_runtime import seed_everything, torch_threads


def draws() -> tuple:
    """One draw from each generator that `seed_everything` seeds."""
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_seed_everything_makes_draws_repeatable() -> None:
    seed_everything(1234)
    first = draws()
    seed_everything(1234)
    assert draws() == first
    seed_everything(4321)
    assert all(one != other for one, other in zip(draws(), first))


def test_torch_threads_sets_and_restores_the_thread_count():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(0):
        assert torch.get_num_threads() == before


def test_torch_threads_restores_the_count_when_the_block_raises() -> None:
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        with torch_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_zero_or_fewer_threads_leave_the_setting_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "set_num_threads", lambda count: pytest.fail("the thread count was set"))
    for count in (0, -2):
        with torch_threads(count):
            pass
