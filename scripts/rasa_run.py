"""Rasa's command line with the project's worker pool installed: what the run scripts start instead of `rasa`.

`python scripts/rasa_run.py run --endpoints endpoints.yml ...` (or `shell ...`) takes exactly Rasa's
arguments. Before Rasa starts, it installs the bounded worker pool for message understanding
(`channels.worker_pool.install_worker_pool`, settings from the `NLU_*` environment variables), so that a
heavy photo or voice note cannot stall the other customers' turns. The project's channels install the same
pool when Rasa builds them; installing twice is harmless.

Exit code: Rasa's, or 2 for malformed `NLU_*` settings.
"""
from __future__ import annotations

import _bootstrap  # noqa: F401  (the project root on sys.path: scripts/_bootstrap.py)

import sys
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Installs the worker pool, then runs Rasa's command line with ``argv`` (default: ``sys.argv[1:]``)."""
    from channels.worker_pool import install_worker_pool

    try:
        install_worker_pool()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *(sys.argv[1:] if argv is None else argv)]
    rasa_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
