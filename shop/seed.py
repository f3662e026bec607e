"""Schema creation and demo data: the catalog from ``data/catalog/products.csv``, customers and orders.

Seeding is idempotent: products are keyed on SKU, customers on e-mail and orders on order number, and only
missing rows are inserted, so running it again adds nothing and never overwrites changes made since (stock,
statuses).

Command line (used by ``make db``)::

    python -m shop.seed [--database-url URL] [--catalog PATH] [--photos DIR | --no-photos] [--image-root PATH]

After seeding, the command line attaches the product photos shipped with the demo catalog
(``data/catalog/photos/``, :mod:`shop.shipped_photos`) as ``make catalog-images`` would: validated, stored by
content hash under the catalog image root and recorded in the database; photos already recorded are skipped.
:func:`create_and_seed` itself writes rows only, no files.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from assistant.paths import DATA_DIR
from shop import lookup, rules
from shop.db import make_engine, make_session_factory, unit_of_work
from shop.models import Base, Customer, Order, OrderItem, OrderStatusEvent, Product, Refund, utcnow
from shop.statuses import CENT, OrderStatus, RefundStatus

logger = logging.getLogger(__name__)

#: The seed catalog shipped with the project.
DEFAULT_CATALOG_PATH: Path = DATA_DIR / "catalog" / "products.csv"

CATALOG_COLUMNS = (
    "sku",
    "name",
    "category",
    "coarse_category",
    "kind",
    "price",
    "currency",
    "unit",
    "stock",
    "description",
)


@dataclass(frozen=True)
class DemoCustomer:
    """A demo customer (keyed on e-mail)."""

    name: str
    email: str
    address: str


@dataclass(frozen=True)
class DemoRefund:
    """A refund already on file for a demo order; ``amount`` None means the whole order."""

    amount: Optional[Decimal]
    status: RefundStatus
    reason: str
    hours_after_last_event: int = 20


@dataclass(frozen=True)
class DemoOrder:
    """A demo order.

    ``steps`` are ``(status, hours after placing)`` pairs that follow the initial ``placed`` event.
    """

    order_number: str
    email: str
    hours_ago: int
    items: Tuple[Tuple[str, int], ...]
    steps: Tuple[Tuple[OrderStatus, int], ...] = ()
    refunds: Tuple[DemoRefund, ...] = ()
    note: Optional[str] = None


DEMO_CUSTOMERS: Tuple[DemoCustomer, ...] = (
    DemoCustomer("Anna Berg", "anna.berg@example.com", "Keizersgracht 112, 1015 CW Amsterdam, Netherlands"),
    DemoCustomer("Ben Okafor", "ben.okafor@example.com", "Lindenstraße 8, 10969 Berlin, Germany"),
    DemoCustomer("Chloé Martin", "chloe.martin@example.com", "14 rue des Lilas, 69003 Lyon, France"),
    DemoCustomer("David Nowak", "david.nowak@example.com", "Via Roma 27, 20121 Milano, Italy"),
    DemoCustomer(
        "Emma Kelly", "emma.kelly@example.com", "5 Harbour Road, Dún Laoghaire, Co. Dublin, A96 K2X0, Ireland"
    ),
    DemoCustomer("Farid Haddad", "farid.haddad@example.com", "Calle Mayor 41, 28013 Madrid, Spain"),
)

_PACKED = OrderStatus.PACKED
_SHIPPED = OrderStatus.SHIPPED
_DELIVERED = OrderStatus.DELIVERED
_CANCELLED = OrderStatus.CANCELLED

DEMO_ORDERS: Tuple[DemoOrder, ...] = (
    DemoOrder(
        "10017",
        "anna.berg@example.com",
        20 * 24,
        (("FRU-BANANA", 2), ("MLK-ARLA-WHOLE", 3), ("VEG-CARROTS", 1)),
        ((_PACKED, 5), (_SHIPPED, 22), (_DELIVERED, 70)),
    ),
    DemoOrder(
        "10018",
        "ben.okafor@example.com",
        16 * 24,
        (("PLB-OATLY-OATMILK", 4), ("FRU-APL-PINKLADY", 2), ("DAI-EGGS-FREERANGE", 1)),
        ((_PACKED, 4), (_SHIPPED, 20), (_DELIVERED, 66)),
        (
            DemoRefund(
                Decimal("3.98"), RefundStatus.PAID, "Two cartons of oat milk arrived dented and leaking."
            ),
        ),
    ),
    DemoOrder(
        "10019",
        "chloe.martin@example.com",
        14 * 24,
        (("FRU-MANGO", 3), ("FRU-PINEAPPLE", 1), ("FRU-PASSIONFRUIT", 6)),
        ((_CANCELLED, 2),),
        (DemoRefund(None, RefundStatus.APPROVED, "Order cancelled by the customer before packing.", 1),),
        note="Customer ordered by mistake.",
    ),
    DemoOrder(
        "10020",
        "david.nowak@example.com",
        60,
        (("VEG-POTATO-FLOURY", 1), ("VEG-ONION-YELLOW", 2), ("VEG-LEEK", 2)),
        ((_PACKED, 6), (_SHIPPED, 26)),
    ),
    DemoOrder(
        "10021",
        "emma.kelly@example.com",
        3,
        (("FRU-BER-STRAWBERRY", 2), ("DAI-ARLA-YOG-NATURAL", 1), ("FRU-BER-BLUEBERRY", 1)),
    ),
    DemoOrder(
        "10022",
        "farid.haddad@example.com",
        20,
        (("VEG-TOMATO-VINE", 2), ("VEG-CUCUMBER", 1), ("VEG-PEPPER-RED", 3), ("DAI-CHEDDAR-MATURE", 1)),
        ((_PACKED, 8),),
    ),
    DemoOrder(
        "10023",
        "anna.berg@example.com",
        50,
        (("FRU-BANANA", 1), ("PLB-OATLY-OATMILK", 2), ("VEG-TOMATO-VINE", 1), ("FRU-AVOCADO", 3)),
        ((_PACKED, 5), (_SHIPPED, 24)),
    ),
    DemoOrder(
        "10024",
        "ben.okafor@example.com",
        6 * 24,
        (("JUI-BRAVO-ORANGE", 2), ("FRU-APL-ROYALGALA", 1), ("DAI-BUTTER-SALTED", 1)),
        ((_PACKED, 4), (_SHIPPED, 21), (_DELIVERED, 68)),
    ),
    DemoOrder(
        "10025",
        "chloe.martin@example.com",
        5 * 24,
        (("VEG-BROCCOLI", 2), ("VEG-SPINACH", 1), ("VEG-GARLIC", 3)),
        ((_PACKED, 6), (_CANCELLED, 9)),
        note="Customer will be travelling.",
    ),
    DemoOrder(
        "10026",
        "david.nowak@example.com",
        9 * 24,
        (("FRU-AVOCADO", 4), ("FRU-KIWI", 6), ("DAI-ARLA-SOURCREAM", 1), ("VEG-LEEK", 1)),
        ((_PACKED, 5), (_SHIPPED, 23), (_DELIVERED, 71)),
        (DemoRefund(Decimal("5.16"), RefundStatus.REQUESTED, "All four avocados were brown inside."),),
    ),
    DemoOrder(
        "10027",
        "emma.kelly@example.com",
        1,
        (("FRU-APL-GRANNY", 1), ("FRU-LEMON", 4), ("DAI-EGGS-FREERANGE", 1)),
    ),
    DemoOrder(
        "10028",
        "farid.haddad@example.com",
        26,
        (("PLB-ALPRO-SOYMILK-FRESH", 3), ("PLB-ALPRO-SOYGHURT-VANILLA", 2), ("FRU-ORANGE", 2)),
        ((_PACKED, 10),),
    ),
    DemoOrder(
        "10029",
        "anna.berg@example.com",
        45 * 24,
        (("VEG-POTATO-SWEET", 2), ("VEG-GINGER", 1), ("FRU-LIME", 5)),
        ((_PACKED, 5), (_SHIPPED, 24), (_DELIVERED, 72)),
        (
            DemoRefund(
                Decimal("4.00"), RefundStatus.REJECTED, "Changed my mind about the sweet potatoes.", 24 * 35
            ),
        ),
    ),
    DemoOrder(
        "10030",
        "ben.okafor@example.com",
        12 * 24,
        (("FRU-MEL-WATERMELON", 1), ("JUI-TROPICANA-SMOOTH", 1)),
        ((_PACKED, 3), (_SHIPPED, 20), (_DELIVERED, 69)),
        (
            DemoRefund(
                None, RefundStatus.PAID, "Watermelon was split open on arrival and the juice was warm."
            ),
        ),
    ),
    DemoOrder(
        "10031",
        "chloe.martin@example.com",
        36,
        (("DAI-VALIO-YOG-VANILLA", 2), ("FRU-PEAR-CONFERENCE", 1), ("FRU-SATSUMAS", 1)),
        ((_PACKED, 4), (_SHIPPED, 20)),
    ),
)


@dataclass
class SeedReport:
    """How many rows one seeding run inserted."""

    products: int = 0
    customers: int = 0
    orders: int = 0
    refunds: int = 0
    skipped_orders: List[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the log."""
        return (
            f"inserted {self.products} products, {self.customers} customers, {self.orders} orders, "
            f"{self.refunds} refunds"
        )


def load_catalog(path: Optional[Path] = None) -> List[Dict[str, object]]:
    """Read and validate the seed catalog CSV.

    Args:
        path: CSV with the columns of :data:`CATALOG_COLUMNS`; defaults to :data:`DEFAULT_CATALOG_PATH`.

    Returns:
        One dict per product with typed values (``price`` as ``Decimal``, ``stock`` as ``int``).

    Raises:
        ValueError: Missing columns, duplicate SKUs, or a malformed price, stock or currency (the message
            names the line).
    """
    path = Path(path) if path is not None else DEFAULT_CATALOG_PATH
    rows: List[Dict[str, object]] = []
    seen = set()
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = set(CATALOG_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for line_no, raw in enumerate(reader, start=2):
            try:
                sku = raw["sku"].strip().upper()
                price = Decimal(raw["price"].strip())
                stock = int(raw["stock"].strip())
            except (InvalidOperation, ValueError, AttributeError) as exc:
                raise ValueError(f"{path}:{line_no}: malformed price or stock") from exc
            currency = raw["currency"].strip().upper()
            if not sku or sku in seen:
                raise ValueError(f"{path}:{line_no}: empty or duplicate sku {sku!r}")
            if price < 0 or price != price.quantize(CENT) or stock < 0:
                raise ValueError(f"{path}:{line_no}: price must be >= 0 with two decimals, stock >= 0")
            if len(currency) != 3 or not currency.isalpha():
                raise ValueError(f"{path}:{line_no}: currency must be a three-letter code")
            text = {
                key: (raw[key] or "").strip()
                for key in ("name", "category", "coarse_category", "kind", "unit")
            }
            if not all(text.values()):
                raise ValueError(
                    f"{path}:{line_no}: name, category, coarse_category, kind and unit are required"
                )
            seen.add(sku)
            rows.append(
                {
                    "sku": sku,
                    **text,
                    "price": price,
                    "currency": currency,
                    "stock": stock,
                    "description": (raw["description"] or "").strip(),
                }
            )
    return rows


def _tracking_number(order_number: str) -> str:
    return f"GSX{order_number}{int(order_number) * 7919 % 100000:05d}"


def _add_order(
    session, spec: DemoOrder, customer: Customer, products: Dict[str, Product], now: datetime
) -> Tuple[Order, int]:
    placed_at = now - timedelta(hours=spec.hours_ago)
    timeline: List[Tuple[OrderStatus, datetime]] = [(OrderStatus.PLACED, placed_at)]
    timeline += [(status, placed_at + timedelta(hours=hours)) for status, hours in spec.steps]
    status, last_at = timeline[-1]
    shipped_at = next((at for st, at in timeline if st is OrderStatus.SHIPPED), None)
    delivered_at = next((at for st, at in timeline if st is OrderStatus.DELIVERED), None)
    estimated: Optional[date]
    if status is OrderStatus.CANCELLED:
        estimated = None
    elif delivered_at is not None:
        estimated = delivered_at.date()
    elif shipped_at is not None:
        estimated = (shipped_at + timedelta(days=2)).date()
    else:
        estimated = (placed_at + timedelta(days=3)).date()
    order = Order(
        order_number=spec.order_number,
        customer=customer,
        status=status,
        currency="EUR",
        shipping_address=customer.default_shipping_address or "",
        tracking_number=_tracking_number(spec.order_number) if shipped_at is not None else None,
        estimated_delivery=estimated,
        placed_at=placed_at,
        updated_at=last_at,
    )
    for sku, quantity in spec.items:
        product = products[sku]
        order.items.append(OrderItem(product=product, quantity=quantity, unit_price=product.price))
    for event_status, at in timeline:
        note = spec.note if event_status is OrderStatus.CANCELLED else None
        order.events.append(OrderStatusEvent(status=event_status, at=at, note=note))
    total = rules.order_total((products[sku].price, quantity) for sku, quantity in spec.items)
    for index, refund in enumerate(spec.refunds, start=1):
        order.refunds.append(
            Refund(
                refund_number=f"RF-{spec.order_number}-{index}",
                amount=(refund.amount if refund.amount is not None else total).quantize(CENT),
                currency="EUR",
                status=refund.status,
                reason=refund.reason,
                created_at=min(last_at + timedelta(hours=refund.hours_after_last_event), now),
            )
        )
    session.add(order)
    return order, len(spec.refunds)


def seed(
    session_factory,
    *,
    catalog_path: Optional[Path] = None,
    now: Optional[datetime] = None,
    customers: Sequence[DemoCustomer] = DEMO_CUSTOMERS,
    orders: Sequence[DemoOrder] = DEMO_ORDERS,
) -> SeedReport:
    """Insert the missing catalog products, demo customers and demo orders in one unit of work.

    Args:
        session_factory: Factory from :func:`shop.db.make_session_factory`.
        catalog_path: Catalog CSV; defaults to :data:`DEFAULT_CATALOG_PATH`.
        now: Reference time (aware) for the demo orders' timestamps; defaults to the current time.
        customers: Demo customers to ensure.
        orders: Demo orders to ensure.

    Returns:
        What was inserted.

    Raises:
        ValueError: Malformed catalog, or a demo order that names an unknown SKU or customer.
    """
    now = now or utcnow()
    report = SeedReport()
    catalog = load_catalog(catalog_path)
    with unit_of_work(session_factory) as session:
        existing = {product.sku: product for product in session.execute(select(Product)).scalars()}
        for row in catalog:
            if row["sku"] in existing:
                continue
            product = Product(created_at=now, **row)
            session.add(product)
            existing[product.sku] = product
            report.products += 1

        known_customers = {
            customer.email: customer for customer in session.execute(select(Customer)).scalars()
        }
        for demo in customers:
            email = demo.email.lower()
            if email in known_customers:
                continue
            customer = Customer(
                name=demo.name, email=email, default_shipping_address=demo.address, created_at=now
            )
            session.add(customer)
            known_customers[email] = customer
            report.customers += 1

        known_orders = set(session.execute(select(Order.order_number)).scalars())
        for spec in orders:
            if spec.order_number in known_orders:
                report.skipped_orders.append(spec.order_number)
                continue
            unknown = [sku for sku, _ in spec.items if sku not in existing]
            if unknown or spec.email not in known_customers:
                raise ValueError(
                    f"demo order {spec.order_number}: unknown sku {unknown} or customer {spec.email}"
                )
            _, refunds = _add_order(session, spec, known_customers[spec.email], existing, now)
            known_orders.add(spec.order_number)
            report.orders += 1
            report.refunds += refunds
    return report


def create_and_seed(
    engine: Engine, *, catalog_path: Optional[Path] = None, now: Optional[datetime] = None
) -> None:
    """Create the schema (missing tables only) and the product look-up's text index, and insert the missing
    seed data.

    Args:
        engine: Engine from :func:`shop.db.make_engine`.
        catalog_path: Catalog CSV; defaults to :data:`DEFAULT_CATALOG_PATH`.
        now: Reference time (aware) for the demo orders; defaults to the current time.

    Raises:
        ValueError: Malformed catalog or demo data.
        sqlalchemy.exc.SQLAlchemyError: The database refused the schema or the rows.
    """
    Base.metadata.create_all(engine)
    lookup.ensure_search_index(engine)
    report = seed(make_session_factory(engine), catalog_path=catalog_path, now=now)
    logger.info("Seeded %s: %s", engine.url.render_as_string(hide_password=True), report.summary())


def _attach_photos(engine: Engine, folder: Optional[Path], image_root: Optional[str], quiet: bool) -> None:
    """Attaches the sku photo folders of `folder` (default: the shipped photos) under the catalog image root;
    logs one summary line (with `quiet`, the repository's line per recorded photo is held back meanwhile).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: The database refused a row.
    """
    from shop.catalog_photos import resolve_image_root
    from shop.repository import ShopRepository
    from shop.shipped_photos import SHIPPED_PHOTOS_DIR, attach_shipped_photos

    folder = folder.expanduser() if folder is not None else SHIPPED_PHOTOS_DIR
    if not folder.is_dir():
        logger.warning("No product photos attached: %s is not a folder", folder)
        return
    root = resolve_image_root(image_root)
    repository_logger = logging.getLogger("shop.repository")
    level = repository_logger.level
    if quiet:
        repository_logger.setLevel(max(level, logging.WARNING))
    try:
        counts = attach_shipped_photos(ShopRepository(make_session_factory(engine)), root, folder)
    finally:
        repository_logger.setLevel(level)
    logger.info(
        "Product photos from %s: %d attached under %s, %d already there, %d refused, %d with an unknown sku",
        folder, counts["attached"], root, counts["present"], counts["refused"], counts["unknown_sku"],
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point: ``python -m shop.seed [--database-url URL] [--catalog PATH] [--photos DIR |
    --no-photos] [--image-root PATH] [-v]``.

    Returns:
        Process exit status (0 on success, 1 on a data or database error).
    """
    parser = argparse.ArgumentParser(prog="python -m shop.seed", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: DATABASE_URL or var/shop.db)")
    parser.add_argument(
        "--catalog", type=Path, default=None, help="catalog CSV (default: data/catalog/products.csv)"
    )
    photos = parser.add_mutually_exclusive_group()
    photos.add_argument(
        "--photos", type=Path, default=None, help="sku photo folders to attach (default: data/catalog/photos)"
    )
    photos.add_argument("--no-photos", action="store_true", help="attach no product photos")
    parser.add_argument(
        "--image-root", default=None, help="catalog image root (default: CATALOG_IMAGE_DIR or var/catalog-images)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log SQL statements too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    engine = make_engine(args.database_url)
    try:
        create_and_seed(engine, catalog_path=args.catalog)
        if not args.no_photos:
            _attach_photos(engine, args.photos, args.image_root, quiet=not args.verbose)
    except (ValueError, OSError, RuntimeError) as exc:
        logger.error("Seeding failed: %s", exc)
        return 1
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        logger.error("Seeding failed, database error %s: %s", type(exc).__name__, cause[0] if cause else "")
        return 1
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
