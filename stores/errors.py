"""What a store outage looks like: to the code that handles a message, and at start-up."""
from __future__ import annotations

import time
from typing import Callable, Tuple, Type


class StoreUnavailable(ConnectionError):
    """A shared store (tracker store, lock store, reply ledger) cannot be reached or did not answer in time.

    Raised at start-up by a store that cannot connect (the server exits with the message), and while serving by
    the lock store and the reply ledger; the channels answer it with "I'm having trouble right now" (503) and
    process nothing, so the customer can send the same message again.
    """


def is_store_outage(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) means a shared store is unreachable.

    Covers :class:`StoreUnavailable`, Rasa's ``LockError`` (no lock within the wait limit), SQLAlchemy's
    ``OperationalError``/``InterfaceError``/``InternalError`` (connection refused, server gone, database locked,
    a read-only node after a fail-over) and redis-py's connection and timeout errors.

    Args:
        error: An exception raised while a message was being handled.

    Returns:
        ``True`` for an outage (retrying later may succeed), ``False`` for anything else (a bug, bad input).
    """
    from rasa.core.lock_store import LockError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import InterfaceError, InternalError, OperationalError

    outage_types = (StoreUnavailable, LockError, OperationalError, InterfaceError, InternalError,
                    RedisConnectionError, RedisTimeoutError)
    seen = set()
    current: "BaseException | None" = error
    while current is not None and id(current) not in seen:
        if isinstance(current, outage_types):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def wait_until_answering(
    probe: Callable[[], None],
    timeout_s: float,
    failures: Tuple[Type[BaseException], ...],
    what: str,
    pause_s: float = 0.5,
) -> None:
    """Start-up: calls ``probe`` until it returns, every ``pause_s`` seconds, for at most ``timeout_s`` seconds.

    Args:
        probe: One blocking try (``SELECT 1``, ``PING``); raises one of ``failures`` when the store does not answer.
        timeout_s: Seconds before giving up.
        failures: The exceptions that mean "not answering yet"; anything else propagates at once.
        what: The store as named in the error, e.g. ``"the tracker store at sqlite:///var/tracker.db"``.
        pause_s: Seconds between tries.

    Raises:
        StoreUnavailable: ``"<what> did not answer within <N> s (<error type>: <first line>)"``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            probe()
            return
        except failures as error:
            if time.monotonic() >= deadline:
                first_line = (str(error).splitlines() or [""])[0][:200]
                raise StoreUnavailable(
                    f"{what} did not answer within {timeout_s:.0f} s ({type(error).__name__}: {first_line})"
                ) from error
            time.sleep(pause_s)
