"""Tests for the upload store's retention: `AttachmentStore.delete` and `AttachmentStore.purge`."""
from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from media import AttachmentError, AttachmentStore
from tests.unit.media.samples import make_image, make_wav

DAY_S = 24 * 3600


def _age(store: AttachmentStore, upload_id: str, days: float) -> None:
    """Sets the upload's and its sidecar's modification time `days` days back."""
    when = time.time() - days * DAY_S
    for name in (upload_id, f"{upload_id}.json"):
        os.utime(store.root / upload_id[:2] / name, (when, when))


def _ago(days: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=days)


def test_delete_removes_the_upload_and_its_sidecar(store: AttachmentStore):
    ref = store.save(make_image("PNG"))
    shard = store.root / ref.id[:2]
    assert store.delete(ref.id) is True
    assert not (shard / ref.id).exists() and not (shard / f"{ref.id}.json").exists()
    with pytest.raises(AttachmentError) as raised:
        store.read(ref.id)
    assert raised.value.code == "not_found"
    assert store.delete(ref.id) is False  # nothing left: nothing to do


@pytest.mark.parametrize("bad", ["../" + "a" * 61, "A" * 64, "a" * 63, "/etc/passwd", 42, None])
def test_delete_validates_ids_as_reading_does(store: AttachmentStore, bad):
    with pytest.raises(AttachmentError) as raised:
        store.delete(bad)
    assert raised.value.code == "invalid_reference"


def test_delete_never_follows_a_symlink_out_of_the_store(store: AttachmentStore, tmp_path: Path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    upload_id = hashlib.sha256(b"precious").hexdigest()
    shard = store.root / upload_id[:2]
    shard.mkdir()
    (shard / f"{upload_id}.json").symlink_to(outside)
    assert store.delete(upload_id) is True  # the link goes, not what it points to
    assert outside.read_text() == "keep me"
    shard.mkdir(exist_ok=True)  # an emptied shard is removed
    (shard / upload_id).symlink_to(outside)
    with pytest.raises(AttachmentError) as raised:
        store.delete(upload_id)
    assert raised.value.code == "invalid_reference" and outside.read_text() == "keep me"


def test_purge_removes_uploads_older_than_the_cutoff_only(store: AttachmentStore):
    old_photo = store.save(make_image("PNG"))
    old_voice = store.save(make_wav(0.5))
    fresh = store.save(make_image("JPEG"))
    _age(store, old_photo.id, 31)
    _age(store, old_voice.id, 45)
    _age(store, fresh.id, 29)
    assert store.purge(_ago(30)) == 2
    for gone in (old_photo, old_voice):
        assert not (store.root / gone.id[:2] / gone.id).exists()
        assert not (store.root / gone.id[:2] / f"{gone.id}.json").exists()
    assert store.read(fresh) == make_image("JPEG")
    assert store.purge(_ago(30)) == 0


def test_sending_the_same_upload_again_renews_its_retention(store: AttachmentStore):
    data = make_image("PNG")
    ref = store.save(data)
    _age(store, ref.id, 40)
    assert store.save(data).id == ref.id
    assert store.purge(_ago(30)) == 0
    assert store.read(ref.id) == data


def test_purge_clears_orphan_sidecars_and_stale_temporary_files(store: AttachmentStore):
    ref = store.save(make_image("PNG"))
    _age(store, ref.id, 40)
    (store.root / ref.id[:2] / ref.id).unlink()  # a sidecar left behind
    leftover = store.root / ".tmp" / "upload-interrupted"
    leftover.write_bytes(b"half a photo")
    os.utime(leftover, (time.time() - 40 * DAY_S,) * 2)
    assert store.purge(_ago(30)) == 0  # no upload was removed ...
    assert not (store.root / ref.id[:2] / f"{ref.id}.json").exists()  # ... but the debris is gone
    assert not leftover.exists()


def test_purge_leaves_foreign_names_and_symlinked_shards_alone(store: AttachmentStore, tmp_path: Path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    victim_id = hashlib.sha256(b"victim").hexdigest()
    victim = outside / victim_id
    victim.write_bytes(b"victim")
    os.utime(victim, (time.time() - 99 * DAY_S,) * 2)
    (store.root / victim_id[:2]).symlink_to(outside, target_is_directory=True)
    ref = store.save(make_image("PNG"))
    note = store.root / ref.id[:2] / "README"
    note.write_text("not an upload")
    _age(store, ref.id, 40)
    os.utime(note, (time.time() - 99 * DAY_S,) * 2)
    assert store.purge(_ago(30)) == 1
    assert victim.exists() and note.exists()


def test_purge_wants_an_aware_cutoff(store: AttachmentStore):
    with pytest.raises(ValueError):
        store.purge(datetime.now())  # naive: local time or UTC? refused
