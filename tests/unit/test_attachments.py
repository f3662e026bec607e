"""Tests for `media.attachments`: schema, sniffing, the content-addressed store and the URL fetcher.

Every input is generated here (Pillow, the `wave` module, ffmpeg when installed). Nothing touches the network:
DNS is faked through `socket.getaddrinfo`, sockets refuse to connect, and the HTTP session gets a fake
transport adapter. The optional last test reads the team's shared case files when they are present.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import math
import os
import shutil
import socket
import struct
import subprocess
import time
import wave
import zlib
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import pytest
import requests
from pydantic import ValidationError
from requests.structures import CaseInsensitiveDict

from media import attachments as att
from media import (
    AttachmentError,
    AttachmentLimits,
    AttachmentRef,
    AttachmentStore,
    parse_attachments,
    sniff,
)

HAS_FFPROBE = shutil.which("ffprobe") is not None
HAS_FFMPEG = shutil.which("ffmpeg") is not None
requires_ffprobe = pytest.mark.skipif(not HAS_FFPROBE, reason="ffprobe is not installed")
requires_ffmpeg = pytest.mark.skipif(not (HAS_FFPROBE and HAS_FFMPEG), reason="ffmpeg/ffprobe not installed")

MiB = 1024 * 1024
PUBLIC_IP = "157.240.1.35"


# ------------------------------------------------------------------------------------------------------------
# Generated inputs
# ------------------------------------------------------------------------------------------------------------
def make_image(fmt: str, size: Tuple[int, int] = (32, 24), mode: str = "RGB") -> bytes:
    from PIL import Image

    image = Image.new(mode, size, color=(200, 180, 40) if mode == "RGB" else 128)
    for x in range(size[0]):  # some structure so encoders produce real entropy-coded data
        image.putpixel((x, x % size[1]), (x * 7 % 256, 10, 200) if mode == "RGB" else x % 256)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def make_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    frames = int(seconds * rate)
    samples = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(frames)
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width × height pixels (a decompression bomb's calling card)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + payload))
        return struct.pack(">I", len(payload)) + kind + payload + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


def ffmpeg_audio(tmp_dir: Path, suffix: str, codec_args: Sequence[str], seconds: float = 1.0) -> bytes:
    out = tmp_dir / f"tone{suffix}"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         *codec_args, str(out)],
        check=True, timeout=60,
    )
    return out.read_bytes()


@pytest.fixture
def store(tmp_path: Path) -> AttachmentStore:
    return AttachmentStore(tmp_path / "uploads")


def stored_files(store: AttachmentStore) -> List[Path]:
    """Every regular file under the store root (temporary ones included)."""
    return sorted(p for p in store.root.rglob("*") if p.is_file())


def expect_error(code: str, func: Callable, *args, **kwargs) -> AttachmentError:
    with pytest.raises(AttachmentError) as info:
        func(*args, **kwargs)
    assert info.value.code == code, f"expected {code}, got {info.value!r}"
    return info.value


# ------------------------------------------------------------------------------------------------------------
# Limits and errors
# ------------------------------------------------------------------------------------------------------------
def test_default_limits_have_documented_values():
    limits = AttachmentLimits()
    assert limits.image_max_bytes == 10 * MiB
    assert limits.image_max_pixels == 40_000_000
    assert limits.audio_max_bytes == 20 * MiB
    assert limits.audio_max_seconds == 120
    assert limits.max_attachments == 10
    assert limits.url_timeout_s == 10
    assert limits.url_max_redirects == 3
    assert {"*.fbcdn.net", "*.fbsbx.com", "api.telegram.org"} <= set(limits.url_allowed_hosts)
    assert limits.max_upload_bytes == 20 * MiB


def test_limits_are_validated_and_frozen():
    with pytest.raises(ValidationError):
        AttachmentLimits(image_max_bytes=0)
    with pytest.raises(ValidationError):
        AttachmentLimits(image_max_byte=5)  # a typo must fail, not be ignored
    for bad in ("https://api.telegram.org", "api.telegram.org/file", "*", "host:443", "*.*.com"):
        with pytest.raises(ValidationError):
            AttachmentLimits(url_allowed_hosts=[bad])
    limits = AttachmentLimits(url_allowed_hosts="Files.Example.com, *.cdn.example.org")
    assert limits.url_allowed_hosts == ("files.example.com", "*.cdn.example.org")
    with pytest.raises(TypeError):
        limits.max_attachments = 99


@pytest.mark.parametrize(
    "host, allowed",
    [
        ("scontent.xx.fbcdn.net", True),
        ("a.b.fbcdn.net", True),
        ("cdn.fbsbx.com", True),
        ("api.telegram.org", True),
        ("API.Telegram.org.", True),
        ("fbcdn.net", False),  # "*.domain" means a sub-domain
        ("evilfbcdn.net", False),
        ("fbcdn.net.evil.example", False),
        ("api.telegram.org.evil.example", False),
        ("xapi.telegram.org", False),
        ("telegram.org", False),
    ],
)
def test_host_allow_list_matching(host: str, allowed: bool):
    assert AttachmentLimits().host_allowed(host) is allowed


def test_error_carries_code_friendly_message_and_log_text():
    error = AttachmentError("damaged", "JPEG truncated", attachment_type="image")
    assert error.code == "damaged"
    assert error.user_message == "That file looks damaged — could you send the photo again?"
    assert str(error) == "damaged image: JPEG truncated"
    assert error.to_problem() == {"type": "image", "code": "damaged", "message": error.user_message}
    unsupported = AttachmentError("unsupported_type")
    assert "JPEG, PNG, WebP, GIF" in unsupported.user_message and "20 MB" in unsupported.user_message
    with pytest.raises(ValueError):
        AttachmentError("kaboom")


@pytest.mark.parametrize("code", att.ERROR_CODES)
def test_every_code_has_a_friendly_message(code: str):
    for kind in (None, "image", "audio"):
        message = AttachmentError(code, attachment_type=kind).user_message
        assert message and message[0].isupper() and "error" not in message.lower()
        assert "Traceback" not in message


# ------------------------------------------------------------------------------------------------------------
# AttachmentRef schema
# ------------------------------------------------------------------------------------------------------------
VALID_ID = hashlib.sha256(b"x").hexdigest()


def test_ref_accepts_documented_shapes_and_normalises():
    ref = AttachmentRef(type="image", id=VALID_ID, mime_type="Image/JPEG", size=183211, name="photo.jpg")
    assert ref.to_metadata() == {
        "type": "image", "id": VALID_ID, "mime_type": "image/jpeg", "size": 183211, "name": "photo.jpg"
    }
    url_ref = AttachmentRef(
        type="audio", url="https://cdn.fbsbx.com/v/a.mp4", mime_type="audio/webm;codecs=opus"
    )
    assert url_ref.mime_type == "audio/webm" and url_ref.id is None
    assert AttachmentRef(type="image", id=VALID_ID, mime_type="not a mime").mime_type is None


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "image"},  # neither id nor url
        {"type": "image", "id": VALID_ID, "url": "https://api.telegram.org/f"},  # both
        {"type": "video", "id": VALID_ID},
        {"type": "image", "id": VALID_ID.upper()},
        {"type": "image", "id": "../../etc/passwd"},
        {"type": "image", "id": "/etc/passwd"},
        {"type": "image", "id": VALID_ID[:-1]},
        {"type": "image", "url": "http://api.telegram.org/f"},
        {"type": "image", "url": "file:///etc/passwd"},
        {"type": "image", "url": "https://api.telegram.org/a b"},
        {"type": "image", "id": VALID_ID, "size": -1},
    ],
)
def test_ref_rejects_invalid_shapes(fields: Dict):
    with pytest.raises(ValidationError):
        AttachmentRef(**fields)


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("photo.jpg", "photo.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
        ("/abs/path/voice.ogg", "voice.ogg"),
        ("..", None),
        (".hidden", "hidden"),
        ("evil\u202egpj.exe\x00", "evilgpj.exe"),
        ("zero\u200bwidth.png", "zerowidth.png"),
        ("", None),
        (42, None),
    ],
)
def test_names_are_display_only(raw, clean):
    assert att.sanitise_name(raw) == clean


def test_long_names_are_cut_keeping_the_extension():
    name = att.sanitise_name("a" * 500 + ".jpeg")
    assert len(name) == 120 and name.endswith(".jpeg")


# ------------------------------------------------------------------------------------------------------------
# Sniffing
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fmt, mime", [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp"), ("GIF", "image/gif")]
)
def test_sniff_images(fmt: str, mime: str):
    assert sniff(make_image(fmt)) == ("image", mime)


@requires_ffprobe
def test_sniff_wav():
    assert sniff(make_wav(0.5)) == ("audio", "audio/wav")


@requires_ffmpeg
@pytest.mark.parametrize(
    "suffix, codec_args, mime",
    [
        (".ogg", ["-c:a", "libopus"], "audio/ogg"),
        (".oga", ["-c:a", "libvorbis", "-f", "ogg"], "audio/ogg"),
        (".webm", ["-c:a", "libopus"], "audio/webm"),
        (".mp3", ["-c:a", "libmp3lame"], "audio/mpeg"),
        (".m4a", ["-c:a", "aac"], "audio/mp4"),
        (".flac", ["-c:a", "flac"], "audio/flac"),
    ],
)
def test_sniff_generated_audio(tmp_path: Path, suffix: str, codec_args: List[str], mime: str):
    assert sniff(ffmpeg_audio(tmp_path, suffix, codec_args)) == ("audio", mime)


def test_sniff_empty():
    expect_error("empty", sniff, b"")


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is plain text and not a photo\n" * 3,
        b"\x00" * 4096,
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
        b"#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:1,\nfile:///etc/passwd\n",  # HLS playlist must not be opened
        b"ffconcat version 1.0\nfile '/etc/passwd'\n",
    ],
    ids=["text", "zeros", "pdf", "hls-playlist", "ffconcat"],
)
def test_sniff_rejects_non_media(data: bytes):
    expect_error("unsupported_type", sniff, data)


def test_multi_picture_jpeg_from_phone_cameras_is_a_jpeg(store: AttachmentStore):
    from PIL import Image

    buffer = io.BytesIO()
    first, second = Image.new("RGB", (16, 16), "red"), Image.new("RGB", (16, 16), "blue")
    first.save(buffer, format="MPO", save_all=True, append_images=[second])
    assert sniff(buffer.getvalue()) == ("image", "image/jpeg")
    assert store.save(buffer.getvalue()).mime_type == "image/jpeg"


def test_audio_without_ffprobe_is_refused_cleanly(store: AttachmentStore, monkeypatch):
    monkeypatch.setattr(att, "_ffprobe_binary", lambda: None)
    error = expect_error("unsupported_type", store.save, make_wav(0.5))
    assert "ffprobe" in error.detail
    assert store.save(make_image("PNG")).type == "image"  # photos do not need it


def test_sniff_ignores_pillow_formats_outside_the_allow_list():
    expect_error("unsupported_type", sniff, make_image("BMP"))


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
    monkeypatch.setattr(att.tempfile, "mkstemp", lambda *a, **k: pytest.fail("nothing may be written"))
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
    monkeypatch.setattr(att.base64, "b64decode", lambda *a, **k: pytest.fail("must not decode"))
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
    caplog.set_level(logging.INFO, logger=att.__name__)
    with pytest.raises(AttachmentError):
        store.read("../../etc/passwd")
    with pytest.raises(AttachmentError):
        store.save_base64("%%%")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2
    assert "invalid_reference" in warnings[0].getMessage() and "damaged" in warnings[1].getMessage()


# ------------------------------------------------------------------------------------------------------------
# parse_attachments
# ------------------------------------------------------------------------------------------------------------
def deep(levels: int, leaf, kind: str = "dict"):
    value = leaf
    for _ in range(levels):
        value = {"a": value} if kind == "dict" else [value]
    return value


@pytest.mark.parametrize(
    "metadata",
    [None, "attachments", '{"attachments": [1]}', ["attachments"], 42, 3.5, b"x", {}, {"other": 1},
     {"attachments": None}, {"attachments": []}],
)
def test_metadata_without_attachments(metadata):
    assert parse_attachments(metadata) == ([], [])


@pytest.mark.parametrize("value", ["x", 5, True, 2.5])
def test_attachments_that_are_not_a_list(value):
    refs, problems = parse_attachments({"attachments": value})
    assert refs == [] and [p.code for p in problems] == ["invalid_reference"]


def test_a_single_attachment_object_is_accepted():
    refs, problems = parse_attachments({"attachments": {"type": "image", "id": VALID_ID}})
    assert [r.id for r in refs] == [VALID_ID] and problems == []


def test_one_hundred_attachments_keep_the_first_ten(caplog):
    items = [{"type": "image", "id": hashlib.sha256(str(i).encode()).hexdigest()} for i in range(100)]
    refs, problems = parse_attachments({"attachments": items})
    assert [r.id for r in refs] == [item["id"] for item in items[:10]]
    assert [p.code for p in problems] == ["too_many"]
    assert "10 attachments" in problems[0].user_message


def test_ten_thousand_deep_nesting_does_not_recurse():
    for kind in ("dict", "list"):
        assert parse_attachments(deep(10_000, "x", kind)) == ([], [])
        refs, problems = parse_attachments({"attachments": deep(10_000, {"type": "image"}, "list")})
        assert refs == [] and [p.code for p in problems] == ["invalid_reference"]
        refs, problems = parse_attachments({"attachments": [deep(10_000, "x", kind)]})
        assert refs == [] and [p.code for p in problems] == ["invalid_reference"]
    refs, problems = parse_attachments(
        {"attachments": [
            {"type": "image", "id": VALID_ID, "name": deep(10_000, "x"), "extra": deep(10_000, 1)}
        ]}
    )
    assert [r.id for r in refs] == [VALID_ID] and refs[0].name is None and problems == []
    refs, problems = parse_attachments({"attachments": [{"type": deep(10_000, "x"), "id": VALID_ID}]})
    assert refs == [] and [p.code for p in problems] == ["unsupported_type"]


def test_mixed_valid_and_invalid_items(caplog):
    caplog.set_level(logging.WARNING, logger=att.__name__)
    metadata = {
        "attachments": [
            {"type": "image", "id": VALID_ID, "mime_type": "image/jpeg", "size": 183211, "name": "photo.jpg"},
            "not a dict",
            {"type": "video", "id": VALID_ID},
            {"type": "image", "id": "../../etc/passwd"},
            {"type": "image"},
            {"type": "audio", "id": VALID_ID, "size": 50 * MiB},  # declared size over the audio limit
            {"type": "image", "url": "https://evil.example/x.jpg"},
            {"type": "image", "url": "https://169.254.169.254/latest/meta-data/"},
            {"type": "audio", "url": "http://api.telegram.org/file/bot1:SECRET/voice.oga"},
            {"type": "audio", "url": "https://cdn.fbsbx.com/v/audioclip.mp4", "size": "1234"},
        ]
    }
    refs, problems = parse_attachments(metadata)
    assert [(r.type, r.id or r.url) for r in refs] == [
        ("image", VALID_ID), ("audio", "https://cdn.fbsbx.com/v/audioclip.mp4")
    ]
    assert refs[1].size == 1234
    assert [p.code for p in problems] == [
        "invalid_reference", "unsupported_type", "invalid_reference", "invalid_reference",
        "too_large", "forbidden_url", "forbidden_url", "invalid_reference",
    ]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == len(problems)
    assert "SECRET" not in caplog.text


def test_parse_never_raises_on_hostile_mappings():
    class Exploding(dict):
        def get(self, *args, **kwargs):
            raise RuntimeError("boom")

    refs, problems = parse_attachments(Exploding())
    assert refs == [] and [p.code for p in problems] == ["invalid_reference"]


# ------------------------------------------------------------------------------------------------------------
# fetch_url: everything is refused before any connection; a fake transport for the positive paths
# ------------------------------------------------------------------------------------------------------------
Route = Union[Tuple[int, Dict[str, str], Union[bytes, io.RawIOBase]], Exception]


class FakeAdapter(requests.adapters.BaseAdapter):
    """Answers from a table of URL -> (status, headers, body) and records every request it gets."""

    def __init__(self, routes: Optional[Dict[str, Route]] = None) -> None:
        super().__init__()
        self.routes = routes or {}
        self.calls: List[str] = []

    def send(self, request, **kwargs):
        self.calls.append(request.url)
        route = self.routes.get(request.url)
        if route is None:
            pytest.fail(f"unexpected request to {request.url}")
        if isinstance(route, Exception):
            raise route
        status, headers, body = route
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(headers)
        response.raw = body if hasattr(body, "read") else io.BytesIO(body)
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


class FakeDNS:
    def __init__(self, table: Dict[str, List[str]]) -> None:
        self.table = table
        self.calls: List[str] = []

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out = []
        for ip in self.table[host]:
            if ":" in ip:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)))
        return out


@pytest.fixture
def no_sockets(monkeypatch):
    """Real sockets may not connect anywhere during these tests."""

    def refuse(*args, **kwargs):
        raise AssertionError("a real network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(att.urllib3_connection, "create_connection", refuse)


@pytest.fixture
def dns(monkeypatch, no_sockets) -> FakeDNS:
    fake = FakeDNS({
        "scontent.xx.fbcdn.net": [PUBLIC_IP],
        "cdn.fbsbx.com": ["2a03:2880:f12d:83:face:b00c:0:25de"],
        "api.telegram.org": ["149.154.167.220"],
    })
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture
def http(tmp_path: Path, dns: FakeDNS) -> Tuple[AttachmentStore, FakeAdapter]:
    adapter = FakeAdapter()
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return AttachmentStore(tmp_path / "uploads", session=session), adapter


@pytest.mark.parametrize(
    "url",
    [
        "http://api.telegram.org/file/bot1:SECRET/photo.jpg",
        "file:///etc/passwd",
        "ftp://api.telegram.org/photo.jpg",
        "data:image/png;base64,iVBORw0KGgo=",
        "gopher://api.telegram.org/_",
        "//api.telegram.org/photo.jpg",
        "https://127.0.0.1/x.jpg",
        "https://localhost/x.jpg",
        "https://localhost./x.jpg",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.7/x.jpg",
        "https://[::1]/x.jpg",
        "https://[::ffff:127.0.0.1]/x.jpg",
        "https://[fd00::1]/x.jpg",
        "https://2130706433/x.jpg",
        "https://evil.example/x.jpg",
        "https://api.telegram.org.evil.example/x.jpg",
        "https://fbcdn.net/x.jpg",
        "https://user:pass@api.telegram.org/x.jpg",
        "https://api.telegram.org@evil.example/x.jpg",
        "https://api.telegram.org\\@evil.example/x.jpg",
        "https://api.telegram.org:8443/x.jpg",
        "https://api.telegram.org:99999/x.jpg",
        "https://api.telegram.org/a b.jpg",
        "https://api.telegram.org/x\r\nHost: evil",
        "",
        "https://" + "a" * 3000 + ".fbcdn.net/x",
    ],
)
def test_forbidden_urls_are_refused_before_any_connection(http, dns: FakeDNS, url: str, caplog):
    store, adapter = http
    error = expect_error("forbidden_url", store.fetch_url, url)
    assert "attach the photo or voice note directly" in error.user_message
    assert adapter.calls == [] and dns.calls == []
    assert stored_files(store) == []
    assert "SECRET" not in caplog.text


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1", "169.254.169.254",
     "100.64.0.1", "0.0.0.0", "224.0.0.251", "255.255.255.255", "::1", "::", "fd12:3456::1", "fe80::1",
     "ff02::1", "::ffff:10.0.0.1", "::ffff:8.8.8.8", "64:ff9b::a00:1", "2002:a00:1::1", "fec0::1"],
)
def test_allowed_host_resolving_to_a_private_address_is_refused(http, dns: FakeDNS, address: str):
    store, adapter = http
    dns.table["scontent.xx.fbcdn.net"] = [address]
    expect_error("forbidden_url", store.fetch_url, "https://scontent.xx.fbcdn.net/v/photo.jpg")
    assert adapter.calls == []


def test_one_private_answer_among_public_ones_is_refused(http, dns: FakeDNS):
    store, adapter = http
    dns.table["scontent.xx.fbcdn.net"] = [PUBLIC_IP, "10.0.0.1"]
    expect_error("forbidden_url", store.fetch_url, "https://scontent.xx.fbcdn.net/v/photo.jpg")
    assert adapter.calls == []


def test_unresolvable_host_is_fetch_failed(http, dns: FakeDNS):
    store, adapter = http
    expect_error("fetch_failed", store.fetch_url, "https://nowhere.fbcdn.net/photo.jpg")
    assert adapter.calls == []


def test_fetch_stores_the_file(http, dns: FakeDNS, caplog):
    store, adapter = http
    data = make_image("JPEG")
    url = "https://api.telegram.org/file/bot123:SECRET/photos/file_7.jpg"
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
    adapter.routes[url] = (200, headers, data)
    caplog.set_level(logging.DEBUG, logger=att.__name__)
    ref = store.fetch_url(url)
    assert (ref.type, ref.mime_type, ref.size, ref.name) == ("image", "image/jpeg", len(data), "file_7.jpg")
    assert ref.url is None and ref.id == hashlib.sha256(data).hexdigest()
    assert store.read(ref) == data
    assert adapter.calls == [url] and dns.calls == ["api.telegram.org"]
    assert "SECRET" not in caplog.text


def test_read_of_a_url_reference_fetches_it(http):
    store, adapter = http
    data = make_image("PNG")
    url = "https://scontent.xx.fbcdn.net/v/t1/photo.png?oh=abc"
    adapter.routes[url] = (200, {}, data)
    assert store.read(AttachmentRef(type="image", url=url)) == data
    adapter.routes[url] = (200, {}, make_image("GIF"))
    expect_error("invalid_reference", store.read, AttachmentRef(type="audio", url=url))


def test_redirect_to_allowed_public_host_is_followed(http, dns: FakeDNS):
    store, adapter = http
    data = make_image("PNG")
    start = "https://api.telegram.org/file/photo.png"
    adapter.routes[start] = (302, {"Location": "https://cdn.fbsbx.com/v/photo.png"}, b"")
    adapter.routes["https://cdn.fbsbx.com/v/photo.png"] = (200, {}, data)
    assert store.fetch_url(start).id == hashlib.sha256(data).hexdigest()
    assert adapter.calls == [start, "https://cdn.fbsbx.com/v/photo.png"]
    assert dns.calls == ["api.telegram.org", "cdn.fbsbx.com"]


@pytest.mark.parametrize(
    "location",
    [
        "http://api.telegram.org/file/photo.png",
        "file:///etc/passwd",
        "ftp://api.telegram.org/photo.png",
        "https://169.254.169.254/latest/meta-data/iam/",
        "https://127.0.0.1/admin",
        "https://[::1]/admin",
        "https://localhost/admin",
        "https://evil.example/photo.png",
        "https://internal.fbcdn.net/photo.png",  # allowed name, private address
        "//evil.example/photo.png",
    ],
)
def test_redirect_to_forbidden_target_is_refused(http, dns: FakeDNS, location: str):
    store, adapter = http
    dns.table["internal.fbcdn.net"] = ["10.20.30.40"]
    start = "https://api.telegram.org/file/photo.png"
    adapter.routes[start] = (301, {"Location": location}, b"")
    expect_error("forbidden_url", store.fetch_url, start)
    assert adapter.calls == [start]


def test_more_than_three_redirects_fail(http):
    store, adapter = http
    for hop in range(5):
        adapter.routes[f"https://api.telegram.org/hop{hop}"] = (
            307, {"Location": f"/hop{hop + 1}"}, b"",
        )
    expect_error("fetch_failed", store.fetch_url, "https://api.telegram.org/hop0")
    assert len(adapter.calls) == 4  # the URL and three redirects


class ReadCounter(io.RawIOBase):
    """An endless body that counts what was read from it (optionally slowly)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.read_bytes = 0
        self.delay_s = delay_s

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.delay_s:
            time.sleep(self.delay_s)
        buffer[:] = bytes(len(buffer))
        self.read_bytes += len(buffer)
        return len(buffer)


def test_declared_content_length_over_cap_is_refused_unread(http):
    store, adapter = http
    body = ReadCounter()
    url = "https://api.telegram.org/file/voice.oga"
    adapter.routes[url] = (200, {"Content-Length": str(1024 * MiB)}, body)
    expect_error("too_large", store.fetch_url, url)
    assert body.read_bytes == 0 and stored_files(store) == []


def test_endless_body_is_cut_at_the_cap(http):
    store, adapter = http
    body = ReadCounter()
    url = "https://api.telegram.org/file/voice.oga"
    adapter.routes[url] = (200, {}, body)
    expect_error("too_large", store.fetch_url, url)
    assert body.read_bytes <= store.limits.max_upload_bytes + 2 * 64 * 1024
    assert stored_files(store) == []


def test_slow_body_hits_the_time_budget(tmp_path: Path, dns):
    adapter = FakeAdapter()
    session = requests.Session()
    session.mount("https://", adapter)
    store = AttachmentStore(tmp_path, AttachmentLimits(url_timeout_s=0.3), session=session)
    url = "https://api.telegram.org/file/voice.oga"
    adapter.routes[url] = (200, {}, ReadCounter(delay_s=0.05))
    started = time.perf_counter()
    expect_error("fetch_failed", store.fetch_url, url)
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    "route",
    [(404, {}, b"not found"), (500, {}, b""), (302, {}, b""), requests.Timeout("slow"),
     requests.ConnectionError("reset")],
)
def test_http_failures_are_fetch_failed(http, route):
    store, adapter = http
    url = "https://api.telegram.org/file/photo.jpg"
    adapter.routes[url] = route
    error = expect_error("fetch_failed", store.fetch_url, url)
    assert "couldn't download" in error.user_message


def test_fetched_bad_content_is_rejected_like_an_upload(http):
    store, adapter = http
    url = "https://api.telegram.org/file/doc.pdf"
    adapter.routes[url] = (200, {"Content-Type": "image/jpeg"}, b"%PDF-1.4 not an image")
    expect_error("unsupported_type", store.fetch_url, url)


# ---- the default session's own defences -------------------------------------------------------------------
def test_guarded_session_refuses_plain_http_without_connecting(no_sockets):
    session = att.make_guarded_session()
    assert session.trust_env is False
    with pytest.raises(AttachmentError) as info:
        session.get("http://api.telegram.org/file/x")
    assert info.value.code == "forbidden_url"


def test_guarded_connection_checks_the_address_it_connects_to(monkeypatch, no_sockets):
    # DNS rebinding: the name passed the first check, then resolves to a private address at connect time.
    monkeypatch.setattr(socket, "getaddrinfo", FakeDNS({"api.telegram.org": ["169.254.169.254"]}))
    connection = att._PublicOnlyHTTPSConnection("api.telegram.org", 443)
    with pytest.raises(AttachmentError) as info:
        connection._new_conn()
    assert info.value.code == "forbidden_url"

    connected: List[Tuple[str, int]] = []

    def fake_create_connection(address, *args, **kwargs):
        connected.append(address)
        return object()

    monkeypatch.setattr(socket, "getaddrinfo", FakeDNS({"api.telegram.org": ["149.154.167.220"]}))
    monkeypatch.setattr(att.urllib3_connection, "create_connection", fake_create_connection)
    connection._new_conn()
    assert connected == [("149.154.167.220", 443)]


def test_guarded_session_refuses_private_address_before_tls(monkeypatch, no_sockets):
    monkeypatch.setattr(socket, "getaddrinfo", FakeDNS({"api.telegram.org": ["10.0.0.1"]}))
    session = att.make_guarded_session()
    with pytest.raises(AttachmentError) as info:
        session.get("https://api.telegram.org/file/x", timeout=1)
    assert info.value.code == "forbidden_url"


# ------------------------------------------------------------------------------------------------------------
# Store construction
# ------------------------------------------------------------------------------------------------------------
def test_default_location_is_relative_to_the_project():
    project_root = Path(att.__file__).resolve().parents[1]
    assert att.DEFAULT_ATTACHMENT_DIR == project_root / "var" / "uploads"


def test_from_env_and_default_store(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ATTACHMENT_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("ATTACHMENT_ALLOWED_HOSTS", "files.example.com *.cdn.example.org")
    att.default_store.cache_clear()
    try:
        store = att.default_store()
        assert store.root == (tmp_path / "from-env").resolve() and store.root.is_dir()
        assert store.limits.url_allowed_hosts == ("files.example.com", "*.cdn.example.org")
        assert att.default_store() is store
    finally:
        att.default_store.cache_clear()
    monkeypatch.setattr(att, "PROJECT_ROOT", tmp_path)
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
