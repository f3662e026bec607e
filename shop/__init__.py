"""Database layer of the grocery shop assistant: models, engine/session set-up, repository and seed data.

Actions and components use :class:`shop.repository.ShopRepository` only; it is the one place with queries.
"""

from shop.db import database_url, make_engine, make_session_factory, unit_of_work

__all__ = ["database_url", "make_engine", "make_session_factory", "unit_of_work"]
