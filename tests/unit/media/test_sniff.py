"""Tests for `media.sniff`: what an upload is, by its content alone."""
from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import List

import pytest

from media import AttachmentStore, sniff
from media import ffmpeg as ffmpeg_module
from tests.unit.media.samples import (
    expect_error,
    ffmpeg_audio,
    make_image,
    make_wav,
    requires_ffmpeg,
    requires_ffprobe,
)


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
    real_which = shutil.which
    monkeypatch.setattr(
        ffmpeg_module.shutil, "which", lambda name: None if name == "ffprobe" else real_which(name)
    )
    error = expect_error("unsupported_type", store.save, make_wav(0.5))
    assert "ffprobe" in error.detail
    assert store.save(make_image("PNG")).type == "image"  # photos do not need it


def test_sniff_ignores_pillow_formats_outside_the_allow_list():
    expect_error("unsupported_type", sniff, make_image("BMP"))
