"""Tests for `media.store`: saving by content hash, base64, reading safely, logging and construction.

Every input is generated here (Pillow, the `wave` module, ffmpeg when installed). The optional last test reads
the team's shared case files when they are present.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import stat
import struct
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from assistant import paths as assistant_paths
from media import AttachmentError, AttachmentLimits, AttachmentRef, AttachmentStore, sniff
from media import store as store_module
from media.limits import MiB
from tests.unit.media.samples import (
    expect_error,
    ffmpeg_audio,
    make_image,
    make_wav,
    png_header_only,
    requires_ffmpeg,
    requires_ffprobe,
    stored_files,
)

VALID_ID = hashlib.sha256(b"x").hexdigest()


# ------------------------------------------------------------------------------------------------------------
# Saving
# ------------------------------------------------------------------------------------------------------------
def test_save_stores_by_hash_with_sidecar(store: AttachmentStore):
    data = make_image("JPEG")
    ref = store.save(data, name="../../holiday photo.jpg", declared_mime="image/jpeg")
    digest = hashlib.sha256(data).hexdigest()
    assert ref.id == digest and ref.type == "image" and ref.mime_type == "image/jpeg"
    assert ref.size == len(data) and ref.name == "holiday photo.jpg"
    path = store.root / digest[:2] / digest
    assert path.read_bytes() == data
    assert store.path_for(digest) == path
    sidecar = json.loads((path.parent / f"{digest}.json").read_text())
    assert sidecar["mime_type"] == "image/jpeg" and sidecar["size"] == len(data)
    assert sidecar["name"] == "holiday photo.jpg" and (sidecar["width"], sidecar["height"]) == (32, 24)
    assert store.read(ref) == data and store.read(digest) == data
    assert store.ref_for(digest) == AttachmentRef(
        type="image", id=digest, mime_type="image/jpeg", size=len(data), name="holiday photo.jpg"
    )
    assert list((store.root / ".tmp").iterdir()) == []


def test_an_upload_and_its_sidecar_are_readable_by_the_server_user_only(store: AttachmentStore):
    ref = store.save(make_image("PNG"), name="private.png")
    path = store.path_for(ref.id)
    sidecar = path.parent / f"{ref.id}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(sidecar.stat().st_mode) == store_module.PRIVATE_FILE_MODE == 0o600
    assert json.loads(sidecar.read_text(encoding="utf-8"))["name"] == "private.png"
    assert list((store.root / ".tmp").iterdir()) == []


def test_save_is_idempotent(store: AttachmentStore):
    data = make_image("PNG")
    first = store.save(data, name="a.png")
    before = stored_files(store)
    second = store.save(data, name="a.png")
    assert first == second
    assert stored_files(store) == before and len(before) == 2  # the file and its sidecar
    assert store.save_stream([data[:10], data[10:]], name="a.png") == first


def test_declared_mime_and_name_never_decide_the_type(store: AttachmentStore):
    ref = store.save(make_image("JPEG"), name="voice.ogg", declared_mime="audio/ogg")
    assert (ref.type, ref.mime_type) == ("image", "image/jpeg")


@requires_ffprobe
def test_audio_named_as_photo_is_audio(store: AttachmentStore):
    ref = store.save(make_wav(0.5), name="photo.jpg", declared_mime="image/jpeg")
    assert (ref.type, ref.mime_type) == ("audio", "audio/wav")
    assert store.info(ref.id)["duration_s"] == pytest.approx(0.5, abs=0.01)


def test_text_named_as_jpeg_is_rejected_by_content(store: AttachmentStore):
    error = expect_error("unsupported_type", store.save, b"definitely not a jpeg\n" * 10, name="photo.jpg",
                         declared_mime="image/jpeg")
    assert "JPEG, PNG, WebP, GIF" in error.user_message
    assert stored_files(store) == []


def test_empty_upload_is_rejected(store: AttachmentStore):
    expect_error("empty", store.save, b"")
    expect_error("empty", store.save_stream, iter([b"", b""]))
    assert stored_files(store) == []


def test_truncated_jpeg_is_damaged(store: AttachmentStore):
    data = make_image("JPEG", size=(256, 256))
    error = expect_error("damaged", store.save, data[: len(data) // 3])
    assert error.user_message == "That file looks damaged — could you send the photo again?"
    assert stored_files(store) == []


def test_image_signature_with_broken_header_is_damaged(store: AttachmentStore):
    expect_error("damaged", store.save, b"\x89PNG\r\n\x1a\n" + b"\xff" * 200)


def test_pixel_bomb_is_rejected_from_the_header(store: AttachmentStore):
    bomb = png_header_only(30000, 30000)  # 900 M pixels declared in a few hundred bytes
    assert len(bomb) < 2000 and sniff(bomb) == ("image", "image/png")
    started = time.perf_counter()
    error = expect_error("too_large", store.save, bomb)
    assert time.perf_counter() - started < 1.0
    assert error.attachment_type == "image"
    # Under Pillow's own bomb guard but over our 40 M pixel limit: refused before decoding.
    expect_error("too_large", store.save, png_header_only(8000, 6000))
    assert stored_files(store) == []


def test_pixel_limit_is_configurable(tmp_path: Path):
    small = AttachmentStore(tmp_path, AttachmentLimits(image_max_pixels=100))
    expect_error("too_large", small.save, make_image("PNG", size=(20, 20)))
    assert small.save(make_image("PNG", size=(10, 10))).type == "image"


def test_per_type_byte_limits(tmp_path: Path):
    image = make_image("PNG", size=(64, 64))
    limits = AttachmentLimits(image_max_bytes=len(image) - 1, audio_max_bytes=10 * MiB)
    error = expect_error("too_large", AttachmentStore(tmp_path, limits).save, image)
    assert error.attachment_type == "image"


def test_oversized_bytes_refused_before_anything_is_written(tmp_path: Path, monkeypatch):
    store = AttachmentStore(tmp_path, AttachmentLimits(image_max_bytes=1000, audio_max_bytes=1000))
    monkeypatch.setattr(
        store_module.tempfile, "mkstemp", lambda *a, **k: pytest.fail("nothing may be written")
    )
    expect_error("too_large", store.save, b"\xff\xd8\xff" + b"\x00" * 5000)


def test_one_gigabyte_stream_is_refused_while_reading(store: AttachmentStore):
    consumed = 0

    def one_gigabyte() -> Iterator[bytes]:
        nonlocal consumed
        chunk = bytes(MiB)
        for _ in range(1024):
            consumed += 1
            yield chunk

    started = time.perf_counter()
    error = expect_error("too_large", store.save_stream, one_gigabyte(), name="huge.jpg")
    assert consumed <= store.limits.max_upload_bytes // MiB + 1
    assert time.perf_counter() - started < 10
    assert "20 MB" in error.user_message
    assert stored_files(store) == []


def test_declared_size_over_limit_is_refused_before_reading(store: AttachmentStore):
    def must_not_be_read() -> Iterator[bytes]:
        pytest.fail("the body must not be read")
        yield b""

    expect_error("too_large", store.save_stream, must_not_be_read(), expected_size=1024 * MiB)


@requires_ffprobe
def test_audio_longer_than_limit_is_too_long(tmp_path: Path):
    store = AttachmentStore(tmp_path, AttachmentLimits(audio_max_seconds=0.5))
    error = expect_error("too_long", store.save, make_wav(1.0))
    assert "0.5 seconds" in error.user_message
    assert stored_files(store) == []


@requires_ffprobe
def test_audio_over_byte_limit_is_too_large(tmp_path: Path):
    store = AttachmentStore(tmp_path, AttachmentLimits(audio_max_bytes=10_000))
    error = expect_error("too_large", store.save, make_wav(1.0))  # 32 KB
    assert error.attachment_type == "audio"


@requires_ffprobe
def test_wav_header_without_samples_is_no_speech(store: AttachmentStore):
    error = expect_error("no_speech", store.save, make_wav(0.0))
    assert "couldn't hear anything" in error.user_message


@requires_ffprobe
def test_riff_header_with_random_bytes_is_damaged(store: AttachmentStore):
    garbage = b"RIFF" + struct.pack("<I", 10004) + b"WAVE" + os.urandom(10000)
    error = expect_error("damaged", store.save, garbage, name="voice.wav")
    assert error.attachment_type == "audio"


@requires_ffmpeg
def test_video_is_not_a_voice_note(tmp_path: Path, store: AttachmentStore):
    out = tmp_path / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=1:size=64x48:rate=5",
         "-f", "lavfi", "-i", "sine=duration=1", "-c:v", "mpeg4", "-c:a", "aac", "-shortest", str(out)],
        check=True, timeout=60,
    )
    expect_error("unsupported_type", store.save, out.read_bytes())


@requires_ffmpeg
def test_browser_webm_without_duration_header_is_measured(tmp_path: Path, store: AttachmentStore):
    data = ffmpeg_audio(tmp_path, ".webm", ["-c:a", "libopus", "-live", "1"], seconds=2.0)
    ref = store.save(data)
    assert ref.mime_type == "audio/webm"
    assert store.info(ref.id)["duration_s"] == pytest.approx(2.0, abs=0.1)


# ---- base64 ------------------------------------------------------------------------------------------------
def test_save_base64_variants(store: AttachmentStore):
    data = make_image("GIF")
    encoded = base64.b64encode(data).decode()
    expected = hashlib.sha256(data).hexdigest()
    assert store.save_base64(encoded).id == expected
    assert store.save_base64(encoded.encode()).id == expected
    assert store.save_base64("data:application/pdf;base64," + encoded).id == expected  # prefix MIME ignored
    urlsafe = base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert store.save_base64(urlsafe).id == expected
    wrapped = "\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76))
    assert store.save_base64(wrapped).id == expected


@pytest.mark.parametrize(
    "text",
    ["not base64 at all!!!", "AAAA*AAA", "data:image/png,rawbytes", "ÄÖÜ=", "A", b"\xff\xfe"],
)
def test_base64_that_does_not_decode_is_damaged(store: AttachmentStore, text):
    expect_error("damaged", store.save_base64, text)
    assert stored_files(store) == []


def test_base64_empty_and_oversized(tmp_path: Path, monkeypatch):
    store = AttachmentStore(tmp_path, AttachmentLimits(image_max_bytes=300, audio_max_bytes=300))
    expect_error("empty", store.save_base64, "")
    monkeypatch.setattr(store_module.base64, "b64decode", lambda *a, **k: pytest.fail("must not decode"))
    expect_error("too_large", store.save_base64, "A" * 1000)
    expect_error("too_large", store.save_base64, "A" * 10_000_000)


# ------------------------------------------------------------------------------------------------------------
# Reading: ids, traversal, symlinks
# ------------------------------------------------------------------------------------------------------------
BAD_IDS = [
    "../../etc/passwd",
    "/etc/passwd",
    "..",
    "",
    VALID_ID.upper(),
    VALID_ID[:-1],
    VALID_ID + "0",
    VALID_ID[:2] + "/../../" + VALID_ID[8:],
    VALID_ID + "\x00",
    "..%2f..%2fetc%2fpasswd",
    123,
    None,
]


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_bad_ids_are_refused(store: AttachmentStore, bad_id):
    expect_error("invalid_reference", store.path_for, bad_id)
    expect_error("invalid_reference", store.read, bad_id)


def test_missing_upload_is_not_found(store: AttachmentStore):
    error = expect_error("not_found", store.read, VALID_ID)
    assert "send it again" in error.user_message


def test_symlinked_file_that_escapes_is_refused(store: AttachmentStore, tmp_path: Path):
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_bytes(b"root:x:0:0")
    secret_id = hashlib.sha256(secret.read_bytes()).hexdigest()
    (store.root / secret_id[:2]).mkdir()
    (store.root / secret_id[:2] / secret_id).symlink_to(secret)
    expect_error("invalid_reference", store.path_for, secret_id)
    expect_error("invalid_reference", store.read, secret_id)
    expect_error("invalid_reference", store.read, AttachmentRef(type="image", id=secret_id))


def test_symlink_inside_the_store_is_refused_too(store: AttachmentStore):
    ref = store.save(make_image("PNG"))
    other = hashlib.sha256(b"other").hexdigest()
    (store.root / other[:2]).mkdir(exist_ok=True)
    (store.root / other[:2] / other).symlink_to(store.path_for(ref.id))
    expect_error("invalid_reference", store.read, other)


def test_symlinked_shard_directory_is_refused(store: AttachmentStore, tmp_path: Path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    content = b"private"
    content_id = hashlib.sha256(content).hexdigest()
    (outside / content_id).write_bytes(content)
    (store.root / content_id[:2]).symlink_to(outside, target_is_directory=True)
    expect_error("invalid_reference", store.path_for, content_id)
    expect_error("invalid_reference", store.read, content_id)


def test_non_regular_files_are_refused(store: AttachmentStore):
    directory_id = hashlib.sha256(b"dir").hexdigest()
    (store.root / directory_id[:2] / directory_id).mkdir(parents=True)
    expect_error("invalid_reference", store.read, directory_id)
    if hasattr(os, "mkfifo"):
        fifo_id = hashlib.sha256(b"fifo").hexdigest()
        (store.root / fifo_id[:2]).mkdir(exist_ok=True)
        os.mkfifo(store.root / fifo_id[:2] / fifo_id)
        expect_error("invalid_reference", store.read, fifo_id)  # must not block


def test_tampered_content_is_damaged(store: AttachmentStore):
    ref = store.save(make_image("PNG"))
    store.path_for(ref.id).write_bytes(b"changed behind our back")
    expect_error("damaged", store.read, ref)


def test_reference_type_must_match_the_stored_type(store: AttachmentStore):
    ref = store.save(make_image("JPEG"))
    lying = AttachmentRef(type="audio", id=ref.id, mime_type="audio/ogg")
    expect_error("invalid_reference", store.read, lying)


def test_store_root_may_itself_be_a_symlink(tmp_path: Path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    store = AttachmentStore(tmp_path / "link")
    ref = store.save(make_image("WEBP"))
    assert store.read(ref) == (real / ref.id[:2] / ref.id).read_bytes()


# ------------------------------------------------------------------------------------------------------------
# Logging
# ------------------------------------------------------------------------------------------------------------
def test_one_log_line_per_rejection(store: AttachmentStore, caplog):
    caplog.set_level(logging.INFO, logger="media")
    with pytest.raises(AttachmentError):
        store.read("../../etc/passwd")
    with pytest.raises(AttachmentError):
        store.save_base64("%%%")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2
    assert "invalid_reference" in warnings[0].getMessage() and "damaged" in warnings[1].getMessage()


# ------------------------------------------------------------------------------------------------------------
# Store construction
# ------------------------------------------------------------------------------------------------------------
def test_default_location_is_relative_to_the_project():
    project_root = Path(store_module.__file__).resolve().parents[1]
    assert store_module.DEFAULT_ATTACHMENT_DIR == project_root / "var" / "uploads"


def test_from_env_and_default_store(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ATTACHMENT_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("ATTACHMENT_ALLOWED_HOSTS", "files.example.com *.cdn.example.org")
    store_module.default_store.cache_clear()
    try:
        store = store_module.default_store()
        assert store.root == (tmp_path / "from-env").resolve() and store.root.is_dir()
        assert store.limits.url_allowed_hosts == ("files.example.com", "*.cdn.example.org")
        assert store_module.default_store() is store
    finally:
        store_module.default_store.cache_clear()
    monkeypatch.setattr(assistant_paths, "PROJECT_ROOT", tmp_path)
    assert AttachmentStore.from_env({"ATTACHMENT_DIR": "var/up"}).root == (tmp_path / "var" / "up").resolve()


# ------------------------------------------------------------------------------------------------------------
# The team's shared case files (skipped when ../shared is absent)
# ------------------------------------------------------------------------------------------------------------
SHARED_EXPECTED = {
    "images/banana_ok.jpg": ("image/jpeg", None),
    "images/banana_exif_rotated.jpg": ("image/jpeg", None),
    "images/banana_cmyk.jpg": ("image/jpeg", None),
    "images/banana_rgba.png": ("image/png", None),
    "images/banana_gray.png": ("image/png", None),
    "images/banana.webp": ("image/webp", None),
    "images/banana_animated.gif": ("image/gif", None),
    "images/one_pixel.png": ("image/png", None),
    "images/truncated.jpg": ("image/jpeg", "damaged"),
    "images/zero_bytes.jpg": (None, "empty"),
    "images/text_named_as.jpg": (None, "unsupported_type"),
    "images/bomb_30000x30000.png": ("image/png", "too_large"),
    "audio/en_order_telegram.ogg": ("audio/ogg", None),
    "audio/ko_order_telegram.ogg": ("audio/ogg", None),
    "audio/en_order_browser.webm": ("audio/webm", None),
    "audio/en_order.mp3": ("audio/mpeg", None),
    "audio/en_order.m4a": ("audio/mp4", None),
    "audio/en_order_stereo_44k.wav": ("audio/wav", None),
    "audio/ko_order_22k.wav": ("audio/wav", None),
    "audio/silence_10min.ogg": ("audio/ogg", "too_long"),
    "audio/header_only.wav": ("audio/wav", "no_speech"),
    "audio/garbage.wav": (None, "damaged"),
    "audio/png_bytes_named.ogg": ("image/jpeg", None),  # content decides: it is a photo, not a voice note
}


@requires_ffprobe
def test_shared_case_files(shared_dir: Path, tmp_path: Path):
    cases = shared_dir / "cases"
    if not cases.is_dir():
        pytest.skip("no cases folder in the shared directory")
    store = AttachmentStore(tmp_path / "uploads")
    checked = 0
    for relative, (mime, save_error) in SHARED_EXPECTED.items():
        path = cases / relative
        if not path.is_file():
            continue
        data = path.read_bytes()
        if mime is None:
            with pytest.raises(AttachmentError):
                sniff(data)
        else:
            assert sniff(data)[1] == mime, relative
        if save_error is None:
            assert store.save(data, name=path.name).mime_type == mime, relative
        else:
            with pytest.raises(AttachmentError) as info:
                store.save(data, name=path.name)
            assert info.value.code == save_error, relative
        checked += 1
    assert checked > 0
