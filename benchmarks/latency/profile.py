"""`make profile-server`: py-spy's samples of our server under load, summarised and drawn as a flame graph.

py-spy records the Rasa process (``--pid``, all threads that are not idle, 100 samples a second) in its ``raw``
format: one line per distinct stack, ``frame;frame;...;leaf count``, each frame ``function (file:line)`` with
the file shortened to its package path (``rasa/core/policies/ted_policy.py``). Samples of threads that only
wait (leaf frame in :data:`IDLE_LEAVES`: idle thread-pool workers, the event loop's poll) are left out; from
the other lines:

- the inclusive share of each component of the turn (:data:`CATEGORIES`): the samples whose stack holds a
  frame of it, over all samples (the same sample may count for several components: DIET runs inside the
  graph that the processor runs; TensorFlow runs inside DIET and TED);
- the top functions by inclusive and by own (leaf) samples;
- a flame graph (``server.svg``: callers above callees, width = samples, hover for the figures), drawn here
  because py-spy writes one format per recording.
"""
from __future__ import annotations

import hashlib
import html
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

#: Components of a turn and the frames that belong to them (regular expressions on ``function (file``).
CATEGORIES: Tuple[Tuple[str, str], ...] = (
    ("jsonschema (validation)", r"\(jsonschema/"),
    ("MiniLM: sentence_transformers / transformers / torch", r"\((sentence_transformers|transformers|torch)/"),
    ("TED policy", r"ted_policy\.py"),
    ("UnexpecTED intent policy", r"unexpected_intent_policy\.py"),
    ("DIET classifier", r"diet_classifier\.py"),
    ("TensorFlow / Keras (inside DIET, TED, ...)", r"\((tensorflow|keras)/"),
    ("tracker store / events from_dict", r"tracker_store\.py|\(stores/tracker\.py|^from_dict \(rasa/shared/core/"
                                         r"trackers\.py|^(deserialise_events|from_parameters|_from_parameters|"
                                         r"from_dict) \(rasa/shared/core/events\.py|\(sqlalchemy/"),
    ("RulePolicy", r"rule_policy\.py"),
    ("MemoizationPolicy", r"memoization\.py"),
    ("project components (components/, encoders/)", r"\((components|encoders)/"),
    ("SQLAlchemy / SQLite (tracker store queries, connections)", r"\(sqlalchemy/|_sqlite_pragmas"),
    ("NLU graph in the worker pool's threads", r"\(channels/worker_pool\.py"),
    ("event loop thread (HTTP, Rasa's processor, the policies)", r"^main \(rasa/__main__\.py"),
)

#: Leaf frames of threads that wait rather than work (py-spy's own idle detection misses threads blocked in C
#: calls such as ``SimpleQueue.get``): the thread pools' idle workers, ``threading`` waits, selectors, and the
#: uvloop event loop itself (its Python callbacks show as deeper frames).
IDLE_LEAVES = re.compile(r"^(_worker \(concurrent/futures/thread\.py|wait \(threading\.py|"
                         r"_wait_for_tstate_lock \(threading\.py|select \(selectors\.py|"
                         r"serve \(sanic/server/runners\.py|get \(queue\.py)")

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_LINE_NO = re.compile(r":\d+\)$")


def strip_line(frame: str) -> str:
    """``f (a/b.py:12)`` → ``f (a/b.py)``: one node per function, not per line."""
    return _LINE_NO.sub(")", frame)


def parse_raw(text: str) -> List[Tuple[List[str], int]]:
    """py-spy's raw (collapsed) format: ``[(frames root first, samples)]``; malformed lines are skipped."""
    stacks = []
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match and match["stack"]:
            stacks.append((match["stack"].split(";"), int(match["count"])))
    return stacks


def split_idle(stacks: Sequence[Tuple[List[str], int]]
               ) -> Tuple[List[Tuple[List[str], int]], int]:
    """``(busy stacks, idle samples)``: stacks whose leaf frame is a wait (:data:`IDLE_LEAVES`) left out."""
    busy, idle = [], 0
    for frames, count in stacks:
        if IDLE_LEAVES.match(frames[-1]):
            idle += count
        else:
            busy.append((frames, count))
    return busy, idle


def category_shares(stacks: Sequence[Tuple[List[str], int]],
                    categories: Sequence[Tuple[str, str]] = CATEGORIES) -> Dict[str, float]:
    """Each category's inclusive share of all samples, in % (1 decimal)."""
    total = sum(count for _, count in stacks) or 1
    shares = {}
    for name, pattern in categories:
        regex = re.compile(pattern)
        hits = sum(count for frames, count in stacks if any(regex.search(frame) for frame in frames))
        shares[name] = round(100 * hits / total, 1)
    return shares


def top_functions(stacks: Sequence[Tuple[List[str], int]], limit: int = 25) -> Dict[str, List[Tuple[str, int]]]:
    """``{"inclusive": [(function, samples)], "self": [...]}``, most samples first (functions without lines)."""
    inclusive: Counter = Counter()
    own: Counter = Counter()
    for frames, count in stacks:
        names = [strip_line(frame) for frame in frames]
        for name in set(names):
            inclusive[name] += count
        own[names[-1]] += count
    return {"inclusive": inclusive.most_common(limit), "self": own.most_common(limit)}


def summary_text(stacks: Sequence[Tuple[List[str], int]], note: str = "", limit: int = 25) -> str:
    """The text summary of the working samples (:func:`split_idle`): the components' shares, then the top
    functions (inclusive and own)."""
    everything = sum(count for _, count in stacks)
    stacks, idle = split_idle(stacks)
    total = sum(count for _, count in stacks)
    lines = [f"py-spy samples of the server under load: {everything} (threads py-spy saw active; 100 Hz), of "
             f"which {idle} ({100 * idle / (everything or 1):.1f} %) were waits (idle pool workers, the event "
             f"loop's poll) and are left out: the shares below are of the other {total} (per thread: two threads "
             "sampled at once count twice, and a thread waiting for the GIL counts as working)"]
    if note:
        lines.append(note)
    lines += ["", "Inclusive share of the samples by component (a sample may count for several):"]
    for name, share in category_shares(stacks).items():
        lines.append(f"  {share:5.1f} %  {name}")
    tops = top_functions(stacks, limit)
    for kind, title in (("inclusive", "inclusive (the function or anything it calls)"),
                        ("self", "own samples (the function itself at the top of the stack)")):
        lines += ["", f"Top {limit} functions, {title}:"]
        for name, count in tops[kind]:
            lines.append(f"  {100 * count / (total or 1):5.1f} %  {count:6d}  {name}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------------
# Flame graph
# --------------------------------------------------------------------------------------------------------
@dataclass
class _Node:
    name: str
    count: int = 0
    children: Dict[str, "_Node"] = field(default_factory=dict)


def _tree(stacks: Iterable[Tuple[List[str], int]]) -> _Node:
    root = _Node("all")
    for frames, count in stacks:
        root.count += count
        node = root
        for frame in frames:
            name = strip_line(frame)
            node = node.children.setdefault(name, _Node(name))
            node.count += count
    return root


def _colour(name: str) -> str:
    digest = hashlib.md5(name.encode()).digest()
    return f"rgb({205 + digest[0] % 50},{80 + digest[1] % 130},{digest[2] % 60})"


def flame_svg(stacks: Sequence[Tuple[List[str], int]], title: str = "server", width: int = 1400,
              row: int = 17, min_px: float = 0.3) -> str:
    """An SVG flame graph (icicle: the root on top) of the stacks; frames narrower than ``min_px`` are left out."""
    root = _tree(stacks)
    total = root.count or 1
    scale = (width - 20) / total
    rects: List[str] = []
    depth_max = 0

    def draw(node: _Node, x: float, depth: int) -> None:
        nonlocal depth_max
        w = node.count * scale
        if w < min_px:
            return
        depth_max = max(depth_max, depth)
        y = 40 + depth * row
        share = 100 * node.count / total
        label = html.escape(node.name)
        rects.append(f'<g><title>{label} — {node.count} samples ({share:.1f} %)</title>'
                     f'<rect x="{10 + x:.2f}" y="{y}" width="{w:.2f}" height="{row - 1}" '
                     f'fill="{_colour(node.name)}" rx="1"/>')
        chars = int(w / 6.5)
        if chars >= 4:
            text = node.name if len(node.name) <= chars else node.name[: chars - 2] + ".."
            rects.append(f'<text x="{12 + x:.2f}" y="{y + row - 5}">{html.escape(text)}</text>')
        rects.append("</g>")
        offset = x
        for child in sorted(node.children.values(), key=lambda child: child.name):
            draw(child, offset, depth + 1)
            offset += child.count * scale

    draw(root, 0.0, 0)
    height = 40 + (depth_max + 1) * row + 20
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="11">',
        '<rect width="100%" height="100%" fill="#fdfdf6"/>',
        f'<text x="10" y="24" font-size="15">{html.escape(title)} ({total} samples; hover a frame)</text>',
        *rects,
        "</svg>",
    ])


# --------------------------------------------------------------------------------------------------------
# Running py-spy
# --------------------------------------------------------------------------------------------------------
def py_spy_path() -> Optional[str]:
    """py-spy of this interpreter's environment, else the one on PATH, else ``None``."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.is_file() else shutil.which("py-spy")


def start_py_spy(pid: int, duration_s: int, raw_out: Path, log: Path, rate: int = 100) -> subprocess.Popen:
    """``py-spy record --pid PID --duration D --rate R --format raw -o raw_out`` in the background.

    Raises:
        FileNotFoundError: py-spy is not installed (``pip install -r requirements-dev.txt -c constraints.txt``).
    """
    spy = py_spy_path()
    if spy is None:
        raise FileNotFoundError("py-spy is not installed: .venv/bin/pip install -r requirements-dev.txt "
                                "-c constraints.txt")
    raw_out.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        return subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(duration_s), "--rate",
                                 str(rate), "--format", "raw", "--output", str(raw_out)],
                                stdout=sink, stderr=subprocess.STDOUT)


def write_profile(raw_out: Path, out: Path, note: str = "") -> Dict[str, object]:
    """``server.svg``, ``summary.txt`` and the shares as a dict, from py-spy's raw file.

    Raises:
        RuntimeError: the raw file is missing or holds no samples.
    """
    if not raw_out.is_file():
        raise RuntimeError(f"py-spy wrote no {raw_out}")
    stacks = parse_raw(raw_out.read_text(errors="replace"))
    busy, idle = split_idle(stacks)
    if not busy:
        raise RuntimeError(f"{raw_out} holds no samples of a working thread")
    (out / "server.svg").write_text(
        flame_svg(busy, "Rasa server (ours) under the throughput load, waits left out"), encoding="utf-8")
    (out / "summary.txt").write_text(summary_text(stacks, note), encoding="utf-8")
    return {"samples": sum(count for _, count in stacks), "idle_samples": idle,
            "shares_pct": category_shares(busy), "top_inclusive": top_functions(busy, 10)["inclusive"]}
