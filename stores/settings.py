"""The environment variables that choose the shared stores, and their defaults (one place for all of them).

======================  =====================================================================================
``TRACKER_STORE_URL``   SQLAlchemy URL of the conversation tracker store. Default: the SQLite file
                        ``var/tracker.db``. ``postgresql://user@host:5432/db`` for several servers.
``REDIS_URL``           ``redis://host:6379/0``: when set, the lock store, the reply ledger (idempotency keys)
                        and the rate limits live in Redis, shared by every server; when unset, in the process
                        (one server only).
======================  =====================================================================================
"""
from __future__ import annotations

import os
from typing import Mapping, Optional

from assistant.paths import VAR_DIR, project_path

TRACKER_STORE_URL_ENV = "TRACKER_STORE_URL"
REDIS_URL_ENV = "REDIS_URL"

#: The tracker store's SQLite file when ``TRACKER_STORE_URL`` is unset.
DEFAULT_TRACKER_DB = VAR_DIR / "tracker.db"

#: Seconds a store is given to answer at start-up before the server gives up with an error.
CONNECT_TIMEOUT_S = 15.0

#: Seconds one Redis command may take before it counts as an outage.
REDIS_SOCKET_TIMEOUT_S = 5.0

#: Key prefixes in Redis (one Redis database may be shared with other programs).
LOCK_KEY_PREFIX = "shopbot:lock:"
REPLY_KEY_PREFIX = "shopbot:reply:"
RATE_KEY_PREFIX = "shopbot:rate:"


def _value(environ: Optional[Mapping[str, str]], name: str) -> str:
    return (os.environ if environ is None else environ).get(name, "").strip()


def tracker_store_url(environ: Optional[Mapping[str, str]] = None) -> str:
    """The tracker store's SQLAlchemy URL: ``TRACKER_STORE_URL``, else ``sqlite:///<project>/var/tracker.db``.

    A relative SQLite path (``sqlite:///var/x.db``) is taken from the project root; ``postgres://`` (as some
    platforms write it) becomes ``postgresql://``.
    """
    url = _value(environ, TRACKER_STORE_URL_ENV)
    if not url:
        return f"sqlite:///{DEFAULT_TRACKER_DB}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    prefix = "sqlite:///"
    if url.startswith(prefix) and url[len(prefix):] not in ("", ":memory:") and not url.startswith(prefix + "/"):
        url = prefix + str(project_path(url[len(prefix):]))
    return url


def redis_url(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """``REDIS_URL``, or ``None`` when unset or blank (the stores then live in the process)."""
    return _value(environ, REDIS_URL_ENV) or None
