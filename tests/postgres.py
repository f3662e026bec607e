"""A throw-away PostgreSQL schema for the tests that run against the real server named by ``DATABASE_URL``."""
from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any, Dict, Iterator

import pytest
from sqlalchemy import text

from shop.db import make_engine


@contextlib.contextmanager
def postgres_schema(url: str, prefix: str) -> Iterator[Dict[str, Any]]:
    """Create a uniquely named schema (``<prefix>_<pid>_<8 hex>``) on the server of ``url``; drop it, with
    everything in it, afterwards.

    Yields:
        Engine options (``connect_args`` setting ``search_path``) whose connections use the schema, for
        :func:`shop.db.make_engine`.

    Skips the test when the server cannot be reached.
    """
    schema = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - an unreachable server is a skip, not a failure
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at DATABASE_URL: {exc.__class__.__name__}")
    try:
        yield {"connect_args": {"options": f"-csearch_path={schema}"}}
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
