"""Tests for `media.fetch` and `media.urls`: the guarded downloader behind `AttachmentStore.fetch_url`.

Nothing touches the network: DNS is faked through `socket.getaddrinfo`, sockets refuse to connect, and the
HTTP session gets a fake transport adapter.
"""
from __future__ import annotations

import hashlib
import io
import logging
import socket
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
import requests

from media import AttachmentError, AttachmentLimits, AttachmentRef, AttachmentStore
from media import fetch
from media.limits import MiB
from tests.unit.http_responses import Route, answer
from tests.unit.media.samples import expect_error, make_image, stored_files

PUBLIC_IP = "157.240.1.35"


# ------------------------------------------------------------------------------------------------------------
# fetch_url: everything is refused before any connection; a fake transport for the positive paths
# ------------------------------------------------------------------------------------------------------------


class FakeAdapter(requests.adapters.BaseAdapter):
    """Answers from a table of URL -> (status, headers, body) and records every request it gets."""

    def __init__(self, routes: Optional[Dict[str, Route]] = None) -> None:
        super().__init__()
        self.routes = routes or {}
        self.calls: List[str] = []

    def send(self, request, **kwargs):
        self.calls.append(request.url)
        route = self.routes.get(request.url)
        if route is None:
            pytest.fail(f"unexpected request to {request.url}")
        return answer(request, route)

    def close(self) -> None:
        pass


class FakeDNS:
    def __init__(self, table: Dict[str, List[str]]) -> None:
        self.table = table
        self.calls: List[str] = []

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out = []
        for ip in self.table[host]:
            if ":" in ip:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)))
        return out


@pytest.fixture
def no_sockets(monkeypatch):
    """Real sockets may not connect anywhere during these tests."""

    def refuse(*args, **kwargs):
        raise AssertionError("a real network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(fetch.urllib3_connection, "create_connection", refuse)


@pytest.fixture
def dns(monkeypatch, no_sockets) -> FakeDNS:
    fake = FakeDNS({
        "scontent.xx.fbcdn.net": [PUBLIC_IP],
        "cdn.fbsbx.com": ["2a03:2880:f12d:83:face:b00c:0:25de"],
        "api.telegram.org": ["149.154.167.220"],
    })
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture
def http(tmp_path: Path, dns: FakeDNS) -> Tuple[AttachmentStore, FakeAdapter]:
    adapter = FakeAdapter()
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return AttachmentStore(tmp_path / "uploads", session=session), adapter


@pytest.mark.parametrize(
    "url",
    [
        "http://api.telegram.org/file/bot1:SECRET/photo.jpg",
        "file:///etc/passwd",
        "ftp://api.telegram.org/photo.jpg",
        "data:image/png;base64,iVBORw0KGgo=",
        "gopher://api.telegram.org/_",
        "//api.telegram.org/photo.jpg",
        "https://127.0.0.1/x.jpg",
        "https://localhost/x.jpg",
        "https://localhost./x.jpg",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.7/x.jpg",
        "https://[::1]/x.jpg",
        "https://[::ffff:127.0.0.1]/x.jpg",
        "https://[fd00::1]/x.jpg",
        "https://2130706433/x.jpg",
        "https://evil.example/x.jpg",
        "https://api.telegram.org.evil.example/x.jpg",
        "https://fbcdn.net/x.jpg",
        "https://user:pass@api.telegram.org/x.jpg",
        "https://api.telegram.org@evil.example/x.jpg",
        "https://api.telegram.org\\@evil.example/x.jpg",
        "https://api.telegram.org:8443/x.jpg",
        "https://api.telegram.org:99999/x.jpg",
        "https://api.telegram.org/a b.jpg",
        "https://api.telegram.org/x\r\nHost: evil",
        "",
        "https://" + "a" * 3000 + ".fbcdn.net/x",
    ],
)
def test_forbidden_urls_are_refused_before_any_connection(http, dns: FakeDNS, url: str, caplog):
    store, adapter = http
    error = expect_error("forbidden_url", store.fetch_url, url)
    assert "attach the photo or voice note directly" in error.user_message
    assert adapter.calls == [] and dns.calls == []
    assert stored_files(store) == []
    assert "SECRET" not in caplog.text


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1", "169.254.169.254",
     "100.64.0.1", "0.0.0.0", "224.0.0.251", "255.255.255.255", "::1", "::", "fd12:3456::1", "fe80::1",
     "ff02::1", "::ffff:10.0.0.1", "::ffff:8.8.8.8", "64:ff9b::a00:1", "2002:a00:1::1", "fec0::1"],
)
def test_allowed_host_resolving_to_a_private_address_is_refused(http, dns: FakeDNS, address: str):
    store, adapter = http
    dns.table["scontent.xx.fbcdn.net"] = [address]
    expect_error("forbidden_url", store.fetch_url, "https://scontent.xx.fbcdn.net/v/photo.jpg")
    assert adapter.calls == []


def test_one_private_answer_among_public_ones_is_refused(http, dns: FakeDNS):
    store, adapter = http
    dns.table["scontent.xx.fbcdn.net"] = [PUBLIC_IP, "10.0.0.1"]
    expect_error("forbidden_url", store.fetch_url, "https://scontent.xx.fbcdn.net/v/photo.jpg")
    assert adapter.calls == []


def test_unresolvable_host_is_fetch_failed(http, dns: FakeDNS):
    store, adapter = http
    expect_error("fetch_failed", store.fetch_url, "https://nowhere.fbcdn.net/photo.jpg")
    assert adapter.calls == []


def test_fetch_stores_the_file(http, dns: FakeDNS, caplog):
    store, adapter = http
    data = make_image("JPEG")
    url = "https://api.telegram.org/file/bot123:SECRET/photos/file_7.jpg"
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
    adapter.routes[url] = (200, headers, data)
    caplog.set_level(logging.DEBUG, logger="media")
    ref = store.fetch_url(url)
    assert (ref.type, ref.mime_type, ref.size, ref.name) == ("image", "image/jpeg", len(data), "file_7.jpg")
    assert ref.url is None and ref.id == hashlib.sha256(data).hexdigest()
    assert store.read(ref) == data
    assert adapter.calls == [url] and dns.calls == ["api.telegram.org"]
    assert "SECRET" not in caplog.text


def test_read_of_a_url_reference_fetches_it(http):
    store, adapter = http
    data = make_image("PNG")
    url = "https://scontent.xx.fbcdn.net/v/t1/photo.png?oh=abc"
    adapter.routes[url] = (200, {}, data)
    assert store.read(AttachmentRef(type="image", url=url)) == data
    adapter.routes[url] = (200, {}, make_image("GIF"))
    expect_error("invalid_reference", store.read, AttachmentRef(type="audio", url=url))


def test_redirect_to_allowed_public_host_is_followed(http, dns: FakeDNS):
    store, adapter = http
    data = make_image("PNG")
    start = "https://api.telegram.org/file/photo.png"
    adapter.routes[start] = (302, {"Location": "https://cdn.fbsbx.com/v/photo.png"}, b"")
    adapter.routes["https://cdn.fbsbx.com/v/photo.png"] = (200, {}, data)
    assert store.fetch_url(start).id == hashlib.sha256(data).hexdigest()
    assert adapter.calls == [start, "https://cdn.fbsbx.com/v/photo.png"]
    assert dns.calls == ["api.telegram.org", "cdn.fbsbx.com"]


@pytest.mark.parametrize(
    "location",
    [
        "http://api.telegram.org/file/photo.png",
        "file:///etc/passwd",
        "ftp://api.telegram.org/photo.png",
        "https://169.254.169.254/latest/meta-data/iam/",
        "https://127.0.0.1/admin",
        "https://[::1]/admin",
        "https://localhost/admin",
        "https://evil.example/photo.png",
        "https://internal.fbcdn.net/photo.png",  # allowed name, private address
        "//evil.example/photo.png",
    ],
)
def test_redirect_to_forbidden_target_is_refused(http, dns: FakeDNS, location: str):
    store, adapter = http
    dns.table["internal.fbcdn.net"] = ["10.20.30.40"]
    start = "https://api.telegram.org/file/photo.png"
    adapter.routes[start] = (301, {"Location": location}, b"")
    expect_error("forbidden_url", store.fetch_url, start)
    assert adapter.calls == [start]


def test_more_than_three_redirects_fail(http):
    store, adapter = http
    for hop in range(5):
        adapter.routes[f"https://api.telegram.org/hop{hop}"] = (
            307, {"Location": f"/hop{hop + 1}"}, b"",
        )
    expect_error("fetch_failed", store.fetch_url, "https://api.telegram.org/hop0")
    assert len(adapter.calls) == 4  # the URL and three redirects


class ReadCounter(io.RawIOBase):
    """An endless body that counts what was read from it (optionally slowly)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.read_bytes = 0
        self.delay_s = delay_s

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.delay_s:
            time.sleep(self.delay_s)
        buffer[:] = bytes(len(buffer))
        self.read_bytes += len(buffer)
        return len(buffer)


def test_declared_content_length_over_cap_is_refused_unread(http):
    store, adapter = http
    body = ReadCounter()
    url = "https://api.telegram.org/file/voice.oga"
    adapter.routes[url] = (200, {"Content-Length": str(1024 * MiB)}, body)
    expect_error("too_large", store.fetch_url, url)
    assert body.read_bytes == 0 and stored_files(store) == []


def test_endless_body_is_cut_at_the_cap(http):
    store, adapter = http
    body = ReadCounter()
    url = "https://api.telegram.org/file/voice.oga"
    adapter.routes[url] = (200, {}, body)
    expect_error("too_large", store.fetch_url, url)
    assert body.read_bytes <= store.limits.max_upload_bytes + 2 * 64 * 1024
    assert stored_files(store) == []


def test_slow_body_hits_the_time_budget(tmp_path: Path, dns):
    adapter = FakeAdapter()
    session = requests.Session()
    session.mount("https://", adapter)
    store = AttachmentStore(tmp_path, AttachmentLimits(url_timeout_s=0.3), session=session)
    url = "https://api.telegram.org/file/voice.oga"
    adapter.routes[url] = (200, {}, ReadCounter(delay_s=0.05))
    started = time.perf_counter()
    expect_error("fetch_failed", store.fetch_url, url)
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    "route",
    [(404, {}, b"not found"), (500, {}, b""), (302, {}, b""), requests.Timeout("slow"),
     requests.ConnectionError("reset")],
)
def test_http_failures_are_fetch_failed(http, route):
    store, adapter = http
    url = "https://api.telegram.org/file/photo.jpg"
    adapter.routes[url] = route
    error = expect_error("fetch_failed", store.fetch_url, url)
    assert "couldn't download" in error.user_message


def test_fetched_bad_content_is_rejected_like_an_upload(http):
    store, adapter = http
    url = "https://api.telegram.org/file/doc.pdf"
    adapter.routes[url] = (200, {"Content-Type": "image/jpeg"}, b"%PDF-1.4 not an image")
    expect_error("unsupported_type", store.fetch_url, url)


# ---- the default session's own defences -------------------------------------------------------------------
def test_guarded_session_refuses_plain_http_without_connecting(no_sockets):
    session = fetch.make_guarded_session()
    assert session.trust_env is False
    with pytest.raises(AttachmentError) as info:
        session.get("http://api.telegram.org/file/x")
    assert info.value.code == "forbidden_url"


def test_guarded_connection_checks_the_address_it_connects_to(monkeypatch, no_sockets):
    # DNS rebinding: the name passed the first check, then resolves to a private address at connect time.
    monkeypatch.setattr(socket, "getaddrinfo", FakeDNS({"api.telegram.org": ["169.254.169.254"]}))
    connection = fetch.PublicOnlyHTTPSConnection("api.telegram.org", 443)
    with pytest.raises(AttachmentError) as info:
        connection._new_conn()
    assert info.value.code == "forbidden_url"

    connected: List[Tuple[str, int]] = []

    def fake_create_connection(address, *args, **kwargs):
        connected.append(address)
        return object()

    monkeypatch.setattr(socket, "getaddrinfo", FakeDNS({"api.telegram.org": ["149.154.167.220"]}))
    monkeypatch.setattr(fetch.urllib3_connection, "create_connection", fake_create_connection)
    connection._new_conn()
    assert connected == [("149.154.167.220", 443)]


def test_guarded_session_refuses_private_address_before_tls(monkeypatch, no_sockets):
    monkeypatch.setattr(socket, "getaddrinfo", FakeDNS({"api.telegram.org": ["10.0.0.1"]}))
    session = fetch.make_guarded_session()
    with pytest.raises(AttachmentError) as info:
        session.get("https://api.telegram.org/file/x", timeout=1)
    assert info.value.code == "forbidden_url"
