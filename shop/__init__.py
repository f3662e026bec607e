"""Database layer of the grocery shop assistant.

- :mod:`shop.models` (SQLAlchemy tables) and :mod:`shop.db` (engine, session factory, unit of work);
- :mod:`shop.repository`: the only place with queries; it hands out the frozen views of :mod:`shop.views`;
- :mod:`shop.rules` (business rules), :mod:`shop.validation` (input checks), :mod:`shop.statuses` (life
  cycles, money), :mod:`shop.matching` (tolerant product names) and :mod:`shop.errors`: plain Python, no
  database;
- :mod:`shop.seed`: schema and demo data (``python -m shop.seed``).

Actions and components use :class:`shop.repository.ShopRepository` only. Importing this package imports
nothing else, so the plain-Python modules stay free of SQLAlchemy.
"""
