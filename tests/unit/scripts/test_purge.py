"""Tests for scripts/purge.py (`make purge`): retention of uploads (a temporary store) and of ticket transcripts
(a temporary SQLite shop database), the settings from the environment and the repeating mode."""
from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import purge
from media import AttachmentStore
from tests.unit.media.samples import make_image

DAY_S = 24 * 3600


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    from shop.db import make_engine
    from shop.seed import create_and_seed

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = make_engine(url)
    create_and_seed(engine)
    engine.dispose()
    return url


@pytest.fixture
def repository(database_url: str):
    from shop.repository import ShopRepository

    return ShopRepository.from_url(database_url)


def _aged_upload(store: AttachmentStore, seed: int, days: float) -> str:
    ref = store.save(make_image("PNG", size=(20 + seed, 20)))
    when = time.time() - days * DAY_S
    for name in (ref.id, f"{ref.id}.json"):
        os.utime(store.root / ref.id[:2] / name, (when, when))
    return ref.id


def test_purge_once_removes_expired_uploads_and_transcripts(tmp_path: Path, database_url, repository):
    store = AttachmentStore(tmp_path / "uploads")
    expired = _aged_upload(store, 1, 31)
    kept = _aged_upload(store, 2, 10)
    ticket = repository.create_ticket("web:abc", "Broken blender", [{"event": "user", "text": "it broke"}],
                                      ["negative"])
    # today: one upload is past 30 days, the new ticket is not past 90
    counts = purge.purge_once(30, 90, str(store.root), database_url)
    assert counts == {"uploads": 1, "transcripts": 0}
    assert not (store.root / expired[:2] / expired).exists()
    assert store.read(kept)
    assert repository.get_ticket_transcript(ticket.ticket_number) != []
    later = datetime.now(timezone.utc) + timedelta(days=91)  # the ticket's transcript has expired by then
    counts = purge.purge_once(1000, 90, str(store.root), database_url, now=later)
    assert counts == {"uploads": 0, "transcripts": 1}
    assert repository.get_ticket_transcript(ticket.ticket_number) == []


def test_main_reads_the_retention_from_the_environment(tmp_path: Path, database_url, monkeypatch):
    store = AttachmentStore(tmp_path / "uploads")
    week_old = _aged_upload(store, 3, 7)
    monkeypatch.setenv("UPLOAD_RETENTION_DAYS", "5")
    monkeypatch.setenv("ATTACHMENT_DIR", str(store.root))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TRACKER_STORE_URL", f"sqlite:///{tmp_path / 'tracker.db'}")
    assert purge.main([]) == 0
    assert not (store.root / week_old[:2] / week_old).exists()


def test_defaults_are_30_days_for_uploads_and_90_for_transcripts():
    assert purge.retention_days("UPLOAD_RETENTION_DAYS", purge.DEFAULT_UPLOAD_DAYS, {}) == 30
    assert purge.retention_days("TRANSCRIPT_RETENTION_DAYS", purge.DEFAULT_TRANSCRIPT_DAYS, {}) == 90
    assert purge.retention_days("X", 30, {"X": "7.5"}) == 7.5


@pytest.mark.parametrize("bad", ["0", "-3", "soon", "inf", "nan"])
def test_a_bad_retention_setting_is_refused(bad, monkeypatch, capsys):
    with pytest.raises(ValueError):
        purge.retention_days("UPLOAD_RETENTION_DAYS", 30, {"UPLOAD_RETENTION_DAYS": bad})
    monkeypatch.setenv("UPLOAD_RETENTION_DAYS", bad)
    with pytest.raises(SystemExit) as raised:
        purge.main([])
    assert raised.value.code == 2 and "UPLOAD_RETENTION_DAYS" in capsys.readouterr().err


def test_a_database_failure_is_reported_and_the_uploads_are_still_purged(tmp_path: Path, caplog):
    store = AttachmentStore(tmp_path / "uploads")
    expired = _aged_upload(store, 4, 40)
    missing = f"sqlite:///{tmp_path / 'no-such-dir' / 'shop.db'}"
    with caplog.at_level("ERROR", logger="purge"):
        counts = purge.purge_once(30, 90, str(store.root), missing)
    assert counts == {"uploads": 1, "transcripts": -1}
    assert "Purging ticket transcripts failed" in caplog.text
    tracker = f"sqlite:///{tmp_path / 'tracker.db'}"
    assert purge.main(["--attachment-dir", str(store.root), "--database-url", missing, "--tracker-url", tracker]) == 1
    assert not (store.root / expired[:2] / expired).exists()


def test_every_hours_purges_until_stopped(tmp_path: Path, database_url, monkeypatch):
    store = AttachmentStore(tmp_path / "uploads")
    runs = []
    stop = threading.Event()

    def fake_purge_once(*args, **kwargs):
        runs.append(args)
        if len(runs) == 2:
            stop.set()
        return {"uploads": 0, "transcripts": 0}

    monkeypatch.setattr(purge, "purge_once", fake_purge_once)
    started = time.monotonic()
    code = purge.main(["--every-hours", "0.00001", "--attachment-dir", str(store.root)], stop=stop)
    assert code == 0 and len(runs) == 2 and time.monotonic() - started < 5


async def test_conversations_idle_past_the_retention_are_deleted(tmp_path: Path, database_url):
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from stores.tracker import SQLConversationStore

    tracker_url = f"sqlite:///{tmp_path / 'tracker.db'}"
    store = SQLConversationStore(Domain.empty(), host=tracker_url)
    now = datetime.now(timezone.utc)
    for sender, days_ago in (("web:old", 100), ("web:recent", 10)):
        tracker = DialogueStateTracker(sender, [])
        tracker.update(UserUttered("hi", timestamp=(now - timedelta(days=days_ago)).timestamp()))
        await store.save(tracker)
    counts = purge.purge_once(30, 90, str(tmp_path / "uploads"), database_url, tracker_url=tracker_url)
    assert counts["conversations"] == 1
    assert await store.retrieve("web:old") is None
    assert await store.retrieve("web:recent") is not None
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    broken = purge.purge_once(30, 90, str(tmp_path / "uploads"), database_url,
                              tracker_url=f"sqlite:///{tmp_path / 'a-file' / 't.db'}")
    assert broken["conversations"] == -1
