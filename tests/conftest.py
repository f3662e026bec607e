"""Shared pytest fixtures: Rasa model storage and execution context for component tests.

Fixtures that belong to one part of the project live in a `conftest.py` next to its tests.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

# Quiet TensorFlow before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# No telemetry or error reports leave the machine (Rasa would try to reach its servers).
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")


def pytest_collection_modifyitems(session, config, items) -> None:
    """Run the browser tests (tests/e2e) last.

    Playwright's sync API runs an asyncio event loop in the main thread while a browser is open; every other
    test that drives Rasa with `asyncio.run` must therefore finish before the first browser starts.
    """
    e2e_dir = PROJECT_ROOT / "tests" / "e2e"
    items.sort(key=lambda item: Path(str(item.fspath)).resolve().is_relative_to(e2e_dir))


@pytest.fixture(autouse=True)
def worker_pool_as_found():
    """Leaves Rasa's `MessageProcessor.parse_message` as the test found it: a test that installed the worker
    pool (constructing one of the project's channels does) gets it uninstalled afterwards, and a pool a
    session fixture installed (the integration tests' agent) is put back with its settings."""
    from channels.worker_pool import install_worker_pool, installed_pools, uninstall_worker_pool

    before = installed_pools()
    yield
    if installed_pools() is not before:
        uninstall_worker_pool()
        if before is not None:
            install_worker_pool(before.settings)


@pytest.fixture
def model_storage(tmp_path: Path):
    """A fresh Rasa `LocalModelStorage` whose directory exists, as it does during `rasa train`."""
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    path = tmp_path / "model-storage"
    path.mkdir()
    return LocalModelStorage(path)


@pytest.fixture
def execution_context():
    """A Rasa `ExecutionContext` with an empty graph schema, as components get it."""
    from rasa.engine.graph import ExecutionContext, GraphSchema

    return ExecutionContext(GraphSchema({}), "test-model")


@pytest.fixture
def shared_dir() -> Path:
    """The team's shared folder (`../shared` or `SHARED_DIR`); tests that need it skip when it is absent."""
    path = Path(os.environ.get("SHARED_DIR", PROJECT_ROOT.parent / "shared"))
    if not path.is_dir():
        pytest.skip(f"shared folder not found at {path}")
    return path
