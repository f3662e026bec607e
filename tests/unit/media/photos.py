"""Photos made with Pillow for the tests of `media.images`, `encoders.image` and the ImageFeaturizer.

Nothing is read from disk: every picture is a smooth gradient with a few solid shapes placed by a seed, so it
is asymmetric (a rotation or a wrong crop shows) and compresses like a photo.
"""
from __future__ import annotations

import io
from typing import Any, Tuple

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFile

#: EXIF tag 274, "Orientation"; value 6 says "turn the stored pixels 90° clockwise to show them upright".
EXIF_ORIENTATION = 0x0112


def sample_image(seed: int = 0, size: tuple = (96, 72)) -> Image.Image:
    """An RGB test photo: a smooth colour gradient and a few solid shapes placed by `seed` (asymmetric)."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    base = rng.uniform(40, 200, size=3)
    pixels = np.stack(
        [base[0] + 50 * x / width, base[1] + 50 * y / height, base[2] + 30 * (x + y) / (width + height)],
        axis=-1,
    )
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        left, top = int(rng.integers(0, width * 2 // 3)), int(rng.integers(0, height * 2 // 3))
        box = (left, top, left + int(rng.integers(8, width // 3)), top + int(rng.integers(8, height // 3)))
        draw.rectangle(box, fill=tuple(int(c) for c in rng.integers(0, 256, size=3)))
    draw.ellipse((2, 2, width // 4, height // 4), fill=(250, 20, 20))  # a marker in the top-left corner
    return image


def encode_image(image: Image.Image, fmt: str, **options: Any) -> bytes:
    """`image` saved in Pillow format `fmt` ("JPEG", "PNG", ...) with the save `options`, as bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def rotated_with_exif(upright: Image.Image, fmt: str, **options: Any) -> bytes:
    """What a camera writes for `upright`: the pixels turned 90° and EXIF orientation 6 ("turn it back")."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    return encode_image(upright.transpose(Image.Transpose.ROTATE_90), fmt, exif=exif, **options)


def animation_and_first_frame(fmt: str) -> Tuple[bytes, bytes]:
    """A two-frame animation in `fmt` (GIF, WEBP, PNG or MPO) and its first frame alone (MPO: as a JPEG)."""
    first, second = sample_image(55), sample_image(56)
    options = {"MPO": {"quality": 95}, "WEBP": {"lossless": True}}.get(fmt, {})
    data = encode_image(first, fmt, save_all=True, append_images=[second], **options)
    reference = encode_image(first, fmt if fmt != "MPO" else "JPEG", **options)
    return data, reference


def rgba_cutout() -> np.ndarray:
    """`uint8 (40, 60, 4)` RGBA: fully transparent black around an opaque red square (rows 10..29, columns
    20..39) and a half-transparent blue top-left corner (5×5)."""
    rgba = np.zeros((40, 60, 4), dtype=np.uint8)
    rgba[10:30, 20:40] = (200, 30, 30, 255)
    rgba[0:5, 0:5] = (0, 0, 255, 128)
    return rgba


def sixteen_bit_ramp() -> np.ndarray:
    """`uint16 (32, 64)`: every row a ramp over the whole 16-bit range, 0 to 65535."""
    return np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (32, 1))


def forbid_pixel_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes any decoding of pixel data (Pillow's `load`) fail the test; header reads stay allowed."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", refuse)
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def truncated_jpeg() -> bytes:
    """The first third of a 320×240 JPEG photo, as an interrupted upload leaves it."""
    data = encode_image(sample_image(57, (320, 240)), "JPEG", quality=90)
    return data[: len(data) // 3]


#: Content that is no photo at all, whatever its name says (keys are test ids).
NON_IMAGES = {
    "text": b"This is not a photo, just text in a file called photo.jpg\n",
    "pdf": b"%PDF-1.7\n",
    "jpeg-magic-only": b"\xff\xd8" + b"\x00" * 10,
}
