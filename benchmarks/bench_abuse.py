"""Text-turn latency idle and under photo/voice-note abuse, and the server's peak memory (`make bench-abuse`).

20 customers send text turns, first to an idle server and then while 4 clients flood it with the heaviest
photos and voice notes it accepts.

Usage: `python -m benchmarks.bench_abuse [--out reports/bench-abuse] [--model ARCHIVE] [--quick]`.

The server is started as it is deployed, in a subprocess: `scripts/rasa_run.py run` (the worker pool installed
first, `NLU_*` settings from this process's environment) with the project's REST channel built from a
credentials file and the action server (`python -m actions.server`) on a seeded SQLite database, both on free
loopback ports, uploads in a temporary folder. A subprocess rather than an in-process server because the
clients must not share the server's event loop and interpreter (20 senders, 4 abuse clients and the
generation of their payloads would otherwise compete with the server's own loop and GIL and be measured as
server latency), because this is the start path `make serve` uses (`rasa_run.py`, the channel from
credentials, Sanic, real HTTP), and because the server's peak memory is then its own process's high-water
mark (`VmHWM` of `/proc/<pid>/status`: no psutil needed). ffmpeg and ffprobe run in their own short-lived
processes and are not counted.

The channel's message and upload rate limits are switched off (`*_rate_per_minute: 0`): every client talks
from 127.0.0.1, so with the shipped limits the per-address buckets would refuse the flood before it reached
message understanding. The bench measures what the worker pool does with the load that gets past them (many
addresses, or a proxy). The clients are server-to-server callers with the bearer token (senders `api:<id>`).

Phases (the model is warmed first by two text turns, a small photo and a short voice note, so the Vosk model
is loaded before anything is measured):

1. idle: `--senders` (20) customers at once, each sending `--turns` (20) text turns (each waits for its
   answer, then pauses 2–5 s, seeded: `--think-s`); the latency of a turn is request → JSON answer, in ms,
   over every answered turn (a `server_busy` answer included; failed requests are counted apart).
2. abuse: `--abusers` (4) clients loop, each sending the next payload as soon as the previous one is answered
   (a closed loop: each holds at most one request open, as a client that waits for its answers does):
   the heaviest accepted photo (a PNG whose bitmap is just under `image_max_decoded_bytes`, RGBA; ~140 KiB on
   the wire) and a voice note just under `audio_max_seconds` (espeak-ng speech as OGG/Opus, or generated
   noise as WAV when espeak-ng is missing), alternately. After `--warm-up-s` (30) seconds of that, so that
   the media lane is full and its queue has waited behind a voice note, the same text turns as in phase 1 are
   measured again. Abuse turns answered with `utter_server_busy` are counted (those answered before the
   last text turn; the requests still open then are dropped).

Reported: p50/p95/max of both phases, the ratio p95 under abuse / p95 idle (target ≤ 2), the abuse turns
(answered, server_busy, errors), the server's peak RSS after phase 1 and at the end (MiB), the 1-minute load
average at each step, the machine (`benchmarks.machine`) and the worker pool's settings. Outputs:
`<out>/results.json` and `<out>/report.md`.

`--quick` is a smoke run (4 senders × 2 turns, 1 abuse client, a 15 s voice note): it exercises every step
in a few minutes; its figures are not the benchmark's.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import math
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from assistant.paths import MODELS_DIR, PROJECT_ROOT
from benchmarks.machine import load_1min, machine_description, total_memory_gib

logger = logging.getLogger("bench_abuse")

DEFAULT_OUT = PROJECT_ROOT / "reports" / "bench-abuse"
TEST_MODELS_DIR = PROJECT_ROOT / "var" / "test-models"
#: p95 under abuse / p95 idle, at most (issue "Verified customers", part 5).
TARGET_RATIO = 2.0
#: Seconds a customer pauses between two turns (reads the answer, types the next line): uniform in this range,
#: seeded per sender. 20 customers then offer ~5 turns a second, about half of what two cores answer; with
#: pauses under a second they would saturate the server by themselves and "idle" would already be queueing.
THINK_S = (2.0, 5.0)
#: Seconds the voice notes fall short of `audio_max_seconds` (container durations are rounded).
VOICE_MARGIN_S = 1.5
#: Seconds one request may take before the client gives up (the media lane's deadline is 45 s).
REQUEST_TIMEOUT_S = 180.0
#: Seconds the server may take to load the model and answer its first message.
START_TIMEOUT_S = 600.0
#: espeak-ng's speaking rate for the voice notes, in words per minute.
WORDS_PER_MINUTE = 130
#: What the text customers say (cycled, each sender from its own offset).
TEXTS = (
    "hi",
    "do you sell oat milk?",
    "how much are bananas",
    "what payment methods do you accept",
    "how long does delivery take",
    "do you have organic apples",
    "thanks, bye",
)
#: The channel's section of the temporary credentials file: rate limits off (see the module docstring).
CHANNEL_CREDENTIALS = {
    "token_env": "CHAT_API_TOKEN",
    "message_rate_per_minute": 0,
    "address_message_rate_per_minute": 0,
    "upload_rate_per_minute": 0,
    "address_rate_per_minute": 0,
    "web_chat": False,
}
WEBHOOK_PATH = "/webhooks/multimodal/webhook"


# --------------------------------------------------------------------------------------------------------
# Pure helpers: statistics, the report, the model, the payloads
# --------------------------------------------------------------------------------------------------------
def latency_summary(latencies_ms: Sequence[float]) -> Dict[str, Optional[float]]:
    """``{"n", "p50_ms", "p95_ms", "max_ms", "mean_ms"}`` of latencies in ms (numpy's linear percentiles);
    ``None`` figures for an empty list."""
    import numpy as np

    if not latencies_ms:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "max_ms": None, "mean_ms": None}
    values = np.asarray(latencies_ms, dtype=float)
    return {
        "n": int(values.size),
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p95_ms": round(float(np.percentile(values, 95)), 1),
        "max_ms": round(float(values.max()), 1),
        "mean_ms": round(float(values.mean()), 1),
    }


def p95_ratio(idle: Dict[str, Any], abuse: Dict[str, Any]) -> Optional[float]:
    """p95 under abuse / p95 idle (2 decimals), ``None`` when either is missing or the idle one is 0."""
    if not idle.get("p95_ms") or abuse.get("p95_ms") is None:
        return None
    return round(abuse["p95_ms"] / idle["p95_ms"], 2)


def is_busy_answer(replies: Sequence[Dict[str, Any]], busy_texts: Sequence[str]) -> bool:
    """Whether the bot's replies to a message (REST answer: ``[{"recipient_id", "text", ...}]``) are the
    worker pool's ``utter_server_busy``."""
    return any((reply.get("text") or "").strip() in busy_texts for reply in replies)


def busy_texts(domain_path: Path = PROJECT_ROOT / "domain.yml") -> List[str]:
    """The texts of ``utter_server_busy`` in the domain.

    Raises:
        KeyError: the domain has no such response.
    """
    import yaml

    domain = yaml.safe_load(domain_path.read_text(encoding="utf-8"))
    return [variant["text"].strip() for variant in domain["responses"]["utter_server_busy"]]


def default_model(models_dir: Path = MODELS_DIR, test_models_dir: Path = TEST_MODELS_DIR) -> Optional[Path]:
    """The newest ``models/*.tar.gz``, else the newest ``var/test-models/test-*.tar.gz``, else ``None``."""
    for folder, pattern in ((models_dir, "*.tar.gz"), (test_models_dir, "test-*.tar.gz")):
        archives = sorted(Path(folder).glob(pattern), key=lambda path: path.stat().st_mtime)
        if archives:
            return archives[-1]
    return None


def heaviest_png(limits: Any = None) -> bytes:
    """The heaviest photo the limits accept: an RGBA PNG (4 bytes a decoded pixel) of 8:5 shape whose bitmap
    is just under ``limits.image_max_decoded_bytes`` (and within ``image_max_pixels``), drawn as smooth
    gradients that compress ~1000:1 (~140 KiB with the default limits, far under ``image_max_bytes``).

    Args:
        limits: A `media.AttachmentLimits` (default: its defaults).
    """
    import numpy as np
    from PIL import Image

    from media.images import decoded_bytes
    from media.limits import AttachmentLimits

    limits = limits or AttachmentLimits()
    pixels = min(limits.image_max_pixels, limits.image_max_decoded_bytes // decoded_bytes("RGBA", (1, 1), "PNG"))
    height = max(1, int(math.sqrt(pixels * 5 / 8)))
    width = max(1, pixels // height)
    rows, cols = np.ogrid[0:height, 0:width]
    bitmap = np.empty((height, width, 4), dtype=np.uint8)
    bitmap[..., 0] = cols % 256
    bitmap[..., 1] = rows % 256
    bitmap[..., 2] = (rows + cols) % 256
    bitmap[..., 3] = 200
    buffer = io.BytesIO()
    Image.fromarray(bitmap, "RGBA").save(buffer, "PNG", compress_level=9)
    return buffer.getvalue()


def voice_note(seconds: float) -> Tuple[bytes, str, str]:
    """A voice note of ``seconds`` seconds: ``(bytes, mime type, file name)``.

    English speech by espeak-ng encoded by ffmpeg as a Telegram voice note (OGG/Opus, 48 kHz mono, 32 kb/s);
    without espeak-ng or ffmpeg, amplitude-modulated noise (loud enough not to count as silence) as a 16 kHz
    mono 16-bit WAV written by soundfile.
    """
    espeak, ffmpeg = shutil.which("espeak-ng"), shutil.which("ffmpeg")
    if espeak and ffmpeg:
        words_needed = seconds / 60 * WORDS_PER_MINUTE * 1.5  # espeak-ng pauses little: 1.5 × is plenty
        sentences: List[str] = []
        while sum(len(sentence.split()) for sentence in sentences) < words_needed:
            sentences.extend(TEXTS)
        words = ". ".join(sentences)
        wav = subprocess.run([espeak, "-v", "en", "-s", str(WORDS_PER_MINUTE), "--stdout", words],
                             capture_output=True, check=True, timeout=300).stdout
        encoded = subprocess.run(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "wav", "-i", "pipe:0", "-t", f"{seconds:.2f}",
             "-ar", "48000", "-ac", "1", "-c:a", "libopus", "-b:a", "32k", "-f", "ogg", "pipe:1"],
            input=wav, capture_output=True, check=True, timeout=300,
        ).stdout
        return encoded, "audio/ogg", "voice.ogg"
    import numpy as np
    import soundfile

    rate = 16_000
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t)  # syllable-like bursts, 3 a second
    samples = (rng.standard_normal(t.size) * 0.2 * envelope).clip(-1, 1)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue(), "audio/wav", "voice.wav"


def format_report(result: Dict[str, Any]) -> str:
    """``report.md``: the headline table, the abuse turns, memory and the conditions of the run."""
    idle, abuse, turns = result["idle"], result["abuse"], result["abuse_turns"]
    machine, load = result["machine"], result["load_1min"]

    def ms(value: Optional[float]) -> str:
        return "–" if value is None else f"{value:.0f}"

    ratio = result["ratio_p95"]
    lines = [
        "# Text turns under photo and voice-note abuse",
        "",
        f"- model: `{result['model']}`",
        f"- date: {result['date']}; machine: {machine['cpu']}, {machine['usable_cores']}/"
        f"{machine['logical_cores']} cores usable, {result['memory_gib']} GiB, Python {machine['python']}",
        f"- command: `{result['command']}`{' (smoke run: not the benchmark figures)' if result['quick'] else ''}",
        f"- load average (1 min): {load['start']:.2f} at start, {load['after_idle']:.2f} after the idle phase, "
        f"{load['end']:.2f} at the end",
        f"- worker pool: {result['worker_pool']}",
        f"- {result['senders']} customers × {result['turns']} text turns per phase, "
        f"{result['think_s'][0]:g}–{result['think_s'][1]:g} s apart; {result['abusers']} abuse clients sending "
        f"{result['photo']['description']} and {result['voice_note']['description']}",
        "",
        "| text turns | p50 ms | p95 ms | max ms | turns | server_busy | errors |",
        "|---|---|---|---|---|---|---|",
        f"| idle | {ms(idle['p50_ms'])} | {ms(idle['p95_ms'])} | {ms(idle['max_ms'])} | {idle['n']} | "
        f"{idle['server_busy']} | {idle['errors']} |",
        f"| under abuse | {ms(abuse['p50_ms'])} | {ms(abuse['p95_ms'])} | {ms(abuse['max_ms'])} | {abuse['n']} | "
        f"{abuse['server_busy']} | {abuse['errors']} |",
        "",
        f"p95 under abuse / p95 idle: **{'–' if ratio is None else f'{ratio:.2f}'}** (target ≤ "
        f"{result['target_ratio']:g}: {'met' if result['target_met'] else 'not met'})",
        "",
        "| abuse turns | sent | answered | server_busy | errors |",
        "|---|---|---|---|---|",
    ]
    for kind in ("photo", "voice_note"):
        row = turns[kind]
        lines.append(f"| {kind.replace('_', ' ')} | {row['sent']} | {row['answered']} | {row['server_busy']} | "
                     f"{row['errors']} |")
    rss = result["peak_rss_mib"]
    lines += [
        "",
        f"Server peak RSS (VmHWM): {rss['after_idle']:.0f} MiB after the idle phase, {rss['end']:.0f} MiB at the "
        "end.",
        "",
    ]
    return "\n".join(lines)


def write_report(result: Dict[str, Any], out: Path) -> None:
    """Writes ``results.json`` and ``report.md`` into ``out`` (created when missing)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    (out / "report.md").write_text(format_report(result), encoding="utf-8")


# --------------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_of(pid: int) -> float:
    """A process's peak resident set size so far (``VmHWM``), in MiB.

    Raises:
        RuntimeError: the process has no such line (gone, or not Linux).
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # KiB → MiB
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM")


def _wait_http(url: str, process: subprocess.Popen, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[1:3]} exited with {process.returncode}: {_tail(log)}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s: {_tail(log)}")


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: Optional[subprocess.Popen]) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@dataclass
class Server:
    """The running Rasa server: its webhook URL, its process id, the bearer token, where it logs."""

    url: str
    pid: int
    token: str
    log: Path


@contextlib.contextmanager
def running_server(model: Path, scratch: Path) -> Iterator[Server]:
    """The action server and Rasa (`scripts/rasa_run.py run`) with the REST channel, started in ``scratch``;
    both stopped on exit.

    Raises:
        RuntimeError: a server exited or did not answer in time (the message quotes its log).
    """
    import yaml

    from shop.db import make_engine
    from shop.seed import create_and_seed

    database_url = f"sqlite:///{scratch / 'shop.db'}"
    engine = make_engine(database_url)
    create_and_seed(engine)
    engine.dispose()
    actions_port, rasa_port = _free_port(), _free_port()
    (scratch / "endpoints.yml").write_text(yaml.safe_dump({"action_endpoint": {
        "url": f"http://127.0.0.1:{actions_port}/webhook", "token": "${ACTION_SERVER_TOKEN}"}}))
    (scratch / "credentials.yml").write_text(
        yaml.safe_dump({"channels.rest.MultimodalRestInput": CHANNEL_CREDENTIALS}))
    token = secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ACTION_SERVER_TOKEN": secrets.token_urlsafe(32),
        "ATTACHMENT_DIR": str(scratch / "uploads"),
        "CHAT_API_TOKEN": token,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "RASA_TELEMETRY_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("ACTIONS_HOST", None)
    actions_log, rasa_log = scratch / "actions.log", scratch / "rasa.log"
    actions = rasa = None
    try:
        with actions_log.open("wb") as sink:
            actions = subprocess.Popen([sys.executable, "-m", "actions.server", "--port", str(actions_port)],
                                       cwd=PROJECT_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
        _wait_http(f"http://127.0.0.1:{actions_port}/health", actions, 120, actions_log)
        with rasa_log.open("wb") as sink:
            rasa = subprocess.Popen(
                [sys.executable, "scripts/rasa_run.py", "run", "--model", str(model), "--endpoints",
                 str(scratch / "endpoints.yml"), "--credentials", str(scratch / "credentials.yml"),
                 "--interface", "127.0.0.1", "--port", str(rasa_port)],
                cwd=PROJECT_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
            )
        _wait_http(f"http://127.0.0.1:{rasa_port}/webhooks/multimodal/", rasa, START_TIMEOUT_S, rasa_log)
        yield Server(f"http://127.0.0.1:{rasa_port}{WEBHOOK_PATH}", rasa.pid, token, rasa_log)
    finally:
        _stop(rasa)
        _stop(actions)


# --------------------------------------------------------------------------------------------------------
# The clients
# --------------------------------------------------------------------------------------------------------
@dataclass
class Attachment:
    """A payload of the abuse clients."""

    kind: str  # "photo" | "voice_note"
    data: bytes
    mime_type: str
    name: str


@dataclass
class Turn:
    """One request and its outcome."""

    kind: str  # "text" | "photo" | "voice_note"
    latency_ms: float
    busy: bool = False
    error: Optional[str] = None


@dataclass
class Tally:
    """Turns of one phase or one client kind."""

    turns: List[Turn] = field(default_factory=list)

    def summary(self) -> Dict[str, Any]:
        """Latencies of the answered turns (``server_busy`` answers included), the busy and failed counts."""
        answered = [turn for turn in self.turns if turn.error is None]
        return {**latency_summary([turn.latency_ms for turn in answered]),
                "server_busy": sum(turn.busy for turn in answered),
                "errors": sum(turn.error is not None for turn in self.turns)}


async def send(session: Any, server: Server, sender: str, text: str, busy: Sequence[str],
               attachment: Optional[Attachment] = None) -> Turn:
    """One message to the REST channel (multipart with the file for an attachment, JSON otherwise); never
    raises: a failure (an HTTP error, a timeout, or an answer without any reply) is a `Turn` with ``error``."""
    import aiohttp

    headers = {"Authorization": f"Bearer {server.token}"}
    if attachment is None:
        body: Dict[str, Any] = {"json": {"sender": sender, "message": text}}
    else:
        form = aiohttp.FormData()
        form.add_field("sender", sender)
        form.add_field("message", text)
        form.add_field("files", attachment.data, filename=attachment.name, content_type=attachment.mime_type)
        body = {"data": form}
    kind = attachment.kind if attachment else "text"
    started = time.perf_counter()
    try:
        async with session.post(server.url, headers=headers, **body) as response:
            payload = await response.json(content_type=None)
            latency_ms = (time.perf_counter() - started) * 1000
            if response.status != 200 or not isinstance(payload, list):
                return Turn(kind, latency_ms, error=f"HTTP {response.status}: {str(payload)[:200]}")
            if not payload:  # every message here has an answer; none means an action failed (see the logs)
                return Turn(kind, latency_ms, error="no reply")
            return Turn(kind, latency_ms, busy=is_busy_answer(payload, busy))
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
        return Turn(kind, (time.perf_counter() - started) * 1000, error=f"{type(error).__name__}: {error}")


async def text_phase(server: Server, senders: int, turns: int, phase: str, busy: Sequence[str],
                     think_s: Tuple[float, float] = THINK_S, seed: int = 0) -> Tally:
    """``senders`` customers at once, ``turns`` text turns each with a pause between them; one progress bar."""
    import aiohttp
    from tqdm import tqdm

    tally = Tally()
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    with tqdm(total=senders * turns, desc=f"{phase} text turns", unit="turn", file=sys.stderr) as bar:
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def customer(index: int) -> None:
                rng = random.Random(seed * 1000 + index)
                sender = f"bench-{phase}-{index}-{secrets.token_hex(4)}"
                for turn in range(turns):
                    text = TEXTS[(index + turn) % len(TEXTS)]
                    tally.turns.append(await send(session, server, sender, text, busy))
                    bar.update(1)
                    if turn + 1 < turns:
                        await asyncio.sleep(rng.uniform(*think_s))

            await asyncio.gather(*(customer(index) for index in range(senders)))
    return tally


async def abuse_loop(server: Server, index: int, payloads: Sequence[Attachment], stop: asyncio.Event,
                     busy: Sequence[str], tallies: Dict[str, Tally]) -> None:
    """One abuse client: the payloads in turn, each sent as soon as the previous one was answered."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        sent = 0
        while not stop.is_set():
            payload = payloads[(index + sent) % len(payloads)]
            turn = await send(session, server, f"bench-abuser-{index}", "", busy, payload)
            if not stop.is_set():  # a turn cut short by the end of the run is not counted
                tallies[payload.kind].turns.append(turn)
            sent += 1


async def measure(server: Server, args: argparse.Namespace, payloads: Sequence[Attachment],
                  busy: Sequence[str]) -> Dict[str, Any]:
    """Warm-up, the idle phase and the abuse phase against ``server``; the raw figures."""
    import aiohttp

    from media.limits import AttachmentLimits

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as session:
        small_photo = Attachment("photo", heaviest_png(AttachmentLimits(image_max_decoded_bytes=4 * 2**20)),
                                 "image/png", "small.png")
        short_note = Attachment("voice_note", *voice_note(3.0))
        for text, attachment in (("hi", None), ("how much are bananas", None), ("", small_photo),
                                 ("", short_note)):
            turn = await send(session, server, "bench-warm-up", text, busy, attachment)
            if turn.error:
                raise RuntimeError(f"warm-up message failed: {turn.error}")
    load = {"start": load_1min()}
    think_s = tuple(args.think_s)
    idle = await text_phase(server, args.senders, args.turns, "idle", busy, think_s, seed=1)
    load["after_idle"] = load_1min()
    rss_after_idle = peak_rss_of(server.pid)

    stop = asyncio.Event()
    tallies = {"photo": Tally(), "voice_note": Tally()}
    abusers = [asyncio.create_task(abuse_loop(server, index, payloads, stop, busy, tallies))
               for index in range(args.abusers)]
    await asyncio.sleep(args.warm_up_s)
    abused = await text_phase(server, args.senders, args.turns, "abuse", busy, think_s, seed=1)
    stop.set()
    load["end"] = load_1min()
    rss_end = peak_rss_of(server.pid)
    for task in abusers:
        task.cancel()
    await asyncio.gather(*abusers, return_exceptions=True)
    return {"idle": idle, "abuse": abused, "abuse_tallies": tallies, "load_1min": load,
            "peak_rss_mib": {"after_idle": round(rss_after_idle, 1), "end": round(rss_end, 1)}}


def summarise(raw: Dict[str, Any], args: argparse.Namespace, model: Path, payloads: Sequence[Attachment],
              command: str) -> Dict[str, Any]:
    """The JSON-ready result of one run (see the module docstring)."""
    from channels.worker_pool import WorkerPoolSettings

    settings = WorkerPoolSettings.from_env()
    idle, abuse = raw["idle"].summary(), raw["abuse"].summary()
    ratio = p95_ratio(idle, abuse)
    abuse_turns = {}
    for kind, tally in raw["abuse_tallies"].items():
        row = tally.summary()
        abuse_turns[kind] = {"sent": len(tally.turns), "answered": row["n"], "server_busy": row["server_busy"],
                             "errors": row["errors"], "p50_ms": row["p50_ms"], "p95_ms": row["p95_ms"]}
    photo = next(p for p in payloads if p.kind == "photo")
    note = next(p for p in payloads if p.kind == "voice_note")
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "command": command,
        "quick": args.quick,
        "model": model.name,
        "machine": machine_description(),
        "memory_gib": total_memory_gib(),
        "worker_pool": (f"text {settings.text.workers} workers + {settings.text.queue} queued, "
                        f"{settings.text.deadline_s:g} s; media {settings.media.workers} + "
                        f"{settings.media.queue}, {settings.media.deadline_s:g} s"),
        "senders": args.senders,
        "turns": args.turns,
        "abusers": args.abusers,
        "warm_up_s": args.warm_up_s,
        "think_s": list(args.think_s),
        "photo": {"description": f"a {len(photo.data) / 1024:.0f} KiB RGBA PNG decoding to "
                                 f"{_png_decoded_mib(photo.data):.0f} MiB", "bytes": len(photo.data)},
        "voice_note": {"description": f"a {args.voice_s:.1f} s voice note ({note.mime_type}, "
                                      f"{len(note.data) / 1024:.0f} KiB)",
                       "seconds": args.voice_s, "bytes": len(note.data)},
        "idle": idle,
        "abuse": abuse,
        "ratio_p95": ratio,
        "target_ratio": TARGET_RATIO,
        "target_met": ratio is not None and ratio <= TARGET_RATIO,
        "abuse_turns": abuse_turns,
        "peak_rss_mib": raw["peak_rss_mib"],
        "load_1min": raw["load_1min"],
    }


def _png_decoded_mib(data: bytes) -> float:
    from PIL import Image

    from media.images import decoded_bytes

    with Image.open(io.BytesIO(data)) as image:
        return decoded_bytes(image.mode, image.size, image.format) / 2**20


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for results.json and report.md")
    parser.add_argument("--model", type=Path, default=None,
                        help="model archive (default: newest models/*.tar.gz, else var/test-models/test-*.tar.gz)")
    parser.add_argument("--quick", action="store_true", help="smoke run: few turns, 1 abuse client, short note")
    parser.add_argument("--senders", type=int, default=None, help="text customers at once (20; quick 4)")
    parser.add_argument("--turns", type=int, default=None, help="text turns per customer and phase (20; quick 2)")
    parser.add_argument("--abusers", type=int, default=None, help="abuse clients (4; quick 1)")
    parser.add_argument("--think-s", type=float, nargs=2, default=list(THINK_S), metavar=("MIN", "MAX"),
                        help="seconds a customer pauses between turns (uniform; default 2 5)")
    parser.add_argument("--warm-up-s", type=float, default=None,
                        help="seconds of abuse before the text turns are measured (30; quick 3)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    defaults = (4, 2, 1, 3.0) if args.quick else (20, 20, 4, 30.0)
    for name, value in zip(("senders", "turns", "abusers", "warm_up_s"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    model = args.model or default_model()
    if model is None or not Path(model).is_file():
        logger.error("no model archive (%s): run make train, or pass --model / MODEL=", model)
        return 2

    from media.limits import AttachmentLimits

    limits = AttachmentLimits()
    args.voice_s = 15.0 if args.quick else limits.audio_max_seconds - VOICE_MARGIN_S
    logger.info("Building the payloads: the heaviest accepted photo and a %.1f s voice note ...", args.voice_s)
    payloads = [Attachment("photo", heaviest_png(limits), "image/png", "heavy.png"),
                Attachment("voice_note", *voice_note(args.voice_s))]
    busy = busy_texts()
    command = " ".join(["python -m benchmarks.bench_abuse", *(sys.argv[1:] if argv is None else argv)])
    with tempfile.TemporaryDirectory(prefix="bench-abuse-") as scratch:
        logger.info("Starting the action server and Rasa with %s (logs in %s) ...", Path(model).name, scratch)
        with running_server(Path(model), Path(scratch)) as server:
            try:
                raw = asyncio.run(measure(server, args, payloads, busy))
            except RuntimeError:
                logger.error("server log:\n%s", _tail(server.log, 40))
                raise
    result = summarise(raw, args, Path(model), payloads, command)
    write_report(result, args.out)
    sys.stdout.write(format_report(result) + "\n")
    logger.info("report: %s", args.out / "report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
