"""benchmarks/bench_latency.py and benchmarks/latency/: the pure parts (percentiles, the ratio, the client's
verdicts, the profile summary, the reports); the bench itself starts servers and is run by `make bench-latency`."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

from benchmarks import bench_latency
from benchmarks.latency import clients, profile, report, stats


# ---- statistics ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("q", [0, 1, 25, 50, 90, 95, 99, 100])
def test_percentile_matches_numpys_linear_method(q: float) -> None:
    rng = random.Random(q)
    values = [rng.lognormvariate(4, 0.5) for _ in range(rng.randint(1, 301))]
    assert stats.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_interpolates_and_refuses_nonsense() -> None:
    assert stats.percentile([10.0, 20.0], 50) == 15.0
    assert stats.percentile([30.0, 10.0, 20.0], 50) == 20.0  # unsorted input
    assert stats.percentile([5.0], 95) == 5.0
    with pytest.raises(ValueError):
        stats.percentile([], 50)
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


def test_latency_summary() -> None:
    summary = stats.latency_summary([float(ms) for ms in range(1, 101)], (50, 95, 99))
    assert summary == {"n": 100, "p50_ms": 50.5, "p95_ms": 95.0, "p99_ms": 99.0, "mean_ms": 50.5,
                       "min_ms": 1.0, "max_ms": 100.0}
    empty = stats.latency_summary([])
    assert empty["n"] == 0 and empty["p50_ms"] is None and empty["p95_ms"] is None and empty["mean_ms"] is None


def test_the_ratio_is_ours_over_stock_and_the_target_is_at_most_1_3() -> None:
    assert stats.p50_ratio({"p50_ms": 130.0}, {"p50_ms": 100.0}) == 1.3
    assert stats.target_met(1.3) and not stats.target_met(1.31) and not stats.target_met(None)
    assert stats.p50_ratio({"p50_ms": 80.0}, {"p50_ms": 100.0}) == 0.8
    assert stats.p50_ratio({"p50_ms": None}, {"p50_ms": 100.0}) is None
    assert stats.p50_ratio({"p50_ms": 80.0}, {"p50_ms": 0.0}) is None
    assert stats.p50_ratio({"p50_ms": 80.0}, {}) is None


def test_errors_and_per_text_summaries_leave_failed_turns_out_of_the_latencies() -> None:
    samples = [{"text": "hi", "latency_ms": 10.0, "error": None},
               {"text": "hi", "latency_ms": 5000.0, "error": "HTTP 500"},
               {"text": "bye", "latency_ms": 30.0, "error": None},
               {"text": "hi", "latency_ms": 20.0, "error": None}]
    per_text = stats.per_text_summaries(samples)
    assert list(per_text) == ["hi", "bye"]
    assert per_text["hi"]["n"] == 2 and per_text["hi"]["p50_ms"] == 15.0
    assert stats.count_errors(["HTTP 429", None, "no reply", "HTTP 429"]) == {"HTTP 429": 2, "no reply": 1}


# ---- the clients ---------------------------------------------------------------------------------------
def test_each_conversation_gets_its_own_loopback_address() -> None:
    addresses = [clients.loopback_address(index) for index in range(254 * 3)]
    assert addresses[0] == "127.42.0.1" and addresses[253] == "127.42.0.254" and addresses[254] == "127.42.1.1"
    assert len(set(addresses)) == len(addresses)
    octets = [[int(part) for part in address.split(".")] for address in addresses]
    assert all(third < 256 and 0 < fourth < 255 for _, _, third, fourth in octets)
    assert clients.loopback_address(254 * 256) == "127.42.0.1"  # cycles instead of leaving 127/8


def test_a_turn_counts_only_when_http_200_brings_replies() -> None:
    assert clients.reply_error(200, [{"recipient_id": "x", "text": "Hi!"}]) is None
    assert clients.reply_error(200, []) == "no reply"
    assert clients.reply_error(200, {"status": "ok"}) == "not a list of replies"
    assert clients.reply_error(429, {"error": "rate_limited"}) == "HTTP 429 rate_limited"
    assert clients.reply_error(0, {"error": "ConnectionRefusedError"}) == "HTTP 0 ConnectionRefusedError"
    assert clients.is_busy([{"text": "I'm busy "}], ["I'm busy"]) and not clients.is_busy([{"text": "Hi"}], ["busy"])


def test_request_bodies_carry_a_fresh_message_id_only_when_asked() -> None:
    first, second = (clients.request_body("hi", "s", True) for _ in range(2))
    assert first["message_id"] != second["message_id"] and len(first["message_id"]) <= 64
    assert clients.request_body("hi", "s", False) == {"sender": "s", "message": "hi"}


def test_throughput_counts_busy_answers_and_late_answers_apart() -> None:
    tally = clients.LoadTally([(0.0, 0.1, 100.0, None, False), (0.1, 0.3, 200.0, None, False),
                               (0.2, 0.25, 50.0, None, True), (0.3, 0.4, 100.0, "HTTP 503", False),
                               (0.9, 1.5, 600.0, None, False)])  # answered after the 1 s window
    summary = clients.throughput_summary(tally, 1.0)
    assert summary["turns_per_s"] == 2.0 and summary["answers_per_s_incl_busy"] == 3.0
    assert summary["server_busy"] == 1 and summary["errors"] == {"HTTP 503": 1}
    assert summary["latency"]["n"] == 3 and summary["latency"]["p50_ms"] == 200.0


def test_the_rounds_rotate_which_server_goes_first() -> None:
    bots = ["stock", "ours", "memory"]
    firsts = [bench_latency.ordered(bots, index)[0] for index in range(6)]
    assert firsts == ["stock", "ours", "memory", "stock", "ours", "memory"]
    assert all(sorted(bench_latency.ordered(bots, index)) == sorted(bots) for index in range(6))


# ---- the profile ---------------------------------------------------------------------------------------
RAW = "\n".join([
    "<module> (rasa/__main__.py:1);handle (rasa/core/processor.py:10);validate (jsonschema/validators.py:5) 30",
    "<module> (rasa/__main__.py:1);handle (rasa/core/processor.py:10);predict (rasa/core/policies/ted_policy.py:9);"
    "call (tensorflow/python/eager/def_function.py:3) 50",
    "<module> (rasa/__main__.py:1);_retrieve_now (stores/tracker.py:99);from_dict (rasa/shared/core/trackers.py:7) 20",
    "_bootstrap (threading.py:973);run (threading.py:953);_worker (concurrent/futures/thread.py:81) 300",
    "garbage line without a count",
])


def test_profile_shares_are_inclusive_and_the_top_functions_ignore_line_numbers() -> None:
    stacks, idle = profile.split_idle(profile.parse_raw(RAW))
    assert idle == 300  # the idle pool worker
    assert len(stacks) == 3 and sum(count for _, count in stacks) == 100
    shares = profile.category_shares(stacks)
    assert shares["jsonschema (validation)"] == 30.0
    assert shares["TED policy"] == 50.0 and shares["TensorFlow / Keras (inside DIET, TED, ...)"] == 50.0
    assert shares["tracker store / events from_dict"] == 20.0
    assert shares["DIET classifier"] == 0.0 and shares["RulePolicy"] == 0.0
    tops = profile.top_functions(stacks)
    assert tops["inclusive"][0] == ("<module> (rasa/__main__.py)", 100)
    assert ("handle (rasa/core/processor.py)", 80) in tops["inclusive"]
    assert tops["self"][0] == ("call (tensorflow/python/eager/def_function.py)", 50)
    text = profile.summary_text(profile.parse_raw(RAW))
    assert " 30.0 %  jsonschema" in text and "300 (75.0 %) were waits" in text and "of the other 100" in text


def test_the_flame_graph_is_an_svg_with_one_box_per_function(tmp_path: Path) -> None:
    svg = profile.flame_svg(profile.split_idle(profile.parse_raw(RAW))[0], width=1000)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    # the background + all, <module>, handle, validate, predict, call, _retrieve_now, from_dict
    assert svg.count("<rect") == 1 + 8
    assert "100 samples" in svg and "validate (jsonschema/validators.py)" in svg
    (tmp_path / "server.raw").write_text(RAW)
    shares = profile.write_profile(tmp_path / "server.raw", tmp_path)
    assert shares["samples"] == 400 and shares["idle_samples"] == 300 and (tmp_path / "server.svg").is_file()
    assert shares["shares_pct"]["jsonschema (validation)"] == 30.0
    (tmp_path / "empty.raw").write_text("")
    with pytest.raises(RuntimeError):
        profile.write_profile(tmp_path / "empty.raw", tmp_path)


# ---- the report ----------------------------------------------------------------------------------------
def _bot(label: str, p50: float, errors: Dict[str, int] = None) -> Dict[str, Any]:
    latency = stats.latency_summary([p50 - 5, p50, p50 + 5])
    return {"label": label, "setup": f"{label} setup", "script": ["hi"], "latency": latency,
            "per_text": {"hi": latency}, "errors": errors or {}, "memory_after_warmup": {},
            "memory_end": {"rasa_rss_mib": 1500.0, "rasa_peak_mib": 1600.0, "tree_rss_mib": 1900.0,
                           "tree_processes": 4},
            "sample_replies": {"hi": "Hello!"}, "samples": []}


def _result(ours_p50: float, stock_p50: float) -> Dict[str, Any]:
    bots = {"stock": _bot("stock bot", stock_p50), "ours": _bot("ours", ours_p50, {"HTTP 429": 1}),
            "ours_memory": {"label": "ours in memory", "skipped": "did not start", "setup": "not measured"}}
    ratio = stats.p50_ratio(bots["ours"]["latency"], bots["stock"]["latency"])
    return {"mode": "latency", "date": "2026-12-05", "started_at": "2026-12-05T10:00:00Z", "command": "python -m x",
            "machine": {"cpu": "Test CPU", "usable_cores": 2, "logical_cores": 2, "python": "3.10", "os": "Linux"},
            "memory_gib": 24.0, "load_1min": {"start": 1.0, "end": 2.0}, "git": {"commit": "abc", "changed_files": 0},
            "turns": 3, "warmup": 1, "pause_ms": 50.0, "order": "rotated", "conversations": "4-turn scripts",
            "target_ratio": 1.3, "ratio_p50": ratio, "ratio_p50_memory": None, "target_met": stats.target_met(ratio),
            "bots": bots, "notes": ["noisy"]}


def test_the_report_states_the_ratio_and_whether_the_target_is_met(tmp_path: Path) -> None:
    met, missed = _result(60.0, 50.0), _result(100.0, 50.0)
    assert met["ratio_p50"] == 1.2 and missed["ratio_p50"] == 2.0
    text = report.format_latency_report(met)
    assert "p50 ours / p50 stock: **1.20** (target ≤ 1.3: **met**)" in text
    assert "| ours | 60.0 | " in text and "HTTP 429: 1" in text and "1500 (1600)" in text
    assert "skipped: did not start" in text and "Test CPU, 2/2 cores" in text
    assert "**NOT met**" in report.format_latency_report(missed)
    line = report.one_line(missed)
    assert "ratio 2.00" in line and "NOT met" in line and "ours 100.0 ms vs stock 50.0 ms" in line
    path = report.write_report(met, tmp_path / "out")
    assert path.name == "report.md"
    assert json.loads((tmp_path / "out" / "results.json").read_text())["ratio_p50"] == 1.2


def test_the_throughput_report(tmp_path: Path) -> None:
    tally = clients.LoadTally([(0.0, 0.1, 100.0, None, False), (0.1, 0.3, 200.0, None, True)])
    result = {key: value for key, value in _result(1, 1).items() if key not in ("bots",)}
    result.update({"mode": "throughput", "concurrency": 50, "duration_s": 1.0, "script": ["hi", "thanks"],
                   "setup": "serve.sh", "throughput": clients.throughput_summary(tally, 1.0),
                   "memory_end": {"rasa_rss_mib": 1.0}, "profile": {"error": "py-spy is not installed"}})
    text = report.format_throughput_report(result)
    assert "**1.00 answered turns/s** with 50 concurrent senders" in text
    assert "Not recorded: py-spy is not installed" in text and "a closed loop" in text
    assert "the next turn 500 ms after each answer" in report.format_throughput_report({**result, "think_ms": 500.0})
    assert report.one_line(result).startswith("bench-latency throughput: 1.00 turns/s")
    assert report.write_report(result, tmp_path).name == "throughput.md"
