"""`make loadtest`: customers through the cluster's balancer, a replica killed mid-run, then the checks.

Usage: `python -m benchmarks.loadtest [--users 50] [--duration 180] [--kill-at 0.4] [--kill-replica 1]
[--out reports/loadtest] ...` (`--help` lists all), against the cluster `make cluster` started (its settings
from var/cluster/cluster.env). Loopback only: the customers talk to HAProxy on 127.0.0.1.

1. Adds fresh orders for the run to the cluster's shop database (`benchmarks.loadtest.orders`: one per visit),
   writes a small JPEG photo and the plan for the customers (`<out>/plan.json`).
2. Runs Locust headless (`.venv-load/bin/locust`, `benchmarks/loadtest/locustfile.py`) for `--duration`
   seconds with `--users` customers, each on its own loopback address; the client log is
   `<out>/client-log.jsonl`.
3. At `--kill-at` of the duration it SIGKILLs Rasa replica `--kill-replica` (`scripts/cluster.sh
   kill-replica`) and at once starts it again (`start-replica`, which returns when the replica is ready),
   recording the three times. `--kill-replica 0`: no kill.
4. After Locust has stopped (users finish the turn they are in, retries included: `--stop-timeout`), reads the
   tracker store (TRACKER_STORE_URL), the orders cancelled in the shop database (DATABASE_URL) and the client
   log, and runs the checks of `benchmarks.loadtest.checker`.
5. Writes `<out>/report.md`, `<out>/report.json` and `<out>/timeline.png`.

Exit status: 0 every check passed, 1 a correctness check failed, 2 the run could not be made (no cluster, no
Locust, Locust failed). `--check-only` runs steps 4-5 again on the files of an earlier run in `--out`.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import logging
import math
import os
import shlex
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from assistant.paths import PROJECT_ROOT
from benchmarks.loadtest import checker, metrics, report

logger = logging.getLogger("loadtest")

DEFAULT_OUT = PROJECT_ROOT / "reports" / "loadtest"
CLUSTER_STATE = PROJECT_ROOT / "var" / "cluster" / "cluster.env"
CLUSTER_SCRIPT = PROJECT_ROOT / "scripts" / "cluster.sh"
LOCUST = PROJECT_ROOT / ".venv-load" / "bin" / "locust"
LOCUSTFILE = PROJECT_ROOT / "benchmarks" / "loadtest" / "locustfile.py"
#: Turns of one visit (greet, track + email, price, photo, cancel (+ email) + answer, thanks).
TURNS_PER_VISIT = 9
#: Seconds the readiness of the restarted replica may take after Locust ended.
RESTART_GRACE_S = 600


class SetupError(RuntimeError):
    """The run could not be made (exit status 2)."""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadtest", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50, help="simulated customers (default 50)")
    parser.add_argument("--duration", type=int, default=180, help="seconds of load (default 180)")
    parser.add_argument("--spawn-rate", type=float, default=5.0, help="customers started per second (5)")
    parser.add_argument("--think-min", type=float, default=2.0, help="shortest pause between turns, s (2)")
    parser.add_argument("--think-max", type=float, default=5.0, help="longest pause between turns, s (5)")
    parser.add_argument("--yes-ratio", type=float, default=0.7, help="share answering yes to the cancel question")
    parser.add_argument("--kill-at", type=float, default=0.4, help="when to kill, share of --duration (0.4)")
    parser.add_argument("--kill-replica", type=int, default=1, help="Rasa replica to kill (1; 0: none)")
    parser.add_argument("--max-attempts", type=int, default=6, help="tries per turn, same message_id (6)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one try may take (60)")
    parser.add_argument("--retry-after-cap", type=float, default=10.0, help="longest Retry-After obeyed, s")
    parser.add_argument("--stop-timeout", type=int, default=120, help="seconds users get to finish a turn")
    parser.add_argument("--orders", type=int, default=0, help="fresh orders to add (default: enough)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the customers (1)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder (reports/loadtest)")
    parser.add_argument("--locust", type=Path, default=LOCUST, help="the Locust executable (.venv-load)")
    parser.add_argument("--cluster-state", type=Path, default=CLUSTER_STATE, help=argparse.SUPPRESS)
    parser.add_argument("--check-only", action="store_true", help="only check and report an earlier run")
    args = parser.parse_args(argv)
    if args.users < 1 or args.duration < 10 or not 0 < args.kill_at < 1 or args.spawn_rate <= 0:
        parser.error("--users >= 1, --duration >= 10, 0 < --kill-at < 1, --spawn-rate > 0")
    if not 0 <= args.yes_ratio <= 1 or not 0 <= args.think_min <= args.think_max or args.max_attempts < 1:
        parser.error("0 <= --yes-ratio <= 1, 0 <= --think-min <= --think-max, --max-attempts >= 1")
    return args


# --------------------------------------------------------------------------------------------------------
# The cluster
# --------------------------------------------------------------------------------------------------------
def cluster_state(path: Path) -> Dict[str, str]:
    """The settings `scripts/cluster.sh start` recorded (``NAME=value`` lines, shell-quoted)."""
    if not path.is_file():
        raise SetupError(f"no cluster state in {path}: start the cluster with `make cluster`")
    state = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition("=")
        if name and _:
            words = shlex.split(value)
            state[name] = words[0] if words else ""
    return state


def http_status(url: str, timeout: float = 5.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def cluster(command: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """``scripts/cluster.sh <command> <args>`` (output captured)."""
    return subprocess.run(["bash", str(CLUSTER_SCRIPT), command, *args], cwd=PROJECT_ROOT, text=True,
                          capture_output=True, timeout=timeout)


def kill_time(output: str, fallback: float) -> float:
    """When `cluster.sh kill-replica` sent SIGKILL (its line ``... SIGKILL at epoch <seconds>``), else
    ``fallback``."""
    for line in output.splitlines():
        if "SIGKILL at epoch " in line:
            try:
                return float(line.rsplit(" ", 1)[1])
            except ValueError:
                break
    return fallback


class ReplicaKiller:
    """Kills a replica at a given time and starts it again at once, in a thread; records the times."""

    def __init__(self, replica: int, at: float) -> None:
        self.replica, self.at = replica, at
        self.killed_at: Optional[float] = None
        self.restart_at: Optional[float] = None
        self.ready_at: Optional[float] = None
        self.error: Optional[str] = None
        self.thread = threading.Thread(target=self._run, name="replica-killer", daemon=True)
        self.stop = threading.Event()

    def _run(self) -> None:
        if self.stop.wait(max(0.0, self.at - time.time())):
            return
        called = time.time()
        done = cluster("kill-replica", str(self.replica), timeout=60)
        if done.returncode != 0:
            self.error = f"kill-replica failed: {(done.stderr or done.stdout).strip()[-300:]}"
            return
        self.killed_at = kill_time(done.stdout, called)
        logger.info("rasa-%d killed", self.replica)
        self.restart_at = time.time()
        done = cluster("start-replica", str(self.replica), timeout=RESTART_GRACE_S + 300)
        if done.returncode != 0:
            self.error = f"start-replica failed: {(done.stderr or done.stdout).strip()[-300:]}"
            return
        self.ready_at = time.time()
        logger.info("rasa-%d ready again after %.1f s", self.replica, self.ready_at - self.killed_at)

    def as_dict(self) -> Dict[str, Any]:
        down = None if self.ready_at is None or self.killed_at is None else self.ready_at - self.killed_at
        return {"replica": self.replica, "planned_at": self.at, "killed_at": self.killed_at,
                "restart_at": self.restart_at, "ready_at": self.ready_at, "down_s": down, "error": self.error}


# --------------------------------------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------------------------------------
def photo_jpeg() -> bytes:
    """A small photo (320 × 240 JPEG, ~10 KiB): a yellow curved fruit-like shape on a light table."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (320, 240), (236, 232, 224))
    draw = ImageDraw.Draw(image)
    draw.pieslice((40, -60, 300, 200), 20, 160, fill=(240, 205, 40))
    draw.pieslice((70, -40, 270, 150), 20, 160, fill=(236, 232, 224))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def orders_needed(args: argparse.Namespace) -> int:
    """Fresh orders for the run: twice the visits the customers can make at the shortest pauses, plus two
    each (a visit takes at least TURNS_PER_VISIT pauses)."""
    if args.orders:
        return args.orders
    shortest_visit = max(1.0, TURNS_PER_VISIT * max(args.think_min, 0.5))
    return args.users * (2 * math.ceil(args.duration / shortest_visit) + 2)


def write_plan(args: argparse.Namespace, state: Dict[str, str], run_id: str, orders: List[Dict[str, str]]) -> Path:
    from benchmarks.bench_abuse import busy_texts
    from channels.rest.parsing import BODY_ATTACHMENTS

    photo = base64.b64encode(photo_jpeg()).decode("ascii")
    plan = {
        "run": run_id,
        "client_log": str(args.out / "client-log.jsonl"),
        "orders": orders,
        "photo_fields": {BODY_ATTACHMENTS: [{"data": photo, "name": "photo.jpg", "mime_type": "image/jpeg"}]},
        "busy_texts": busy_texts(),
        "yes_ratio": args.yes_ratio,
        "think_s": [args.think_min, args.think_max],
        "timeout_s": args.timeout,
        "max_attempts": args.max_attempts,
        "retry_after_cap_s": args.retry_after_cap,
        "seed": args.seed,
        "source_addresses": True,
    }
    path = args.out / "plan.json"
    path.write_text(json.dumps(plan), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------------
# Run, check, report
# --------------------------------------------------------------------------------------------------------
def run_load(args: argparse.Namespace, state: Dict[str, str]) -> Dict[str, Any]:
    """Steps 1-3; returns what the checks and the report need (also written to ``<out>/run.json``)."""
    if not args.locust.is_file():
        raise SetupError(f"{args.locust} is missing: make loadtest installs it (.venv-load)")
    port = state.get("CLUSTER_PORT", "8080")
    health = state.get("HEALTH_PATH") or "/webhooks/multimodal/"
    host = f"http://127.0.0.1:{port}"
    status = cluster("status", timeout=60)
    if status.returncode != 0 or http_status(host + health) != 200:
        raise SetupError(f"the cluster is not healthy (scripts/cluster.sh status):\n{status.stdout}")
    replicas = int(state.get("RASA_REPLICAS", "0") or 0)
    if args.kill_replica and not 1 <= args.kill_replica <= replicas:
        raise SetupError(f"--kill-replica {args.kill_replica}: the cluster has replicas 1..{replicas}")

    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("client-log.jsonl", "report.md", "report.json", "timeline.png", "run.json"):
        (args.out / name).unlink(missing_ok=True)
    from benchmarks.loadtest.orders import add_load_orders

    orders = add_load_orders(state["DATABASE_URL"], orders_needed(args))
    run_id = uuid.uuid4().hex[:8]
    plan = write_plan(args, state, run_id, orders)
    logger.info("run %s: %d customers for %d s against %s; %d fresh orders (%s..%s)", run_id, args.users,
                args.duration, host, len(orders), orders[0]["order_number"], orders[-1]["order_number"])

    command = [str(args.locust), "-f", str(LOCUSTFILE), "--headless", "-u", str(args.users), "-r",
               str(args.spawn_rate), "-t", f"{args.duration}s", "--host", host, "--stop-timeout",
               str(args.stop_timeout), "--only-summary", "--csv", str(args.out / "locust"),
               "--exit-code-on-error", "0"]
    env = {**os.environ, "LOADTEST_PLAN": str(plan), "PYTHONPATH": str(PROJECT_ROOT)}
    started = time.time()
    killer = ReplicaKiller(args.kill_replica, started + args.kill_at * args.duration) if args.kill_replica else None
    with open(args.out / "locust.log", "w", encoding="utf-8") as locust_log:
        locust = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=locust_log, stderr=subprocess.STDOUT)
        if killer:
            killer.thread.start()
        try:
            code = locust.wait(timeout=args.duration + args.stop_timeout + 120)
        except subprocess.TimeoutExpired:
            locust.terminate()
            code = locust.wait(timeout=30)
            logger.error("Locust overran its time and was stopped")
    ended = time.time()
    if killer:
        killer.stop.set()
        killer.thread.join(timeout=RESTART_GRACE_S)
    if code != 0:
        tail = (args.out / "locust.log").read_text(encoding="utf-8", errors="replace")[-2000:]
        raise SetupError(f"Locust exited with {code}; the end of {args.out / 'locust.log'}:\n{tail}")
    time.sleep(2.0)  # the last saves of the replicas
    run = {
        "run": run_id,
        "times": {"start": started, "end": ended},
        "kill": killer.as_dict() if killer else {},
        "setup": {
            "users": args.users, "duration_s": args.duration, "spawn_rate": args.spawn_rate,
            "think_s": [args.think_min, args.think_max], "yes_ratio": args.yes_ratio,
            "max_attempts": args.max_attempts, "timeout_s": args.timeout, "host": host, "health_path": health,
            "rasa_replicas": replicas, "actions_replicas": int(state.get("ACTIONS_REPLICAS", "0") or 0),
            "orders": len(orders), "seed": args.seed,
        },
        "stores": {"tracker": state["TRACKER_STORE_URL"], "shop": state["DATABASE_URL"]},
    }
    (args.out / "run.json").write_text(json.dumps(run, indent=2), encoding="utf-8")
    return run


def _git_commit() -> Optional[str]:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, text=True,
                              capture_output=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def check_and_report(args: argparse.Namespace, run: Dict[str, Any]) -> bool:
    """Steps 4-5; returns whether every check passed."""
    from benchmarks.machine import machine_description, total_memory_gib

    records = checker.read_client_log(args.out / "client-log.jsonl")
    if not records:
        raise SetupError(f"the client log {args.out / 'client-log.jsonl'} is empty: see {args.out / 'locust.log'}")
    start = min(r["t0"] for r in records if r.get("kind") in ("send", "session"))
    end = max(r.get("t1") or r["t"] for r in records)
    events = checker.read_events(run["stores"]["tracker"], start - 5)
    cancellations = checker.read_cancellations(run["stores"]["shop"], run["times"]["start"] - 1)
    result = checker.run_checks(records, events, cancellations)
    figures = metrics.summary(records, start, end)
    rows = metrics.timeline(records, start, end)
    kill = dict(run.get("kill") or {})
    marks: Dict[str, Optional[float]] = {}
    if kill.get("killed_at"):
        killed = kill["killed_at"]
        ready = min(kill.get("ready_at") or end, end)
        kill["windows"] = {"before": metrics.window(records, start, killed),
                           "down": metrics.window(records, killed, ready),
                           "after": metrics.window(records, ready, end) if ready < end else None}
        marks[f"rasa-{kill['replica']} killed"] = killed - start
        if kill.get("ready_at"):
            marks[f"rasa-{kill['replica']} ready"] = kill["ready_at"] - start
    machine = machine_description()
    failed = [f.description for f in result.findings.values() if f.failed]
    data = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git_commit(),
        "run": run["run"],
        "verdict": ("every sent turn is in the tracker store exactly once and answered, no duplicated events, "
                    "no unconfirmed or phantom order changes") if result.passed else "; ".join(failed),
        "setup": {**run["setup"], "machine": f"{machine['cpu']}, {machine['usable_cores']} cores, "
                                             f"{total_memory_gib()} GiB"},
        "machine": machine,
        "times": {"start": start, "end": end, "locust_start": run["times"]["start"],
                  "locust_end": run["times"]["end"]},
        "kill": kill,
        "figures": figures,
        "checks": result.as_dict(),
        "timeline": rows,
        "plot": "timeline.png",
    }
    report.save_plot(rows, marks, args.out / "timeline.png",
                     f"{run['setup']['users']} customers, {run['setup']['rasa_replicas']} replicas "
                     f"({data['date']}, run {run['run']})")
    report.write(args.out, data)
    return result.passed


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    args = parse_args(argv)
    args.out = args.out if args.out.is_absolute() else PROJECT_ROOT / args.out
    try:
        if args.check_only:
            run_file = args.out / "run.json"
            if not run_file.is_file():
                raise SetupError(f"no earlier run in {args.out} (run.json)")
            run = json.loads(run_file.read_text(encoding="utf-8"))
        else:
            run = run_load(args, cluster_state(args.cluster_state))
        passed = check_and_report(args, run)
    except SetupError as error:
        logger.error("%s", error)
        return 2
    print((args.out / "report.md").read_text(encoding="utf-8"))
    print(f"\nReport: {args.out / 'report.md'} (+ report.json, timeline.png)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
