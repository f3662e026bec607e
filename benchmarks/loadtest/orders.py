"""The orders the simulated customers track and cancel, one per visit.

The seed data (`shop.seed`) has 15 orders of 6 customers, and only 4 of them can still be cancelled: far too
few for 50 customers who each cancel an order every visit (a second customer would only hear "already
cancelled", and the check for unconfirmed changes would have nothing to look at). So each run adds fresh
orders to the cluster's shop database with the seed's own API (`shop.seed.seed` with `DemoOrder`s): the seed's
customers and their email addresses, the items of the seed's orders, status placed or packed (both may be
cancelled), numbered after the highest order number in the database. The seed's demo orders are left as they
are.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

#: Highest five-digit order number (`shop.validation.parse_order_number` accepts exactly five digits).
MAX_ORDER_NUMBER = 99999


def load_order_specs(count: int, first_number: int) -> List[Any]:
    """``count`` `shop.seed.DemoOrder`s numbered from ``first_number``: the seed's customers in turn, the items
    of the seed's orders in turn, every other one packed an hour after it was placed (else placed).

    Raises:
        ValueError: the numbers would pass :data:`MAX_ORDER_NUMBER`, or ``count`` < 1.
    """
    from shop.seed import DEMO_CUSTOMERS, DEMO_ORDERS, DemoOrder
    from shop.statuses import OrderStatus

    if count < 1:
        raise ValueError("count must be at least 1")
    if first_number + count - 1 > MAX_ORDER_NUMBER:
        raise ValueError(f"no room for {count} order numbers from {first_number} (five digits)")
    specs = []
    for index in range(count):
        customer = DEMO_CUSTOMERS[index % len(DEMO_CUSTOMERS)]
        items = DEMO_ORDERS[index % len(DEMO_ORDERS)].items
        steps = ((OrderStatus.PACKED, 1),) if index % 2 else ()
        specs.append(DemoOrder(str(first_number + index), customer.email, 3, items, steps))
    return specs


def add_load_orders(database_url: str, count: int) -> List[Dict[str, str]]:
    """Adds ``count`` fresh orders (:func:`load_order_specs`) after the highest order number in the database.

    Returns:
        ``[{"order_number", "email"}]`` in the order the visits use them.
    """
    from sqlalchemy import func, select

    from shop.db import make_engine, make_session_factory
    from shop.models import Order
    from shop.seed import DEMO_CUSTOMERS, seed

    engine = make_engine(database_url)
    try:
        factory = make_session_factory(engine)
        with factory() as session:
            highest: Optional[str] = session.execute(select(func.max(Order.order_number))).scalar()
        first = max(20000, int(highest) + 1 if highest else 0)
        specs = load_order_specs(count, first)
        seed(factory, customers=DEMO_CUSTOMERS, orders=specs)
    finally:
        engine.dispose()
    return [{"order_number": spec.order_number, "email": spec.email} for spec in specs]
