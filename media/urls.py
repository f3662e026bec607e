"""Which URLs and addresses an attachment may be fetched from, decided without (or before) connecting.

A platform-hosted file (Messenger, Telegram) is fetched only over ``https://`` on port 443, from a host on the
allow-list (:attr:`media.limits.AttachmentLimits.url_allowed_hosts`), and only when every DNS answer for it is
a public unicast address. :func:`checked_url` is the syntax and allow-list check (no network), used on every
reference and every redirect; :func:`resolve_public` is the DNS check, used before each request and again by
the pinned connection of :mod:`media.fetch` (so DNS rebinding cannot reach a private address).
"""
from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any, List, Optional, Tuple, Union
from urllib.parse import urlsplit, urlunsplit

from media.errors import AttachmentError
from media.limits import AttachmentLimits

__all__ = [
    "URL_MAX_CHARS",
    "URL_FORBIDDEN_CHARS_RE",
    "checked_url",
    "is_public_address",
    "parse_ip",
    "redact",
    "resolve_public",
]

#: Longest URL accepted, in characters.
URL_MAX_CHARS = 2048
#: Whitespace, backslashes and control characters: never part of an accepted URL.
URL_FORBIDDEN_CHARS_RE = re.compile(r"[\s\\\x00-\x1f\x7f]")

_HOSTNAME_RE = re.compile(r"[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)*")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def is_public_address(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses (IPv4-in-IPv6 forms judged by the inner IPv4).

    Refused: loopback, private, link-local (incl. 169.254.169.254), CGNAT (100.64/10), multicast, reserved,
    unspecified, IPv6 ULA/link-local/site-local, every IPv4-mapped address, and NAT64 (64:ff9b::/96) or 6to4
    (2002::/16) forms of a non-public IPv4 address.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return False  # ::ffff:a.b.c.d never comes from a real AAAA record; refuse every mapped form
        embedded: Optional[ipaddress.IPv4Address] = address.sixtofour
        if address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(embedded):
            return False
        if address.is_site_local:
            return False
    elif address in _CGNAT:
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def parse_ip(text: str) -> Optional[IPAddress]:
    """The IP address written in ``text`` (an IPv6 zone ``%eth0`` dropped), or ``None`` for a host name."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def resolve_public(host: str, port: int) -> List[str]:
    """Resolve ``host`` and return its addresses, refusing if any of them is not public.

    Raises:
        AttachmentError: ``forbidden_url`` for a private/loopback/link-local/... address,
            ``fetch_failed`` when the name does not resolve.
    """
    literal = parse_ip(host.strip("[]"))
    if literal is not None:
        if not is_public_address(literal):
            raise AttachmentError("forbidden_url", f"address {literal} is not public")
        return [str(literal)]
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as error:
        raise AttachmentError("fetch_failed", f"cannot resolve {host}: {error}") from None
    addresses: List[str] = []
    for info in infos:
        address = parse_ip(str(info[4][0]))
        if address is None or not is_public_address(address):
            raise AttachmentError("forbidden_url", f"{host} resolves to non-public address {info[4][0]}")
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise AttachmentError("fetch_failed", f"{host} resolves to no address")
    return addresses


def redact(url: str) -> str:
    """Scheme and host only, for logs: Telegram file URLs carry the bot token in the path."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or '?'}/…"
    except ValueError:
        return "<unparseable url>"


def checked_url(url: Any, limits: AttachmentLimits) -> Tuple[str, str, int]:
    """Validate a URL without touching the network; returns ``(normalised url, host, port)``.

    Raises:
        AttachmentError: ``forbidden_url`` for anything but ``https://`` to an allowed host on port 443.
    """
    if not isinstance(url, str) or not url or len(url) > URL_MAX_CHARS:
        raise AttachmentError("forbidden_url", "not a URL string of at most 2048 characters")
    if URL_FORBIDDEN_CHARS_RE.search(url):
        raise AttachmentError("forbidden_url", "URL contains whitespace, backslashes or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise AttachmentError("forbidden_url", f"unparseable URL: {error}") from None
    if parts.scheme.lower() != "https":
        raise AttachmentError("forbidden_url", f"scheme {parts.scheme or '(none)'!r} is not https")
    if "@" in parts.netloc:
        raise AttachmentError("forbidden_url", "URL carries credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise AttachmentError("forbidden_url", "URL has no host")
    if port not in (None, 443):
        raise AttachmentError("forbidden_url", f"port {port} is not 443")
    literal = parse_ip(host)
    if literal is not None:
        if not is_public_address(literal):
            raise AttachmentError("forbidden_url", f"address {host} is not public")
        raise AttachmentError("forbidden_url", f"IP address {host} instead of an allowed host name")
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise AttachmentError("forbidden_url", "host is not a valid domain name") from None
    if not _HOSTNAME_RE.fullmatch(host):
        raise AttachmentError("forbidden_url", f"host {host!r} is not a valid domain name")
    if host == "localhost" or host.endswith(".localhost"):
        raise AttachmentError("forbidden_url", f"host {host} is local")
    if not limits.host_allowed(host):
        raise AttachmentError("forbidden_url", f"host {host} is not in url_allowed_hosts")
    normalised = urlunsplit(("https", host, parts.path or "/", parts.query, ""))
    return normalised, host, 443
