"""Tests for `media.ffmpeg`: the one ffprobe/ffmpeg runner — probing, decoding, and one verdict per input.

Every audio file is generated here: a 440 Hz sine (2 s, 44.1 kHz) is written as WAV with the standard library
and converted by FFmpeg into the containers customers send.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from media import AttachmentError, AttachmentStore, decode_audio, loudest_frame_dbfs, probe_audio, sniff
from media import ffmpeg as ffmpeg_module
from media.ffmpeg import MIN_PROBE_SCORE, UNAVAILABLE_MESSAGE
from tests.unit.media.samples import (  # noqa: F401  (audio_files and silence_10min_ogg are fixtures)
    CONTAINERS,
    RATE,
    TONE_HZ,
    TONE_S,
    LENGTH_TOLERANCE,
    audio_files,
    dominant_hz,
    ffmpeg_output,
    garbage_riff,
    header_only_wav,
    jpeg_bytes,
    low_probe_score_mp3,
    make_wav,
    needs_ffmpeg,
    silence_10min_ogg,
)


# --------------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------------
@needs_ffmpeg
@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_every_container_decodes_to_16khz_mono_int16_of_the_right_length(audio_files, name):
    decoded = decode_audio(audio_files[name], sample_rate=RATE)

    assert decoded.sample_rate == RATE
    assert decoded.pcm.dtype == np.int16 and decoded.pcm.ndim == 1
    assert abs(decoded.n_samples - int(TONE_S * RATE)) <= LENGTH_TOLERANCE, decoded.n_samples
    assert abs(decoded.duration_s - TONE_S) <= 0.05
    assert not decoded.truncated
    assert decoded.info.codec_name == CONTAINERS[name][1]
    # It is the same tone after resampling and down-mixing, not noise or a wrong rate.
    assert abs(dominant_hz(decoded.pcm) - TONE_HZ) < 5.0
    assert -12.0 < loudest_frame_dbfs(decoded.pcm, RATE) < 0.0


@needs_ffmpeg
def test_probe_reports_the_source_format(audio_files):
    info = probe_audio(audio_files["stereo_44k.wav"])
    assert (info.format_name, info.sample_rate, info.channels) == ("wav", 44100, 2)
    info = probe_audio(audio_files["telegram_48k.ogg"])
    assert (info.format_name, info.codec_name, info.sample_rate) == ("ogg", "opus", 48000)


@needs_ffmpeg
def test_phone_m4a_with_its_index_after_the_samples_is_decoded(tmp_path):
    # Phones write the MP4 index (moov) after the samples; FFmpeg cannot demux that from a pipe, even at 20 s.
    m4a = ffmpeg_output(
        ["-f", "lavfi", "-i", f"sine=f={TONE_HZ}:d=20", "-c:a", "aac", "-b:a", "128k", "-f", "ipod"]
    )
    path = tmp_path / "memo.m4a"
    path.write_bytes(m4a)
    assert m4a.find(b"moov") > m4a.find(b"mdat") > 0

    decoded = decode_audio(m4a, sample_rate=RATE, max_duration_s=15.0)

    assert decoded.truncated
    assert decoded.n_samples == 15 * RATE
    assert decoded.info.duration_s == pytest.approx(20.0, abs=0.1)
    assert abs(dominant_hz(decoded.pcm) - TONE_HZ) < 5.0


@needs_ffmpeg
def test_ten_minutes_of_silence_are_cut_at_max_duration(silence_10min_ogg):
    decoded = decode_audio(silence_10min_ogg, sample_rate=RATE, max_duration_s=120.0)

    assert decoded.truncated
    assert decoded.n_samples == 120 * RATE
    assert loudest_frame_dbfs(decoded.pcm, RATE) < -50.0


@needs_ffmpeg
def test_header_only_wav_decodes_to_no_samples():
    decoded = decode_audio(header_only_wav(), sample_rate=RATE)
    assert decoded.n_samples == 0 and decoded.pcm.dtype == np.int16


@needs_ffmpeg
@pytest.mark.parametrize(
    "data, code",
    [
        (b"", "empty"),
        (garbage_riff(with_wave_tag=True), "damaged"),
        (garbage_riff(with_wave_tag=False), "damaged"),
        (b"RIFF", "damaged"),
        (jpeg_bytes(), "unsupported_type"),
    ],
    ids=["zero_bytes", "garbage_riff_wave", "garbage_riff", "riff_tag_only", "jpeg_named_ogg"],
)
def test_unusable_files_raise_an_attachment_error_with_the_right_code(data, code):
    with pytest.raises(AttachmentError) as raised:
        decode_audio(data)
    assert raised.value.code == code
    assert raised.value.attachment_type == "audio"
    assert raised.value.user_message


@needs_ffmpeg
def test_files_over_max_bytes_are_refused_before_decoding(audio_files):
    data = audio_files["stereo_44k.wav"]
    with pytest.raises(AttachmentError) as raised:
        decode_audio(data, max_bytes=len(data) - 1)
    assert raised.value.code == "too_large"


def test_ffmpeg_missing_is_a_friendly_unsupported_type(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(
        ffmpeg_module.shutil, "which", lambda name: None if name.startswith("ff") else real_which(name)
    )
    with pytest.raises(AttachmentError) as raised:
        decode_audio(make_wav(0.5))
    assert raised.value.code == "unsupported_type" and raised.value.attachment_type == "audio"
    assert raised.value.user_message == UNAVAILABLE_MESSAGE and "ffprobe" in raised.value.detail


# --------------------------------------------------------------------------------------------------------
# One verdict: the store's sniffing and the decoder judge every input alike
# --------------------------------------------------------------------------------------------------------
def _store_verdict(store: AttachmentStore, data: bytes) -> str:
    """The store's verdict on ``data`` sent as a voice note: its audio MIME type, or the error code.

    The store reads the upload from a file; a photo is stored as a photo, i.e. it is not audio.
    """
    try:
        ref = store.save(data, name="voice.ogg", declared_mime="audio/ogg")
    except AttachmentError as error:
        return error.code
    return ref.mime_type if ref.type == "audio" else "unsupported_type"


def _sniff_verdict(data: bytes) -> str:
    try:
        kind, mime = sniff(data)
    except AttachmentError as error:
        return error.code
    return mime if kind == "audio" else "unsupported_type"


def _decoder_verdict(data: bytes) -> str:
    """The decoder's verdict on ``data`` (read from memory): the MIME type of what it decoded, or the code."""
    try:
        decoded = decode_audio(data, sample_rate=RATE)
    except AttachmentError as error:
        assert error.attachment_type == "audio"
        return error.code
    return decoded.info.mime_type


VERDICT_CASES = {
    # name: (make the input, the one verdict)
    "good_ogg": (lambda files: files["telegram_48k.ogg"], "audio/ogg"),
    "good_wav": (lambda files: files["stereo_44k.wav"], "audio/wav"),
    "good_m4a": (lambda files: files["order.m4a"], "audio/mp4"),
    "jpeg_named_ogg": (lambda files: jpeg_bytes(), "unsupported_type"),
    "low_probe_score_mp3": (lambda files: low_probe_score_mp3(), "unsupported_type"),
    "damaged_wav": (lambda files: garbage_riff(with_wave_tag=True), "damaged"),
    "riff_without_wave_tag": (lambda files: garbage_riff(with_wave_tag=False), "damaged"),
    "riff_tag_only": (lambda files: b"RIFF", "damaged"),
    "text": (lambda files: b"hello, this is plain text and not a voice note\n" * 3, "unsupported_type"),
}


@needs_ffmpeg
@pytest.mark.parametrize("case", sorted(VERDICT_CASES))
def test_the_store_and_the_decoder_give_one_verdict(case, audio_files, tmp_path: Path):
    make, verdict = VERDICT_CASES[case]
    data: bytes = make(audio_files)
    store = AttachmentStore(tmp_path / "uploads")

    assert _decoder_verdict(data) == verdict
    assert _store_verdict(store, data) == verdict
    assert _sniff_verdict(data) == verdict


@needs_ffmpeg
def test_a_probe_score_at_or_below_25_is_not_identified_as_audio():
    data = low_probe_score_mp3()
    for probe in (lambda: probe_audio(data), lambda: probe_audio(data, attachment_type=None)):
        with pytest.raises(AttachmentError) as raised:
            probe()
        assert raised.value.code == "unsupported_type"
        assert "probe score" in raised.value.detail
    assert MIN_PROBE_SCORE == 26


@needs_ffmpeg
@pytest.mark.parametrize("probe", [probe_audio, lambda data: probe_audio(data, attachment_type=None)])
def test_what_ffprobe_refuses_is_damaged_only_for_an_accepted_container(probe: Callable):
    for data, code in [
        (garbage_riff(), "damaged"),
        (b"OggS" + bytes(200), "damaged"),
        (b"\x00" * 4096, "unsupported_type"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "unsupported_type"),
        (b"ffconcat version 1.0\nfile '/etc/passwd'\n", "unsupported_type"),
    ]:
        with pytest.raises(AttachmentError) as raised:
            probe(data)
        assert raised.value.code == code, data[:8]
        if code == "damaged":
            assert raised.value.attachment_type == "audio"


@needs_ffmpeg
def test_a_file_and_its_bytes_are_probed_alike(audio_files, tmp_path: Path):
    for name, data in audio_files.items():
        path = tmp_path / "upload"
        path.write_bytes(data)
        from_file, from_memory = probe_audio(path), probe_audio(data)
        assert (from_file.format_name, from_file.codec_name, from_file.mime_type) == (
            from_memory.format_name, from_memory.codec_name, from_memory.mime_type
        ), name
