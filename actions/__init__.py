"""Custom actions of the shop assistant, one module per topic.

The action server imports this package (``rasa run actions --actions actions``) and registers every ``Action``
subclass found in the modules below: :mod:`~actions.orders`, :mod:`~actions.refunds`,
:mod:`~actions.products`, :mod:`~actions.photos`, :mod:`~actions.privacy`, :mod:`~actions.requests` (several
requests in one message) and :mod:`~actions.support`;
:mod:`~actions.verification` holds the proof of identity that every order form asks for. Actions reach the
database only through :mod:`shop.repository`, obtained with :func:`actions.common.get_repository`;
:mod:`~actions.formatting`, :mod:`~actions.tracker_utils` and :mod:`~actions.transcript` hold the helpers they
share.
"""

from actions import common, orders, photos, privacy, products, refunds, requests, support, verification

__all__ = [
    "common", "orders", "photos", "privacy", "products", "refunds", "requests", "support", "verification"
]
