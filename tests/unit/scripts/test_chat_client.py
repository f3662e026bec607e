"""The terminal client (scripts/chat_client.py): command parsing, rendering, and real HTTP calls to the
multimodal channel served by Sanic with a fake bot (a conversation id from the server, or one of the caller's
choosing with the API token), plus the failures a user meets (server down, missing file, 4xx answers, a
proxy's HTML error page, a server restarted with a new key)."""
from __future__ import annotations

import asyncio
import http.server
import socket
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from channels.rest import ChannelSettings, MultimodalRestInput
from media import AttachmentStore
from tests.unit.channels import make_jpeg
from channels.rest.senders import WebSenderIds
from tests.unit.channels.rest import SENDER_SECRET, serve, sha256

import chat_client as cc  # scripts/ is on sys.path (tests/unit/scripts/conftest.py)

BUTTONS = [{"title": "Yes please", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]


# --------------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "line, expected",
    [
        ("how much are bananas", cc.Command("text", text="how much are bananas")),
        ("   padded  ", cc.Command("text", text="padded")),
        ("", cc.Command("empty")),
        ("   ", cc.Command("empty")),
        ("/help", cc.Command("help")),
        ("/HELP", cc.Command("help")),
        ("/quit", cc.Command("quit")),
        ("/exit", cc.Command("quit")),
        ("/image photo.jpg", cc.Command("image", path="photo.jpg")),
        ("/image photo.jpg are these ripe?", cc.Command("image", path="photo.jpg", text="are these ripe?")),
        (
            '/image "my photos/banana 1.jpg" ripe?',
            cc.Command("image", path="my photos/banana 1.jpg", text="ripe?"),
        ),
        ("/image shot#2.jpg", cc.Command("image", path="shot#2.jpg")),
        ("/image", cc.Command("error", error="Usage: /image PATH [caption]")),
        ("/voice note.ogg", cc.Command("voice", path="note.ogg")),
        ("/voice my voice note.ogg", cc.Command("voice", path="my voice note.ogg")),
        ("/voice", cc.Command("error", error="Usage: /voice PATH")),
        ("/restart", cc.Command("text", text="/restart")),
        ('/greet{"name": "x"}', cc.Command("text", text='/greet{"name": "x"}')),
        ("2", cc.Command("text", text="2")),  # no buttons on offer: a number is just text
    ],
)
def test_parse_command(line: str, expected: Any) -> None:
    assert cc.parse_command(line) == expected


def test_numbers_choose_buttons() -> None:
    assert cc.parse_command("1", BUTTONS) == cc.Command("text", text="/affirm", shown="Yes please")
    assert cc.parse_command(" 2 ", BUTTONS) == cc.Command("text", text="/deny", shown="No")
    assert cc.parse_command("3", BUTTONS).kind == "error"
    assert cc.parse_command("0", BUTTONS).kind == "error"
    assert cc.parse_command("yes", BUTTONS) == cc.Command("text", text="yes")
    assert cc.parse_command("1", [{"title": "Only a title"}]) == cc.Command(
        "text", text="Only a title", shown="Only a title"
    )


def test_render_numbers_buttons_and_resolves_image_urls() -> None:
    lines, buttons = cc.render(
        [
            {"recipient_id": "a", "text": "Bananas are 0.25 per piece.", "buttons": BUTTONS},
            {"recipient_id": "a", "image": "/webhooks/multimodal/files/" + "ab" * 32},
            {"recipient_id": "a", "image": "https://cdn.example/b.jpg"},
            {"recipient_id": "a", "custom": {"text": "custom text"}},
            {"recipient_id": "a", "custom": {"sku": 1}},
            {"recipient_id": "a", "attachment": "https://x.example/a.pdf"},
        ],
        "http://127.0.0.1:5005/webhooks/multimodal/webhook",
    )
    assert lines == [
        "Bananas are 0.25 per piece.",
        "  1) Yes please",
        "  2) No",
        "[image] http://127.0.0.1:5005/webhooks/multimodal/files/" + "ab" * 32,
        "[image] https://cdn.example/b.jpg",
        "custom text",
        '[data] {"sku": 1}',
        "[attachment] https://x.example/a.pdf",
    ]
    assert buttons == BUTTONS


# --------------------------------------------------------------------------------------------------------
# Against the real channel (fake bot)
# --------------------------------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> AttachmentStore:
    return AttachmentStore(tmp_path / "uploads")


def channel(store: AttachmentStore, environ: Dict[str, str] = None) -> MultimodalRestInput:
    environ = {"SENDER_ID_SECRET": SENDER_SECRET} if environ is None else environ
    return MultimodalRestInput(ChannelSettings(upload_rate_per_minute=0), store=store, environ=environ)


async def test_text_photo_and_buttons_through_the_channel(store: AttachmentStore, tmp_path: Path) -> None:
    async with serve(channel(store)) as served:
        client = cc.ChatClient(served.base + "webhook")
        out: List[Tuple[str, str]] = []
        session = cc.ChatSession(client, lambda text, kind: out.append((kind, text)))

        assert await asyncio.to_thread(session.handle, "how much are bananas")
        assert served.bot.last.text == "how much are bananas"
        # A conversation id issued by the server (POST .../session), as the web chat gets it.
        assert client.sender.startswith("web:") and served.bot.last.sender_id == client.sender.split(".")[0]
        assert ("bot", "  1) Yes") in out and ("bot", "[image] https://shop.example/bananas.jpg") in out

        out.clear()
        assert await asyncio.to_thread(session.handle, "1")
        assert served.bot.last.text == "/affirm"
        assert ("info", "(you chose: Yes)") in out

        photo = make_jpeg(shade=42)
        (tmp_path / "banana photo.jpg").write_bytes(photo)
        assert await asyncio.to_thread(session.handle, f'/image "{tmp_path / "banana photo.jpg"}" ripe?')
        message = served.bot.last
        assert message.text == "ripe?"
        assert message.metadata["attachments"][0]["id"] == sha256(photo)
        assert message.metadata["attachments"][0]["name"] == "banana photo.jpg"

        assert not session.handle("/quit")


async def test_voice_note_path_and_refused_content(store: AttachmentStore, tmp_path: Path) -> None:
    async with serve(channel(store)) as served:
        client = cc.ChatClient(served.base + "webhook")
        fake = tmp_path / "note.ogg"
        fake.write_bytes(b"this is text, not a voice note" * 10)
        messages = await asyncio.to_thread(client.send_file, str(fake))
        assert len(messages) == 1 and "voice notes" in messages[0]["text"]
        assert served.bot.messages == []


async def test_4xx_bodies_become_friendly_errors(store: AttachmentStore) -> None:
    async with serve(channel(store, environ={"CHAT_API_TOKEN": "tok"})) as served:
        client = cc.ChatClient(served.base + "webhook", sender="term-3")
        with pytest.raises(cc.ChatError, match=r"--sender needs the API's bearer token.*\(HTTP 403\)"):
            await asyncio.to_thread(client.send_text, "hi")
        client.token = "wrong"
        with pytest.raises(cc.ChatError, match=r"Authorization: Bearer .*\(HTTP 401\)"):
            await asyncio.to_thread(client.send_text, "hi")
        client.token = "tok"
        assert await asyncio.to_thread(client.send_text, "hi")
        assert served.bot.last.sender_id == "api:term-3"
        with pytest.raises(cc.ChatError, match=r"too long.*\(HTTP 400\)"):
            await asyncio.to_thread(client.send_text, "x" * 30_000)


async def test_a_server_restarted_with_a_new_key_starts_a_new_conversation(store: AttachmentStore) -> None:
    async with serve(channel(store)) as served:
        client = cc.ChatClient(served.base + "webhook", customer_token="not-checked-here")
        out: List[Tuple[str, str]] = []
        session = cc.ChatSession(client, lambda text, kind: out.append((kind, text)))
        assert await asyncio.to_thread(session.handle, "hello")
        first = client.sender
        served.channel.web_senders = WebSenderIds("another-key-after-a-restart-0123456789")
        assert await asyncio.to_thread(session.handle, "still there?")
        assert client.sender != first and served.bot.last.sender_id == client.sender.split(".")[0]
        assert [m.text for m in served.bot.messages] == ["hello", "still there?"]
        assert ("info", "(The assistant restarted, so this is a new conversation.)") in out
        assert not any(kind == "error" for kind, _ in out)


def test_missing_or_unusable_files(tmp_path: Path) -> None:
    client = cc.ChatClient("http://127.0.0.1:9/never-called")
    with pytest.raises(cc.ChatError, match="There is no file"):
        client.send_file(str(tmp_path / "nope.jpg"))
    with pytest.raises(cc.ChatError, match="is not a file"):
        client.send_file(str(tmp_path))
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(cc.ChatError, match="is empty"):
        client.send_file(str(tmp_path / "empty.jpg"))
    big = tmp_path / "big.wav"
    with big.open("wb") as handle:
        handle.truncate(21 * 1024 * 1024)
    with pytest.raises(cc.ChatError, match="up to 20 MB"):
        client.send_file(str(big))
    out: List[Tuple[str, str]] = []
    session = cc.ChatSession(client, lambda text, kind: out.append((kind, text)))
    assert session.handle(f"/voice {tmp_path / 'missing.ogg'}")
    assert out[-1][0] == "error" and "There is no file" in out[-1][1]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_server_down() -> None:
    client = cc.ChatClient(f"http://127.0.0.1:{_closed_port()}/webhooks/multimodal/webhook")
    with pytest.raises(cc.ChatError, match="Can't reach the shop assistant.*make serve"):
        client.send_text("hello")
    out: List[Tuple[str, str]] = []
    assert cc.ChatSession(client, lambda text, kind: out.append((kind, text))).handle("hello")
    assert out[-1][0] == "error"


@pytest.fixture
def html_error_server() -> Iterator[str]:
    """A server that answers like a proxy whose backend is down: 502 with an HTML page; or 200 with junk."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if "bad" in self.path:
                status, body = 502, b"<html>Bad gateway</html>"
            else:
                status, body = 200, b'{"not": "a list"}'
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_non_json_and_unexpected_answers(html_error_server: str) -> None:
    with pytest.raises(cc.ChatError, match=r"refused the message. \(HTTP 502\)"):
        cc.ChatClient(html_error_server + "/bad", sender="a", token="t").send_text("hi")
    with pytest.raises(cc.ChatError, match="unexpected"):
        cc.ChatClient(html_error_server + "/odd", sender="a", token="t").send_text("hi")
    with pytest.raises(cc.ChatError, match="no conversation id"):  # the session answer is junk
        cc.ChatClient(html_error_server + "/odd").send_text("hi")


def test_main_reads_piped_input(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import io

    sent: List[Dict[str, Any]] = []

    def fake_post(self: Any, url: str, **kwargs: Any) -> Any:
        sent.append(kwargs["json"])

        class Answer:
            status_code = 200

            @staticmethod
            def json() -> Any:
                return [{"recipient_id": "x", "text": f"echo {kwargs['json']['message']}"}]

        return Answer()

    monkeypatch.setattr(cc.requests.Session, "post", fake_post)
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n/help\n/quit\nnever sent\n"))
    assert cc.main(["--url", "http://127.0.0.1:1/webhook", "--sender", "pipe", "--token", "t"]) == 0
    assert sent == [{"sender": "pipe", "message": "hello"}]
    printed = capsys.readouterr().out
    assert "echo hello" in printed and "/image PATH" in printed and "Bye!" in printed

    monkeypatch.delenv("CHAT_API_TOKEN", raising=False)
    assert cc.main(["--url", "http://127.0.0.1:1/webhook", "--sender", "pipe"]) == 2  # no token
    assert "needs the API's bearer token" in capsys.readouterr().out


def test_main_starts_a_conversation_with_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    printed: List[str] = []
    monkeypatch.setattr(cc, "_terminal_writer", lambda: lambda text, kind: printed.append(text))

    calls: List[Tuple[str, Any, Dict[str, str]]] = []

    def fake_post(self: Any, url: str, **kwargs: Any) -> Any:
        calls.append((url, kwargs.get("json"), kwargs["headers"]))

        class Answer:
            status_code = 200

            @staticmethod
            def json() -> Any:
                if url.endswith("/session"):
                    return {"sender": "web:" + "0" * 32 + "." + "s" * 43}
                return [{"recipient_id": "x", "text": "hi there"}]

        return Answer()

    monkeypatch.setattr(cc.requests.Session, "post", fake_post)
    monkeypatch.setenv("CHAT_API_TOKEN", "api-token")
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n"))
    url = "http://127.0.0.1:1/webhooks/multimodal/webhook"
    assert cc.main(["--url", url, "--customer-token", "a.b.c"]) == 0
    session_call, message_call = calls
    assert session_call[0] == "http://127.0.0.1:1/webhooks/multimodal/session"
    assert message_call[1] == {"sender": "web:" + "0" * 32 + "." + "s" * 43, "message": "hello"}
    for _url, _body, headers in calls:
        assert "Authorization" not in headers  # the API token is for ids of the caller's choosing only
        assert headers["X-Customer-Token"] == "a.b.c"
    assert "hi there" in printed
