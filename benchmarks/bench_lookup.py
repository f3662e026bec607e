"""Product look-up at catalog scale: ``ShopRepository.find_product`` on a 50,000-product catalog.

Usage: ``python -m benchmarks.bench_lookup [--size 50000] [--per-class 200] [--postgres-url URL]
[--out reports/bench-lookup]``.

The catalog and queries come from :mod:`benchmarks.lookup_catalog` (fixed seeds). Each backend gets a fresh
database: SQLite a file in a temporary folder, PostgreSQL a uniquely named schema on the server of
``--postgres-url`` (default ``DATABASE_URL`` when it names PostgreSQL, else
``postgresql+psycopg2://postgres@127.0.0.1:5432/postgres``), dropped afterwards; an unreachable server is
reported as skipped. The schema is made as ``make db`` makes it (``create_all`` + ``ensure_search_index``),
the products are inserted with Core in batches (search text and vocabulary written as the model layer would)
and PostgreSQL's statistics are refreshed (``ANALYZE``).

Each query is looked up once, timed with ``time.perf_counter`` around ``find_product`` (the whole call: SQL,
re-ranking, views), after 20 warm-up look-ups of other texts; this process's CPU time
(``time.process_time``) is reported beside it, as wall-clock time on a shared machine includes waiting for a
core (for PostgreSQL the server's CPU time is not in it). Reported per backend: p50/p95/p99 ms over all
queries and per class, and the hit rate per class (the expected product found; for misses, nothing found).
Target: p95 <= 20 ms on both backends.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

from sqlalchemy import insert, text
from sqlalchemy.engine import Engine
from tqdm import tqdm

from benchmarks.lookup_catalog import CatalogRow, LookupQuery, generate_catalog, generate_queries
from benchmarks.machine import machine_description
from shop import lookup, matching
from shop.db import make_engine, make_session_factory
from shop.models import Base, Product, add_terms
from shop.repository import ShopRepository

logger = logging.getLogger(__name__)

TARGET_P95_MS = 20.0
DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
LOAD_BATCH = 1000
WARM_UP = 20
CLASSES = ("exact", "plural", "typo", "variant", "miss")


def load_catalog(engine: Engine, rows: Sequence[CatalogRow], label: str) -> float:
    """Create the schema and insert ``rows``; return the seconds it took."""
    started = time.perf_counter()
    Base.metadata.create_all(engine)
    lookup.ensure_search_index(engine)
    with engine.begin() as connection:
        for start in tqdm(range(0, len(rows), LOAD_BATCH), desc=f"load {label}", unit="batch"):
            batch = []
            for row in rows[start : start + LOAD_BATCH]:
                columns = row.columns()
                columns["search_text"] = matching.search_text(
                    row.name, row.kind, row.category, row.coarse_category
                )
                batch.append(columns)
            connection.execute(insert(Product), batch)
            add_terms(connection, [columns["search_text"] for columns in batch])
        if connection.dialect.name == "postgresql":
            connection.execute(text("ANALYZE products"))
            connection.execute(text("ANALYZE product_terms"))
    return time.perf_counter() - started


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in (0, 1]) of non-empty ``values``."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1))
    return ordered[index]


def time_lookups(repository: ShopRepository, queries: Sequence[LookupQuery]) -> Dict[str, Any]:
    """Time ``find_product`` per query; summarise latency and hits per class and overall."""
    for index in range(WARM_UP):
        repository.find_product(f"warm up {index} {queries[index % len(queries)].text[::-1]}")
    per_class: Dict[str, Dict[str, List]] = {
        name: {"ms": [], "cpu_ms": [], "hits": [], "wrong": []} for name in CLASSES
    }
    for query in queries:
        started, started_cpu = time.perf_counter(), time.process_time()
        match = repository.find_product(query.text)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        bucket = per_class[query.kind]
        bucket["cpu_ms"].append((time.process_time() - started_cpu) * 1000.0)
        found = match.product.sku if match.product is not None else None
        bucket["ms"].append(elapsed_ms)
        bucket["hits"].append(found == query.sku)
        if found != query.sku and len(bucket["wrong"]) < 10:
            bucket["wrong"].append({"query": query.text, "expected": query.sku, "found": found})
    summary: Dict[str, Any] = {"classes": {}}
    every: List[float] = []
    every_cpu: List[float] = []
    for name, bucket in per_class.items():
        if not bucket["ms"]:
            continue
        every.extend(bucket["ms"])
        every_cpu.extend(bucket["cpu_ms"])
        summary["classes"][name] = {
            "queries": len(bucket["ms"]),
            "p50_ms": round(statistics.median(bucket["ms"]), 2),
            "p95_ms": round(percentile(bucket["ms"], 0.95), 2),
            "p99_ms": round(percentile(bucket["ms"], 0.99), 2),
            "cpu_p95_ms": round(percentile(bucket["cpu_ms"], 0.95), 2),
            "hit_rate": round(sum(bucket["hits"]) / len(bucket["hits"]), 4),
            "wrong_examples": bucket["wrong"],
        }
    summary.update(
        queries=len(every),
        p50_ms=round(statistics.median(every), 2),
        p95_ms=round(percentile(every, 0.95), 2),
        p99_ms=round(percentile(every, 0.99), 2),
        cpu_p50_ms=round(statistics.median(every_cpu), 2),
        cpu_p95_ms=round(percentile(every_cpu, 0.95), 2),
        meets_target=percentile(every, 0.95) <= TARGET_P95_MS,
    )
    return summary


@contextmanager
def sqlite_engine() -> Iterator[Engine]:
    """An engine on a SQLite file in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-lookup-") as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'catalog.db'}")
        try:
            yield engine
        finally:
            engine.dispose()


def postgres_problem(url: str) -> Optional[str]:
    """Why the PostgreSQL server of ``url`` cannot be used (one line), or None when it answers."""
    try:
        engine = make_engine(url)
    except Exception as exc:  # noqa: BLE001 - a malformed URL or a missing driver is reported, not raised
        return f"{type(exc).__name__}: {exc}"
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001 - an unreachable server skips the backend
        return f"{type(exc).__name__} (server unreachable?)"
    finally:
        engine.dispose()


@contextmanager
def postgres_engine(url: str) -> Iterator[Engine]:
    """An engine whose connections use a fresh schema on the server of ``url``; the schema is dropped
    afterwards."""
    schema = f"bench_lookup_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
        try:
            yield engine
        finally:
            engine.dispose()
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


def run_backend(
    engine: Engine, label: str, rows: Sequence[CatalogRow], queries: Sequence[LookupQuery]
) -> Dict[str, Any]:
    """Load the catalog into ``engine`` and time the queries."""
    load_s = load_catalog(engine, rows, label)
    result = time_lookups(ShopRepository(make_session_factory(engine)), queries)
    result["load_s"] = round(load_s, 1)
    with engine.connect() as connection:
        result["server"] = (
            connection.execute(text("select sqlite_version()")).scalar()
            if engine.dialect.name == "sqlite"
            else connection.execute(text("show server_version")).scalar()
        )
    return result


def write_report(out: Path, results: Dict[str, Any]) -> None:
    """``results.json`` and ``report.md`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# Product look-up at catalog scale",
        "",
        f"{results['size']:,} generated products (seed {results['catalog_seed']}), {results['per_class']} "
        f"queries per class; `ShopRepository.find_product`, each query once after {WARM_UP} warm-up "
        "look-ups. "
        f"Target: p95 <= {TARGET_P95_MS:.0f} ms. Machine: {results['machine']['cpu']}, "
        f"{results['machine']['usable_cores']} usable cores, 1-minute load average "
        f"{results['load_average']} at the start.",
        "",
        "| backend | version | load s | p50 ms | p95 ms | p99 ms | target | CPU p50 / p95 ms "
        "| hit rate: exact | plural | typo | variant | miss |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, data in results["backends"].items():
        if "skipped" in data:
            lines.append(f"| {name} | skipped: {data['skipped']} | | | | | | | | | | |")
            continue
        hits = " | ".join(f"{data['classes'][c]['hit_rate']:.1%}" for c in CLASSES if c in data["classes"])
        lines.append(
            f"| {name} | {data['server']} | {data['load_s']} | {data['p50_ms']} | {data['p95_ms']} | "
            f"{data['p99_ms']} | {'met' if data['meets_target'] else 'missed'} | "
            f"{data['cpu_p50_ms']} / {data['cpu_p95_ms']} | {hits} |"
        )
    lines += ["", "Per class (p50 / p95 / p99 ms):", ""]
    for name, data in results["backends"].items():
        for kind, row in data.get("classes", {}).items():
            lines.append(
                f"- {name} {kind}: {row['p50_ms']} / {row['p95_ms']} / {row['p99_ms']} "
                f"(CPU p95 {row['cpu_p95_ms']})"
            )
            lines.extend(
                f"  - wrong: `{wrong['query']}` → {wrong['found']} (expected {wrong['expected']})"
                for wrong in row["wrong_examples"][:3]
            )
    lines += [
        "",
        "Wall-clock times include waiting for a core, so they grow with the machine's load average; CPU "
        "times are this process's (`time.process_time`): for SQLite the whole look-up, for PostgreSQL the "
        "client's share only (the server's work runs in its own process).",
        "",
        "Hit rate: the expected product is `find_product(...).product` (misses: no product). Query classes "
        "are described in `benchmarks/lookup_catalog.py`.",
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns 0, or 1 when a backend missed the target."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_lookup", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--size", type=int, default=50_000, help="products in the catalog (default 50000)")
    parser.add_argument("--per-class", type=int, default=200, help="queries per class (default 200)")
    parser.add_argument("--postgres-url", default=None, help="PostgreSQL server for a temporary schema")
    parser.add_argument("--skip-postgres", action="store_true", help="time SQLite only")
    parser.add_argument("--out", type=Path, default=Path("reports/bench-lookup"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    env_url = os.environ.get("DATABASE_URL", "").strip()
    postgres_url = args.postgres_url or (
        env_url if env_url.startswith("postgresql") else DEFAULT_POSTGRES_URL
    )

    catalog_seed = 7
    rows = generate_catalog(args.size, seed=catalog_seed)
    queries = generate_queries(rows, args.per_class)
    results: Dict[str, Any] = {
        "size": args.size,
        "catalog_seed": catalog_seed,
        "per_class": args.per_class,
        "machine": machine_description(),
        "load_average": round(os.getloadavg()[0], 2),
        "date": time.strftime("%Y-%m-%d"),
        "backends": {},
    }
    with sqlite_engine() as engine:
        results["backends"]["sqlite"] = run_backend(engine, "sqlite", rows, queries)
    if args.skip_postgres:
        results["backends"]["postgresql"] = {"skipped": "--skip-postgres"}
    else:
        problem = postgres_problem(postgres_url)
        if problem:
            logger.warning("PostgreSQL skipped: %s", problem)
            results["backends"]["postgresql"] = {"skipped": problem}
        else:
            with postgres_engine(postgres_url) as engine:
                results["backends"]["postgresql"] = run_backend(engine, "postgresql", rows, queries)
    write_report(args.out, results)
    for name, data in results["backends"].items():
        if "skipped" in data:
            print(f"{name}: skipped ({data['skipped']})")
        else:
            typo = data["classes"]["typo"]["hit_rate"]
            print(
                f"{name}: p50 {data['p50_ms']} ms, p95 {data['p95_ms']} ms, p99 {data['p99_ms']} ms "
                f"(CPU p95 {data['cpu_p95_ms']} ms), typo hit rate {typo:.1%}, load {data['load_s']} s"
            )
    print(f"report: {args.out / 'report.md'}")
    timed = [data for data in results["backends"].values() if "skipped" not in data]
    return 0 if all(data["meets_target"] for data in timed) else 1


if __name__ == "__main__":
    sys.exit(main())
