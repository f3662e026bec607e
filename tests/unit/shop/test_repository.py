"""Unit tests of `shop.repository.ShopRepository` against a seeded in-memory SQLite database."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from shop.db import unit_of_work
from shop.errors import (
    AddressChangeNotAllowed,
    InvalidAmount,
    InvalidInput,
    InvalidOrderNumber,
    OrderNotCancellable,
    OrderNotFound,
    RefundNotAllowed,
)
from shop.models import OrderStatusEvent, Product, ProductImage, Refund, SupportTicket
from shop.repository import ShopRepository
from shop.validation import MAX_TRANSCRIPT_BYTES, MAX_TRANSCRIPT_TURNS
from shop.views import OrderItemView, OrderView, ProductMatch, ProductView, RefundView, TicketView

SHA_A = "a" * 64
SHA_B = "B" * 64


def _count(session_factory, model) -> int:
    with unit_of_work(session_factory) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def _stock(session_factory, sku: str) -> int:
    with unit_of_work(session_factory) as session:
        return session.execute(select(Product.stock).where(Product.sku == sku)).scalar_one()


# --------------------------------------------------------------------------------------------------- products


def test_list_products_returns_whole_catalog_as_views(shop_repo):
    products = shop_repo.list_products()
    assert len(products) >= 85
    assert all(isinstance(product, ProductView) for product in products)
    assert len({product.sku for product in products}) == len(products)
    assert all(isinstance(product.price, Decimal) and product.price > 0 for product in products)
    assert all(product.price == product.price.quantize(Decimal("0.01")) for product in products)
    assert products == sorted(products, key=lambda p: (p.category, p.name, p.sku))
    assert any(not product.in_stock for product in products)


def test_get_product_normalises_sku_and_returns_none_for_unknown(shop_repo):
    banana = shop_repo.get_product("  fru-banana ")
    assert banana is not None and banana.name == "Banana"
    assert banana.price == Decimal("1.79") and banana.currency == "EUR" and banana.unit == "kg"
    assert banana.category == "Fruit/Banana" and banana.coarse_category == "Banana"
    assert shop_repo.get_product("NOPE-0000") is None
    assert shop_repo.get_product("") is None
    assert shop_repo.get_product("x" * 10_000) is None
    assert shop_repo.get_product(None) is None  # type: ignore[arg-type]


def test_list_categories_is_sorted_and_distinct(shop_repo):
    categories = shop_repo.list_categories()
    assert categories == sorted(set(categories))
    assert {"Fruit/Apple", "Vegetables/Tomato", "Dairy/Milk", "Drinks/Juice"} <= set(categories)


@pytest.mark.parametrize(
    "query, sku",
    [
        ("banana", "FRU-BANANA"),
        ("BANANA", "FRU-BANANA"),
        ("BaNaNa", "FRU-BANANA"),
        ("bananas", "FRU-BANANA"),
        ("some bananas please", "FRU-BANANA"),
        ("Do you have any bananas?", "FRU-BANANA"),
        ("how much are 2 kg of bananas", "FRU-BANANA"),
        ("bananna", "FRU-BANANA"),
        ("tomato", "VEG-TOMATO-REGULAR"),
        ("tomatoes", "VEG-TOMATO-REGULAR"),
        ("tomatos", "VEG-TOMATO-REGULAR"),
        ("vine tomatoes", "VEG-TOMATO-VINE"),
        ("strawberries", "FRU-BER-STRAWBERRY"),
        ("blueberries", "FRU-BER-BLUEBERRY"),
        ("oat milk", "PLB-OATLY-OATMILK"),
        ("oatmilk", "PLB-OATLY-OATMILK"),
        ("apple juice", "JUI-BRAVO-APPLE"),
        ("granny smith", "FRU-APL-GRANNY"),
        ("brocoli", "VEG-BROCCOLI"),
        ("avacado", "FRU-AVOCADO"),
        ("pinapple", "FRU-PINEAPPLE"),
        ("zuchini", "VEG-ZUCCHINI"),
        ("courgette", "VEG-ZUCCHINI"),
        ("eggplant", "VEG-AUBERGINE"),
        ("beetroot", "VEG-REDBEET"),
        ("passionfruit", "FRU-PASSIONFRUIT"),
        ("strawberry yogurt", "DAI-YOGGI-YOG-STRAWBERRY"),
        ("strawberry yoghurt", "DAI-YOGGI-YOG-STRAWBERRY"),
        ("blueberry soy yogurt", "PLB-ALPRO-SOYGHURT-BLUEBERRY"),
        ("lactose free milk", "MLK-ARLA-LACTOSEFREE"),
        ("semi-skimmed milk", "MLK-ARLA-SEMI"),
        ("red bell pepper", "VEG-PEPPER-RED"),
        ("free range eggs", "DAI-EGGS-FREERANGE"),
        ("cheddar", "DAI-CHEDDAR-MATURE"),
    ],
)
def test_find_product_is_tolerant(shop_repo, query, sku):
    match = shop_repo.find_product(query)
    assert isinstance(match, ProductMatch)
    assert match.product is not None, f"{query!r} found nothing; suggestions {match.suggestions}"
    assert match.product.sku == sku
    assert 0.6 <= match.score <= 1.0
    assert all(isinstance(s, ProductView) and s.sku != sku for s in match.suggestions)


@pytest.mark.parametrize(
    "query, sku",
    [
        # Class names of the image recogniser's labels, with spaces: each must reach its own product.
        ("Golden Delicious", "FRU-APL-GOLDEN"),
        ("Red Delicious", "FRU-APL-REDDEL"),
        ("Conference", "FRU-PEAR-CONFERENCE"),
        ("Arla Ecological Medium Fat Milk", "MLK-ARLA-ORGANIC-SEMI"),
        ("Arla Lactose Medium Fat Milk", "MLK-ARLA-LACTOSEFREE"),
        ("Arla Medium Fat Milk", "MLK-ARLA-SEMI"),
        ("Arla Standard Milk", "MLK-ARLA-WHOLE"),
        ("Garant Ecological Standard Milk", "MLK-GARANT-ORGANIC-WHOLE"),
        ("Arla Ecological Sour Cream", "DAI-ARLA-SOURCREAM-ORGANIC"),
        ("Tropicana Juice Smooth", "JUI-TROPICANA-SMOOTH"),
        ("God Morgon Orange Red Grapefruit Juice", "JUI-GODMORGON-ORANGE-GRAPEFRUIT"),
        ("Oatly Natural Oatghurt", "PLB-OATLY-OATGHURT"),
        ("Alpro Shelf Soy Milk", "PLB-ALPRO-SOYMILK-SHELF"),
        ("Brown Cap Mushroom", "VEG-MUSHROOM-BROWNCAP"),
        ("Solid Potato", "VEG-POTATO-SOLID"),
        ("Satsumas", "FRU-SATSUMAS"),
    ],
)
def test_find_product_resolves_image_class_names(shop_repo, query, sku):
    match = shop_repo.find_product(query)
    assert match.product is not None and match.product.sku == sku


def test_find_product_ambiguous_word_picks_plain_kind_and_suggests_the_rest(shop_repo):
    match = shop_repo.find_product("apples")
    assert match.product is not None and match.product.coarse_category == "Apple"
    assert {s.coarse_category for s in match.suggestions[:4]} == {"Apple"}
    assert len(match.suggestions) <= 5


@pytest.mark.parametrize(
    "query, coarse",
    [
        ("yogurt", "Yoghurt"),
        ("yoghurts", "Yoghurt"),
        ("milk", "Milk"),
        ("pears", "Pear"),
        ("melons", "Melon"),
        ("juice", "Juice"),
        ("peppers", "Pepper"),
        ("soyghurt", "Soyghurt"),
        ("oatghurt", "Oatghurt"),
    ],
)
def test_find_product_generic_kind_prefers_that_kind(shop_repo, query, coarse):
    match = shop_repo.find_product(query)
    assert match.product is not None and match.product.coarse_category == coarse


def test_find_product_too_vague_gives_suggestions_only(shop_repo):
    match = shop_repo.find_product("fruit")
    assert match.product is None
    assert match.suggestions and all(s.category.startswith("Fruit/") for s in match.suggestions)
    assert 0.0 <= match.score < 0.6


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        "?",
        "😀😀😀",
        "😡",
        "x" * 10_000,
        "banana " * 2_000,
        "qwertyuiop",
        "我的订单在哪里",
        None,
        12345,
        "\x00\x00",
        "<script>alert(1)</script>",
        "{{7*7}}",
    ],
)
def test_find_product_odd_queries_match_nothing_without_error(shop_repo, query):
    match = shop_repo.find_product(query)  # type: ignore[arg-type]
    assert match.product is None
    assert 0.0 <= match.score <= 1.0
    assert isinstance(match.suggestions, tuple)


def test_find_product_reports_sold_out_products(shop_repo):
    match = shop_repo.find_product("asparagus")
    assert match.product is not None and match.product.sku == "VEG-ASPARAGUS"
    assert match.product.in_stock is False


def test_search_products_by_text_category_and_stock(shop_repo):
    apples = shop_repo.search_products("apple", limit=10)
    assert apples and apples[0].coarse_category == "Apple"
    assert all("apple" in (p.name + p.kind + p.category).lower() for p in apples)

    fruit = shop_repo.search_products(category="fruit", limit=100)
    assert fruit and all(p.category.startswith("Fruit/") for p in fruit)
    assert {p.sku for p in shop_repo.search_products(category="Fruit/Apple", limit=100)} == {
        p.sku for p in shop_repo.search_products(category="apple", limit=100)
    }
    in_stock = shop_repo.search_products(category="Fruit", in_stock_only=True, limit=100)
    assert all(p.in_stock for p in in_stock) and len(in_stock) < len(fruit)
    assert shop_repo.search_products("asparagus", in_stock_only=True) == []

    melons = shop_repo.search_products("melon", category="Fruit", limit=10)
    assert melons and {p.coarse_category for p in melons} == {"Melon"}


def test_search_products_limits_and_odd_input(shop_repo):
    assert len(shop_repo.search_products()) == 5
    assert len(shop_repo.search_products(limit=3)) == 3
    assert len(shop_repo.search_products(limit=0)) == 1
    assert len(shop_repo.search_products(limit=10_000)) == min(100, len(shop_repo.list_products()))
    assert shop_repo.search_products("😀") == []
    assert shop_repo.search_products("x" * 10_000) == []
    assert shop_repo.search_products(category="%") == []
    assert shop_repo.search_products(category="Fru_t") == []
    assert shop_repo.search_products(category="nothing here") == []
    with pytest.raises(InvalidInput):
        shop_repo.search_products(limit="5")  # type: ignore[arg-type]


def test_add_product_image_is_idempotent_and_shows_in_views(shop_repo, shop_session_factory):
    assert shop_repo.product_images() == []
    shop_repo.add_product_image("FRU-BANANA", "Fruit/Banana/banana_1.jpg", SHA_A)
    shop_repo.add_product_image("fru-banana", "Fruit/Banana/banana_1.jpg", SHA_A)
    shop_repo.add_product_image("FRU-BANANA", "Fruit\\Banana\\banana_2.jpg", SHA_B)
    assert _count(shop_session_factory, ProductImage) == 2
    assert shop_repo.product_images() == [
        ("FRU-BANANA", "Fruit/Banana/banana_1.jpg"),
        ("FRU-BANANA", "Fruit/Banana/banana_2.jpg"),
    ]
    assert shop_repo.get_product("FRU-BANANA").image_paths == (
        "Fruit/Banana/banana_1.jpg",
        "Fruit/Banana/banana_2.jpg",
    )
    # Same path, new content: the hash is updated, no second row.
    shop_repo.add_product_image("FRU-BANANA", "Fruit/Banana/banana_1.jpg", SHA_B)
    with unit_of_work(shop_session_factory) as session:
        hashes = session.execute(select(ProductImage.sha256).order_by(ProductImage.path)).scalars().all()
    assert hashes == ["b" * 64, "b" * 64]


@pytest.mark.parametrize(
    "sku, path, sha",
    [
        ("FRU-BANANA", "/etc/passwd", SHA_A),
        ("FRU-BANANA", "../../etc/passwd", SHA_A),
        ("FRU-BANANA", "Fruit/../../outside.jpg", SHA_A),
        ("FRU-BANANA", "C:\\images\\banana.jpg", SHA_A),
        ("FRU-BANANA", "~/banana.jpg", SHA_A),
        ("FRU-BANANA", "", SHA_A),
        ("FRU-BANANA", "a\x00b.jpg", SHA_A),
        ("FRU-BANANA", "x" * 600, SHA_A),
        ("FRU-BANANA", "banana.jpg", "not-a-hash"),
        ("FRU-BANANA", "banana.jpg", "g" * 64),
        ("NO-SUCH-SKU", "banana.jpg", SHA_A),
        ("", "banana.jpg", SHA_A),
    ],
)
def test_add_product_image_rejects_bad_input_and_writes_nothing(
    shop_repo, shop_session_factory, sku, path, sha
):
    with pytest.raises(InvalidInput):
        shop_repo.add_product_image(sku, path, sha)
    assert _count(shop_session_factory, ProductImage) == 0


# ----------------------------------------------------------------------------------------------------- orders


def test_get_order_10023_is_shipped_with_tracking(shop_repo):
    order = shop_repo.get_order("order #10023")
    assert isinstance(order, OrderView)
    assert order.order_number == "10023" and order.status == "shipped"
    assert order.tracking_number and order.estimated_delivery is not None
    assert order.customer_email == "anna.berg@example.com" and order.customer_name == "Anna Berg"
    assert order.items and all(isinstance(item, OrderItemView) for item in order.items)
    assert order.total == sum(item.unit_price * item.quantity for item in order.items)
    assert isinstance(order.total, Decimal) and order.currency == "EUR"
    assert [status for status, _ in order.status_history] == ["placed", "packed", "shipped"]
    times = [at for _, at in order.status_history]
    assert times == sorted(times)
    for moment in times + [order.placed_at, order.updated_at]:
        assert moment.tzinfo is not None and moment.utcoffset().total_seconds() == 0
    assert order.can_cancel is False and order.can_change_address is False


@pytest.mark.parametrize(
    "number, status",
    [
        ("10021", "placed"),
        ("10022", "packed"),
        ("10023", "shipped"),
        ("10024", "delivered"),
        ("10025", "cancelled"),
        ("10026", "delivered"),
    ],
)
def test_get_order_demo_statuses(shop_repo, number, status):
    assert shop_repo.get_order(number).status == status


def test_get_order_errors(shop_repo):
    with pytest.raises(OrderNotFound) as info:
        shop_repo.get_order("99999")
    assert "99999" in info.value.user_message
    with pytest.raises(InvalidOrderNumber):
        shop_repo.get_order("order number -1")
    with pytest.raises(InvalidOrderNumber):
        shop_repo.get_order("x" * 10_000)


@pytest.mark.parametrize("number", ["10021", "10022"])
def test_cancel_order_before_shipping(shop_repo, shop_session_factory, number):
    before = shop_repo.get_order(number)
    stock_before = {item.sku: _stock(shop_session_factory, item.sku) for item in before.items}
    order = shop_repo.cancel_order(number, reason="Ordered twice\x00 by mistake")
    assert order.status == "cancelled" and order.can_cancel is False
    assert order.status_history[-1][0] == "cancelled"
    assert len(order.status_history) == len(before.status_history) + 1
    assert order.updated_at >= before.updated_at
    assert shop_repo.get_order(number) == order
    for item in before.items:
        assert _stock(shop_session_factory, item.sku) == stock_before[item.sku] + item.quantity
    with unit_of_work(shop_session_factory) as session:
        note = session.execute(
            select(OrderStatusEvent.note).order_by(OrderStatusEvent.id.desc()).limit(1)
        ).scalar_one()
    assert note == "Ordered twice by mistake"


@pytest.mark.parametrize(
    "number, status", [("10023", "shipped"), ("10024", "delivered"), ("10025", "cancelled")]
)
def test_cancel_order_refused_once_shipped_and_nothing_written(
    shop_repo, shop_session_factory, number, status
):
    before = shop_repo.get_order(number)
    events_before = _count(shop_session_factory, OrderStatusEvent)
    stock_before = {item.sku: _stock(shop_session_factory, item.sku) for item in before.items}
    with pytest.raises(OrderNotCancellable) as info:
        shop_repo.cancel_order(number, reason="please")
    assert info.value.status == status
    assert number in info.value.user_message
    assert shop_repo.get_order(number) == before
    assert _count(shop_session_factory, OrderStatusEvent) == events_before
    assert {sku: _stock(shop_session_factory, sku) for sku in stock_before} == stock_before


def test_cancel_order_twice_and_bad_input(shop_repo, shop_session_factory):
    shop_repo.cancel_order("10021")
    with pytest.raises(OrderNotCancellable) as info:
        shop_repo.cancel_order("10021")
    assert info.value.status == "cancelled"
    events = _count(shop_session_factory, OrderStatusEvent)
    with pytest.raises(InvalidInput):
        shop_repo.cancel_order("10022", reason=["not", "text"])  # type: ignore[arg-type]
    with pytest.raises(OrderNotFound):
        shop_repo.cancel_order("99999")
    with pytest.raises(InvalidOrderNumber):
        shop_repo.cancel_order("cancel order 45172 and 45173 and 45174")
    assert _count(shop_session_factory, OrderStatusEvent) == events
    assert shop_repo.get_order("10022").status == "packed"


def test_change_shipping_address_cleans_and_stores(shop_repo):
    order = shop_repo.change_shipping_address("10021", "  Marktplatz 3\n\t80331 München\u200b\x00, Germany  ")
    assert order.shipping_address == "Marktplatz 3 80331 München, Germany"
    assert shop_repo.get_order("10021").shipping_address == order.shipping_address
    injected = "1 Main St'; DROP TABLE orders; --"
    assert shop_repo.change_shipping_address("10022", injected).shipping_address == injected
    assert len(shop_repo.list_products()) >= 85
    assert shop_repo.change_shipping_address("10022", "A" * 300).shipping_address == "A" * 300


@pytest.mark.parametrize(
    "address", ["", "    ", "abc", "\x00\x00\x00\x00\x00\x00", "A" * 301, "x" * 10_000, None, 42]
)
def test_change_shipping_address_rejects_bad_addresses(shop_repo, address):
    before = shop_repo.get_order("10021")
    with pytest.raises(InvalidInput) as info:
        shop_repo.change_shipping_address("10021", address)  # type: ignore[arg-type]
    assert info.value.user_message
    assert shop_repo.get_order("10021") == before


@pytest.mark.parametrize("number", ["10023", "10024", "10025"])
def test_change_shipping_address_refused_after_shipping(shop_repo, number):
    before = shop_repo.get_order(number)
    with pytest.raises(AddressChangeNotAllowed):
        shop_repo.change_shipping_address(number, "Somewhere 1, 12345 Elsewhere")
    assert shop_repo.get_order(number) == before


def test_change_shipping_address_unknown_or_invalid_order(shop_repo):
    with pytest.raises(OrderNotFound):
        shop_repo.change_shipping_address("99999", "Somewhere 1, 12345 Elsewhere")
    with pytest.raises(InvalidOrderNumber):
        shop_repo.change_shipping_address("abc", "Somewhere 1, 12345 Elsewhere")


# ---------------------------------------------------------------------------------------------------- refunds


def test_request_refund_defaults_to_remaining_total(shop_repo, shop_session_factory):
    order = shop_repo.get_order("10024")
    refund = shop_repo.request_refund("10024", "Juice was sour")
    assert isinstance(refund, RefundView)
    assert refund.refund_number == "RF-10024-1" and refund.order_number == "10024"
    assert refund.amount == order.total and refund.currency == "EUR" and refund.status == "requested"
    assert refund.reason == "Juice was sour" and refund.created_at.tzinfo is not None
    refunds = _count(shop_session_factory, Refund)
    with pytest.raises(RefundNotAllowed):
        shop_repo.request_refund("10024", "again")
    assert _count(shop_session_factory, Refund) == refunds
    assert shop_repo.list_refunds("10024") == [refund]
    assert shop_repo.get_refund("rf-10024-1") == refund


def test_request_refund_partial_amounts_add_up(shop_repo):
    total = shop_repo.get_order("10024").total
    first = shop_repo.request_refund("10024", "one carton leaked", Decimal("1.00"))
    second = shop_repo.request_refund("10024", "butter melted", "2,50")  # type: ignore[arg-type]
    rest = shop_repo.request_refund("10024", "the rest")
    assert (first.amount, second.amount) == (Decimal("1.00"), Decimal("2.50"))
    assert rest.amount == total - Decimal("3.50")
    assert [r.refund_number for r in shop_repo.list_refunds("10024")] == [
        "RF-10024-1",
        "RF-10024-2",
        "RF-10024-3",
    ]


def test_request_refund_counts_existing_requests_but_not_rejected_ones(shop_repo):
    order = shop_repo.get_order("10026")
    existing = shop_repo.list_refunds("10026")
    assert [r.status for r in existing] == ["requested"]
    refund = shop_repo.request_refund("10026", "kiwis too")
    assert refund.amount == order.total - existing[0].amount
    assert refund.refund_number == "RF-10026-2"

    rejected = shop_repo.list_refunds("10029")
    assert [r.status for r in rejected] == ["rejected"]
    assert shop_repo.request_refund("10029", "second try").amount == shop_repo.get_order("10029").total


def test_request_refund_for_cancelled_order(shop_repo):
    refund = shop_repo.request_refund("10025", "cancelled, money back please")
    assert refund.amount == shop_repo.get_order("10025").total


@pytest.mark.parametrize("number", ["10021", "10022", "10023"])
def test_request_refund_refused_before_delivery(shop_repo, shop_session_factory, number):
    refunds = _count(shop_session_factory, Refund)
    with pytest.raises(RefundNotAllowed) as info:
        shop_repo.request_refund(number, "not arrived")
    assert number in info.value.user_message
    assert _count(shop_session_factory, Refund) == refunds


def test_request_refund_refused_when_fully_refunded(shop_repo):
    with pytest.raises(RefundNotAllowed):
        shop_repo.request_refund("10030", "more please", Decimal("0.01"))


@pytest.mark.parametrize(
    "amount",
    [
        Decimal("0"),
        Decimal("-1"),
        0,
        -5,
        "abc",
        "",
        Decimal("NaN"),
        Decimal("Infinity"),
        float("nan"),
        1e9,
        Decimal("1e30"),
        Decimal("0.001"),
        "1.005",
        True,
        [1],
        "9" * 100,
    ],
)
def test_request_refund_rejects_bad_amounts(shop_repo, shop_session_factory, amount):
    refunds = _count(shop_session_factory, Refund)
    with pytest.raises(InvalidAmount) as info:
        shop_repo.request_refund("10024", "reason", amount)  # type: ignore[arg-type]
    assert info.value.user_message
    assert _count(shop_session_factory, Refund) == refunds


def test_request_refund_amount_upper_bound_is_remaining(shop_repo):
    total = shop_repo.get_order("10024").total
    with pytest.raises(InvalidAmount) as info:
        shop_repo.request_refund("10024", "too much", total + Decimal("0.01"))
    assert str(total) in info.value.user_message
    assert shop_repo.request_refund("10024", "exactly all", total).amount == total
    assert shop_repo.request_refund("10026", "as float", 1.5).amount == Decimal("1.50")


def test_request_refund_other_errors(shop_repo):
    with pytest.raises(OrderNotFound):
        shop_repo.request_refund("99999", "why")
    with pytest.raises(InvalidOrderNumber):
        shop_repo.request_refund("-1", "why")
    with pytest.raises(InvalidInput):
        shop_repo.request_refund("10024", None)  # type: ignore[arg-type]
    long_reason = shop_repo.request_refund("10024", "r" * 5000, Decimal("1"))
    assert len(long_reason.reason) == 1000


def test_list_and_get_refunds(shop_repo):
    assert shop_repo.list_refunds("10021") == []
    assert shop_repo.list_refunds("#10018")[0].status == "paid"
    with pytest.raises(OrderNotFound):
        shop_repo.list_refunds("99999")
    with pytest.raises(InvalidOrderNumber):
        shop_repo.list_refunds("nope")
    refund = shop_repo.get_refund(" RF-10026-1 ")
    assert refund is not None and refund.order_number == "10026" and refund.status == "requested"
    assert shop_repo.get_refund("RF-00000-1") is None
    assert shop_repo.get_refund("") is None
    assert shop_repo.get_refund("x" * 10_000) is None
    assert shop_repo.get_refund(None) is None  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------- tickets


def test_create_and_list_tickets(shop_repo):
    transcript = [
        {"event": "user", "text": "where is my order 10023?", "timestamp": 1700000000.0},
        {"event": "bot", "text": "It has shipped."},
    ]
    ticket = shop_repo.create_ticket(
        "user-1",
        "Order late",
        transcript,
        sentiment_trail=["neutral", "negative"],
        order_number="#10023",
        priority="high",
    )
    assert isinstance(ticket, TicketView)
    assert ticket.ticket_number.startswith("TK-") and ticket.status == "open" and ticket.priority == "high"
    assert ticket.order_number == "10023" and ticket.sender_id == "user-1" and ticket.subject == "Order late"
    assert ticket.created_at.tzinfo is not None
    assert shop_repo.get_ticket_transcript(ticket.ticket_number) == transcript
    assert shop_repo.get_ticket_transcript(ticket.ticket_number.lower()) == transcript

    other = shop_repo.create_ticket("user-2", "", [], order_number="not a number")
    assert other.subject == "Support request" and other.order_number is None and other.priority == "normal"
    newer = shop_repo.create_ticket("user-1", "Second", [])
    assert [t.ticket_number for t in shop_repo.list_tickets("user-1")] == [
        newer.ticket_number,
        ticket.ticket_number,
    ]
    assert len(shop_repo.list_tickets()) == 3
    assert shop_repo.list_tickets("nobody") == []
    assert shop_repo.list_tickets(123) == []  # type: ignore[arg-type]
    assert shop_repo.get_ticket_transcript("TK-00000000") == []
    assert shop_repo.get_ticket_transcript(None) == []  # type: ignore[arg-type]


def test_ticket_transcript_keeps_newest_turns(shop_repo):
    transcript = [{"event": "user", "text": f"message {i}"} for i in range(1000)]
    ticket = shop_repo.create_ticket("user-3", "long chat", transcript)
    stored = shop_repo.get_ticket_transcript(ticket.ticket_number)
    assert len(stored) == MAX_TRANSCRIPT_TURNS
    assert stored[0]["text"] == "message 800" and stored[-1]["text"] == "message 999"


def test_ticket_transcript_is_capped_in_bytes(shop_repo, shop_session_factory):
    transcript = [{"event": "user", "text": f"{i:04d} " + "ü" * 4000} for i in range(150)]
    ticket = shop_repo.create_ticket("user-4", "big", transcript)
    stored = shop_repo.get_ticket_transcript(ticket.ticket_number)
    assert 0 < len(stored) < 150
    assert stored[-1]["text"].startswith("0149 ")
    with unit_of_work(shop_session_factory) as session:
        raw = session.execute(select(SupportTicket.transcript)).scalar_one()
    assert len(raw.encode("utf-8")) <= MAX_TRANSCRIPT_BYTES


def test_ticket_transcript_cleans_odd_turns(shop_repo, shop_session_factory):
    nested: dict = {}
    cursor = nested
    for _ in range(50):
        cursor["next"] = {}
        cursor = cursor["next"]
    transcript = [
        "plain string turn",
        {"event": "user", "text": "hello\x00world", "metadata": {"object": object()}},
        {"event": "user", "text": "x" * 1_000_000},
        {"event": "user", "nested": nested, "score": float("nan")},
    ]
    ticket = shop_repo.create_ticket("user-5", "odd", transcript, sentiment_trail=["negative"] * 500 + [None])
    stored = shop_repo.get_ticket_transcript(ticket.ticket_number)
    assert stored[0] == {"text": "plain string turn"}
    assert stored[1]["text"] == "helloworld" and isinstance(stored[1]["metadata"]["object"], str)
    assert len(stored[2]["text"]) == 5000
    assert stored[3]["score"] is None
    assert "[nested data omitted]" in json.dumps(stored[3])
    with unit_of_work(shop_session_factory) as session:
        trail = json.loads(session.execute(select(SupportTicket.sentiment_trail)).scalar_one())
    assert len(trail) == 200 and trail[-1] == "None"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sender_id": "", "subject": "s", "transcript": []},
        {"sender_id": "   ", "subject": "s", "transcript": []},
        {"sender_id": "x" * 300, "subject": "s", "transcript": []},
        {"sender_id": None, "subject": "s", "transcript": []},
        {"sender_id": "u", "subject": None, "transcript": []},
        {"sender_id": "u", "subject": "s", "transcript": "not a list"},
        {"sender_id": "u", "subject": "s", "transcript": {"event": "user"}},
        {"sender_id": "u", "subject": "s", "transcript": [], "priority": "urgent"},
        {"sender_id": "u", "subject": "s", "transcript": [], "sentiment_trail": "negative"},
    ],
)
def test_create_ticket_rejects_bad_input_and_writes_nothing(shop_repo, shop_session_factory, kwargs):
    with pytest.raises(InvalidInput):
        shop_repo.create_ticket(**kwargs)
    assert _count(shop_session_factory, SupportTicket) == 0


def test_create_ticket_caps_subject(shop_repo):
    ticket = shop_repo.create_ticket("u", "s" * 1000 + "\n\x00", [])
    assert ticket.subject == "s" * 200


# ----------------------------------------------------------------------------------------------- construction


def test_repository_from_url(tmp_path):
    from shop.db import make_engine
    from shop.seed import create_and_seed

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = make_engine(url)
    create_and_seed(engine)
    engine.dispose()
    repo = ShopRepository.from_url(url)
    assert repo.get_order("10023").status == "shipped"


def test_a_refund_request_key_makes_the_request_once(shop_repo):
    first = shop_repo.request_refund("10024", "sour", "1.00", request_key="web:a:m1")
    again = shop_repo.request_refund("10024", "sour", "1.00", request_key="web:a:m1")
    assert again == first
    other = shop_repo.request_refund("10024", "sour", "1.00", request_key="web:b:m1")
    assert other.refund_number != first.refund_number
    assert len(shop_repo.list_refunds("10024")) == 2
