"""The two servers of the latency bench, as subprocesses: the stock ``rasa init`` bot and ours (``scripts/serve.sh``).

Each is started in its own session (process group), so stopping it stops everything it started: ``serve.sh``'s
bash, the action server, the retention purge and Rasa; ``rasa run`` for the stock bot. Memory is read from
``/proc`` (``VmRSS``/``VmHWM`` of each process of the tree): psutil is not one of the project's pinned packages
and ``bench_abuse`` reads ``/proc`` the same way.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from assistant.paths import PROJECT_ROOT

logger = logging.getLogger("bench_latency")

#: Where the bench keeps the stock bot (its trained model is reused when present) and each run's files.
BENCH_VAR = PROJECT_ROOT / "var" / "bench-latency"
STOCK_DIR = BENCH_VAR / "stock"
#: Seconds a server may take to load its model and answer (two start at once on two shared cores).
START_TIMEOUT_S = 900.0
#: Seconds ``rasa init`` may take (it trains the moodbot: ~1.5 min on 2 cores).
INIT_TIMEOUT_S = 1800.0
#: The same quiet, offline settings for both servers (the Makefile exports these too).
COMMON_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "RASA_TELEMETRY_ENABLED": "false",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    "PYTHONWARNINGS": "ignore::DeprecationWarning,ignore::FutureWarning,ignore::UserWarning",
}
#: Settings of the caller's environment that would change how ``serve.sh`` runs ours (a shared Redis, the
#: management API, CORS, another action-server address or token): dropped, so ours runs as a plain `make serve`.
DROPPED_ENV = ("REDIS_URL", "RASA_AUTH_TOKEN", "RASA_CORS", "ACTIONS_HOST", "ACTION_SERVER_TOKEN", "RASA_PORT",
               "ACTIONS_PORT", "TRACKER_STORE_URL", "DATABASE_URL", "ATTACHMENT_DIR")
OURS_WEBHOOK = "/webhooks/multimodal/webhook"
OURS_READY = "/webhooks/multimodal/ready"
STOCK_WEBHOOK = "/webhooks/rest/webhook"
STOCK_READY = "/webhooks/rest/"


@dataclass
class RunningServer:
    """A started server: where it answers, its processes, how to talk to it."""

    name: str
    port: int
    webhook: str
    process: subprocess.Popen
    log: Path
    #: Bearer token of ours (``CHAT_API_TOKEN``); ``None`` for the stock bot.
    token: Optional[str] = None
    #: The Rasa process (for ours: ``scripts/rasa_run.py`` under ``serve.sh``).
    rasa_pid: Optional[int] = None
    details: Dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.webhook}"


# --------------------------------------------------------------------------------------------------------
# /proc
# --------------------------------------------------------------------------------------------------------
def _parent_pids() -> Dict[int, int]:
    parents: Dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1:
            parents[int(entry.name)] = int(fields[1])
    return parents


def process_tree(pid: int) -> List[int]:
    """``pid`` and all its descendants (those alive now)."""
    parents = _parent_pids()
    tree, frontier = [pid], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        tree.extend(children)
        frontier.extend(children)
    return tree


def _status_kib(pid: int, key: str) -> Optional[int]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def memory_of(server: RunningServer) -> Dict[str, Optional[float]]:
    """MiB: the Rasa process's resident set now and its peak (``VmHWM``), and the whole tree's resident set now
    (for ours: bash, the action server, the retention purge and Rasa)."""
    def mib(kib: Optional[int]) -> Optional[float]:
        return None if kib is None else round(kib / 1024, 1)

    tree = process_tree(server.process.pid)
    tree_kib = [_status_kib(pid, "VmRSS") for pid in tree]
    rasa = server.rasa_pid or server.process.pid
    return {
        "rasa_rss_mib": mib(_status_kib(rasa, "VmRSS")),
        "rasa_peak_mib": mib(_status_kib(rasa, "VmHWM")),
        "tree_rss_mib": mib(sum(kib for kib in tree_kib if kib is not None)),
        "tree_processes": len(tree),
    }


# --------------------------------------------------------------------------------------------------------
# Starting and stopping
# --------------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(log: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def bench_env(extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """This process's environment with :data:`COMMON_ENV` filled in (the caller's values win) and ``extra``."""
    env = dict(os.environ)
    for key, value in COMMON_ENV.items():
        env.setdefault(key, value)
    env.update(extra or {})
    return env


def stop(server: Optional[RunningServer], timeout_s: float = 30.0) -> None:
    """SIGTERM to the server's process group (it was started in a session of its own, so the group is the
    process's id; ``serve.sh`` stops its background jobs on its way out), SIGKILL to the group after
    ``timeout_s``. Never raises; stopping twice is harmless."""
    if server is None:
        return
    process, pgid = server.process, server.process.pid
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (process.poll() is None or _group_alive(pgid)):
        time.sleep(0.2)
    if process.poll() is None or _group_alive(pgid):
        logger.warning("%s did not stop within %.0f s: SIGKILL", server.name, timeout_s)
        _signal_group(pgid, signal.SIGKILL)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout_s: float = START_TIMEOUT_S) -> None:
    """Until ``GET url`` answers 200.

    Raises:
        RuntimeError: the process exited or ``url`` did not answer 200 within ``timeout_s`` (with the log's tail).
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(map(str, process.args[:3]))} exited with {process.returncode}:\n"
                               f"{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):  # HTTPError (503 while loading) is a URLError
            pass
        time.sleep(1.0)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s:.0f} s:\n{tail(log)}")


def newest_archive(folder: Path) -> Optional[Path]:
    archives = sorted(Path(folder).glob("*.tar.gz"), key=lambda path: path.stat().st_mtime)
    return archives[-1] if archives else None


def ensure_stock_bot(folder: Path = STOCK_DIR, rasa: Optional[Path] = None) -> Path:
    """The stock bot's trained model: ``folder/models/*.tar.gz`` when present, else made by
    ``rasa init --no-prompt --init-dir folder`` (Rasa's own scaffold, trained with its own defaults; no network).

    Raises:
        RuntimeError: ``rasa init`` failed or left no model (the message quotes its log).
    """
    model = newest_archive(folder / "models")
    if model is not None:
        return model
    if folder.exists():  # a scaffold without a model: an interrupted init
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    rasa = rasa or Path(sys.executable).parent / "rasa"
    log = folder.parent / "stock-init.log"
    logger.info("Creating the stock bot: rasa init --no-prompt --init-dir %s (trains the moodbot, ~2 min) ...",
                folder)
    with log.open("wb") as sink:
        completed = subprocess.run([str(rasa), "init", "--no-prompt", "--init-dir", str(folder)],
                                   cwd=folder.parent, env=bench_env(), stdout=sink, stderr=subprocess.STDOUT,
                                   timeout=INIT_TIMEOUT_S, check=False)
    model = newest_archive(folder / "models")
    if completed.returncode != 0 or model is None:
        raise RuntimeError(f"rasa init failed (exit {completed.returncode}):\n{tail(log)}")
    return model


def start_stock(folder: Path, model: Path, run_dir: Path, rasa: Optional[Path] = None) -> RunningServer:
    """``rasa run`` of the stock bot on 127.0.0.1 and a free port: the scaffold's endpoints.yml (no action
    server: the moodbot has no custom actions; in-memory tracker and lock stores), a credentials file with only
    the stock ``rest:`` channel, no ``--enable-api``. Returns at once; :func:`wait_ready` waits for it."""
    rasa = rasa or Path(sys.executable).parent / "rasa"
    port = free_port()
    credentials = run_dir / "stock-credentials.yml"
    credentials.write_text("rest:\n", encoding="utf-8")
    log = run_dir / "stock.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(rasa), "run", "--model", str(model), "--endpoints", str(folder / "endpoints.yml"),
             "--credentials", str(credentials), "--interface", "127.0.0.1", "--port", str(port)],
            cwd=folder, env=bench_env(), stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )
    return RunningServer("stock", port, STOCK_WEBHOOK, process, log, rasa_pid=process.pid,
                         details={"model": model.name})


def start_ours(name: str, run_dir: Path, tracker_store_url: str, database_url: str) -> RunningServer:
    """Ours as `make serve` starts it: ``bash scripts/serve.sh`` with ``RASA_PORT``/``ACTIONS_PORT`` on free
    ports, fresh ``SENDER_ID_SECRET`` and ``CHAT_API_TOKEN``, the tracker store at ``tracker_store_url``, the
    shop database at ``database_url``, uploads under ``run_dir``. Returns at once; :func:`wait_ready` waits."""
    rasa_port, actions_port = free_port(), free_port()
    token = secrets.token_urlsafe(32)
    env = bench_env()
    for key in DROPPED_ENV:
        env.pop(key, None)
    env.update({
        "RASA_PORT": str(rasa_port),
        "ACTIONS_PORT": str(actions_port),
        "SENDER_ID_SECRET": secrets.token_urlsafe(32),
        "CHAT_API_TOKEN": token,
        "TRACKER_STORE_URL": tracker_store_url,
        "DATABASE_URL": database_url,
        "ATTACHMENT_DIR": str(run_dir / f"{name}-uploads"),
    })
    log = run_dir / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(["bash", "scripts/serve.sh"], cwd=PROJECT_ROOT, env=env, stdout=sink,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return RunningServer(name, rasa_port, OURS_WEBHOOK, process, log, token=token,
                         details={"tracker_store_url": tracker_store_url})


def ready_url(server: RunningServer) -> str:
    path = OURS_READY if server.webhook == OURS_WEBHOOK else STOCK_READY
    return f"http://127.0.0.1:{server.port}{path}"


def find_rasa_pid(server: RunningServer, marker: str = "rasa_run.py") -> Optional[int]:
    """The process of ``server``'s tree whose command line names ``marker`` (ours: ``scripts/rasa_run.py``)."""
    for pid in process_tree(server.process.pid):
        if marker in cmdline(pid):
            return pid
    return None


def seed_shop_database(path: Path) -> str:
    """A fresh seeded shop database at ``path`` (replaced when present); its SQLAlchemy URL."""
    from shop.db import make_engine
    from shop.seed import create_and_seed

    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    create_and_seed(engine)
    engine.dispose()
    return url


def fresh_sqlite_url(path: Path) -> str:
    """``sqlite:///<path>`` after removing ``path`` and its WAL/SHM files (a fresh, empty tracker store)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def git_state() -> Dict[str, object]:
    """The commit measured and how many files of the working tree differ from it (others edit it too)."""
    def run(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    status = run("status", "--porcelain")
    return {"commit": run("rev-parse", "--short=12", "HEAD") or None,
            "changed_files": len(status.splitlines()) if status else 0}


def stop_all(servers: Sequence[Optional[RunningServer]]) -> None:
    for server in servers:
        if server is not None:
            stop(server)


def describe(servers: Sequence[RunningServer]) -> str:
    return json.dumps({server.name: server.port for server in servers})
