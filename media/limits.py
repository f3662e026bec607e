"""The limits every attachment is checked against: bytes, pixels, seconds, count and the URL allow-list."""
from __future__ import annotations

import re
from typing import Any, Tuple

from pydantic import BaseModel, Extra, Field, validator

from assistant.keys import IMAGE_ATTACHMENT

__all__ = ["CHUNK_BYTES", "MiB", "AttachmentLimits"]

#: One mebibyte, in bytes.
MiB = 1024 * 1024
#: Bytes per chunk when an upload or a download is streamed: a request body into the store, a file from a
#: platform's CDN (64 KiB).
CHUNK_BYTES = 64 * 1024

_HOST_PATTERN_RE = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


class AttachmentLimits(BaseModel):
    """Limits applied to every attachment. All sizes are in bytes, durations in seconds.

    Attributes:
        image_max_bytes: Largest photo file in bytes (default 10 MiB = 10,485,760 bytes).
        image_max_pixels: Largest photo in pixels, width × height, checked from the header before any
            decoding (default 40,000,000 = 40 megapixels). Pillow's own guard refuses more than about
            179 M pixels whatever this says.
        image_max_decoded_bytes: Largest bitmap a photo may decode into, in bytes: width × height (after a
            JPEG's DCT scaling) × the bytes Pillow keeps per pixel of the decoded mode (1 for bilevel,
            grayscale and palette, 2 for 16-bit grayscale, 4 for everything else, RGB included). Checked
            before any pixel is decoded; a JPEG over it is decoded at the largest of 1/2, 1/4, 1/8 scale
            that fits instead (see :func:`media.images.load_image`). Default 128 MiB = 134,217,728 bytes:
            RGB/RGBA PNGs and WebPs up to 33.5 megapixels, every other accepted mode up to the pixel limit.
            Decoding and converting one accepted photo to RGB then holds at most about 2.5 × this.
        audio_max_bytes: Largest voice note file in bytes (default 20 MiB = 20,971,520 bytes).
        audio_max_seconds: Longest voice note in seconds (default 120 s).
        max_attachments: Most attachments read from one message; the rest are dropped with a ``too_many``
            problem (default 10).
        url_timeout_s: Wall-clock budget in seconds for one :meth:`media.store.AttachmentStore.fetch_url`
            call, all redirects and the whole body included (default 10 s).
        url_max_redirects: Most redirects followed by one fetch, each one re-checked (default 3).
        url_allowed_hosts: Host names a URL may point to: exact names (``api.telegram.org``) or
            ``*.domain`` for any sub-domain of ``domain`` (``*.fbcdn.net``). Default: the Messenger and
            Telegram file CDNs.

    Raises:
        pydantic.ValidationError: for a non-positive limit, an unknown key or a malformed host pattern.
    """

    image_max_bytes: int = Field(10 * MiB, gt=0, description="bytes")
    image_max_pixels: int = Field(40_000_000, gt=0, description="pixels (width × height)")
    image_max_decoded_bytes: int = Field(128 * MiB, gt=0, description="bytes of the decoded bitmap")
    audio_max_bytes: int = Field(20 * MiB, gt=0, description="bytes")
    audio_max_seconds: float = Field(120.0, gt=0, description="seconds")
    max_attachments: int = Field(10, gt=0, description="attachments per message")
    url_timeout_s: float = Field(10.0, gt=0, description="seconds, whole fetch")
    url_max_redirects: int = Field(3, ge=0, description="redirects per fetch")
    url_allowed_hosts: Tuple[str, ...] = Field(
        ("*.fbcdn.net", "*.fbsbx.com", "api.telegram.org"),
        description="exact host names or *.domain patterns",
    )

    class Config:
        extra = Extra.forbid
        allow_mutation = False

    @validator("url_allowed_hosts", pre=True)
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part for part in value.replace(",", " ").split() if part)
        return value

    @validator("url_allowed_hosts", each_item=True)
    def _check_host_pattern(cls, value: str) -> str:
        pattern = value.strip().lower().rstrip(".")
        if not _HOST_PATTERN_RE.fullmatch(pattern):
            raise ValueError(
                f"{value!r} is not a host name or '*.domain' pattern (no scheme, port, path or bare '*')"
            )
        return pattern

    @property
    def max_upload_bytes(self) -> int:
        """The largest upload of any type, in bytes: what is accepted before the content type is known."""
        return max(self.image_max_bytes, self.audio_max_bytes)

    def max_bytes_for(self, attachment_type: str) -> int:
        """The byte limit for ``"image"`` or ``"audio"``."""
        return self.image_max_bytes if attachment_type == IMAGE_ATTACHMENT else self.audio_max_bytes

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` (lower case, no port) matches :attr:`url_allowed_hosts`."""
        host = host.lower().rstrip(".")
        for pattern in self.url_allowed_hosts:
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]):
                    return True
            elif host == pattern:
                return True
        return False
