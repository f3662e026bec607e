"""Rasa's command line with the project's worker pool installed: what the run scripts start instead of `rasa`.

`python scripts/rasa_run.py run --endpoints endpoints.yml ...` (or `shell ...`) takes exactly Rasa's
arguments. Before Rasa starts, it installs the bounded worker pool for message understanding
(`channels.worker_pool.install_worker_pool`, settings from the `NLU_*` environment variables), so that a
heavy photo or voice note cannot stall the other customers' turns. The project's channels install the same
pool when Rasa builds them; installing twice is harmless. For `run` and `shell` it first connects once to the
stores the endpoints file names (`stores.preflight`), so an unreachable tracker store or Redis is a clear error
at start-up instead of an endless retry or a silent fall-back to memory.

It also installs `runtime.rasa_speedups` (two per-turn costs of Rasa removed, results unchanged).

Exit code: Rasa's, 2 for malformed `NLU_*` settings, 3 when a store does not answer.
"""
from __future__ import annotations

import _bootstrap  # noqa: F401  (the project root on sys.path: scripts/_bootstrap.py)

import sys
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Installs the worker pool, then runs Rasa's command line with ``argv`` (default: ``sys.argv[1:]``)."""
    from channels.worker_pool import install_worker_pool
    from stores.preflight import StoreUnavailable, check_endpoints, endpoints_argument

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        install_worker_pool()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args[:1] in (["run"], ["shell"]):
        try:
            check_endpoints(endpoints_argument(args) or "endpoints.yml")
        except StoreUnavailable as error:
            print(f"error: {error}. Start it, or fix TRACKER_STORE_URL / REDIS_URL (README: Configuration).",
                  file=sys.stderr)
            return 3
    from rasa.__main__ import main as rasa_main

    from runtime import rasa_speedups

    rasa_speedups.install()

    sys.argv = ["rasa", *args]
    rasa_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
