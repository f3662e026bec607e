"""The load test's outputs: ``report.json`` (everything), ``report.md`` (for people) and ``timeline.png``
(answered turns per second and p50/p95 latency over the run, the replica's kill and readiness marked)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence


def _ms(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _rel(moment: Optional[float], start: float) -> str:
    return "–" if moment is None else f"{moment - start:.1f} s"


def save_plot(rows: Sequence[Mapping[str, Any]], marks: Mapping[str, Optional[float]], path: Path,
              title: str) -> None:
    """Two panels over the run's seconds: answered turns/s (and failed attempts/s), p50 and p95 latency (ms);
    a vertical line for each mark (``{"label": seconds from the start}``; ``None`` marks are left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [row["t_s"] for row in rows]
    width = (times[1] - times[0]) if len(times) > 1 else 5.0
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    top.step(times, [row["turns_per_s"] for row in rows], where="post", label="answered turns/s")
    top.bar(times, [row["failed_attempts"] / width for row in rows], width=width, align="edge", alpha=0.35,
            color="tab:red", label="failed attempts/s")
    top.set_ylabel("per second")
    top.legend(loc="lower left", fontsize=8)
    for key, style in (("p50_ms", "-"), ("p95_ms", "--")):
        points = [(row["t_s"] + width / 2, row[key]) for row in rows if row[key] is not None]
        if points:
            bottom.plot(*zip(*points), style, marker=".", label=key.replace("_ms", ""))
    bottom.set_ylabel("turn latency (ms)")
    bottom.set_xlabel("seconds since the start")
    bottom.legend(loc="upper left", fontsize=8)
    colours = ("tab:red", "tab:orange", "tab:green", "tab:purple")
    for (label, seconds), colour in zip(((k, v) for k, v in marks.items() if v is not None), colours):
        for axis in (top, bottom):
            axis.axvline(seconds, color=colour, linestyle=":", linewidth=1.5)
        top.annotate(label, (seconds, 1), xycoords=("data", "axes fraction"), rotation=90, va="top",
                     ha="right", fontsize=8, color=colour)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown(data: Mapping[str, Any]) -> str:
    """report.md from the report's data (the dict that goes to report.json)."""
    setup, figures, kill, checks = data["setup"], data["figures"], data["kill"], data["checks"]
    start = data["times"]["start"]
    turns, latency = figures["turns"], figures["turn_latency"]
    lines: List[str] = [
        "# Load test through the balancer",
        "",
        f"{'PASSED' if checks['passed'] else 'FAILED'}: {data['verdict']}",
        "",
        f"- date: {data['date']}, commit {data.get('commit') or '?'}",
        f"- machine: {setup['machine']}",
        f"- cluster: {setup['rasa_replicas']} Rasa replicas, {setup['actions_replicas']} action servers, "
        f"HAProxy on {setup['host']} (health check {setup['health_path']})",
        f"- load: {setup['users']} customers (spawn {setup['spawn_rate']}/s), {setup['duration_s']} s, pause "
        f"{setup['think_s'][0]}–{setup['think_s'][1]} s between turns, yes to the cancel question "
        f"{setup['yes_ratio']:.0%}, retries up to {setup['max_attempts']} tries with the same message_id",
        "",
        "## Figures",
        "",
        "| | |",
        "|---|---|",
        f"| throughput | {figures['throughput_turns_per_s']} answered turns/s over {figures['duration_s']} s |",
        f"| turns | {turns['sent']} sent, {turns['answered']} answered ({turns['answered_after_retry']} after a "
        f"retry), {turns['failed']} failed, {turns['unfinished']} unfinished at the end, {turns['busy']} "
        f"answered 'busy' |",
        f"| turn latency (retries included) | p50 {_ms(latency['p50_ms'])} ms, p95 {_ms(latency['p95_ms'])} ms, "
        f"p99 {_ms(latency['p99_ms'])} ms, max {_ms(latency['max_ms'])} ms |",
        f"| attempt latency (HTTP 200) | p50 {_ms(figures['attempt_latency']['p50_ms'])} ms, p95 "
        f"{_ms(figures['attempt_latency']['p95_ms'])} ms, p99 {_ms(figures['attempt_latency']['p99_ms'])} ms |",
        f"| attempts | {figures['attempts']['total']} HTTP tries, {figures['attempts']['failed']} failed: "
        f"{', '.join(f'{k} × {v}' for k, v in sorted(figures['attempts']['by_error'].items())) or 'none'} |",
        f"| sessions | {figures['sessions']['ok']} opened, {figures['sessions']['failed']} failed |",
        f"| visits | {figures['visits']['started']} started, {figures['visits']['completed']} reached the end |",
        f"| cancel question | asked {figures['cancel']['asked']}, yes {figures['cancel']['answered_yes']}, no "
        f"{figures['cancel']['answered_no']}, 'cancelled' seen {figures['cancel']['done_seen']} |",
    ]
    deviations = figures["visits"]["deviations"]
    if deviations:
        lines.append("| visits that went another way | "
                     + ", ".join(f"{k} × {v}" for k, v in sorted(deviations.items())) + " |")
    lines += ["", "## Replica killed and restarted", ""]
    if kill.get("replica"):
        lines += [
            f"- rasa-{kill['replica']} SIGKILLed at {_rel(kill.get('killed_at'), start)}, started again at "
            f"{_rel(kill.get('restart_at'), start)}, ready at {_rel(kill.get('ready_at'), start)}"
            + (f" (down {kill['down_s']:.1f} s)" if kill.get("down_s") is not None else " (not ready by the end)"),
        ]
        for name, label in (("before", "before the kill"), ("down", "kill → ready"), ("after", "after ready")):
            part = kill.get("windows", {}).get(name)
            if part:
                lines.append(
                    f"- {label} ({part['seconds']} s): {part['turns_per_s']} turns/s, p95 "
                    f"{_ms(part['turn_latency']['p95_ms'])} ms, failed attempts: "
                    f"{', '.join(f'{k} × {v}' for k, v in sorted(part['failed_attempts'].items())) or 'none'}"
                )
        if kill.get("error"):
            lines.append(f"- error: {kill['error']}")
    else:
        lines.append("- no replica was killed in this run")
    lines += ["", "## Correctness (tracker store, shop database, client log)", "",
              "| check | result | count |", "|---|---|---|"]
    for name, finding in checks["findings"].items():
        result = "FAIL" if finding["failed"] else ("note" if finding["count"] else "ok")
        lines.append(f"| {finding['description']} | {result} | {finding['count']} |")
    lines += ["", "Checked on: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in checks["counts"].items())]
    for name, finding in checks["findings"].items():
        if finding["examples"]:
            lines += ["", f"{name} (first {len(finding['examples'])}):", ""]
            lines += [f"- {example}" for example in finding["examples"]]
    lines += ["", f"![throughput and latency over time]({data['plot']})", ""]
    return "\n".join(lines)


def write(out: Path, data: Dict[str, Any]) -> None:
    """report.json and report.md in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(data), encoding="utf-8")
