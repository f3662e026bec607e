"""Shared conversation state: what lets a restart continue every conversation and several servers share the load.

- :mod:`stores.settings`: the environment variables that choose the stores, and their defaults.
- :mod:`stores.tracker`: :class:`~stores.tracker.SQLConversationStore`, Rasa's SQL tracker store made strict
  (unreachable at start-up: an error, not a silent fall-back to memory), serialised per conversation on
  PostgreSQL, with its database work off the event loop.
- :mod:`stores.leases`: lease primitives (acquire with a token and a lifetime, renew, release only with the
  token) in Redis (``SET NX PX`` and Lua) and in process memory.
- :mod:`stores.lock`: :class:`~stores.lock.LeaseLockStore`, a Rasa lock store on those leases.
- :mod:`stores.replies`: :class:`~stores.replies.ReplyLedger`, idempotency keys: a message id seen before is
  answered with its stored reply instead of being processed again.
- :mod:`stores.errors`: :class:`~stores.errors.StoreUnavailable` and :func:`~stores.errors.is_store_outage`.

No module here imports the project's channels, actions or shop: channels use the stores, not the reverse.
"""
