"""One text turn of ours vs a stock `rasa init` bot, measured side by side (`make bench-latency`).

Issue: "on one server a single text turn p50 <= 1.3x a stock `rasa init` bot measured in the same run".

Usage: `python -m benchmarks.bench_latency [--out reports/bench-latency] [--turns 200]` (latency mode), or
`--concurrency 50 --duration 60` (throughput mode, ours only), `--profile reports/profile` with the throughput
mode (`make profile-server`: py-spy on the server while the load runs).

**Latency mode.** Two (three) servers run at once on 127.0.0.1, each in its own process group:

1. *stock*: `rasa init --no-prompt --init-dir var/bench-latency/stock` (Rasa's own scaffold, the moodbot, trained
   with its generated config; created once and reused while its model is there), served by
   `rasa run --model ... --credentials <only rest:>` without `--enable-api`, without an action server (the
   moodbot has none), with Rasa's default in-memory tracker and lock stores.
2. *ours*: `bash scripts/serve.sh`, i.e. `make serve` (action server, retention purge, `scripts/rasa_run.py run`
   with the worker pool, credentials.yml's MultimodalRestInput with its rate limits and bearer token, the newest
   `models/*.tar.gz`), with `RASA_PORT`/`ACTIONS_PORT` on free ports, fresh `SENDER_ID_SECRET` and
   `CHAT_API_TOKEN`, the SQL tracker store on a fresh SQLite file (`var/bench-latency/run/tracker-ours.db`), the
   lease lock store in memory (`REDIS_URL` dropped) and a freshly seeded shop database.
3. *ours, in-memory-like* (unless `--no-memory-variant`): the same with `TRACKER_STORE_URL=sqlite:///:memory:`
   (one shared in-memory SQLite connection: no file, no fsync; still SQL rows and JSON (de)serialisation). Rasa's
   own InMemoryTrackerStore would need another endpoints file than serve.sh's, so it is not measured.

After a warm-up (`--warmup` turns each, not counted), the bench sends one turn to each server in turn (the
order rotates every round, so no server always goes first) with `--pause-ms` between requests, `--turns` per
server. Conversations: each conversation is one pass of the bot's script (4 turns: ours "hi", "how much are
bananas", "where is my order", "thanks"; stock "hello", "I am sad", "great", "bye"), then a fresh one, so a
quarter of the turns start a conversation (session start) and the rest continue one. Each conversation of ours
talks from its own loopback address (127.42.x.y) so that the shipped per-address and per-conversation rate
limits never refuse a turn; ours gets `message_id` with every turn as the web chat sends it (`--no-message-id`:
without). Latency: `perf_counter` from before the connection is opened to the last byte of the answer, a new
connection per turn for both. A turn counts when HTTP 200 brings a non-empty list of replies.

Reported (`<out>/report.md`, `<out>/results.json`, and one line on stdout): p50/p95/mean/max per server and per
text, errors, p50 ours / p50 stock against 1.3, memory (`VmRSS`/`VmHWM` of the Rasa process and the RSS of
each server's whole process tree from /proc), machine, date, load average, commit.

**Throughput mode** (`--concurrency N`): ours alone; N senders (asyncio + aiohttp), each from its own loopback
address and in its own conversation (a new one after each pass of the script), each sending its next turn as
soon as the last was answered (or `--think-ms` later), for `--duration` seconds (bounded: no turn starts after
it, at most 20 turns a second per sender). Reported: answered turns/s (`server_busy` answers of the worker pool counted apart),
p50/p95/p99, errors; `<out>/throughput.md` and `throughput.json`. With `--profile DIR`, py-spy records the
Rasa process for the duration of the load: `DIR/server.svg` (flame graph), `DIR/summary.txt` (shares of
jsonschema, MiniLM, TED, DIET, the tracker store, RulePolicy, ... and the top functions), `DIR/server.raw`.

Both servers are stopped at the end, also after an error, Ctrl-C or SIGTERM (their process groups get SIGTERM,
then SIGKILL after 30 s).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import shutil
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

from assistant.paths import MODELS_DIR, PROJECT_ROOT
from benchmarks.latency import clients, profile, servers, stats
from benchmarks.latency.report import one_line, write_report
from benchmarks.machine import load_1min, machine_description, total_memory_gib

logger = logging.getLogger("bench_latency")

DEFAULT_OUT = PROJECT_ROOT / "reports" / "bench-latency"
RUN_DIR = servers.BENCH_VAR / "run"
OURS_SCRIPT = ("hi", "how much are bananas", "where is my order", "thanks")
STOCK_SCRIPT = ("hello", "I am sad", "great", "bye")
#: Client addresses of the warm-up conversations (far from those of the measured ones).
WARMUP_ADDRESS_OFFSET = 20_000


# --------------------------------------------------------------------------------------------------------
# The bots under test
# --------------------------------------------------------------------------------------------------------
class Bot:
    """A running server with what the bench says to it."""

    def __init__(self, key: str, label: str, server: servers.RunningServer, script: Sequence[str],
                 with_message_id: bool, setup: str) -> None:
        self.key, self.label, self.server, self.script = key, label, server, tuple(script)
        self.with_message_id, self.setup = with_message_id, setup
        self.samples: List[clients.Sample] = []
        self.sample_replies: Dict[str, str] = {}
        self.memory_after_warmup: Dict[str, Any] = {}
        self.memory_end: Dict[str, Any] = {}

    def turn(self, index: int, run_id: str, address_offset: int = 0) -> clients.Sample:
        """The ``index``-th turn of this bot: text ``index % len(script)`` of conversation ``index // len``."""
        conversation = index // len(self.script)
        text = self.script[index % len(self.script)]
        sender = f"lat-{run_id}-{address_offset}-{conversation}"
        body = clients.request_body(text, sender, self.with_message_id)
        status, payload, ms = clients.timed_turn(self.server.port, self.server.webhook, body, self.server.token,
                                                 clients.loopback_address(address_offset + conversation))
        error = clients.reply_error(status, payload)
        return clients.Sample(self.key, text, conversation, ms, error, reply=clients.first_text(payload))


def ordered(bots: Sequence[Bot], round_index: int) -> List[Bot]:
    """The bots in the order of round ``round_index``: rotated by one each round."""
    shift = round_index % len(bots)
    return list(bots[shift:]) + list(bots[:shift])


def pipeline_names(config: Path) -> str:
    """``pipeline: a, b, ...; policies: ...`` of a Rasa config (``Rasa's defaults`` when a list is empty)."""
    import yaml

    data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    parts = []
    for key in ("pipeline", "policies"):
        names = [str(item.get("name")).rsplit(".", 1)[-1] for item in data.get(key) or [] if isinstance(item, dict)]
        parts.append(f"{key}: {', '.join(names) if names else 'Rasa defaults (the scaffold leaves it empty)'}")
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def stopped_on_exit(started: List[servers.RunningServer]) -> Iterator[None]:
    """Stops every server in ``started`` on the way out (error, Ctrl-C, SIGTERM included)."""
    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        if started:
            logger.info("Stopping %s ...", ", ".join(server.name for server in started))
        servers.stop_all(started)
        signal.signal(signal.SIGTERM, previous)


def newest_model() -> Optional[Path]:
    return servers.newest_archive(MODELS_DIR)


def start_ours_ready(name: str, run_dir: Path, tracker_url: str, started: List[servers.RunningServer]
                     ) -> servers.RunningServer:
    """Starts ours (``serve.sh``), waits for ``/ready`` and finds its Rasa process."""
    database = servers.seed_shop_database(run_dir / f"shop-{name}.db")
    server = servers.start_ours(name, run_dir, tracker_url, database)
    started.append(server)
    servers.wait_ready(servers.ready_url(server), server.process, server.log)
    server.rasa_pid = servers.find_rasa_pid(server)
    return server


def ours_setup(tracker_url: str, model: Path, with_message_id: bool) -> str:
    return (f"`bash scripts/serve.sh` as `make serve` runs it: action server, retention purge and "
            f"`scripts/rasa_run.py run` (worker pool, NLU_* defaults unless set) with credentials.yml's "
            f"MultimodalRestInput (bearer token, rate limits as shipped), model {model.name} "
            f"({pipeline_names(PROJECT_ROOT / 'config.yml')}); tracker store SQLConversationStore at "
            f"`{tracker_url}`; lock store LeaseLockStore in process memory (REDIS_URL unset); "
            f"{'a message_id with every turn (idempotency ledger in memory)' if with_message_id else 'no message_id'}")


def warm_up(bots: Sequence[Bot], turns: int, run_id: str) -> None:
    """``turns`` unmeasured turns per bot, interleaved; the first reply to each text is kept for the report.

    Raises:
        RuntimeError: every warm-up turn of a bot failed (the message quotes its log).
    """
    for index in range(turns):
        for bot in ordered(bots, index):
            sample = bot.turn(index, run_id, WARMUP_ADDRESS_OFFSET)
            if sample.error is None:
                bot.sample_replies.setdefault(sample.text, sample.reply[:160])
            else:
                logger.warning("warm-up turn %r to %s failed: %s", sample.text, bot.key, sample.error)
                bot.samples.append(sample)  # counted below, then dropped
    for bot in bots:
        if len(bot.samples) >= turns:
            raise RuntimeError(f"every warm-up turn of {bot.key} failed:\n{servers.tail(bot.server.log)}")
        bot.samples.clear()


def measure(bots: Sequence[Bot], turns: int, pause_s: float, run_id: str) -> None:
    """``turns`` measured turns per bot, one to each bot in turn, with a progress bar."""
    from tqdm import tqdm

    with tqdm(total=turns * len(bots), desc="turns", unit="turn", file=sys.stderr) as bar:
        for index in range(turns):
            for bot in ordered(bots, index):
                bot.samples.append(bot.turn(index, run_id))
                bar.update(1)
                if pause_s:
                    time.sleep(pause_s)


def bot_result(bot: Bot) -> Dict[str, Any]:
    answered = [sample.latency_ms for sample in bot.samples if sample.error is None]
    return {
        "label": bot.label,
        "setup": bot.setup,
        "script": list(bot.script),
        "latency": stats.latency_summary(answered),
        "per_text": stats.per_text_summaries([sample.as_dict() for sample in bot.samples]),
        "errors": stats.count_errors(sample.error for sample in bot.samples),
        "memory_after_warmup": bot.memory_after_warmup,
        "memory_end": bot.memory_end,
        "sample_replies": bot.sample_replies,
        "samples": [sample.as_dict() for sample in bot.samples],
    }


def common_result(args: argparse.Namespace, mode: str, started_at: datetime, load_start: float) -> Dict[str, Any]:
    return {
        "mode": mode,
        "date": started_at.strftime("%Y-%m-%d"),
        "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": args.command,
        "machine": machine_description(),
        "memory_gib": total_memory_gib(),
        "load_1min": {"start": load_start, "end": load_1min()},
        "git": servers.git_state(),
    }


def run_latency(args: argparse.Namespace, model: Path, run_dir: Path) -> Dict[str, Any]:
    started_at, load_start = datetime.now(timezone.utc), load_1min()
    run_id = secrets.token_hex(3)
    stock_model = servers.ensure_stock_bot(servers.STOCK_DIR)
    notes: List[str] = []
    started: List[servers.RunningServer] = []
    skipped: Dict[str, str] = {}
    with stopped_on_exit(started):
        logger.info("Starting the stock bot (%s) and ours (%s) ...", stock_model.name, model.name)
        stock = servers.start_stock(servers.STOCK_DIR, stock_model, run_dir)
        started.append(stock)
        tracker_file = run_dir / "tracker-ours.db"
        ours = start_ours_ready("ours", run_dir, servers.fresh_sqlite_url(tracker_file), started)
        servers.wait_ready(servers.ready_url(stock), stock.process, stock.log)
        bots = [
            Bot("stock", "stock `rasa init` bot", stock, STOCK_SCRIPT, False,
                f"`rasa init --no-prompt` scaffold (moodbot), model {stock_model.name} "
                f"({pipeline_names(servers.STOCK_DIR / 'config.yml')}); `rasa run` on 127.0.0.1 with only the "
                "stock `rest:` channel, no --enable-api, no action server; tracker store: Rasa's default "
                "InMemoryTrackerStore; lock store: InMemoryLockStore"),
            Bot("ours", "ours (SQLite file tracker store)", ours, OURS_SCRIPT, args.message_id,
                ours_setup(f"sqlite:///{tracker_file.relative_to(PROJECT_ROOT)}", model, args.message_id)),
        ]
        if args.memory_variant:
            logger.info("Starting ours with TRACKER_STORE_URL=sqlite:///:memory: ...")
            try:
                memory = start_ours_ready("ours-memory", run_dir, "sqlite:///:memory:", started)
                bots.append(Bot("ours_memory", "ours (sqlite:///:memory: tracker store)", memory, OURS_SCRIPT,
                                args.message_id, ours_setup("sqlite:///:memory:", model, args.message_id)))
            except RuntimeError as error:
                reason = str(error).splitlines()[-1][:200] if str(error) else "did not start"
                skipped["ours_memory"] = f"did not start with sqlite:///:memory: ({reason})"
                servers.stop(started.pop())
        logger.info("Warming up (%d turns each) ...", args.warmup)
        try:
            warm_up(bots, args.warmup, run_id)
        except RuntimeError as error:
            if "ours_memory" in str(error).split("\n", 1)[0] and len(bots) == 3:
                skipped["ours_memory"] = "every warm-up turn failed with sqlite:///:memory:"
                servers.stop(bots.pop().server)
            else:
                raise
        for bot in bots:
            bot.memory_after_warmup = servers.memory_of(bot.server)
        logger.info("Measuring %d turns each, interleaved ...", args.turns)
        measure(bots, args.turns, args.pause_ms / 1000, run_id)
        for bot in bots:
            bot.memory_end = servers.memory_of(bot.server)
    result = common_result(args, "latency", started_at, load_start)
    by_key = {bot.key: bot_result(bot) for bot in bots}
    for key, reason in skipped.items():
        by_key[key] = {"label": "ours (sqlite:///:memory: tracker store)", "skipped": reason,
                       "setup": f"not measured: {reason}"}
    ratio = stats.p50_ratio(by_key["ours"]["latency"], by_key["stock"]["latency"])
    memory_ratio = (stats.p50_ratio(by_key["ours_memory"]["latency"], by_key["stock"]["latency"])
                    if "latency" in by_key.get("ours_memory", {}) else None)
    notes.append("The stores differ: the stock bot keeps conversations in Rasa's InMemoryTrackerStore; ours in "
                 "an SQL tracker store (a SQLite file here, written every turn) with a lease lock store; the "
                 "in-memory-like row shows how much of the gap is the file.")
    notes.append("The bots differ in what a turn does: the moodbot's turns are DIET on count vectors and "
                 "utterances; ours run MiniLM, DIET and the fusion classifier, and \"how much are bananas\" / "
                 "\"where is my order\" call the action server (and its shop database).")
    notes.append("Ours listens on all interfaces (serve.sh passes no --interface); the clients use 127.0.0.1.")
    if args.turns < 200:
        notes.append(f"{args.turns} turns per bot (the default is 200).")
    result.update({
        "turns": args.turns,
        "warmup": args.warmup,
        "pause_ms": args.pause_ms,
        "order": "one turn to each server per round, the order rotated by one every round",
        "conversations": ("each conversation is one pass of the bot's 4-turn script, then a fresh one (1 turn in "
                          "4 starts a conversation); each conversation of ours from its own loopback address, so "
                          "the shipped rate limits refuse nothing"),
        "target_ratio": stats.TARGET_RATIO,
        "ratio_p50": ratio,
        "ratio_p50_memory": memory_ratio,
        "target_met": stats.target_met(ratio),
        "bots": {key: by_key[key] for key in ("stock", "ours", "ours_memory") if key in by_key},
        "notes": notes,
    })
    return result


def run_throughput(args: argparse.Namespace, model: Path, run_dir: Path) -> Dict[str, Any]:
    from tqdm import tqdm

    from benchmarks.bench_abuse import busy_texts

    started_at, load_start = datetime.now(timezone.utc), load_1min()
    run_id = secrets.token_hex(3)
    started: List[servers.RunningServer] = []
    profile_result: Optional[Dict[str, Any]] = None
    notes: List[str] = [
        "The worker pool admits NLU_WORKERS + NLU_QUEUE text parses (2 + 30 by default); the senders beyond that "
        "are answered utter_server_busy, counted apart, and a closed-loop sender sends its next turn as soon as "
        "that answer comes, so with more senders than admissions the busy answers multiply and take server "
        "time of their own (policies, tracker store) from the answered turns."]
    with stopped_on_exit(started):
        tracker_file = run_dir / "tracker-ours.db"
        logger.info("Starting ours (%s) ...", model.name)
        ours = start_ours_ready("ours", run_dir, servers.fresh_sqlite_url(tracker_file), started)
        bot = Bot("ours", "ours", ours, OURS_SCRIPT, args.message_id,
                  ours_setup(f"sqlite:///{tracker_file.relative_to(PROJECT_ROOT)}", model, args.message_id))
        warm_up([bot], args.warmup, run_id)
        spy = None
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            raw = args.profile / "server.raw"
            raw.unlink(missing_ok=True)
            try:
                spy = profile.start_py_spy(ours.rasa_pid or ours.process.pid, int(args.duration), raw,
                                           args.profile / "py-spy.log")
            except FileNotFoundError as error:
                profile_result = {"error": str(error)}
        logger.info("%d senders for %g s ...", args.concurrency, args.duration)
        with tqdm(desc="turns", unit="turn", file=sys.stderr) as bar:
            tally, _ = asyncio.run(clients.load(ours.url, ours.token, OURS_SCRIPT, args.concurrency, args.duration,
                                                busy_texts(), args.message_id, run_id, progress=bar,
                                                think_s=args.think_ms / 1000))
        memory_end = servers.memory_of(ours)
        if spy is not None:
            try:
                spy.wait(timeout=args.duration + 60)
            except Exception:  # noqa: BLE001 - a stuck py-spy must not keep the server running
                spy.kill()
            spy_log = servers.tail(args.profile / "py-spy.log", 5)
            try:
                note = ("Rasa process only (the action server is another process; time spent waiting for it "
                        "is idle and not sampled).")
                profile_result = profile.write_profile(args.profile / "server.raw", args.profile, note)
                profile_result.update({"svg": str(args.profile / "server.svg"),
                                       "summary": str(args.profile / "summary.txt")})
            except RuntimeError as error:
                profile_result = {"error": f"{error}; py-spy said: {spy_log} (py-spy needs ptrace rights on the "
                                           "server: CAP_SYS_PTRACE or kernel.yama.ptrace_scope 0)"}
    result = common_result(args, "throughput", started_at, load_start)
    if args.profile:
        notes.append("Measured while py-spy sampled the server: the throughput is lower than without it.")
    result.update({
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "think_ms": args.think_ms,
        "script": list(OURS_SCRIPT),
        "setup": bot.setup,
        "throughput": clients.throughput_summary(tally, args.duration),
        "memory_end": memory_end,
        "profile": profile_result,
        "notes": notes,
    })
    return result


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of the report (reports/bench-latency)")
    parser.add_argument("--turns", type=int, default=200, help="measured turns per server (200)")
    parser.add_argument("--warmup", type=int, default=8, help="unmeasured turns per server first (8)")
    parser.add_argument("--pause-ms", type=float, default=50.0,
                        help="pause after each request, so one server's leftover work overlaps less with the "
                             "next request (50)")
    parser.add_argument("--no-memory-variant", dest="memory_variant", action="store_false",
                        help="do not also run ours with TRACKER_STORE_URL=sqlite:///:memory:")
    parser.add_argument("--no-message-id", dest="message_id", action="store_false",
                        help="send ours no message_id (by default every turn has one, as the web chat sends)")
    parser.add_argument("--concurrency", type=int, default=0,
                        help="throughput mode: this many concurrent senders against ours alone (e.g. 50)")
    parser.add_argument("--duration", type=float, default=60.0, help="throughput mode: seconds of load (60)")
    parser.add_argument("--think-ms", type=float, default=0.0,
                        help="throughput mode: pause of each sender after an answer (0: send the next turn at once)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="throughput mode: py-spy records the server meanwhile; flame graph + summary here")
    args = parser.parse_args(argv)
    args.command = " ".join(["python -m benchmarks.bench_latency", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.turns < 1 or args.warmup < 1 or (args.concurrency and args.duration <= 0):
        parser.error("--turns and --warmup must be at least 1, --duration positive")
    if args.profile and not args.concurrency:
        parser.error("--profile needs the throughput mode (--concurrency N)")
    model = newest_model()
    if model is None:
        logger.error("no models/*.tar.gz: run make train (scripts/serve.sh serves the newest model there)")
        return 2
    run_dir = RUN_DIR
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    try:
        if args.concurrency:
            result = run_throughput(args, model, run_dir)
        else:
            result = run_latency(args, model, run_dir)
    except KeyboardInterrupt:
        logger.error("interrupted; the servers were stopped")
        return 130
    except RuntimeError as error:
        logger.error("%s\n(the servers were stopped; logs in %s)", error, run_dir)
        return 1
    report = write_report(result, args.out)
    logger.info("report: %s", report)
    print(one_line(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
