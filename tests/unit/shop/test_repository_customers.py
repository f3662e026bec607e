"""Unit tests of the repository's customer side against the seeded in-memory SQLite database: proving that an
order is yours (email address, lock-out after wrong tries), a customer's orders, refund quotes, and erasing or
purging ticket transcripts.

Seed customers: Anna Berg (anna.berg@example.com: orders 10017, 10023, 10029), Ben Okafor (10018, 10024,
10030), Emma Kelly (10021, 10027), Farid Haddad (10022, 10028).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import StatementError

from shop.db import unit_of_work
from shop.errors import InvalidAmount, InvalidInput, InvalidOrderNumber, OrderNotFound, RefundNotAllowed
from shop.models import Customer, SupportTicket, VerificationAttempt
from shop.repository import ERASED_SUBJECT, ShopRepository
from shop.statuses import VerificationOutcome
from shop.verification import LockPolicy, VerificationResult

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=timezone.utc)
WRONG = "someone.else@example.com"


def customer_id(session_factory, email: str) -> int:
    with unit_of_work(session_factory) as session:
        return session.execute(select(Customer.id).where(Customer.email == email)).scalar_one()


def attempts(session_factory):
    with unit_of_work(session_factory) as session:
        attempt = VerificationAttempt
        columns = (attempt.sender_id, attempt.order_number, attempt.outcome)
        rows = session.execute(select(*columns).order_by(attempt.id)).all()
        return [(sender, number, outcome.value) for sender, number, outcome in rows]


def fail(
    repo: ShopRepository, sender: str, number: str, times: int, now: datetime = NOW, locks: bool = False
) -> None:
    """``times`` wrong tries, each answered MISMATCH; with ``locks`` the last is the one that reaches the limit
    and is answered LOCKED."""
    for attempt in range(1, times + 1):
        expected = VerificationResult.LOCKED if locks and attempt == times else VerificationResult.MISMATCH
        assert repo.verify_order_email(sender, number, WRONG, now=now) is expected


# ---------------------------------------------------------------------------------------------- verification


@pytest.mark.parametrize(
    "email", ["anna.berg@example.com", "  Anna.Berg@EXAMPLE.com ", "ANNA.BERG@EXAMPLE.COM\n"]
)
def test_the_email_on_the_order_verifies_it(shop_repo, shop_session_factory, email: str) -> None:
    assert shop_repo.verify_order_email("web:a", "#10023", email, now=NOW) is VerificationResult.VERIFIED
    assert attempts(shop_session_factory) == [("web:a", "10023", "verified")]


@pytest.mark.parametrize(
    "number, email",
    [
        ("10023", "ben.okafor@example.com"),  # another customer's address
        ("10023", "anna.berg@example.co"),
        ("99999", "anna.berg@example.com"),  # no such order: the same answer
        ("10024", "anna.berg@example.com"),
    ],
)
def test_anything_else_is_a_mismatch(shop_repo, shop_session_factory, number: str, email: str) -> None:
    assert shop_repo.verify_order_email("web:a", number, email, now=NOW) is VerificationResult.MISMATCH
    assert attempts(shop_session_factory) == [("web:a", number, "failed")]


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"order_number": "1002"}, InvalidOrderNumber),
        ({"order_number": None}, InvalidOrderNumber),
        ({"email": "not an address"}, InvalidInput),
        ({"email": None}, InvalidInput),
        ({"sender_id": ""}, InvalidInput),
        ({"sender_id": "x" * 300}, InvalidInput),
        ({"now": datetime(2025, 3, 10)}, InvalidInput),
    ],
)
def test_malformed_tries_are_refused_and_write_nothing(shop_repo, shop_session_factory, kwargs, error):
    arguments = {"sender_id": "web:a", "order_number": "10023", "email": "anna.berg@example.com", **kwargs}
    now = arguments.pop("now", NOW)
    with pytest.raises(error):
        shop_repo.verify_order_email(**arguments, now=now)
    assert attempts(shop_session_factory) == []


def test_five_wrong_addresses_lock_the_conversation_and_the_order(shop_repo, shop_session_factory) -> None:
    fail(shop_repo, "web:a", "10023", 4)
    assert not shop_repo.verification_locked("web:a", "10023", now=NOW)
    fail(shop_repo, "web:a", "10023", 1, locks=True)
    assert shop_repo.verification_locked("web:a", "10023", now=NOW)  # this conversation
    assert shop_repo.verification_locked("web:a", "10021", now=NOW)  # any order, from this conversation
    assert shop_repo.verification_locked("web:b", "10023", now=NOW)  # this order, from any conversation
    assert not shop_repo.verification_locked("web:b", "10021", now=NOW)
    # the right address no longer helps while locked, and the refused try is not counted
    result = shop_repo.verify_order_email("web:a", "10023", "anna.berg@example.com", now=NOW)
    assert result is VerificationResult.LOCKED
    assert attempts(shop_session_factory)[-1] == ("web:a", "10023", "refused")


def test_the_wrong_try_that_reaches_the_limit_answers_locked_at_once(shop_repo, shop_session_factory) -> None:
    results = [shop_repo.verify_order_email("web:a", "10023", WRONG, now=NOW) for _ in range(5)]
    assert results == [VerificationResult.MISMATCH] * 4 + [VerificationResult.LOCKED]
    assert [outcome for *_, outcome in attempts(shop_session_factory)] == ["failed"] * 5  # counted as wrong


def test_the_lock_lifts_when_the_wrong_tries_are_older_than_the_window(shop_repo) -> None:
    fail(shop_repo, "web:a", "10023", 5, locks=True)
    later = NOW + timedelta(minutes=15, seconds=1)
    assert shop_repo.verification_locked("web:a", "10023", now=NOW + timedelta(minutes=14))
    assert not shop_repo.verification_locked("web:a", "10023", now=later)
    assert shop_repo.verify_order_email("web:a", "10023", "anna.berg@example.com", now=later) is (
        VerificationResult.VERIFIED
    )


def test_failures_are_counted_in_a_sliding_window(shop_repo) -> None:
    fail(shop_repo, "web:a", "10023", 3, now=NOW)
    fail(shop_repo, "web:a", "10023", 1, now=NOW + timedelta(minutes=10))
    # at +16 minutes the first three have left the window: one failure counts
    assert not shop_repo.verification_locked("web:a", "10023", now=NOW + timedelta(minutes=16))
    fail(shop_repo, "web:a", "10023", 1, now=NOW + timedelta(minutes=12), locks=True)
    assert shop_repo.verification_locked("web:a", "10023", now=NOW + timedelta(minutes=12))


def test_a_success_does_not_count_and_does_not_reset_the_failures(shop_repo) -> None:
    fail(shop_repo, "web:a", "10023", 4)
    assert shop_repo.verify_order_email("web:a", "10023", "anna.berg@example.com", now=NOW) is (
        VerificationResult.VERIFIED
    )
    assert not shop_repo.verification_locked("web:a", "10023", now=NOW)
    fail(shop_repo, "web:a", "10021", 1, locks=True)
    assert shop_repo.verification_locked("web:a", "10023", now=NOW)


def test_per_order_lock_across_conversations(shop_repo) -> None:
    for sender in ("web:a", "web:b", "web:c", "web:d", "web:e"):
        fail(shop_repo, sender, "10023", 1, locks=sender == "web:e")
    assert shop_repo.verify_order_email("web:f", "10023", "anna.berg@example.com", now=NOW) is (
        VerificationResult.LOCKED
    )
    assert shop_repo.verify_order_email("web:f", "10021", "emma.kelly@example.com", now=NOW) is (
        VerificationResult.VERIFIED
    )


def test_tries_still_running_count_against_the_limit(shop_repo, shop_session_factory) -> None:
    """A try is written as ``pending`` before it is checked, so concurrent tries see each other."""
    fail(shop_repo, "web:a", "10023", 4)
    with unit_of_work(shop_session_factory) as session:
        session.add(VerificationAttempt(sender_id="web:z", order_number="10023", created_at=NOW))
    assert shop_repo.verify_order_email("web:b", "10023", "anna.berg@example.com", now=NOW) is (
        VerificationResult.LOCKED
    )


def test_a_shorter_policy_can_be_configured(shop_session_factory) -> None:
    repo = ShopRepository(shop_session_factory, LockPolicy(max_failures=2, window=timedelta(minutes=1)))
    fail(repo, "web:a", "10023", 2, locks=True)
    assert repo.verification_locked("web:a", "10023", now=NOW)
    assert not repo.verification_locked("web:a", "10023", now=NOW + timedelta(minutes=2))


def test_the_outcome_column_refuses_unknown_values(shop_session_factory) -> None:
    with pytest.raises(StatementError):
        with unit_of_work(shop_session_factory) as session:
            session.execute(
                VerificationAttempt.__table__.insert().values(
                    sender_id="x", order_number="10023", outcome="maybe", created_at=NOW
                )
            )
    assert [outcome.value for outcome in VerificationOutcome] == ["pending", "failed", "verified", "refused"]


# ------------------------------------------------------------------------------------------------- customers


def test_order_belongs_to(shop_repo, shop_session_factory) -> None:
    anna = customer_id(shop_session_factory, "anna.berg@example.com")
    assert shop_repo.order_belongs_to("10023", anna)
    assert shop_repo.order_belongs_to("#10017", anna)
    assert not shop_repo.order_belongs_to("10024", anna)
    assert not shop_repo.order_belongs_to("99999", anna)
    for bad in (None, "1", True, 0, -1, 1.0):
        assert not shop_repo.order_belongs_to("10023", bad)
    assert not shop_repo.order_belongs_to("1002", anna)


def test_customer_orders_newest_first(shop_repo, shop_session_factory) -> None:
    anna = customer_id(shop_session_factory, "anna.berg@example.com")
    orders = shop_repo.customer_orders(anna)
    assert [order.order_number for order in orders] == ["10023", "10017", "10029"]
    assert [order.order_number for order in shop_repo.customer_orders(anna, limit=1)] == ["10023"]
    assert orders[0].status == "shipped" and orders[0].customer_email == "anna.berg@example.com"
    assert shop_repo.customer_orders(99_999) == [] and shop_repo.customer_orders("1") == []
    with pytest.raises(InvalidInput):
        shop_repo.customer_orders(anna, limit="5")


def test_customers_of_orders(shop_repo, shop_session_factory) -> None:
    anna = customer_id(shop_session_factory, "anna.berg@example.com")
    ben = customer_id(shop_session_factory, "ben.okafor@example.com")
    numbers = ["10023", "10017", "10024", "99999", "junk", None]
    assert shop_repo.customers_of_orders(numbers) == sorted([anna, ben])
    assert shop_repo.customers_of_orders([]) == []


# --------------------------------------------------------------------------------------------- refund quote


def test_refund_quote_is_what_a_request_would_ask_for_and_writes_nothing(shop_repo) -> None:
    assert shop_repo.refund_quote("10026") == (Decimal("4.98"), "EUR")
    assert shop_repo.refund_quote("10024", "2.50") == (Decimal("2.50"), "EUR")
    assert shop_repo.list_refunds("10024") == []
    for number, amount, error in [
        ("10023", None, RefundNotAllowed),
        ("10030", None, RefundNotAllowed),
        ("10024", "20", InvalidAmount),
        ("99999", None, OrderNotFound),
        ("1", None, InvalidOrderNumber),
    ]:
        with pytest.raises(error):
            shop_repo.refund_quote(number, amount)


# --------------------------------------------------------------------------------------------------- privacy


def _ticket(repo: ShopRepository, sender: str, order_number=None, subject: str = "Complaint: it was late"):
    return repo.create_ticket(
        sender_id=sender,
        subject=subject,
        transcript=[{"role": "user", "text": "my name is Anna and it was late"}],
        sentiment_trail=["negative"],
        order_number=order_number,
    )


def _stored(session_factory, ticket_number: str):
    with unit_of_work(session_factory) as session:
        ticket = session.execute(
            select(SupportTicket).where(SupportTicket.ticket_number == ticket_number)
        ).scalar_one()
        return ticket.subject, json.loads(ticket.transcript), json.loads(ticket.sentiment_trail)


def test_erase_customer_data_clears_their_tickets_only(shop_repo, shop_session_factory) -> None:
    anna = customer_id(shop_session_factory, "anna.berg@example.com")
    about_her_order = _ticket(shop_repo, "web:other", "10023")
    from_this_chat = _ticket(shop_repo, "web:anna")
    someone_else = _ticket(shop_repo, "web:ben", "10024")
    assert shop_repo.erase_customer_data(anna, sender_id="web:anna") == 2
    for ticket in (about_her_order, from_this_chat):
        assert _stored(shop_session_factory, ticket.ticket_number) == (ERASED_SUBJECT, [], [])
    assert _stored(shop_session_factory, someone_else.ticket_number)[1] != []
    assert shop_repo.erase_customer_data(anna, sender_id="web:anna") == 0  # nothing left to erase
    assert len(shop_repo.list_tickets()) == 3  # the tickets stay for the support team


@pytest.mark.parametrize("customer", [None, "1", True, 0, -5])
def test_erase_customer_data_refuses_a_malformed_id(shop_repo, customer) -> None:
    with pytest.raises(InvalidInput):
        shop_repo.erase_customer_data(customer)


def test_purge_transcripts_clears_old_tickets(shop_repo, shop_session_factory) -> None:
    old = _ticket(shop_repo, "web:a", "10023")
    new = _ticket(shop_repo, "web:b")
    with unit_of_work(shop_session_factory) as session:
        session.execute(
            update(SupportTicket)
            .where(SupportTicket.ticket_number == old.ticket_number)
            .values(created_at=NOW - timedelta(days=40))
        )
    assert shop_repo.purge_transcripts(NOW - timedelta(days=30)) == 1
    subject, transcript, trail = _stored(shop_session_factory, old.ticket_number)
    assert (transcript, trail) == ([], []) and subject == "Complaint: it was late"
    assert _stored(shop_session_factory, new.ticket_number)[1] != []
    assert shop_repo.purge_transcripts(NOW - timedelta(days=30)) == 0  # already purged: not counted again
    with unit_of_work(shop_session_factory) as session:
        assert session.execute(select(func.count()).select_from(SupportTicket)).scalar_one() == 2


@pytest.mark.parametrize("cutoff", [None, "2025-01-01", datetime(2025, 1, 1)])
def test_purge_transcripts_needs_an_aware_datetime(shop_repo, cutoff) -> None:
    with pytest.raises(InvalidInput):
        shop_repo.purge_transcripts(cutoff)
