"""Photos: which formats are accepted, how they are identified, checked and decoded — one place for all of it.

Pillow (https://python-pillow.org) does every step; nothing parses an image by hand.

* :func:`identify_image` names the format from the header alone (no pixel is decoded): what
  :func:`media.sniff.sniff` uses to tell a photo from a voice note.
* :func:`open_image` opens an upload lazily and refuses what is not an accepted format or is over the pixel
  limit, before any pixel is decoded; :func:`load_image` then checks the bytes the decoded bitmap would take
  (:func:`decoded_bytes` against ``image_max_decoded_bytes``; a JPEG over it is decoded at a smaller DCT
  scale instead), decodes the first frame and turns every decoder failure into ``damaged``. Both the store's check and the photo decoder go through these two.
* :func:`inspect_image` is the store's check on an upload: a JPEG is decoded at 1/8 scale (libjpeg's DCT
  scaling), which reads every block — a truncated or corrupt file still fails — for 1/64 of the memory.
* :func:`decode_image` is the photo decoder of the ImageFeaturizer, ``make catalog-images``, the image tuning
  and the benchmarks: the same checks, then EXIF orientation and conversion to 8-bit RGB (:func:`to_rgb`,
  which never makes a full-size float or second RGBA copy: one accepted photo costs at most about
  2.5 × ``image_max_decoded_bytes``, measured by ``python -m benchmarks.bench_decode_memory``).

Errors are :class:`media.errors.AttachmentError` with ``attachment_type="image"`` (``unsupported_type`` for
content that is no accepted image at all).
"""
from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Optional, Tuple

import numpy as np

from assistant.keys import IMAGE_ATTACHMENT
from media.errors import AttachmentError
from media.limits import AttachmentLimits

if TYPE_CHECKING:  # hints only
    from PIL import Image as PILImage

logger = logging.getLogger(__name__)

__all__ = [
    "BACKGROUND_RGB",
    "IMAGE_FORMATS",
    "IMAGE_MIME",
    "JPEG_FORMATS",
    "ImageInfo",
    "decode_image",
    "decoded_bytes",
    "identify_image",
    "image_error",
    "inspect_image",
    "load_image",
    "open_image",
    "to_rgb",
]

#: Pillow plugins that may open a photo. Everything else is `unsupported_type`.
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
#: The JPEG plugin reports multi-picture JPEGs from phone cameras as format "MPO"; they are JPEG files.
JPEG_FORMATS = ("JPEG", "MPO")
#: The MIME type of each format Pillow reports for an accepted photo.
IMAGE_MIME: Dict[str, str] = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
#: White, for compositing transparent images (what a viewer shows behind a transparent product cut-out).
BACKGROUND_RGB = (255, 255, 255)

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_EXIF_ORIENTATION = 0x0112  # EXIF tag 274
_SMALLEST_DRAFT = 1  # pixels: a JPEG draft this small is decoded at libjpeg's smallest scale, 1/8
_JPEG_SCALES = (1, 2, 4, 8)  # libjpeg's DCT scaling denominators
#: Bytes per pixel of Pillow's decoded bitmap, per mode (Pillow stores 3-band images in 4 bytes a pixel).
_BYTES_PER_PIXEL: Dict[str, int] = {
    "1": 1, "L": 1, "P": 1,
    "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2,
    "LA": 4, "La": 4, "PA": 4, "RGB": 4, "RGBA": 4, "RGBa": 4, "RGBX": 4,
    "CMYK": 4, "YCbCr": 4, "LAB": 4, "HSV": 4, "I": 4, "F": 4,
}
#: Full-size copies of the frame a format's Pillow decoder holds while loading, where more than one.
_DECODER_COPIES: Dict[str, int] = {"WEBP": 3}
#: Pixels per strip when 16-bit and 32-bit grayscale are scaled to 8 bits (8 MB of float64 a strip).
_STRIP_PIXELS = 1 << 20


@dataclass(frozen=True)
class ImageInfo:
    """What the store records of an accepted photo.

    Attributes:
        format: Pillow's format name, e.g. ``"JPEG"``, ``"MPO"``, ``"PNG"``.
        mime_type: The MIME type of that format, e.g. ``"image/jpeg"``.
        width: Width in pixels, from the header.
        height: Height in pixels, from the header.
    """

    format: str
    mime_type: str
    width: int
    height: int


def image_error(code: str, detail: str, limits: Optional[AttachmentLimits] = None) -> AttachmentError:
    """An `AttachmentError` about a photo (`attachment_type="image"`), quoting `limits` in its message."""
    return AttachmentError(code, detail, attachment_type=IMAGE_ATTACHMENT, limits=limits)


def _format_by_signature(data: bytes) -> Optional[str]:
    """The accepted Pillow format whose own signature check accepts ``data``'s first bytes, if any."""
    from PIL import Image

    Image.init()
    prefix = data[:64]
    for fmt in IMAGE_FORMATS:
        entry = Image.OPEN.get(fmt)
        if entry is None:
            continue
        accept = entry[1]
        try:
            if accept is not None and accept(prefix) is True:
                return fmt
        except Exception:  # a plugin's signature check must never take the caller down
            continue
    return None


def identify_image(data: bytes) -> Optional[str]:
    """Pillow's format name when ``data`` is (or starts like) an accepted photo, else ``None``.

    Only the header is read. A file whose header Pillow cannot parse but whose first bytes carry an accepted
    format's signature is still named (it is a broken photo, not something else).
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
                return image.format if image.format in IMAGE_MIME else None
    except Exception:  # UnidentifiedImageError, DecompressionBombError, or a plugin choking on the header
        return _format_by_signature(data)


def open_image(data: bytes, max_pixels: int, limits: Optional[AttachmentLimits] = None) -> "PILImage.Image":
    """Open a photo lazily (header only) and check it before any pixel is decoded.

    Args:
        data: The file content.
        max_pixels: Largest accepted width × height, in pixels.
        limits: Limits quoted in the friendly messages of the errors (defaults: `AttachmentLimits()`).

    Returns:
        The opened, not yet loaded, `PIL.Image.Image` (JPEG, MPO, PNG, WebP or GIF).

    Raises:
        AttachmentError: ``empty`` (zero bytes), ``unsupported_type`` (not a JPEG, PNG, WebP or GIF, whatever
            the name says), ``too_large`` (over ``max_pixels``, also when Pillow's own decompression-bomb
            check fires) or ``damaged`` (an accepted format's signature with a header Pillow cannot read, or a
            header that declares no pixels).
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise image_error("empty", "zero bytes", limits)
    try:
        with warnings.catch_warnings():
            # Pillow warns between MAX_IMAGE_PIXELS and twice that; the explicit check below reports it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except UnidentifiedImageError:
        fmt = _format_by_signature(data)
        if fmt is None:
            raise image_error(
                "unsupported_type", "content is not a JPEG, PNG, WebP or GIF image", limits
            ) from None
        raise image_error("damaged", f"{fmt} signature but Pillow cannot read the header", limits) from None
    except Image.DecompressionBombError as error:
        raise image_error("too_large", f"Pillow refused the header: {error}", limits) from None
    except Exception as error:  # a plugin choking on a malformed header
        raise image_error("damaged", f"unreadable header: {type(error).__name__}: {error}", limits) from None
    width, height = image.size
    if width <= 0 or height <= 0:
        image.close()
        raise image_error("damaged", f"header declares {width}x{height} pixels", limits)
    if width * height > max_pixels:
        image.close()
        raise image_error(
            "too_large", f"{width}x{height} = {width * height} pixels > {max_pixels} pixels", limits
        )
    return image


def decoded_bytes(mode: str, size: Tuple[int, int], fmt: Optional[str] = None) -> int:
    """Bytes Pillow holds to decode an image of ``mode`` and ``size`` (width, height) in format ``fmt``.

    Pillow keeps 1 byte per pixel for bilevel (``1``), grayscale (``L``) and palette (``P``) images, 2 for
    16-bit grayscale (``I;16*``) and 4 for every other mode (RGB is stored as 4 bytes too); a mode not in
    that list is counted at 8 bytes per pixel, to be safe. Pillow's WebP decoder holds the frame three times
    while it loads (libwebp's canvas, a bytes copy and the bitmap), so a WebP counts three times.
    """
    width, height = size
    return width * height * _BYTES_PER_PIXEL.get(mode, 8) * _DECODER_COPIES.get(fmt or "", 1)


def load_image(
    image: "PILImage.Image", draft_size: Optional[int] = None, limits: Optional[AttachmentLimits] = None
) -> "PILImage.Image":
    """Decode the first frame of an image from :func:`open_image` (an animation stays on frame 0).

    Before any pixel is decoded, the bitmap the decode would make is checked against
    ``limits.image_max_decoded_bytes`` (:func:`decoded_bytes`). A JPEG over it is decoded at the largest of
    1/2, 1/4 or 1/8 scale that fits (libjpeg's DCT scaling: a smaller but whole photo); any other format over
    it is refused.

    Args:
        image: The opened image; loaded in place.
        draft_size: When set, a JPEG is decoded at the smallest 1/1, 1/2, 1/4 or 1/8 scale whose sides are
            still at least this many pixels (libjpeg's DCT scaling; much faster for phone photos).
        limits: The decoded-bytes limit, also quoted in the friendly messages of the errors (default:
            :class:`AttachmentLimits` defaults).

    Returns:
        ``image``, loaded.

    Raises:
        AttachmentError: ``too_large`` (over the decoded-bytes limit, Pillow's decompression-bomb check, or
            out of memory) or ``damaged`` (truncated or corrupt data).
    """
    from PIL import Image

    width, height = image.size
    max_bytes = (limits or AttachmentLimits()).image_max_decoded_bytes
    try:
        if image.format in JPEG_FORMATS:
            request = _jpeg_draft_request(image, draft_size, max_bytes)
            if request is not None:
                image.draft(None, request)
        need = decoded_bytes(image.mode, image.size, image.format)
        if need > max_bytes:
            raise image_error(
                "too_large",
                f"{width}x{height} {image.mode} decodes to {need} bytes > {max_bytes} bytes",
                limits,
            )
        image.load()
    except AttachmentError:
        raise
    except Image.DecompressionBombError as error:
        raise image_error("too_large", f"Pillow refused to decode: {error}", limits) from None
    except MemoryError:
        raise image_error("too_large", f"out of memory decoding {width}x{height} pixels", limits) from None
    except Exception as error:  # OSError (truncated), SyntaxError, ValueError, EOFError, struct.error, ...
        raise image_error("damaged", f"does not decode: {type(error).__name__}: {error}", limits) from None
    return image


def _jpeg_draft_request(
    image: "PILImage.Image", draft_size: Optional[int], max_bytes: int
) -> Optional[Tuple[int, int]]:
    """The size to ask `Image.draft` for: at most ``draft_size`` a side, and small enough for ``max_bytes``.

    Pillow decodes a JPEG at the largest 1/1, 1/2, 1/4 or 1/8 scale whose sides are still at least the
    requested size, and honours only one `draft` call, so both wishes are merged into one request. None:
    decode at full size.
    """
    width, height = image.size
    request = (draft_size, draft_size) if draft_size else None
    for scale in _JPEG_SCALES:
        scaled = (-(-width // scale), -(-height // scale))
        if decoded_bytes(image.mode, scaled) <= max_bytes:
            if scale > 1:
                byte_request = (max(1, width // scale), max(1, height // scale))
                request = byte_request if request is None else (
                    min(request[0], byte_request[0]), min(request[1], byte_request[1])
                )
            break
    return request


def inspect_image(data: bytes, limits: AttachmentLimits) -> ImageInfo:
    """The store's check of an uploaded photo: identify, check the pixel limit, decode cheaply for damage.

    A JPEG is decoded at 1/8 scale: every block is still read, so the check is the same, for 1/64 of the
    memory. Other formats are decoded in full (their first frame).

    Args:
        data: The file content.
        limits: Its ``image_max_pixels`` is the pixel limit; the friendly messages quote it.

    Returns:
        Format, MIME type and size in pixels.

    Raises:
        AttachmentError: as :func:`open_image` and :func:`load_image`.
    """
    with open_image(data, limits.image_max_pixels, limits) as image:
        fmt = image.format or ""
        width, height = image.size  # from the header: a JPEG draft shrinks `image.size`
        load_image(image, _SMALLEST_DRAFT, limits)
    return ImageInfo(fmt, IMAGE_MIME[fmt], width, height)


def decode_image(
    data: bytes, max_pixels: int, draft_size: Optional[int] = None, limits: Optional[AttachmentLimits] = None
) -> "PILImage.Image":
    """Decodes an uploaded photo into an upright 8-bit RGB image, refusing anything unsafe or broken.

    Steps: :func:`open_image` (refuse empty input, anything but JPEG/PNG/WebP/GIF, and more than
    ``max_pixels`` pixels before any pixel is decoded); :func:`load_image` (the first frame only); apply the
    EXIF orientation; convert to RGB (alpha is composited on white; CMYK, palette, grayscale, 1-bit and 16-bit
    grayscale are converted; 16-bit values are scaled 0..65535 → 0..255).

    Args:
        data: the file content.
        max_pixels: largest accepted width × height, in pixels.
        draft_size: when set, a JPEG is decoded at the smallest 1/1, 1/2, 1/4 or 1/8 scale whose sides are
            still at least this many pixels.
        limits: limits quoted in the friendly messages of the errors (defaults: `AttachmentLimits()`).

    Returns:
        A loaded `PIL.Image.Image` in mode "RGB".

    Raises:
        AttachmentError: `attachment_type="image"` and code `empty`, `unsupported_type` (also for a colour
            mode that cannot become RGB), `too_large` or `damaged`, as :func:`open_image` and
            :func:`load_image`.
    """
    image = load_image(open_image(data, max_pixels, limits), draft_size, limits)
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
    clip), as are 32-bit integer and float grayscale whose largest value is over 255.

    Memory: besides ``image`` and the RGB result (4 bytes a pixel), the conversion holds at most one
    further 4-byte-a-pixel bitmap and one 1-byte-a-pixel mask (alpha), or an 8-bit grayscale copy and one
    strip of `_STRIP_PIXELS` float64 values (16/32-bit grayscale, scaled strip by strip).

    Raises:
        ValueError: for a mode Pillow cannot convert to RGB.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        return _wide_gray_to_rgb(image)
    if mode in _ALPHA_MODES or "transparency" in image.info:
        return _composite_on_white(image)
    return image.convert("RGB")


def _wide_gray_to_rgb(image: "PILImage.Image") -> "PILImage.Image":
    """16-bit (``I;16*``), 32-bit integer (``I``) or float (``F``) grayscale as 8-bit RGB, strip by strip.

    16-bit values, and 32-bit ones when the largest is over 255, are clipped to 0..65535 and divided by 257;
    then rounded and clipped to 0..255. Only one strip of `_STRIP_PIXELS` pixels is held as float64.
    """
    from PIL import Image

    width, height = image.size
    rows = max(1, _STRIP_PIXELS // max(1, width))
    strips = [(top, min(height, top + rows)) for top in range(0, height, rows)]

    def strip_values(top: int, bottom: int) -> np.ndarray:
        return np.asarray(image.crop((0, top, width, bottom)), dtype=np.float64)

    scale = image.mode in _SIXTEEN_BIT_MODES
    if not scale and width and height:
        peaks = [strip_values(top, bottom).max() for top, bottom in strips]
        scale = bool(np.max(peaks) > 255.0)  # NaN anywhere: no scaling, as one max over the whole image
    gray = np.empty((height, width), dtype=np.uint8)
    for top, bottom in strips:
        values = strip_values(top, bottom)
        if scale:
            values = np.clip(values, 0.0, 65535.0) / 257.0
        gray[top:bottom] = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.frombuffer("L", (width, height), gray, "raw", "L", 0, 1).convert("RGB")


def _composite_on_white(image: "PILImage.Image") -> "PILImage.Image":
    """An image with an alpha channel or a `transparency` entry as RGB on white.

    White is pasted into the RGB version through the inverted alpha (``rgb·a + 255·(1 − a)``). The alpha
    comes from the decoded bitmap itself where it can (RGBA and LA, or a grayscale or palette image's
    `transparency` entry, looked up per value), so no full-size RGBA copy is made for those modes.
    """
    import warnings

    from PIL import ImageOps

    transparency = _one_byte_transparency(image)
    if transparency is not None:
        with warnings.catch_warnings():  # "Palette images with Transparency expressed in bytes ..." (handled)
            warnings.simplefilter("ignore", UserWarning)
            rgb = image.convert("RGB")
        rgb.info.pop("transparency", None)
    elif image.mode in ("RGBA", "LA"):
        transparency = ImageOps.invert(image.getchannel("A"))
        rgb = image.convert("RGB")
    else:
        source = image.convert("LA") if image.mode == "La" else image  # La only converts to LA
        rgba = source.convert("RGBA")
        del source
        transparency = ImageOps.invert(rgba.getchannel("A"))
        rgb = rgba.convert("RGB")
        del rgba
    rgb.paste(BACKGROUND_RGB, mask=transparency)
    return rgb


def _one_byte_transparency(image: "PILImage.Image") -> Optional["PILImage.Image"]:
    """For a grayscale or palette image with a plain `transparency` entry: an ``L`` mask, 255 where a pixel
    is fully transparent (255 − its alpha); None for anything else (the caller goes through RGBA)."""
    from PIL import Image

    entry = image.info.get("transparency")
    if image.mode not in ("L", "P") or (image.mode == "P" and image.palette and image.palette.mode != "RGB"):
        return None
    if isinstance(entry, int) and not isinstance(entry, bool):
        table = np.where(np.arange(256) == entry, 255, 0).astype(np.uint8)
    elif isinstance(entry, bytes) and image.mode == "P":
        alpha = np.full(256, 255, dtype=np.uint8)
        alpha[: min(256, len(entry))] = np.frombuffer(entry[:256], dtype=np.uint8)
        table = 255 - alpha
    else:
        return None
    if image.mode == "L":
        return image.point(table.tolist())
    return Image.fromarray(table[np.asarray(image)])
