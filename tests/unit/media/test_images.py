"""Tests for `media.images`: one format list and one set of checks for the store and the photo decoder."""
from __future__ import annotations

import pytest

from media import AttachmentError, AttachmentLimits
from media.images import IMAGE_FORMATS, IMAGE_MIME, decode_image, identify_image, inspect_image
from tests.unit.media.samples import make_image, png_header_only

LIMITS = AttachmentLimits()


def _verdict(check) -> str:
    try:
        check()
    except AttachmentError as error:
        assert error.attachment_type == "image"
        return error.code
    return "ok"


CASES = {
    "jpeg": (lambda: make_image("JPEG", size=(64, 48)), "ok"),
    "png": (lambda: make_image("PNG"), "ok"),
    "webp": (lambda: make_image("WEBP"), "ok"),
    "gif": (lambda: make_image("GIF"), "ok"),
    "truncated_jpeg": (lambda: make_image("JPEG", size=(256, 256))[:600], "damaged"),
    "png_signature_broken_header": (lambda: b"\x89PNG\r\n\x1a\n" + b"\xff" * 200, "damaged"),
    "pixel_bomb": (lambda: png_header_only(30000, 30000), "too_large"),
    "over_the_pixel_limit": (lambda: png_header_only(8000, 6000), "too_large"),
    "bmp": (lambda: make_image("BMP"), "unsupported_type"),
    "text": (lambda: b"not a photo at all\n" * 4, "unsupported_type"),
    "empty": (lambda: b"", "empty"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_store_check_and_the_decoder_give_one_verdict(case):
    make, verdict = CASES[case]
    data = make()
    assert _verdict(lambda: inspect_image(data, LIMITS)) == verdict
    assert _verdict(lambda: decode_image(data, LIMITS.image_max_pixels, limits=LIMITS)) == verdict


def test_identification_reads_the_header_only_and_knows_broken_photos():
    assert identify_image(png_header_only(30000, 30000)) == "PNG"  # declared size, nothing decoded
    assert identify_image(b"\x89PNG\r\n\x1a\n" + b"\xff" * 200) == "PNG"  # a broken photo is still a photo
    assert identify_image(make_image("BMP")) is None
    assert identify_image(b"RIFF\x00\x00\x00\x00WAVE") is None


def test_the_store_check_reports_the_header_size_of_a_drafted_jpeg():
    info = inspect_image(make_image("JPEG", size=(640, 480)), LIMITS)
    assert (info.format, info.mime_type, info.width, info.height) == ("JPEG", "image/jpeg", 640, 480)
    assert set(IMAGE_FORMATS) <= set(IMAGE_MIME)
