"""Photo decoding: an upload's bytes → an upright 8-bit RGB Pillow image, refusing anything unsafe or broken.

Used wherever a customer or catalog photo is decoded (the ImageFeaturizer, `make catalog-images`, the image
tuning and benchmarks), so every one of them applies the same pixel limit, the same EXIF orientation and the
same colour conversion. Errors are :class:`media.attachments.AttachmentError` with ``attachment_type="image"``.
"""
from __future__ import annotations

import io
import logging
import warnings
from typing import TYPE_CHECKING, Optional

import numpy as np

from media.attachments import AttachmentError, AttachmentLimits

if TYPE_CHECKING:  # hints only
    from PIL import Image as PILImage

logger = logging.getLogger(__name__)

#: Pillow plugins that may open a photo: the ones the attachment store accepts. Everything else is
#: `unsupported_type`. The JPEG plugin reports multi-picture JPEGs from phone cameras as format "MPO".
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
JPEG_FORMATS = ("JPEG", "MPO")
#: White, for compositing transparent images (what a viewer shows behind a transparent product cut-out).
BACKGROUND_RGB = (255, 255, 255)

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_EXIF_ORIENTATION = 0x0112  # EXIF tag 274


def image_error(code: str, detail: str, limits: Optional[AttachmentLimits] = None) -> AttachmentError:
    """An `AttachmentError` about a photo (`attachment_type="image"`), quoting `limits` in its message."""
    return AttachmentError(code, detail, attachment_type="image", limits=limits)


def decode_image(
    data: bytes, max_pixels: int, draft_size: Optional[int] = None, limits: Optional[AttachmentLimits] = None
) -> "PILImage.Image":
    """Decodes an uploaded photo into an upright 8-bit RGB image, refusing anything unsafe or broken.

    Steps: refuse empty input; open lazily (header only) as JPEG/PNG/WebP/GIF; refuse more than `max_pixels`
    pixels (width × height from the header) before any pixel is decoded; decode the first frame only (an
    animation stays on the frame Pillow opens it at); apply the EXIF orientation; convert to RGB (alpha is
    composited on white; CMYK, palette, grayscale, 1-bit and 16-bit grayscale are converted; 16-bit values are
    scaled 0..65535 → 0..255).

    Args:
        data: the file content.
        max_pixels: largest accepted width × height, in pixels.
        draft_size: when set, a JPEG is decoded at the smallest 1/1, 1/2, 1/4 or 1/8 scale whose sides are
            still at least this many pixels (libjpeg's DCT scaling; much faster for phone photos).
        limits: limits quoted in the friendly messages of the errors (defaults: `AttachmentLimits()`).

    Returns:
        A loaded `PIL.Image.Image` in mode "RGB".

    Raises:
        AttachmentError: `attachment_type="image"` and code `empty` (zero bytes), `unsupported_type` (not a
            JPEG, PNG, WebP or GIF, whatever the name says), `too_large` (over `max_pixels`, also when
            Pillow's own decompression-bomb check fires) or `damaged` (truncated or corrupt data).
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise image_error("empty", "zero bytes", limits)
    try:
        with warnings.catch_warnings():
            # Pillow warns between MAX_IMAGE_PIXELS and twice that; the explicit check below reports it
            # instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except UnidentifiedImageError:
        raise image_error(
            "unsupported_type", "content is not a JPEG, PNG, WebP or GIF image", limits
        ) from None
    except Image.DecompressionBombError as error:
        raise image_error("too_large", f"Pillow refused the header: {error}", limits) from None
    except Exception as error:  # a plugin choking on a malformed header
        raise image_error("damaged", f"unreadable header: {type(error).__name__}: {error}", limits) from None

    # Nothing has been decoded yet: `Image.open` read the header only.
    width, height = image.size
    if width <= 0 or height <= 0:
        raise image_error("damaged", f"header declares {width}x{height} pixels", limits)
    if width * height > max_pixels:
        raise image_error(
            "too_large", f"{width}x{height} = {width * height} pixels > {max_pixels} pixels", limits
        )
    try:
        if draft_size and image.format in JPEG_FORMATS:
            image.draft(None, (draft_size, draft_size))
        image.load()  # the first frame: an animated GIF/WebP/PNG or an MPO is opened positioned on frame 0
    except Image.DecompressionBombError as error:
        raise image_error("too_large", f"Pillow refused to decode: {error}", limits) from None
    except MemoryError:
        raise image_error("too_large", f"out of memory decoding {width}x{height} pixels", limits) from None
    except Exception as error:  # OSError (truncated), SyntaxError, ValueError, EOFError, struct.error, ...
        raise image_error("damaged", f"does not decode: {type(error).__name__}: {error}", limits) from None
    image = _upright(image)
    try:
        return to_rgb(image)
    except ValueError as error:
        raise image_error("unsupported_type", f"colour mode {image.mode} cannot become RGB: {error}", limits)


def _upright(image: "PILImage.Image") -> "PILImage.Image":
    """`image` turned as its EXIF orientation tag says; unchanged without a tag or with an unreadable one."""
    from PIL import ImageOps

    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            return ImageOps.exif_transpose(image)
    except Exception as error:  # a broken EXIF block must not cost the customer a good photo
        logger.debug("Ignoring unreadable EXIF orientation: %s: %s", type(error).__name__, error)
    return image


def to_rgb(image: "PILImage.Image") -> "PILImage.Image":
    """An 8-bit RGB version of a decoded image of any Pillow mode.

    Transparent pixels (alpha channel, or a palette/grayscale/RGB image with a `transparency` entry) are
    composited on white; 16-bit grayscale is scaled from 0..65535 to 0..255 (Pillow's own conversion would
    clip).

    Raises:
        ValueError: for a mode Pillow cannot convert to RGB.
    """
    from PIL import Image

    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if mode in _SIXTEEN_BIT_MODES or (values.size and values.max() > 255.0):
            values = np.clip(values, 0.0, 65535.0) / 257.0
        gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("LA" if mode == "La" else image.mode).convert("RGBA")  # La only converts to LA
        background = Image.new("RGBA", rgba.size, BACKGROUND_RGB + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
