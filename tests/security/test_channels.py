"""The channels' doors, tried as an attacker would (issue 12): each test here fails on the code before it.

- Conversation ids: a REST caller cannot name another channel's or another visitor's conversation; only ids
  the server signed (or any id, as ``api:<id>``, with the bearer token) are accepted, and nothing is written
  for a refused one.
- The stock ``rest:`` channel is gone from a server built from credentials.yml by Rasa's own factory.
- Customer tokens: forged, expired and ``alg: none`` tokens are ignored; a valid one marks the customer.
- Telegram refuses to start without its secret token; Messenger refuses unsigned deliveries.
- Every message is rate-limited per sender and per client address, the address before the body is read.
- Random bodies, headers, content types and metadata always get a 2xx/4xx JSON answer, never a traceback.

Channels run in real Sanic servers on 127.0.0.1 with a fake bot (no trained model).
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Dict, Iterator, List

import aiohttp
import jwt
import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rasa.shared.exceptions import RasaException

from channels.rest.customer import issue_token
from channels.rest.senders import WebSenderIds
from media import AttachmentStore
from tests.serving import serving
from tests.unit.channels import Recorder, make_jpeg, serve_channel
from tests.unit.channels.rest import (
    API_TOKEN,
    CUSTOMER_SECRET,
    SENDER_SECRET,
    TEST_ENVIRON,
    FakeBot,
    Served,
    error_of,
    make_channel,
    serve,
)

ROOT = Path(__file__).resolve().parents[2]
ENVIRON = {**TEST_ENVIRON, "CUSTOMER_TOKEN_SECRET": CUSTOMER_SECRET}


def files_in(store: AttachmentStore) -> List[Path]:
    return [p for p in store.root.rglob("*") if p.is_file() and ".tmp" not in p.parts]


@pytest.fixture
def store(tmp_path: Path) -> AttachmentStore:
    return AttachmentStore(tmp_path / "uploads")


@pytest.fixture
async def served(store: AttachmentStore) -> AsyncIterator[Served]:
    async with serve(make_channel(store, environ=dict(ENVIRON))) as running:
        yield running


def _photo() -> Dict[str, str]:
    return {"type": "image", "data": base64.b64encode(make_jpeg(shade=3)).decode()}


# --------------------------------------------------------------------------------------------------------
# Conversation ids
# --------------------------------------------------------------------------------------------------------
def _forged_ids() -> List[str]:
    real = WebSenderIds(SENDER_SECRET).issue()
    conversation, signature = real.split(".")
    return [
        "telegram:123456789",  # a Telegram chat
        "messenger:6543210987654321",  # a Messenger user
        conversation,  # a web id without its signature
        f"{conversation}.{'A' * 43}",  # a made-up signature
        f"{conversation[:-1]}{'1' if conversation[-1] == '0' else '0'}.{signature}",  # another visitor's id
        WebSenderIds("a-key-that-is-not-the-servers-0123456789").issue(),  # signed with another key
        "api:alice",  # an API conversation, without the token
        "alice",
    ]


@pytest.mark.parametrize("sender", _forged_ids())
async def test_a_rest_sender_the_server_did_not_sign_is_refused_and_nothing_is_written(
    served: Served, store: AttachmentStore, sender: str
) -> None:
    message = {"sender": sender, "message": "yes", "attachments": [_photo()]}
    resp = await served.post_json(message, auth=False)
    assert resp.status == 403
    assert (await error_of(resp))["code"] == "unknown_sender"
    assert served.bot.messages == [] and files_in(store) == []


async def test_a_signed_id_works_and_other_visitors_ids_cannot_be_guessed(served: Served) -> None:
    alice, bob = await served.new_sender(), await served.new_sender()
    assert alice != bob
    for sender in (alice, bob):
        assert (await served.post_json({"sender": sender, "message": "hi"}, auth=False)).status == 200
    assert [m.sender_id for m in served.bot.messages] == [alice.split(".")[0], bob.split(".")[0]]
    assert all(m.sender_id.startswith("web:") and "." not in m.sender_id for m in served.bot.messages)
    # 128 random bits per id, and a signature that changes with every bit: guessing is hopeless, and a
    # near miss of Alice's id is refused.
    random_part = alice.split(".")[0][len("web:"):]
    assert len(random_part) == 32 and int(random_part, 16) >= 0
    signature = alice.split(".")[1]
    for index in range(len(random_part)):
        flipped = random_part[:index] + ("1" if random_part[index] == "0" else "0") + random_part[index + 1:]
        resp = await served.post_json({"sender": f"web:{flipped}.{signature}", "message": "x"}, auth=False)
        assert resp.status == 403
    assert len(served.bot.messages) == 2


async def test_with_the_bearer_token_any_id_is_an_api_conversation(served: Served) -> None:
    resp = await served.post_json({"sender": "telegram:123456789", "message": "yes"})
    assert resp.status == 200
    assert served.bot.last.sender_id == "api:telegram:123456789"  # never the Telegram chat's conversation
    assert (await resp.json())[0]["recipient_id"] == "telegram:123456789"  # as the caller named it
    resp = await served.post_json({"sender": "x", "message": "y"}, {"Authorization": "Bearer wrong"})
    assert resp.status == 401


# --------------------------------------------------------------------------------------------------------
# The stock REST channel
# --------------------------------------------------------------------------------------------------------
async def test_the_stock_rest_channel_is_not_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server built by Rasa's own factory from the repository's credentials.yml, as `rasa run` builds it."""
    from rasa.core.run import configure_app, create_http_input_channels
    from sanic import Sanic

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("ATTACHMENT_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("SENDER_ID_SECRET", SENDER_SECRET)
    Sanic.test_mode = True  # several apps named "rasa_server" per process (see tests.serving)
    channels = create_http_input_channels(None, "credentials.yml")
    assert "rest" not in {channel.name() for channel in channels}
    app = configure_app(channels, enable_api=False)
    async with serving(app) as url, aiohttp.ClientSession() as http:
        base = f"{url}/webhooks"
        payload = {"sender": "telegram:123", "message": "yes", "metadata": {"attachments": []}}
        async with http.post(f"{base}/rest/webhook", json=payload) as resp:
            assert resp.status == 404
        async with http.get(f"{base}/rest/") as resp:
            assert resp.status == 404
        async with http.get(f"{base}/multimodal/") as resp:
            assert resp.status == 200


def test_rasa_shell_brings_its_own_channel_without_the_rest_entry() -> None:
    """`rasa shell` (make run) names the cmdline channel, which Rasa builds whatever credentials.yml says."""
    from rasa.core.run import create_http_input_channels

    [channel] = create_http_input_channels("cmdline", str(ROOT / "credentials.yml"))
    assert channel.name() == "cmdline"


# --------------------------------------------------------------------------------------------------------
# Customer tokens
# --------------------------------------------------------------------------------------------------------
def _unsigned(claims: Dict[str, Any]) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode({"sub": "1001", "exp": 4102444800}, "not-the-shops-key-0123456789abcdef"),
        issue_token(1001, CUSTOMER_SECRET, lifetime_s=60, now=1_000_000_000),  # expired long ago
        _unsigned({"sub": "1001", "exp": 4102444800}),
    ],
    ids=["forged", "expired", "alg-none"],
)
async def test_forged_expired_and_unsigned_customer_tokens_are_ignored(served: Served, token: str) -> None:
    sender = await served.new_sender()
    message = {"sender": sender, "message": "where is my order?", "metadata": {"customer": {"id": 1001}}}
    resp = await served.post_json(message, {"X-Customer-Token": token}, auth=False)
    assert resp.status == 200
    assert served.bot.last.metadata is None  # anonymous; the client's own "customer" was dropped too


async def test_a_valid_customer_token_sets_metadata_customer(served: Served) -> None:
    sender = await served.new_sender()
    token = issue_token(1001, CUSTOMER_SECRET)
    headers = {"X-Customer-Token": token}
    resp = await served.post_json({"sender": sender, "message": "hi"}, headers, auth=False)
    assert resp.status == 200
    assert served.bot.last.metadata == {"customer": {"id": 1001}}


# --------------------------------------------------------------------------------------------------------
# Telegram and Messenger
# --------------------------------------------------------------------------------------------------------
def test_telegram_without_its_secret_token_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.core.run import _create_single_channel

    for variable in ("TELEGRAM_SECRET_TOKEN", "TELEGRAM_WEBHOOK_URL", "TELEGRAM_VERIFY", "TELEGRAM_API_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("TELEGRAM_ACCESS_TOKEN", "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw")
    with pytest.raises(RasaException, match="TELEGRAM_SECRET_TOKEN"):
        _create_single_channel("channels.telegram.MultimodalTelegramInput", None)


async def test_messenger_refuses_unsigned_and_wrongly_signed_deliveries(store: AttachmentStore) -> None:
    from channels.messenger import SIGNATURE_HEADER, MultimodalMessengerInput

    channel = MultimodalMessengerInput("verify-token", "app-secret-0123456789", "page-token", store=store)
    recorder = Recorder()
    running = await serve_channel(channel, recorder)
    body = json.dumps({"object": "page", "entry": [{"id": "P", "time": 1, "messaging": [
        {"sender": {"id": "PSID_1"}, "recipient": {"id": "P"}, "timestamp": 1,
         "message": {"mid": "m1", "text": "cancel my order"}}]}]}).encode()
    try:
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {SIGNATURE_HEADER: "sha256=" + "0" * 64}):
                async with http.post(f"{running.url}/webhook", data=body, headers=headers) as resp:
                    assert resp.status == 403
    finally:
        await running.stop()
    assert recorder.messages == []


# --------------------------------------------------------------------------------------------------------
# Message rate limits
# --------------------------------------------------------------------------------------------------------
async def test_every_message_is_limited_per_sender(store: AttachmentStore) -> None:
    channel = make_channel(store, environ=dict(ENVIRON), message_rate_per_minute=6, message_burst=3)
    async with serve(channel) as served:
        sender = await served.new_sender()
        statuses = [
                (await served.post_json({"sender": sender, "message": f"m{i}"}, auth=False)).status
            for i in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        resp = await served.post_json({"sender": sender, "message": "again"}, auth=False)
        assert resp.status == 429 and 1 <= int(resp.headers["Retry-After"]) <= 10
        assert (await error_of(resp))["code"] == "rate_limited"
        assert len(served.bot.messages) == 3


async def test_every_message_is_limited_per_address_whatever_the_sender(store: AttachmentStore) -> None:
    channel = make_channel(store, environ=dict(ENVIRON), address_message_rate_per_minute=2,
                           address_message_burst=4)
    async with serve(channel) as served:
        statuses = [
            (await served.post_json({"sender": f"s{i}", "message": "hi"})).status for i in range(5)
        ]
        assert statuses == [200, 200, 200, 200, 429]
        assert len(served.bot.messages) == 4


async def test_an_over_limit_address_is_refused_before_its_body_is_read(store: AttachmentStore) -> None:
    channel = make_channel(store, environ=dict(ENVIRON), address_message_rate_per_minute=1,
                           address_message_burst=1)
    async with serve(channel) as served:
        assert (await served.post_json({"sender": "first", "message": "hi"})).status == 200
        length = 8 * 1024 * 1024
        head = (
            "POST /webhooks/multimodal/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {API_TOKEN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n"
        ).encode()
        # Only the headers: the answer must come without a single byte of the body.
        answer = await asyncio.wait_for(served.raw(head), timeout=10)
        assert answer.startswith(b"HTTP/1.1 429"), answer[:200]
        assert b"Retry-After" in answer and b'"rate_limited"' in answer

        # A large body sent slowly: answered while almost all of it is still unsent.
        async def slow_body() -> AsyncIterator[bytes]:
            for _ in range(length // 65536):
                await asyncio.sleep(0.01)
                yield b" " * 65536

        answer = await asyncio.wait_for(served.raw(head, slow_body()), timeout=60)
        assert answer.startswith(b"HTTP/1.1 429"), answer[:200]
        assert served.raw_sent < length // 4
        assert len(served.bot.messages) == 1 and files_in(store) == []


# --------------------------------------------------------------------------------------------------------
# Anything at all: always a 2xx/4xx JSON answer, never a 5xx or a traceback
# --------------------------------------------------------------------------------------------------------
class _Tracebacks(logging.Handler):
    """Collects log records that carry an exception (a traceback in the server log)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)


@pytest.fixture(scope="module")
def threaded_channel(tmp_path_factory) -> Iterator[Dict[str, Any]]:
    """The REST channel in a real server on its own event loop thread, for synchronous hypothesis tests."""
    store = AttachmentStore(tmp_path_factory.mktemp("fuzz") / "uploads")
    channel = make_channel(store, environ=dict(ENVIRON))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    running = asyncio.run_coroutine_threadsafe(serve_channel(channel, FakeBot()), loop).result(30)
    tracebacks = _Tracebacks()
    logging.getLogger().addHandler(tracebacks)
    http = requests.Session()
    http.trust_env = False
    signed = http.post(f"{running.url}/session", timeout=10).json()["sender"]
    try:
        yield {"url": f"{running.url}/webhook", "http": http, "tracebacks": tracebacks, "signed": signed}
    finally:
        logging.getLogger().removeHandler(tracebacks)
        http.close()
        asyncio.run_coroutine_threadsafe(running.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


_SAFE_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
#: A header value as an HTTP client sends it: printable ASCII without leading whitespace (optional whitespace
#: before a value is not part of it, and the client library refuses to send it).
_HEADER_VALUE = _SAFE_TEXT.map(str.lstrip)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_METADATA = st.one_of(
    _JSON,
    st.fixed_dictionaries({}, optional={
        "customer": _JSON, "attachments": _JSON, "attachment_problems": _JSON, "transcript": _JSON,
        "image_labels": _JSON, "locale": _JSON,
    }),
)
_ATTACHMENT = st.one_of(
    _JSON,
    st.fixed_dictionaries({}, optional={
        "type": st.sampled_from(["image", "audio", "video", 3]),
        "data": st.one_of(st.text(max_size=40), _JSON),
        "id": st.one_of(st.text(max_size=70), st.just("ab" * 32), _JSON), "url": _SAFE_TEXT,
        "name": st.one_of(st.text(max_size=40), _JSON), "mime_type": _SAFE_TEXT,
    }),
)


@st.composite
def _requests(draw) -> Dict[str, Any]:
    """A request as a client might send it: a JSON object, a form, or any bytes, with random headers."""
    signed = draw(st.just("<signed>"))
    sender = draw(st.one_of(
        st.just(signed), st.just(signed), st.just(signed), _SAFE_TEXT, _JSON,
        st.sampled_from(["telegram:1", "api:x", "web:" + "0" * 32, None]),
    ))
    payload = draw(st.fixed_dictionaries({"sender": st.just(sender)}, optional={
        "message": st.one_of(st.text(max_size=200), _JSON),
        "metadata": _METADATA,
        "attachments": st.one_of(st.lists(_ATTACHMENT, max_size=12), _JSON),
    }))
    kind = draw(st.sampled_from(["json", "json", "json", "form", "form", "urlencoded", "bytes"]))
    headers: Dict[str, str] = {}
    auth = draw(st.sampled_from(["none", "none", "right", "right", "wrong", "random"]))
    if auth == "right":
        headers["Authorization"] = f"Bearer {API_TOKEN}"
    elif auth == "wrong":
        headers["Authorization"] = "Bearer wrong"
    elif auth == "random":
        headers["Authorization"] = draw(_HEADER_VALUE)
    if draw(st.booleans()):
        headers["X-Customer-Token"] = draw(st.one_of(
            _HEADER_VALUE, st.just(issue_token(5, CUSTOMER_SECRET)), st.just(_unsigned({"sub": "5", "exp": 1})),
        ))
    content_types = {
        "json": "application/json",
        "bytes": None,
        "form": None,
        "urlencoded": "application/x-www-form-urlencoded",
    }
    content_type = draw(st.one_of(
        st.just(content_types[kind]), st.just(content_types[kind]), st.just(content_types[kind]), _HEADER_VALUE,
        st.sampled_from([
            "text/plain", "multipart/form-data", "multipart/form-data; boundary=",
            "application/json; charset=latin-1",
        ]),
    ))
    if content_type is not None:
        headers["Content-Type"] = content_type
    return {"payload": payload, "kind": kind, "headers": headers, "raw": draw(st.binary(max_size=300))}


def _send(fuzz: Dict[str, Any], request: Dict[str, Any]) -> requests.Response:
    payload = {
        key: (fuzz["signed"] if value == "<signed>" else value) for key, value in request["payload"].items()
    }
    kwargs: Dict[str, Any] = {"headers": dict(request["headers"]), "timeout": 30}
    if request["kind"] == "json":
        kwargs["data"] = json.dumps(payload).encode()
    elif request["kind"] == "bytes":
        kwargs["data"] = request["raw"]
    elif request["kind"] == "urlencoded":
        kwargs["data"] = {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()
                          if k != "attachments"}
    else:
        kwargs.pop("headers")
        kwargs["headers"] = {k: v for k, v in request["headers"].items() if k != "Content-Type"}
        kwargs["data"] = {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()
                          if k != "attachments"}
        kwargs["files"] = [("files", (f"f{uuid.uuid4().hex[:4]}.jpg", request["raw"], "image/jpeg"))]
    return fuzz["http"].post(fuzz["url"], **kwargs)


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(request=_requests())
def test_random_requests_always_get_a_json_2xx_or_4xx_and_no_traceback(
    threaded_channel: Dict[str, Any], request: Dict[str, Any]
) -> None:
    before = len(threaded_channel["tracebacks"].records)
    response = _send(threaded_channel, request)
    event(f"HTTP {response.status_code}")
    assert 200 <= response.status_code < 500, (response.status_code, response.text[:300])
    body = response.json()  # always JSON
    if response.status_code >= 400:
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    else:
        assert isinstance(body, list) and all(isinstance(m, dict) for m in body)
    assert "Traceback" not in response.text
    new = threaded_channel["tracebacks"].records[before:]
    assert new == [], [r.getMessage() for r in new]
