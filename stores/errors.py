"""What a store outage looks like to the code that handles a message."""
from __future__ import annotations


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
