"""benchmarks/loadtest metrics, report and the runner's pure helpers on a synthetic client log."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, List

import pytest

from benchmarks.loadtest import checker, metrics, report, run


def client_log() -> List[Dict[str, Any]]:
    """Ten answered turns of 100..1000 ms, one turn answered after a 502, one given up after three tries."""
    records: List[Dict[str, Any]] = []
    for index in range(10):
        t0 = 100.0 + index
        records += [
            {"kind": "send", "message_id": f"m{index}", "t0": t0},
            {"kind": "attempt", "message_id": f"m{index}", "status": 200, "t0": t0, "t1": t0 + 0.1 * (index + 1)},
            {"kind": "turn", "message_id": f"m{index}", "ok": True, "status": 200, "attempts": 1, "busy": index == 0,
             "t0": t0, "t1": t0 + 0.1 * (index + 1)},
        ]
    records += [
        {"kind": "send", "message_id": "r", "t0": 111.0},
        {"kind": "attempt", "message_id": "r", "status": 502, "error": "HTTP 502", "t0": 111.0, "t1": 111.1},
        {"kind": "attempt", "message_id": "r", "status": 200, "t0": 111.6, "t1": 111.8},
        {"kind": "turn", "message_id": "r", "ok": True, "status": 200, "attempts": 2, "t0": 111.0, "t1": 111.8},
        {"kind": "send", "message_id": "g", "t0": 112.0},
        {"kind": "attempt", "message_id": "g", "status": 0, "error": "ConnectionError", "t0": 112.0, "t1": 112.1},
        {"kind": "attempt", "message_id": "g", "status": 503, "error": "HTTP 503", "t0": 112.5, "t1": 112.6},
        {"kind": "attempt", "message_id": "g", "status": 503, "error": "HTTP 503", "t0": 113.5, "t1": 113.6},
        {"kind": "turn", "message_id": "g", "ok": False, "status": 503, "attempts": 3, "t0": 112.0, "t1": 113.6},
        {"kind": "send", "message_id": "open", "t0": 114.0},
        {"kind": "session", "ok": True}, {"kind": "session", "ok": False},
        {"kind": "visit", "completed": True, "deviations": []},
        {"kind": "visit", "completed": False, "deviations": ["cancel: no cancel question"]},
        {"kind": "cancel", "asked": True, "answer": "yes", "done_seen": True},
        {"kind": "cancel", "asked": True, "answer": "no", "done_seen": False},
    ]
    return records


def test_the_summary_counts_turns_attempts_and_errors() -> None:
    figures = metrics.summary(client_log(), 100.0, 120.0)
    assert figures["turns"] == {"sent": 13, "answered": 11, "failed": 1, "unfinished": 1, "busy": 1,
                                "retried": 2, "answered_after_retry": 1}
    assert figures["throughput_turns_per_s"] == round(11 / 20, 2)
    assert figures["attempts"] == {"total": 15, "failed": 4,
                                   "by_error": {"HTTP 502": 1, "ConnectionError": 1, "HTTP 503": 2}}
    latency = figures["turn_latency"]
    assert latency["n"] == 11 and latency["max_ms"] == pytest.approx(1000.0)
    assert figures["sessions"] == {"ok": 1, "failed": 1}
    assert figures["visits"] == {"started": 2, "completed": 1, "deviations": {"cancel: no cancel question": 1}}
    assert figures["cancel"] == {"asked": 2, "answered_yes": 1, "answered_no": 1, "done_seen": 1}


def test_the_timeline_puts_turns_and_failures_in_their_bins() -> None:
    rows = metrics.timeline(client_log(), 100.0, 115.0, bin_s=5.0)
    assert [row["t_s"] for row in rows] == [0.0, 5.0, 10.0]
    assert [row["turns_per_s"] for row in rows] == [1.0, 0.8, 0.4]  # m9 ends at 110.0, r at 111.8
    assert [row["failed_attempts"] for row in rows] == [0, 0, 4]
    assert rows[0]["p50_ms"] == pytest.approx(300.0)


def test_a_window_counts_only_what_ended_in_it() -> None:
    part = metrics.window(client_log(), 110.0, 115.0)
    assert part["answered_turns"] == 2 and part["failed_attempts"] == {"HTTP 502": 1, "ConnectionError": 1,
                                                                       "HTTP 503": 2}


def test_the_report_states_a_failure_and_lists_its_examples(tmp_path: Path) -> None:
    records = client_log()
    figures = metrics.summary(records, 100.0, 120.0)
    lost = checker.Finding("lost_turns", "answered turns that are not in the tracker store")
    lost.add("m7 of web:x")
    result = checker.CheckResult({"lost_turns": lost}, {"turns_sent": 13})
    data = {
        "date": "2026-12-05 00:00 UTC", "commit": "abc", "run": "r1", "verdict": "answered turns lost",
        "setup": {"machine": "test", "rasa_replicas": 2, "actions_replicas": 1, "host": "http://127.0.0.1:8080",
                  "health_path": "/ready", "users": 3, "spawn_rate": 1, "duration_s": 20, "think_s": [1, 2],
                  "yes_ratio": 0.5, "max_attempts": 6},
        "times": {"start": 100.0, "end": 120.0},
        "kill": {"replica": 1, "killed_at": 108.0, "restart_at": 108.0, "ready_at": None, "down_s": None,
                 "windows": {"before": metrics.window(records, 100.0, 108.0),
                             "down": metrics.window(records, 108.0, 120.0), "after": None}},
        "figures": figures, "checks": result.as_dict(), "plot": "timeline.png",
    }
    report.write(tmp_path, data)
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert text.startswith("# Load test") and "FAILED: answered turns lost" in text
    assert "| answered turns that are not in the tracker store | FAIL | 1 |" in text
    assert "- m7 of web:x" in text and "not ready by the end" in text
    assert (tmp_path / "report.json").is_file()


def test_the_plot_is_a_png_with_the_kill_marked(tmp_path: Path) -> None:
    rows = metrics.timeline(client_log(), 100.0, 120.0)
    report.save_plot(rows, {"rasa-1 killed": 8.0, "rasa-1 ready": None}, tmp_path / "t.png", "test")
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_cluster_state_is_read_from_shell_quoted_lines(tmp_path: Path) -> None:
    state = tmp_path / "cluster.env"
    state.write_text("CLUSTER_PORT=8080\nDATABASE_URL=postgresql+psycopg2://postgres@127.0.0.1:5432/x\n"
                     "HEALTH_PATH=/webhooks/multimodal/ready\nEMPTY=''\n", encoding="utf-8")
    assert run.cluster_state(state) == {"CLUSTER_PORT": "8080", "EMPTY": "",
                                        "DATABASE_URL": "postgresql+psycopg2://postgres@127.0.0.1:5432/x",
                                        "HEALTH_PATH": "/webhooks/multimodal/ready"}
    with pytest.raises(run.SetupError):
        run.cluster_state(tmp_path / "missing.env")


def test_enough_orders_for_every_visit_the_customers_can_make() -> None:
    args = argparse.Namespace(orders=0, users=50, duration=180, think_min=2.0)
    visits_at_most = 50 * (180 / (run.TURNS_PER_VISIT * 2.0) + 1)
    assert run.orders_needed(args) >= visits_at_most
    assert run.orders_needed(argparse.Namespace(orders=7, users=50, duration=180, think_min=2.0)) == 7


def test_the_photo_is_a_small_jpeg() -> None:
    photo = run.photo_jpeg()
    assert photo[:3] == b"\xff\xd8\xff" and len(photo) < 50_000


def test_load_orders_are_five_digit_and_of_the_seed_customers() -> None:
    from benchmarks.loadtest.orders import load_order_specs
    from shop.seed import DEMO_CUSTOMERS

    specs = load_order_specs(8, 20000)
    assert [spec.order_number for spec in specs] == [str(n) for n in range(20000, 20008)]
    assert {spec.email for spec in specs} <= {customer.email for customer in DEMO_CUSTOMERS}
    assert {len(spec.steps) for spec in specs} == {0, 1}  # placed and packed: both may be cancelled
    with pytest.raises(ValueError):
        load_order_specs(10, 99995)


def test_load_orders_go_into_the_database_after_the_highest_number(tmp_path: Path) -> None:
    from benchmarks.loadtest.orders import add_load_orders
    from shop.db import make_engine
    from shop.seed import create_and_seed

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = make_engine(url)
    create_and_seed(engine)
    engine.dispose()
    first = add_load_orders(url, 3)
    second = add_load_orders(url, 2)
    assert [o["order_number"] for o in first] == ["20000", "20001", "20002"]
    assert [o["order_number"] for o in second] == ["20003", "20004"]
    cancelled = checker.read_cancellations(url, 0.0)
    assert {c.order_number for c in cancelled} == {"10019", "10025"}  # the seed's own cancelled orders


def test_the_kill_time_is_the_one_cluster_sh_printed() -> None:
    output = "cluster: rasa-1 SIGKILL at epoch 1796512200.123456789\ncluster: rasa-1 killed (SIGKILL) at ...\n"
    assert run.kill_time(output, 5.0) == pytest.approx(1796512200.123456789)
    assert run.kill_time("nothing", 5.0) == 5.0
