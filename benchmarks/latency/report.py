"""``report.md`` of the latency bench (both modes) and its one-line summary (pure)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Mapping, Optional


def _ms(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.1f}"


def _mib(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.0f}"


def _ratio(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.2f}"


def _errors(errors: Mapping[str, int]) -> str:
    return ", ".join(f"{reason}: {count}" for reason, count in errors.items()) or "0"


def _conditions(result: Mapping[str, Any]) -> list:
    machine, load, git = result["machine"], result["load_1min"], result.get("git") or {}
    return [
        f"- date: {result['date']} ({result['started_at']}); machine: {machine['cpu']}, "
        f"{machine['usable_cores']}/{machine['logical_cores']} cores usable, {result.get('memory_gib')} GiB, "
        f"Python {machine['python']}, {machine['os']}",
        f"- load average (1 min): {load.get('start')} at the start, {load.get('end')} at the end (the machine is "
        "shared: other jobs ran during the measurement, so the figures are noisy upper bounds)",
        f"- code: commit {git.get('commit')}, {git.get('changed_files')} files of the working tree changed",
        f"- command: `{result['command']}`",
    ]


def format_latency_report(result: Mapping[str, Any]) -> str:
    """The latency mode's report: per-bot table, the ratio against the target, per-text p50s, memory,
    the conditions and the differences between the two bots."""
    bots = result["bots"]
    ratio, target = result["ratio_p50"], result["target_ratio"]
    verdict = "met" if result["target_met"] else "NOT met"
    lines = [
        "# One text turn: ours vs a stock `rasa init` bot, side by side",
        "",
        f"p50 ours / p50 stock: **{_ratio(ratio)}** (target ≤ {target:g}: **{verdict}**)",
        "",
        *_conditions(result),
        f"- {result['turns']} measured turns per bot after {result['warmup']} warm-up turns, interleaved "
        f"({result['order']}), {result['pause_ms']:g} ms pause between requests",
        f"- conversations: {result['conversations']}",
        "",
        "| bot | p50 ms | p95 ms | mean ms | max ms | turns | errors | Rasa RSS MiB (peak) | tree RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, bot in bots.items():
        if bot.get("skipped"):
            lines.append(f"| {bot['label']} | skipped: {bot['skipped']} | | | | | | | |")
            continue
        lat, mem = bot["latency"], bot["memory_end"]
        lines.append(f"| {bot['label']} | {_ms(lat['p50_ms'])} | {_ms(lat['p95_ms'])} | {_ms(lat['mean_ms'])} | "
                     f"{_ms(lat['max_ms'])} | {lat['n']} | {_errors(bot['errors'])} | "
                     f"{_mib(mem.get('rasa_rss_mib'))} ({_mib(mem.get('rasa_peak_mib'))}) | "
                     f"{_mib(mem.get('tree_rss_mib'))} ({mem.get('tree_processes')} processes) |")
    for key, label in (("ratio_p50_memory", "p50 ours with the in-memory-like tracker store / p50 stock"),):
        if result.get(key) is not None:
            lines += ["", f"{label}: {_ratio(result[key])}"]
    lines += ["", "## p50 per text (ms)", ""]
    for name, bot in bots.items():
        if bot.get("skipped"):
            continue
        cells = "; ".join(f"“{text}” {_ms(row['p50_ms'])} (n={row['n']})" for text, row in bot["per_text"].items())
        lines.append(f"- {bot['label']}: {cells}")
    lines += ["", "## What each bot answered (first reply of the warm-up)", ""]
    for name, bot in bots.items():
        for text, reply in (bot.get("sample_replies") or {}).items():
            lines.append(f"- {bot['label']}: “{text}” → {reply}")
    lines += ["", "## The two setups", ""]
    for name, bot in bots.items():
        lines.append(f"- **{bot['label']}**: {bot['setup']}")
    if result.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in result["notes"]]
    return "\n".join(lines) + "\n"


def format_throughput_report(result: Mapping[str, Any]) -> str:
    """The throughput mode's report."""
    summary = result["throughput"]
    lat, busy = summary["latency"], summary["server_busy_latency"]
    lines = [
        "# Throughput of one server of ours",
        "",
        f"**{summary['turns_per_s']:.2f} answered turns/s** with {result['concurrency']} concurrent senders "
        f"over {result['duration_s']:g} s",
        "",
        *_conditions(result),
        f"- server: {result['setup']}",
        f"- load: {result['concurrency']} senders, each from its own loopback address, each in a conversation "
        f"of its own (a new one after each pass of {len(result['script'])} turns: {', '.join(result['script'])}), "
        + (f"the next turn {result.get('think_ms'):g} ms after each answer" if result.get("think_ms") else
           "a closed loop (the next turn as soon as the answer came)"),
        "",
        "| answered turns/s | answers/s incl. server_busy | p50 ms | p95 ms | p99 ms | turns | server_busy | "
        "errors |",
        "|---|---|---|---|---|---|---|---|",
        f"| {summary['turns_per_s']:.2f} | {summary['answers_per_s_incl_busy']:.2f} | {_ms(lat['p50_ms'])} | "
        f"{_ms(lat['p95_ms'])} | {_ms(lat['p99_ms'])} | {summary['turns_sent']} | {summary['server_busy']} "
        f"(p50 {_ms(busy['p50_ms'])} ms) | {_errors(summary['errors'])} |",
        "",
        f"Server memory at the end: Rasa {_mib(result['memory_end'].get('rasa_rss_mib'))} MiB (peak "
        f"{_mib(result['memory_end'].get('rasa_peak_mib'))} MiB), whole tree "
        f"{_mib(result['memory_end'].get('tree_rss_mib'))} MiB.",
    ]
    profile = result.get("profile")
    if profile:
        lines += ["", "## Profile (py-spy)", ""]
        if profile.get("error"):
            lines.append(f"Not recorded: {profile['error']}")
        else:
            lines.append(f"{profile['samples']} samples, {profile.get('idle_samples', 0)} of them waits (left out); "
                         f"flame graph `{profile['svg']}`, summary "
                         f"`{profile['summary']}`. The throughput above was measured while py-spy sampled the "
                         "server (it pauses it ~100 times a second): not the benchmark's figure.")
            lines += ["", "| component | inclusive share of the working samples |", "|---|---|"]
            lines += [f"| {name} | {share:.1f} % |" for name, share in profile["shares_pct"].items()]
    if result.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in result["notes"]]
    return "\n".join(lines) + "\n"


def one_line(result: Mapping[str, Any]) -> str:
    """The summary line printed at the end of a run."""
    if result["mode"] == "throughput":
        summary = result["throughput"]
        return (f"bench-latency throughput: {summary['turns_per_s']:.2f} turns/s, p50 "
                f"{_ms(summary['latency']['p50_ms'])} ms, p95 {_ms(summary['latency']['p95_ms'])} ms, p99 "
                f"{_ms(summary['latency']['p99_ms'])} ms, server_busy {summary['server_busy']}, errors "
                f"{sum(summary['errors'].values())} ({result['concurrency']} senders, {result['duration_s']:g} s, "
                f"load {result['load_1min'].get('end')})")
    bots = result["bots"]
    ours, stock = bots["ours"]["latency"], bots["stock"]["latency"]
    return (f"bench-latency: p50 ours {_ms(ours['p50_ms'])} ms vs stock {_ms(stock['p50_ms'])} ms → ratio "
            f"{_ratio(result['ratio_p50'])} (target ≤ {result['target_ratio']:g}: "
            f"{'met' if result['target_met'] else 'NOT met'}); p95 {_ms(ours['p95_ms'])} vs "
            f"{_ms(stock['p95_ms'])} ms; {result['turns']} turns each, load {result['load_1min'].get('end')}")


def write_report(result: Dict[str, Any], out: Path, stem: str = "") -> Path:
    """``results.json`` + ``report.md`` (latency mode) or ``throughput.json`` + ``throughput.md``; the .md path."""
    out.mkdir(parents=True, exist_ok=True)
    if result["mode"] == "throughput":
        json_name, md_name, text = "throughput.json", "throughput.md", format_throughput_report(result)
    else:
        json_name, md_name, text = "results.json", "report.md", format_latency_report(result)
    (out / (stem + json_name)).write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / (stem + md_name)).write_text(text, encoding="utf-8")
    return out / (stem + md_name)
