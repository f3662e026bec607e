"""Generated inputs for the media tests (and the SpeechRecognizer's): photos, WAV, FFmpeg-made voice notes.

Every file is made here, with Pillow, the `wave` module or FFmpeg (skipped where FFmpeg is missing); nothing
is read from disk. `audio_files` and `silence_10min_ogg` are module-scoped fixtures: import them into a test
module to use them.
"""
from __future__ import annotations

import io
import math
import shutil
import struct
import subprocess
import tempfile
import wave
import zlib
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest

from media import AttachmentError, AttachmentStore, ffmpeg_available

HAS_FFPROBE = shutil.which("ffprobe") is not None
HAS_FFMPEG = shutil.which("ffmpeg") is not None
requires_ffprobe = pytest.mark.skipif(not HAS_FFPROBE, reason="ffprobe is not installed")
requires_ffmpeg = pytest.mark.skipif(not (HAS_FFPROBE and HAS_FFMPEG), reason="ffmpeg/ffprobe not installed")
needs_ffmpeg = pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg/ffprobe are not installed")

RATE = 16000  # Hz
TONE_HZ = 440.0
TONE_S = 2.0
# Codecs add or drop a few milliseconds (AAC priming, MP3 frame padding); 50 ms is far below any real fault.
LENGTH_TOLERANCE = int(0.05 * RATE)


# ------------------------------------------------------------------------------------------------------------
# Photos and WAV made in Python
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


def sine_wav(seconds: float = TONE_S, rate: int = 44100, channels: int = 1) -> bytes:
    """A 440 Hz sine at half scale as 16-bit PCM WAV bytes."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.5 * 32767 * np.sin(2 * math.pi * TONE_HZ * t)).astype("<i2")
    frames = np.repeat(samples[:, None], channels, axis=1).tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


def header_only_wav() -> bytes:
    """A valid 44-byte WAV header (16 kHz mono 16-bit) and no samples."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(b"")
    return buffer.getvalue()


def garbage_riff(with_wave_tag: bool = True) -> bytes:
    """A RIFF header (optionally with the WAVE tag) followed by 10,000 random bytes."""
    noise = np.random.default_rng(7).integers(0, 256, 10_000, dtype=np.uint8).tobytes()
    body = (b"WAVE" if with_wave_tag else b"") + noise
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def jpeg_bytes() -> bytes:
    """A small real JPEG photo (what a client might upload under the name voice.ogg)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 180, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


def dominant_hz(pcm: np.ndarray, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / pcm.shape[0])


# ------------------------------------------------------------------------------------------------------------
# FFmpeg-made files
# ------------------------------------------------------------------------------------------------------------
def ffmpeg_audio(tmp_dir: Path, suffix: str, codec_args: Sequence[str], seconds: float = 1.0) -> bytes:
    out = tmp_dir / f"tone{suffix}"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         *codec_args, str(out)],
        check=True, timeout=60,
    )
    return out.read_bytes()


def ffmpeg_output(args: List[str], stdin: Optional[bytes] = None) -> bytes:
    """Run ffmpeg with ``args`` (ending in output options) and return the file it wrote.

    The output goes to a real file, not a pipe, so MP4 is written as phones write it (index after the
    samples).
    """
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "out"
        result = subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args, str(out)],
            input=stdin,
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            reason = result.stderr.decode(errors="replace")[:200]
            pytest.skip(f"this ffmpeg cannot make the test file: {reason}")
        return out.read_bytes()


def low_probe_score_mp3() -> bytes:
    """The first 500 bytes of an MP3 without ID3 tag: four MPEG audio frames.

    FFmpeg's MP3 probe gives four consecutive frames a score of 25 ("misdetection possible"): FFmpeg cannot
    reliably say that this is an MP3 file.
    """
    data = ffmpeg_output(
        ["-f", "lavfi", "-i", "sine=frequency=440:duration=1"]
        + ["-c:a", "libmp3lame", "-b:a", "32k", "-id3v2_version", "0", "-write_xing", "0", "-f", "mp3"]
    )
    return data[:500]


# name -> (ffmpeg output options, expected codec)
CONTAINERS: Dict[str, tuple] = {
    "telegram_48k.ogg": (["-ar", "48000", "-c:a", "libopus", "-b:a", "32k", "-f", "ogg"], "opus"),
    "browser.webm": (["-ar", "48000", "-c:a", "libopus", "-f", "webm"], "opus"),
    "order.mp3": (["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"], "mp3"),
    "order.m4a": (["-c:a", "aac", "-b:a", "96k", "-f", "ipod"], "aac"),
    "stereo_44k.wav": (["-ac", "2", "-ar", "44100", "-c:a", "pcm_s16le", "-f", "wav"], "pcm_s16le"),
    "order.flac": (["-c:a", "flac", "-f", "flac"], "flac"),
}


@pytest.fixture(scope="module")
def audio_files() -> Dict[str, bytes]:
    """Each container of CONTAINERS made from the same 2 s sine (made on first use)."""
    if not ffmpeg_available():
        pytest.skip("ffmpeg/ffprobe are not installed")
    source = sine_wav()
    return {
        name: ffmpeg_output(["-f", "wav", "-i", "pipe:0", *options], source)
        for name, (options, _) in CONTAINERS.items()
    }


@pytest.fixture(scope="module")
def silence_10min_ogg() -> bytes:
    """Ten minutes of digital silence as OGG/Opus, made with FFmpeg's anullsrc (~230 KB)."""
    if not ffmpeg_available():
        pytest.skip("ffmpeg/ffprobe are not installed")
    return ffmpeg_output(
        ["-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "600"]
        + ["-c:a", "libopus", "-b:a", "16k", "-f", "ogg"]
    )


# ------------------------------------------------------------------------------------------------------------
# Store helpers
# ------------------------------------------------------------------------------------------------------------
def stored_files(store: AttachmentStore) -> List[Path]:
    """Every regular file under the store root (temporary ones included)."""
    return sorted(p for p in store.root.rglob("*") if p.is_file())


def expect_error(code: str, func: Callable, *args, **kwargs) -> AttachmentError:
    with pytest.raises(AttachmentError) as info:
        func(*args, **kwargs)
    assert info.value.code == code, f"expected {code}, got {info.value!r}"
    return info.value
