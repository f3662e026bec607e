"""Tests for `media.images`: one format list and one set of checks for the store and the photo decoder, and
what the decoder makes of every kind of photo (orientation, colour modes, animations, damage, limits)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from media import AttachmentError, AttachmentLimits
from media.images import (
    IMAGE_FORMATS,
    IMAGE_MIME,
    decode_image,
    decoded_bytes,
    identify_image,
    inspect_image,
    to_rgb,
)
from tests.unit.media.photos import (
    NON_IMAGES,
    animation_and_first_frame,
    encode_image,
    forbid_pixel_decoding,
    rgba_cutout,
    rotated_with_exif,
    sample_image,
    sixteen_bit_ramp,
    truncated_jpeg,
)
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


# ------------------------------------------------------------------------------------------------------------
# decode_image and to_rgb on every kind of photo a phone or a browser sends
# ------------------------------------------------------------------------------------------------------------
MAX_PIXELS = 40_000_000


def decoded(data: bytes) -> np.ndarray:
    """`int16 (height, width, 3)`: the decoded RGB pixels, signed so that differences do not wrap."""
    return np.asarray(decode_image(data, MAX_PIXELS), dtype=np.int16)


def test_exif_rotated_equals_upright() -> None:
    upright = sample_image(50, (96, 64))

    # Lossless PNG: exactly the same pixels.
    np.testing.assert_array_equal(decoded(rotated_with_exif(upright, "PNG")), np.asarray(upright))

    # JPEG, as phones send it: the same picture up to compression noise, unlike the un-rotated pixels.
    upright_jpeg = decoded(encode_image(upright, "JPEG", quality=95))
    rotated_jpeg = decoded(rotated_with_exif(upright, "JPEG", quality=95))
    assert rotated_jpeg.shape == upright_jpeg.shape == (64, 96, 3)
    assert np.abs(rotated_jpeg - upright_jpeg).mean() < 3.0
    assert np.abs(rotated_jpeg - np.asarray(upright.transpose(Image.Transpose.ROTATE_180))).mean() > 20.0


def test_cmyk_jpeg() -> None:
    original = sample_image(51)
    data = encode_image(original.convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert np.abs(decoded(data) - np.asarray(original, dtype=np.int16)).mean() < 4.0


def test_rgba_is_composited_on_white() -> None:
    pixels = decoded(encode_image(Image.fromarray(rgba_cutout()), "PNG"))
    assert tuple(pixels[35, 5]) == (255, 255, 255)
    assert tuple(pixels[20, 30]) == (200, 30, 30)
    assert tuple(pixels[2, 2]) == pytest.approx((127, 127, 255), abs=1)


def test_grayscale() -> None:
    gray = sample_image(52).convert("L")
    pixels = decoded(encode_image(gray, "PNG"))
    assert pixels.shape == (72, 96, 3)
    for channel in range(3):
        np.testing.assert_array_equal(pixels[..., channel], np.asarray(gray))


@pytest.mark.parametrize("transparent", [False, True], ids=["opaque", "with-transparency"])
def test_palette(transparent: bool) -> None:
    palette = sample_image(53).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    options = {"transparency": 0} if transparent else {}
    pixels = decoded(encode_image(palette, "PNG", **options))
    expected = np.asarray(palette.convert("RGB"), dtype=np.int16)
    index = np.asarray(palette)
    if transparent:
        expected[index == 0] = 255
    np.testing.assert_array_equal(pixels, expected)


def test_sixteen_bit_grayscale_is_scaled_not_clipped() -> None:
    ramp = sixteen_bit_ramp()
    data = encode_image(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    pixels = decoded(data)[..., 0]
    np.testing.assert_allclose(pixels, np.rint(ramp / 257.0), atol=1)
    assert pixels.min() == 0 and pixels.max() == 255 and len(np.unique(pixels)) > 50


def test_webp() -> None:
    original = sample_image(54)
    data = encode_image(original, "WEBP", lossless=True)
    np.testing.assert_array_equal(decoded(data), np.asarray(original))


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG", "MPO"])
def test_animation_uses_first_frame(fmt: str) -> None:
    data, reference = animation_and_first_frame(fmt)
    with Image.open(io.BytesIO(data)) as image:
        assert getattr(image, "n_frames", 1) == 2
    np.testing.assert_allclose(decoded(data), decoded(reference), atol=0)


def test_truncated_jpeg_is_damaged() -> None:
    with pytest.raises(AttachmentError) as raised:
        decode_image(truncated_jpeg(), MAX_PIXELS)
    assert raised.value.code == "damaged"


def test_zero_bytes_are_empty() -> None:
    with pytest.raises(AttachmentError) as raised:
        decode_image(b"", MAX_PIXELS)
    assert raised.value.code == "empty"


@pytest.mark.parametrize("name", list(NON_IMAGES))
def test_non_images_are_rejected_by_content(name: str) -> None:
    with pytest.raises(AttachmentError) as raised:
        decode_image(NON_IMAGES[name], MAX_PIXELS)
    assert raised.value.code in ("unsupported_type", "damaged")


def test_other_formats_pillow_knows_are_refused() -> None:
    for fmt in ("BMP", "TIFF", "ICO"):
        with pytest.raises(AttachmentError) as raised:
            decode_image(encode_image(sample_image(58), fmt), MAX_PIXELS)
        assert raised.value.code == "unsupported_type"


def test_pixel_limit_is_checked_from_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    # 6000 pixels: Pillow's guard would only warn, the header check refuses without decoding a pixel.
    data = encode_image(sample_image(59, (100, 60)), "PNG")
    forbid_pixel_decoding(monkeypatch)
    with pytest.raises(AttachmentError) as raised:
        decode_image(data, 5999)
    assert raised.value.code == "too_large"


@pytest.mark.parametrize(
    "mode", ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "CMYK", "YCbCr", "I", "I;16", "F"]
)
def test_to_rgb_handles_every_mode(mode: str) -> None:
    if mode == "I;16":
        image = Image.fromarray(np.full((72, 96), 40000, dtype=np.uint16))
    else:
        image = sample_image(60).convert("RGBA").convert(mode)
    assert image.mode == mode
    converted = to_rgb(image)
    assert converted.mode == "RGB" and converted.size == (96, 72)


# The decoded-size bound: bytes of the bitmap Pillow would make, checked before any pixel is decoded


def _flat_png(mode: str, size: tuple) -> bytes:
    if mode == "I;16":
        return encode_image(Image.fromarray(np.zeros((size[1], size[0]), np.uint16)), "PNG")
    return encode_image(Image.new(mode, size), "PNG")


def test_decoded_bytes_count_pillows_bytes_per_pixel_by_mode_and_webp_thrice() -> None:
    assert decoded_bytes("L", (100, 10)) == 1000
    assert decoded_bytes("P", (100, 10)) == 1000
    assert decoded_bytes("I;16", (100, 10)) == 2000
    assert decoded_bytes("RGB", (100, 10)) == 4000  # Pillow keeps RGB in 4 bytes a pixel
    assert decoded_bytes("RGBA", (100, 10), "WEBP") == 12000
    assert decoded_bytes("unknown", (100, 10)) == 8000


@pytest.mark.parametrize("mode, accepted", [("L", True), ("I;16", False), ("RGBA", False)])
def test_the_decoded_size_is_refused_before_decoding_by_the_bytes_of_its_mode(
    mode: str, accepted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 100 × 100 pixels: 10,000 bytes as 8-bit grayscale, 20,000 as 16-bit, 40,000 as RGBA.
    limits = AttachmentLimits(image_max_decoded_bytes=15_000)
    data = _flat_png(mode, (100, 100))
    if accepted:
        assert decode_image(data, MAX_PIXELS, limits=limits).size == (100, 100)
        assert inspect_image(data, limits).width == 100
        return
    forbid_pixel_decoding(monkeypatch)
    for check in (lambda: decode_image(data, MAX_PIXELS, limits=limits), lambda: inspect_image(data, limits)):
        with pytest.raises(AttachmentError) as raised:
            check()
        assert raised.value.code == "too_large" and "bytes" in raised.value.detail


def test_a_jpeg_over_the_decoded_size_is_decoded_smaller_not_refused() -> None:
    data = encode_image(sample_image(61, (320, 240)), "JPEG", quality=90)
    full = decode_image(data, MAX_PIXELS)
    assert full.size == (320, 240)
    limits = AttachmentLimits(image_max_decoded_bytes=320 * 240 * 4 // 3)  # 1/2 scale fits, 1/1 does not
    half = decode_image(data, MAX_PIXELS, limits=limits)
    assert half.size == (160, 120)
    expected = np.asarray(full.resize((160, 120), Image.Resampling.BOX), dtype=np.int16)
    assert np.abs(np.asarray(half, dtype=np.int16) - expected).mean() < 6.0
    # with a draft size the stronger of the two reductions wins (sides still >= 40 pixels: 1/4 scale)
    assert decode_image(data, MAX_PIXELS, draft_size=40, limits=limits).size == (80, 60)


def test_the_default_decoded_size_accepts_every_mode_to_the_pixel_limit_but_big_rgb() -> None:
    limits = AttachmentLimits()
    assert limits.image_max_decoded_bytes == 128 * 1024 * 1024
    for mode in ("L", "P", "I;16"):
        assert decoded_bytes(mode, (8000, 5000)) <= limits.image_max_decoded_bytes
    assert decoded_bytes("RGBA", (8000, 5000)) > limits.image_max_decoded_bytes


def test_sixteen_bit_grayscale_is_converted_in_strips_not_one_float64_array() -> None:
    """The issue's photo: 16-bit grayscale of flat colour (75 KiB at 40 megapixels) went through three
    full-size float64 arrays (~900 MiB at 40 megapixels). numpy's allocations are traced; Pillow's are not."""
    import tracemalloc

    width, height = 4000, 2500  # 10 megapixels: 80 MB as one float64 array
    image = Image.fromarray(np.full((height, width), 30000, np.uint16))
    tracemalloc.start()
    try:
        converted = to_rgb(image)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert converted.mode == "RGB" and converted.getpixel((5, 5)) == (117, 117, 117)
    assert peak < 4 * width * height  # the 8-bit result plus a few 8 MiB strips

