"""Start-up check of the stores an endpoints file names: a clear error before Rasa loads a model.

Without it, an unreachable SQL tracker store makes Rasa's ``SQLTrackerStore`` retry forever, and a missing
Redis shows up only as the first customer's failed message.
"""
from __future__ import annotations

import logging
from typing import Optional

from stores import settings
from stores.errors import StoreUnavailable

logger = logging.getLogger(__name__)


def check_endpoints(path: Optional[str], connect_timeout_s: float = settings.CONNECT_TIMEOUT_S) -> None:
    """Connects once to every store of endpoints file ``path`` (and the reply ledger's Redis), then lets go.

    Stores of other types than this package's are left to Rasa.

    Args:
        path: The endpoints file given to Rasa (``None``: nothing configured, nothing to check).
        connect_timeout_s: Seconds each store is given to answer.

    Raises:
        StoreUnavailable: naming the store that did not answer.
    """
    from rasa.core.utils import AvailableEndpoints

    from stores.leases import leases_from_url
    from stores.lock import LeaseLockStore
    from stores.tracker import SQLConversationStore

    endpoints = AvailableEndpoints.read_endpoints(path) if path else AvailableEndpoints()
    tracker = endpoints.tracker_store
    if tracker is not None and tracker.type == f"{SQLConversationStore.__module__}.{SQLConversationStore.__name__}":
        store = SQLConversationStore(host=tracker.url, connect_timeout_s=connect_timeout_s, **tracker.kwargs)
        store.engine.dispose()
    lock = endpoints.lock_store
    if lock is not None and lock.type == f"{LeaseLockStore.__module__}.{LeaseLockStore.__name__}":
        LeaseLockStore(lock)
    leases_from_url(settings.redis_url()).check(connect_timeout_s)


def endpoints_argument(argv: list) -> Optional[str]:
    """The value of ``--endpoints`` in Rasa's command line ``argv``; ``None`` when it is not given."""
    for index, arg in enumerate(argv):
        if arg == "--endpoints" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--endpoints="):
            return arg.split("=", 1)[1]
    return None


__all__ = ["StoreUnavailable", "check_endpoints", "endpoints_argument"]
