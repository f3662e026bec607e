"""The start-up check: an unreachable store named by the endpoints file is a clear error before Rasa starts."""
from __future__ import annotations

import pytest

from stores.errors import StoreUnavailable
from stores.preflight import check_endpoints, endpoints_argument


def test_the_endpoints_argument_is_found_in_rasas_command_line():
    assert endpoints_argument(["run", "--endpoints", "var/e.yml", "--port", "5005"]) == "var/e.yml"
    assert endpoints_argument(["shell", "--endpoints=x.yml"]) == "x.yml"
    assert endpoints_argument(["run", "--port", "5005"]) is None


def test_an_unreachable_tracker_store_stops_the_start(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        "tracker_store:\n  type: stores.tracker.SQLConversationStore\n"
        "  url: postgresql://postgres@127.0.0.1:1/none\n",
        encoding="utf-8",
    )
    with pytest.raises(StoreUnavailable, match="tracker store"):
        check_endpoints(str(endpoints), connect_timeout_s=0.3)


def test_an_unreachable_redis_stops_the_start(tmp_path, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        f"tracker_store:\n  type: stores.tracker.SQLConversationStore\n  url: sqlite:///{tmp_path}/t.db\n",
        encoding="utf-8",
    )
    with pytest.raises(StoreUnavailable, match="Redis"):
        check_endpoints(str(endpoints), connect_timeout_s=0.3)


def test_reachable_stores_pass(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        f"tracker_store:\n  type: stores.tracker.SQLConversationStore\n  url: sqlite:///{tmp_path}/t.db\n"
        "lock_store:\n  type: stores.lock.LeaseLockStore\n  lifetime_s: 5\n",
        encoding="utf-8",
    )
    check_endpoints(str(endpoints))
    assert (tmp_path / "t.db").exists()


def test_a_malformed_tracker_store_url_is_a_clear_error_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("TRACKER_STORE_URL", "notaurl")
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: stores.tracker.SQLConversationStore\n", encoding="utf-8")
    with pytest.raises(StoreUnavailable, match="not an SQLAlchemy URL"):
        check_endpoints(str(endpoints), connect_timeout_s=0.3)
