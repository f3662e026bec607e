"""Custom actions of the shop assistant, one module per topic.

The action server imports this package (``rasa run actions --actions actions``) and registers every ``Action``
subclass found in the modules below. Actions reach the database only through :mod:`shop.repository`, obtained
with :func:`actions.common.get_repository`.
"""

from actions import common, orders, photos, products, refunds, support

__all__ = ["common", "orders", "photos", "products", "refunds", "support"]
