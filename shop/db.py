"""Engine, session factory and unit of work for the shop database.

The database is chosen by the ``DATABASE_URL`` environment variable (any SQLAlchemy URL, e.g.
``postgresql+psycopg2://user@host:5432/shop``). Without it, a SQLite file ``var/shop.db`` under the project
root is used, so a fresh checkout works without a database server.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from assistant.paths import VAR_DIR

logger = logging.getLogger(__name__)

#: Name of the environment variable that selects the database.
DATABASE_URL_ENV = "DATABASE_URL"


def database_url() -> str:
    """Return the database URL to use.

    ``DATABASE_URL`` wins when it is set and not blank. A ``postgres://`` scheme (as some hosting platforms
    write it) is rewritten to ``postgresql://``, which SQLAlchemy 1.4 requires. Otherwise the URL of the
    SQLite file ``<project root>/var/shop.db`` (:data:`assistant.paths.VAR_DIR`) is returned, and the
    ``var`` folder is created if it is missing.

    Returns:
        A SQLAlchemy database URL.
    """
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    if url:
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        return url
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{VAR_DIR / 'shop.db'}"


def _is_in_memory_sqlite(url: str) -> bool:
    parsed = make_url(url)
    return (parsed.database or "") in ("", ":memory:") or parsed.query.get("mode") == "memory"


def _enable_sqlite_foreign_keys(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def make_engine(url: Optional[str] = None, **engine_kwargs: Any) -> Engine:
    """Create a SQLAlchemy engine (2.0 style, ``future=True``).

    For SQLite, connections may be shared between threads (``check_same_thread=False``, as the action server
    runs actions in a thread pool), foreign keys are switched on for every connection, and the in-memory
    database (``sqlite://``) uses a single shared connection (``StaticPool``) so that every session sees the
    same data. Other databases get ``pool_pre_ping`` so that connections dropped by the server are replaced.

    Args:
        url: SQLAlchemy URL; defaults to :func:`database_url`.
        **engine_kwargs: Extra keyword arguments for :func:`sqlalchemy.create_engine` (e.g. ``echo=True``).

    Returns:
        The engine. Dispose of it with ``engine.dispose()`` when done.
    """
    from sqlalchemy import create_engine

    url = url or database_url()
    kwargs: Dict[str, Any] = {"future": True}
    if make_url(url).get_backend_name() == "sqlite":
        connect_args = dict(engine_kwargs.pop("connect_args", {}))
        connect_args.setdefault("check_same_thread", False)
        kwargs["connect_args"] = connect_args
        if _is_in_memory_sqlite(url):
            kwargs["poolclass"] = StaticPool
        kwargs.update(engine_kwargs)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _enable_sqlite_foreign_keys)
    else:
        kwargs["pool_pre_ping"] = True
        kwargs.update(engine_kwargs)
        engine = create_engine(url, **kwargs)
    logger.debug("Created engine for %s", engine.url.render_as_string(hide_password=True))
    return engine


def make_session_factory(engine: Engine) -> sessionmaker:
    """Create the session factory used by the repository.

    Sessions are 2.0 style (``future=True``) and keep loaded values after commit (``expire_on_commit=False``)
    so that views can be built from them after the unit of work has committed.

    Args:
        engine: Engine from :func:`make_engine`.

    Returns:
        A :class:`sqlalchemy.orm.sessionmaker` producing :class:`sqlalchemy.orm.Session` objects.
    """
    return sessionmaker(bind=engine, future=True, expire_on_commit=False)


@contextmanager
def unit_of_work(session_factory: sessionmaker) -> Iterator[Session]:
    """Open one short-lived session: commit on success, roll back on error, always close.

    Example::

        with unit_of_work(factory) as session:
            session.add(obj)

    Args:
        session_factory: Factory from :func:`make_session_factory`.

    Yields:
        The open session.

    Raises:
        Whatever the body raises (after rolling back), or the database error raised by the commit.
    """
    session: Session = session_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
