"""Tests for `media.limits`: the documented defaults, validation and the host allow-list."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from media import AttachmentLimits
from media.limits import CHUNK_BYTES, MiB


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


def test_streams_are_read_in_64_kib_chunks():
    assert CHUNK_BYTES == 64 * 1024


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


def test_the_decoded_size_limit_defaults_to_128_mib_and_must_be_positive():
    assert AttachmentLimits().image_max_decoded_bytes == 128 * MiB
    with pytest.raises(ValidationError):
        AttachmentLimits(image_max_decoded_bytes=0)
