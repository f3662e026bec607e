"""Fixtures of every channel test: the worker pool uninstalled and its ``NLU_*`` settings unset."""
from __future__ import annotations

import pytest

from channels.worker_pool import uninstall_worker_pool

#: The worker pool's environment variables (`channels.worker_pool.WorkerPoolSettings.from_env`).
NLU_VARIABLES = ("NLU_WORKERS", "NLU_QUEUE", "NLU_DEADLINE_S",
                 "NLU_MEDIA_WORKERS", "NLU_MEDIA_QUEUE", "NLU_MEDIA_DEADLINE_S")


@pytest.fixture
def no_worker_pool(monkeypatch: pytest.MonkeyPatch):
    """No worker pool installed and no ``NLU_*`` variable set when the test starts (tests/conftest.py puts
    back whatever was installed before, afterwards)."""
    for variable in NLU_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    uninstall_worker_pool()
    yield
    uninstall_worker_pool()
