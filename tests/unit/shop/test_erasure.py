"""Unit tests of `shop.erasure`: a verified customer's uploads (a real `media.AttachmentStore` in a temporary
folder) and support transcripts (the real repository on the seeded in-memory database) are erased."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from typing import List

import pytest
from PIL import Image
from sqlalchemy import select

from media import AttachmentStore
from shop.db import unit_of_work
from shop.erasure import ErasureReport, delete_uploads, erase_customer
from shop.models import Customer, SupportTicket


def _png(colour: tuple) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def stored(store: AttachmentStore, upload: str) -> bool:
    """Whether the upload's file is still in the store."""
    return (store.root / upload[:2] / upload).exists()


@pytest.fixture
def store(tmp_path) -> AttachmentStore:
    return AttachmentStore(tmp_path / "uploads")


@pytest.fixture
def uploads(store) -> List[str]:
    return [store.save(_png(colour), "photo.png").id for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]


def test_delete_uploads_removes_the_files_and_skips_junk(store, uploads) -> None:
    missing = hashlib.sha256(b"never stored").hexdigest()
    junk = ["../../etc/passwd", "A" * 64, "", None, 42, missing]
    assert delete_uploads(uploads[:2] + uploads[:1] + junk, store) == 2
    assert [stored(store, upload) for upload in uploads] == [False, False, True]
    assert delete_uploads(uploads[:2], store) == 0  # already gone


def test_delete_uploads_goes_on_after_a_failing_upload(uploads, caplog) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.calls: List[str] = []

        def delete(self, attachment_id: str) -> bool:
            self.calls.append(attachment_id)
            if len(self.calls) == 1:
                raise OSError("disk gone")
            return True

    flaky = Flaky()
    with caplog.at_level(logging.WARNING, logger="shop.erasure"):
        assert delete_uploads(uploads, flaky) == 2
    assert len(flaky.calls) == 3 and "disk gone" in caplog.text


def test_delete_uploads_without_ids_never_opens_the_store(monkeypatch) -> None:
    monkeypatch.setattr("shop.erasure.default_store", lambda: pytest.fail("store opened"))
    assert delete_uploads([], None) == 0


def test_erase_customer_erases_uploads_and_tickets(shop_repo, shop_session_factory, store, uploads) -> None:
    with unit_of_work(shop_session_factory) as session:
        anna = session.execute(
            select(Customer.id).where(Customer.email == "anna.berg@example.com")
        ).scalar_one()
    shop_repo.create_ticket("web:anna", "Complaint: late", [{"role": "user", "text": "late"}], ["negative"])
    shop_repo.create_ticket("web:old", "Order", [{"role": "user", "text": "x"}], [], order_number="10017")
    shop_repo.create_ticket("web:ben", "Ben's", [{"role": "user", "text": "y"}], [], order_number="10024")
    report = erase_customer(
        shop_repo, [anna, anna], sender_id="web:anna", attachment_ids=uploads, store=store
    )
    assert report == ErasureReport(uploads=3, tickets=2)
    assert not any(stored(store, upload) for upload in uploads)
    with unit_of_work(shop_session_factory) as session:
        kept = {
            ticket.sender_id: json.loads(ticket.transcript)
            for ticket in session.execute(select(SupportTicket)).scalars()
        }
    assert kept == {"web:anna": [], "web:old": [], "web:ben": [{"role": "user", "text": "y"}]}
