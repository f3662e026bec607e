"""Terminal chat with the running shop assistant through its multimodal REST channel.

Usage: python scripts/chat_client.py [--url URL] [--customer-token JWT] [--sender ID --token TOKEN]

Type a message and press Enter. Commands:
  /image PATH [caption]   send a photo (with an optional caption)
  /voice PATH             send a voice note (any audio file: OGG/Opus, WebM, MP3, M4A, WAV, ...)
  /help                   show this help
  /quit                   leave (Ctrl-D works too)
When the assistant offers buttons, they are numbered: type the number to choose one. Anything else that starts
with "/" (e.g. /restart) is sent to the assistant as typed.

The URL defaults to $CHAT_URL or http://localhost:5005/webhooks/multimodal/webhook. Like the web chat, the
client asks the server for a conversation id (POST .../session) and starts a new one when the server no longer
knows it. --sender names a conversation instead, as a server-to-server caller: that needs the API's bearer
token (--token, default $CHAT_API_TOKEN), and the server keeps it as api:<ID>. --customer-token (default
$CUSTOMER_TOKEN) sends a logged-in customer's token (docs/channels.md) with every message.
"""
from __future__ import annotations

import argparse
import json
import mimetypes
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urljoin

import requests

DEFAULT_URL = "http://localhost:5005/webhooks/multimodal/webhook"
MAX_FILE_BYTES = 20 * 1024 * 1024  # the server's largest upload (a voice note), bytes
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 120.0  # the first message after start-up may take a while (models load lazily)

HELP = """Commands:
  /image PATH [caption]   send a photo, e.g. /image ~/Pictures/bananas.jpg are these ripe?
  /voice PATH             send a voice note, e.g. /voice note.ogg
  /help                   this help
  /quit                   leave (or Ctrl-D)
Type a number to choose one of the assistant's numbered buttons."""


class ChatError(Exception):
    """A problem the user should read (server down, file missing, refused request); ``str()`` is friendly."""


class UnknownConversation(ChatError):
    """The server no longer knows the conversation id it issued (it restarted with a new key)."""


# --------------------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    """One parsed input line.

    Attributes:
        kind: ``text``, ``image``, ``voice``, ``help``, ``quit``, ``empty`` or ``error``.
        text: Message text (``text``), or the caption (``image``).
        path: File to send (``image``/``voice``).
        shown: What to echo for a chosen button (its title), if different from ``text``.
        error: Why the line could not be used (``error``).
    """

    kind: str
    text: Optional[str] = None
    path: Optional[str] = None
    shown: Optional[str] = None
    error: Optional[str] = None


def _split_path_and_rest(argument: str) -> Tuple[Optional[str], str]:
    """First shell-like word of ``argument`` (quotes allowed for paths with spaces) and the remaining text."""
    argument = argument.strip()
    if not argument:
        return None, ""
    try:
        lexer = shlex.shlex(argument, posix=True)
        lexer.whitespace_split = True
        lexer.commenters = ""  # '#' is a file name character here
        path = lexer.get_token()
        rest = lexer.instream.read()
    except ValueError:  # unbalanced quotes: fall back to plain whitespace
        path, _, rest = argument.partition(" ")
    return path, rest.strip()


def parse_command(line: str, buttons: Sequence[Dict[str, Any]] = ()) -> Command:
    """Turns one input line into a :class:`Command`.

    Args:
        line: What the user typed.
        buttons: The buttons of the assistant's last reply; a number 1..len(buttons) chooses one.
    """
    stripped = line.strip()
    if not stripped:
        return Command("empty")
    if stripped.isdigit() and buttons:
        choice = int(stripped)
        if 1 <= choice <= len(buttons):
            button = buttons[choice - 1]
            title = str(button.get("title") or button.get("payload") or "")
            payload = str(button.get("payload") or title)
            return Command("text", text=payload, shown=title)
        return Command("error", error=f"Choose a number between 1 and {len(buttons)}.")
    if not stripped.startswith("/"):
        return Command("text", text=stripped)
    name, _, argument = stripped.partition(" ")
    name = name.lower()
    if name in ("/quit", "/exit", "/q"):
        return Command("quit")
    if name in ("/help", "/?"):
        return Command("help")
    if name == "/image":
        path, caption = _split_path_and_rest(argument)
        if not path:
            return Command("error", error="Usage: /image PATH [caption]")
        return Command("image", path=path, text=caption or None)
    if name == "/voice":
        path, rest = _split_path_and_rest(argument)
        if not path:
            return Command("error", error="Usage: /voice PATH")
        if rest:  # an unquoted path with spaces
            path = argument.strip()
        return Command("voice", path=path)
    return Command("text", text=stripped)  # e.g. /restart: Rasa's own commands go to the assistant


# --------------------------------------------------------------------------------------------------------
# Talking to the server
# --------------------------------------------------------------------------------------------------------
class ChatClient:
    """Sends messages to ``POST .../webhooks/multimodal/webhook`` and returns the bot's messages.

    Args:
        url: The webhook URL; the conversation ids come from ``session`` beside it.
        sender: A conversation id to use as a server-to-server caller (needs ``token``); ``None`` for one
            issued by the server, as the web chat gets it.
        token: The API's bearer token; sent only with a ``sender`` of the caller's choosing.
        customer_token: A logged-in customer's token, sent in ``X-Customer-Token`` with every message.
        session: ``requests`` session (tests pass their own).
        timeout_s: Seconds to wait for the answer.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        sender: Optional[str] = None,
        token: Optional[str] = None,
        customer_token: Optional[str] = None,
        session: Optional[requests.Session] = None,
        timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        self.url = url
        self.session_url = urljoin(url, "session")
        self.chosen_sender = sender or None
        self.sender: Optional[str] = self.chosen_sender
        self.token = token or None
        self.customer_token = customer_token or None
        self.session = session or requests.Session()
        self.session.trust_env = False  # never send the conversation through an environment proxy
        self.timeout_s = timeout_s
        self.restarted = False  # set when the server started a new conversation; the caller resets it

    def start(self) -> str:
        """The conversation id: the chosen one, or a new one from the server (``POST .../session``).

        Raises:
            ChatError: the server cannot be reached or gives no id.
        """
        if self.sender is None:
            body = self._call(self.session_url, {})
            sender = body.get("sender") if isinstance(body, dict) else None
            if not isinstance(sender, str) or not sender:
                raise ChatError(f"The server gave no conversation id at {self.session_url}.")
            self.sender = sender
        return self.sender

    def send_text(self, text: str) -> List[Dict[str, Any]]:
        """Sends a text message; returns the bot's messages."""
        return self._send(lambda: self._post(json_body={"sender": self.start(), "message": text}))

    def send_file(self, path: str, caption: Optional[str] = None) -> List[Dict[str, Any]]:
        """Sends a photo or voice note (the server decides which by its content), with an optional caption.

        Raises:
            ChatError: the file is missing, not a regular file, unreadable or too big; or as
                :meth:`send_text`.
        """
        file_path = Path(path).expanduser()
        if not file_path.exists():
            raise ChatError(f"There is no file at {path}.")
        if not file_path.is_file():
            raise ChatError(f"{path} is not a file.")
        size = file_path.stat().st_size
        if size == 0:
            raise ChatError(f"{path} is empty.")
        if size > MAX_FILE_BYTES:
            raise ChatError(f"{path} is {size / 2**20:.1f} MB; the assistant takes files up to 20 MB.")
        mime = mimetypes.guess_type(file_path.name)[0] or "application/octet-stream"

        def post() -> List[Dict[str, Any]]:
            fields = {"sender": self.start()}
            if caption:
                fields["message"] = caption
            with file_path.open("rb") as handle:
                return self._post(form=fields, files=[("files", (file_path.name, handle, mime))])

        try:
            return self._send(post)
        except OSError as error:
            raise ChatError(f"Can't read {path}: {error.strerror or error}.") from None

    def _send(self, post: Callable[[], List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
        """Runs ``post``; when the server no longer knows its own conversation id (restarted with a new key),
        starts a new conversation and runs it once more."""
        try:
            return post()
        except UnknownConversation:
            self.sender = None
            self.restarted = True
            return post()

    def _post(
        self,
        json_body: Optional[Dict[str, Any]] = None,
        form: Optional[Dict[str, str]] = None,
        files: Optional[List[Tuple[str, Tuple[str, IO[bytes], str]]]] = None,
    ) -> List[Dict[str, Any]]:
        body = self._call(self.url, {"json": json_body, "data": form, "files": files})
        if not isinstance(body, list):
            raise ChatError("The server answered something unexpected (HTTP 200).")
        return [message for message in body if isinstance(message, dict)]

    def _call(self, url: str, request: Dict[str, Any]) -> Any:
        """One POST; returns the decoded JSON of a 2xx answer.

        Raises:
            UnknownConversation: 403 ``unknown_sender`` for a conversation id the server issued earlier.
            ChatError: anything else that went wrong, worded for the user.
        """
        headers = {"Accept": "application/json"}
        if self.token and self.chosen_sender is not None:  # the API's token: only for an id of our choosing
            headers["Authorization"] = f"Bearer {self.token}"
        if self.customer_token:
            headers["X-Customer-Token"] = self.customer_token
        try:
            response = self.session.post(
                url, headers=headers, timeout=(CONNECT_TIMEOUT_S, self.timeout_s), **request
            )
        except requests.ConnectionError:
            raise ChatError(
                f"Can't reach the shop assistant at {url} — is it running? (start it with `make serve`)"
            ) from None
        except requests.Timeout:
            raise ChatError("The shop assistant took too long to answer — please try again.") from None
        except requests.RequestException as error:
            raise ChatError(f"The request failed: {type(error).__name__}.") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code < 400:
            if body is None:
                raise ChatError(f"The server answered something unexpected (HTTP {response.status_code}).")
            return body
        message, code = None, None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            message, code = body["error"].get("message"), body["error"].get("code")
        if code == "unknown_sender" and self.chosen_sender is None:
            raise UnknownConversation(message)
        if code == "unknown_sender":
            message = "--sender needs the API's bearer token: set CHAT_API_TOKEN or pass --token."
        elif response.status_code == 401:
            message = message or "The server refused the API token."
        elif response.status_code == 404 and not message:
            message = f"Nothing answers at {url} — is the multimodal channel in credentials.yml?"
        raise ChatError(f"{message or 'The server refused the message.'} (HTTP {response.status_code})")


# --------------------------------------------------------------------------------------------------------
# Showing replies
# --------------------------------------------------------------------------------------------------------
def render(messages: Sequence[Dict[str, Any]], base_url: str = "") -> Tuple[List[str], List[Dict[str, Any]]]:
    """Lines to print for the bot's messages, and the buttons now on offer (numbered from 1 in the lines).

    Image and attachment URLs are shown as absolute URLs (relative ones are resolved against ``base_url``).
    """
    lines: List[str] = []
    buttons: List[Dict[str, Any]] = []
    for message in messages:
        if isinstance(message.get("text"), str) and message["text"]:
            lines.append(message["text"])
        if isinstance(message.get("image"), str) and message["image"]:
            lines.append(f"[image] {urljoin(base_url, message['image'])}")
        if isinstance(message.get("attachment"), str) and message["attachment"]:
            lines.append(f"[attachment] {urljoin(base_url, message['attachment'])}")
        custom = message.get("custom")
        if custom is not None:
            if isinstance(custom, dict) and isinstance(custom.get("text"), str):
                lines.append(custom["text"])
            else:
                lines.append(f"[data] {json.dumps(custom, ensure_ascii=False)[:500]}")
        offered = message.get("buttons") or message.get("quick_replies") or []
        for button in offered if isinstance(offered, list) else []:
            if isinstance(button, dict) and (button.get("title") or button.get("payload")):
                buttons.append(button)
                lines.append(f"  {len(buttons)}) {button.get('title') or button.get('payload')}")
    return lines, buttons


class ChatSession:
    """The conversation loop without the terminal: one input line in, printed lines out.

    Args:
        client: Talks to the server.
        write: Prints one line (``kind`` is ``bot``, ``info`` or ``error`` for styling).
    """

    def __init__(self, client: ChatClient, write: Callable[[str, str], None]) -> None:
        self.client = client
        self.write = write
        self.buttons: List[Dict[str, Any]] = []

    def handle(self, line: str) -> bool:
        """Handles one line; returns False when the user wants to leave."""
        command = parse_command(line, self.buttons)
        if command.kind == "quit":
            return False
        if command.kind == "empty":
            return True
        if command.kind == "help":
            self.write(HELP, "info")
            return True
        if command.kind == "error":
            self.write(command.error or "", "error")
            return True
        try:
            if command.kind == "text":
                if command.shown and command.shown != command.text:
                    self.write(f"(you chose: {command.shown})", "info")
                messages = self.client.send_text(command.text or "")
            else:
                messages = self.client.send_file(command.path or "", command.text)
        except ChatError as error:
            self.write(str(error), "error")
            return True
        if self.client.restarted:
            self.client.restarted = False
            self.write("(The assistant restarted, so this is a new conversation.)", "info")
        lines, self.buttons = render(messages, self.client.url)
        if not lines:
            self.write("(no reply)", "info")
        for text in lines:
            self.write(text, "bot")
        return True


# --------------------------------------------------------------------------------------------------------
# Terminal
# --------------------------------------------------------------------------------------------------------
def _terminal_writer() -> Callable[[str, str], None]:
    from prompt_toolkit import print_formatted_text
    from prompt_toolkit.formatted_text import FormattedText

    styles = {"bot": ("ansigreen", "Bot: "), "info": ("ansibrightblack", ""), "error": ("ansired", "! ")}

    def write(text: str, kind: str) -> None:
        style, prefix = styles.get(kind, ("", ""))
        print_formatted_text(FormattedText([(style, prefix + text)]))

    return write


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("CHAT_URL") or DEFAULT_URL, help="webhook URL")
    parser.add_argument(
        "--sender", default=None, help="a conversation id of your choosing (needs --token)"
    )
    parser.add_argument(
        "--token", default=os.environ.get("CHAT_API_TOKEN"), help="the API's bearer token, for --sender"
    )
    parser.add_argument(
        "--customer-token",
        default=os.environ.get("CUSTOMER_TOKEN"),
        help="a logged-in customer's token (JWT), sent with every message",
    )
    args = parser.parse_args(argv)

    client = ChatClient(args.url, sender=args.sender, token=args.token, customer_token=args.customer_token)
    write = _terminal_writer()
    session = ChatSession(client, write)
    if args.sender and not args.token:
        write("--sender needs the API's bearer token: set CHAT_API_TOKEN or pass --token.", "error")
        return 2
    try:
        client.start()
    except ChatError as error:
        write(str(error), "error")
        return 1
    shown = client.sender if args.sender else "a new conversation"
    write(f"Chatting with the shop assistant at {args.url} ({shown}).", "info")
    write("Type /help for commands, /quit to leave.", "info")

    if sys.stdin.isatty():
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import InMemoryHistory

        prompt = PromptSession(history=InMemoryHistory())

        def read() -> str:
            return prompt.prompt("You: ")

    else:

        def read() -> str:
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            return line

    while True:
        try:
            line = read()
        except (EOFError, KeyboardInterrupt):
            break
        if not session.handle(line):
            break
    write("Bye!", "info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
