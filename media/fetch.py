"""The guarded downloader for platform-hosted files (Messenger and Telegram CDNs).

Every hop — the URL and up to ``url_max_redirects`` redirects, followed here, never by requests — must pass
:func:`media.urls.checked_url` (``https://`` on port 443 to an allowed host) and
:func:`media.urls.resolve_public` (every DNS answer public). The connection itself is made only to a checked
address: the session of :func:`make_guarded_session` resolves the host again at connect time and refuses a
private answer, so DNS rebinding between the check and the connection gets nowhere; TLS still verifies the
certificate against the host name. Environment proxies, ``.netrc`` and cookies are not used, and plain HTTP
never leaves the process. ``Content-Length`` and the streamed body are capped, and the time budget covers the
whole fetch.
"""
from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Iterable, Iterator, Optional
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from media.errors import AttachmentError
from media.limits import CHUNK_BYTES, AttachmentLimits
from media.urls import checked_url, redact, resolve_public

__all__ = [
    "Download",
    "PublicOnlyAdapter",
    "PublicOnlyHTTPSConnection",
    "PublicOnlyHTTPSConnectionPool",
    "RefusingAdapter",
    "download",
    "make_guarded_session",
]

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class PublicOnlyHTTPSConnection(HTTPSConnection):
    """urllib3 connection that resolves the host itself and connects only to a checked public address.

    The address is checked at connect time, so a DNS answer that changes between the check in
    :func:`download` and the connection (DNS rebinding) cannot reach a private address.
    TLS still verifies the certificate against the host name.
    """

    def _new_conn(self) -> socket.socket:
        addresses = resolve_public(self._dns_host.rstrip("."), self.port)
        last_error: Optional[OSError] = None
        for address in addresses:
            try:
                sock = urllib3_connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except socket.timeout as error:
                raise ConnectTimeoutError(self, f"Connection to {self.host} timed out: {error}") from error
            except OSError as error:
                last_error = error
                continue
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {last_error}")


class PublicOnlyHTTPSConnectionPool(HTTPSConnectionPool):
    """HTTPS pool whose connections are :class:`PublicOnlyHTTPSConnection`."""

    ConnectionCls = PublicOnlyHTTPSConnection


class PublicOnlyAdapter(HTTPAdapter):
    """Transport adapter whose HTTPS connections only ever reach public addresses."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"https": PublicOnlyHTTPSConnectionPool}


class RefusingAdapter(requests.adapters.BaseAdapter):
    """Mounted for ``http://``: plain HTTP never leaves the process."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Refuse the request.

        Raises:
            AttachmentError: ``forbidden_url``, always.
        """
        raise AttachmentError("forbidden_url", "plain http is refused")

    def close(self) -> None:
        """Nothing to close."""


def make_guarded_session() -> requests.Session:
    """A requests session for platform files: no proxies or .netrc from the environment, no cookies,
    HTTPS connections only to public addresses, plain HTTP refused."""
    session = requests.Session()
    session.trust_env = False
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    session.mount("https://", PublicOnlyAdapter(max_retries=0))
    session.mount("http://", RefusingAdapter())
    session.headers.update({"Accept-Encoding": "identity", "User-Agent": "shop-assistant-attachments/1"})
    return session


@dataclass(frozen=True)
class Download:
    """A fetch under way: the body is read while :func:`download`'s context is open.

    Attributes:
        name: The last path segment of the URL as given (before any redirect), for display.
        content_type: The ``Content-Type`` header of the final answer (informative only).
        chunks: The body, at most ``max_upload_bytes`` of it counted by the caller, within the time budget.
    """

    name: str
    content_type: Optional[str]
    chunks: Iterable[bytes]


@contextlib.contextmanager
def download(session: requests.Session, url: str, limits: AttachmentLimits) -> Iterator[Download]:
    """Open ``url`` through its checked redirects and yield its body; the response is closed afterwards.

    Every hop must be ``https://`` on port 443 to a host in ``url_allowed_hosts`` whose DNS answers are all
    public addresses (no loopback, private, link-local incl. 169.254.169.254, CGNAT, multicast, unspecified,
    IPv6 ULA/link-local or IPv4-mapped forms). The whole fetch, body included, must finish within
    ``url_timeout_s`` seconds.

    Args:
        session: The HTTP session (normally :func:`make_guarded_session`'s).
        url: The file URL. It is never logged in full (Telegram URLs contain the bot token).
        limits: URL allow-list, redirect count, time budget and byte cap.

    Yields:
        The :class:`Download`; reading ``chunks`` may raise ``fetch_failed`` (time budget, broken body).

    Raises:
        AttachmentError: ``forbidden_url``, ``fetch_failed`` (DNS, connection, timeout, HTTP status, too
            many redirects), ``too_large`` (declared ``Content-Length`` over ``max_upload_bytes``).
    """
    deadline = time.monotonic() + limits.url_timeout_s
    current, host, port = checked_url(url, limits)
    name = urlsplit(current).path.rsplit("/", 1)[-1]
    for _hop in range(limits.url_max_redirects + 1):
        resolve_public(host, port)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AttachmentError("fetch_failed", f"timed out after {limits.url_timeout_s:g} s")
        try:
            response = session.get(
                current, stream=True, allow_redirects=False, timeout=(remaining, remaining)
            )
        except AttachmentError:
            raise
        except requests.Timeout:
            raise AttachmentError("fetch_failed", f"{redact(current)} timed out") from None
        except (requests.RequestException, OSError, ValueError) as error:
            raise AttachmentError("fetch_failed", f"{redact(current)}: {type(error).__name__}") from None
        try:
            if response.status_code in _REDIRECT_STATUSES:
                location = response.headers.get("Location")
                if not location:
                    raise AttachmentError("fetch_failed", f"redirect without Location from {redact(current)}")
                current, host, port = checked_url(urljoin(current, location), limits)
                continue
            if response.status_code != 200:
                raise AttachmentError(
                    "fetch_failed", f"{redact(current)} answered HTTP {response.status_code}"
                )
            _check_declared_length(response, limits)
            yield Download(name, response.headers.get("Content-Type"), _body(response, limits, deadline))
            return
        finally:
            response.close()
    raise AttachmentError("fetch_failed", f"more than {limits.url_max_redirects} redirects")


def _check_declared_length(response: requests.Response, limits: AttachmentLimits) -> None:
    """Refuse a ``Content-Length`` over ``max_upload_bytes`` before any byte of the body is read."""
    cap = limits.max_upload_bytes
    declared = response.headers.get("Content-Length")
    if declared is None:
        return
    try:
        declared_size = int(declared)
    except ValueError:
        return
    if declared_size > cap:
        raise AttachmentError(
            "too_large", f"Content-Length {declared_size} bytes > {cap} bytes", limits=limits
        )


def _body(response: requests.Response, limits: AttachmentLimits, deadline: float) -> Iterator[bytes]:
    """The body in 64 KiB chunks; ``fetch_failed`` past the deadline or when the transfer breaks."""
    try:
        for chunk in response.iter_content(CHUNK_BYTES):
            if time.monotonic() > deadline:
                raise AttachmentError("fetch_failed", f"body not received within {limits.url_timeout_s:g} s")
            yield chunk
    except requests.RequestException as error:
        raise AttachmentError("fetch_failed", f"body: {type(error).__name__}") from None
