"""The web chat in a real browser (headless system Chromium) against `rasa run` with the trained test model.

A customer opens /webhooks/multimodal/chat, asks a price, picks a quick reply, sends a photo (and a damaged
one), records a voice note with the microphone, and finds the chat through the embed widget on a shop page.
The conversation id comes from the server (a made-up one is replaced), and a shop page that embeds the widget
with a customer token has it sent with each message in a header, never in a URL.
Screenshots go to tests/e2e/screenshots/ (git-ignored); the conversation screenshot is also copied to
docs/screenshots/web-chat.png for the README when that file is missing or UPDATE_SCREENSHOTS=1.

Photo and voice replies are checked for what the channel guarantees: the upload reaches the server's store
with the right type, a reply arrives and it is not an error. Whether the bot recognises the product or
transcribes the voice note depends on the NLU components in config.yml, which have their own tests.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Callable, List, Tuple

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
README_SHOT = ROOT / "docs" / "screenshots" / "web-chat.png"
REPLY_TIMEOUT_MS = 120_000
PRICE = re.compile(r"\d+\.\d{2}")
SIGNED_SENDER = re.compile(r"web:[0-9a-f]{32}\.[A-Za-z0-9_-]{43}")


def chat_url(rasa_server: str) -> str:
    return f"{rasa_server}/webhooks/multimodal/chat"


def banana_photo() -> bytes:
    """A 640×480 JPEG of a yellow banana-like arc, drawn with Pillow."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 480), (250, 250, 246))
    draw = ImageDraw.Draw(image)
    draw.arc((90, 40, 550, 440), 200, 340, fill=(236, 196, 32), width=70)
    draw.ellipse((108, 182, 134, 208), fill=(90, 70, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def wait_until(page, predicate: str, arg=None, timeout_ms: int = REPLY_TIMEOUT_MS) -> None:
    """Polls a JavaScript function until it returns true. (Playwright's wait_for_function evaluates strings
    inside the page, which the chat page's Content-Security-Policy rightly forbids.)"""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(predicate, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_ms} ms waiting for {predicate}")
        page.wait_for_timeout(100)


def replies_to(page, action: Callable[[], None], timeout_ms: int = REPLY_TIMEOUT_MS) -> List[Tuple[str, str]]:
    """Runs ``action`` and waits for the answer; returns the new (role, text) items, role bot or system."""
    before = page.locator("#transcript > li").count()
    action()
    wait_until(
        page,
        """(n) => {
            if (document.querySelector('#transcript .typing')) return false;
            const items = Array.from(document.querySelectorAll('#transcript > li')).slice(n);
            return items.some(li => li.matches('.msg--bot, .msg--system'));
        }""",
        before,
        timeout_ms,
    )
    items = page.locator("#transcript > li").all()[before:]
    result = []
    for item in items:
        classes = item.get_attribute("class") or ""
        role = "system" if "msg--system" in classes else "bot" if "msg--bot" in classes else "user"
        if role != "user":
            result.append((role, item.inner_text().replace("Assistant:", "").strip()))
    return result


def send_text(page, text: str) -> List[Tuple[str, str]]:
    def action() -> None:
        page.get_by_label("Message").fill(text)
        page.get_by_label("Message").press("Enter")

    return replies_to(page, action)


def assert_answered(replies: List[Tuple[str, str]]) -> str:
    """At least one bot message and no error notice; returns the bot's text, lower-cased."""
    assert replies, "no reply"
    errors = [text for role, text in replies if role == "system"]
    assert not errors, f"error shown instead of a reply: {errors}"
    text = " ".join(text for role, text in replies if role == "bot").lower()
    assert text.strip()
    assert "something went wrong" not in text
    return text


def sidecars(upload_dir: Path) -> List[dict]:
    return [json.loads(p.read_text()) for p in upload_dir.glob("*/*.json")]


def open_chat(page, rasa_server: str) -> None:
    page.goto(chat_url(rasa_server))
    page.wait_for_selector("#transcript .msg--bot")  # the welcome message


# --------------------------------------------------------------------------------------------------------
def test_text_price_quick_reply_photo_and_voice_note(
    page, rasa_server, repository, upload_dir, screenshots_dir, tmp_path
) -> None:
    open_chat(page, rasa_server)

    # Greeting with quick replies, chosen with the keyboard.
    greeting = assert_answered(send_text(page, "hi"))
    assert "shop assistant" in greeting
    sender = page.evaluate("localStorage.getItem('shopChat.senderId')")
    assert SIGNED_SENDER.fullmatch(sender), sender  # issued and signed by the server
    choice = page.get_by_role("button", name="Check a price").last
    assert choice.is_visible()

    def choose() -> None:
        choice.focus()
        page.keyboard.press("Enter")

    assert_answered(replies_to(page, choose))
    assert choice.get_attribute("aria-pressed") == "true"
    assert choice.is_disabled()

    # A price from the database.
    product = repository.find_product("bananas").product
    answer = assert_answered(send_text(page, "how much are bananas"))
    assert "banana" in answer
    assert f"{product.price:.2f}" in answer, answer

    # A photo through the file picker: previewed in the transcript, stored as an image, answered.
    photo = tmp_path / "bananas.jpg"
    photo.write_bytes(banana_photo())

    def attach_and_send() -> None:
        page.set_input_files("#file-input", str(photo))
        page.wait_for_selector("#tray .tray__thumb")
        page.get_by_role("button", name="Send").click()

    assert_answered(replies_to(page, attach_and_send))
    preview = page.locator(".msg--user img.msg__image").last
    assert preview.evaluate("img => img.complete && img.naturalWidth") == 640
    assert any(s["type"] == "image" and s["width"] == 640 for s in sidecars(upload_dir))

    # A damaged photo gets the friendly rejection, and the chat goes on.
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(banana_photo()[:3000])
    replies = replies_to(page, lambda: (page.set_input_files("#file-input", str(broken)),
                                        page.get_by_role("button", name="Send").click()))
    text = assert_answered(replies)
    assert "damaged" in text and "send the photo again" in text

    # A voice note through the microphone: red dot and timer while recording, then sent and answered.
    page.get_by_role("button", name="Record a voice note").click()
    page.wait_for_selector("#recorder:not([hidden]) .recorder__dot")
    wait_until(page, "() => document.getElementById('recorder-time').textContent >= '0:03'", None, 15_000)
    page.screenshot(path=str(screenshots_dir / "web-chat-recording.png"))
    voice_replies = replies_to(page, lambda: page.get_by_role("button", name="Stop and send").click())
    assert_answered(voice_replies)
    assert page.locator("#recorder").is_hidden()
    audio = page.locator(".msg--user audio.msg__audio").last
    assert audio.get_attribute("src").startswith("blob:")
    voice = [s for s in sidecars(upload_dir) if s["type"] == "audio"]
    assert voice and voice[-1]["mime_type"] in ("audio/webm", "audio/ogg") and voice[-1]["duration_s"] >= 2

    assert not page.console_errors, page.console_errors
    shot = screenshots_dir / "web-chat.png"
    page.locator("#transcript").evaluate("t => t.scrollTop = t.scrollHeight")
    page.screenshot(path=str(shot))
    if not README_SHOT.exists() or os.environ.get("UPDATE_SCREENSHOTS") == "1":
        README_SHOT.parent.mkdir(parents=True, exist_ok=True)  # tracked: refreshed on request only
        shutil.copyfile(shot, README_SHOT)


def test_drag_and_drop_and_paste_add_photos_to_the_tray(page, rasa_server) -> None:
    open_chat(page, rasa_server)
    data = list(banana_photo())
    page.evaluate(
        """(bytes) => {
            const file = new File([new Uint8Array(bytes)], 'dropped.jpg', {type: 'image/jpeg'});
            const transfer = new DataTransfer();
            transfer.items.add(file);
            const init = {dataTransfer: transfer, bubbles: true, cancelable: true};
            document.dispatchEvent(new DragEvent('dragenter', init));
            document.dispatchEvent(new DragEvent('drop', init));
            const pasted = new DataTransfer();
            pasted.items.add(new File([new Uint8Array(bytes)], 'pasted.jpg', {type: 'image/jpeg'}));
            document.getElementById('message-input').dispatchEvent(
                new ClipboardEvent('paste', {clipboardData: pasted, bubbles: true, cancelable: true}));
        }""",
        data,
    )
    assert page.locator("#tray .tray__item").count() == 2
    assert page.locator("#drop-zone").is_hidden()
    page.get_by_role("button", name="Remove pasted.jpg").click()
    assert page.locator("#tray .tray__item").count() == 1
    assert_answered(replies_to(page, lambda: page.get_by_label("Message").press("Enter")))


def test_widget_embeds_the_chat_on_a_shop_page(page, rasa_server, screenshots_dir) -> None:
    page.goto(f"{rasa_server}/webhooks/multimodal/")  # an origin to host the test page on
    page.set_content(
        "<!doctype html><html><body style='font-family:sans-serif;background:#fafafa'>"
        "<h1>Fresh Market</h1><p>Our weekly offers.</p>"
        f"<script src='{rasa_server}/webhooks/multimodal/widget.js' "
        "data-title='Questions? Chat with us'></script>"
        "</body></html>"
    )
    page.get_by_role("button", name="Questions? Chat with us").click()
    launcher = page.locator("[data-shop-chat] .launcher")  # Playwright's CSS reaches into open shadow roots
    assert launcher.get_attribute("aria-expanded") == "true"
    assert launcher.get_attribute("aria-label") == "Close the chat"
    frame = page.frame_locator("iframe[title='Questions? Chat with us']")
    frame.locator("#transcript .msg--bot").first.wait_for()
    frame.get_by_label("Message").fill("do you have oat milk?")
    frame.get_by_label("Message").press("Enter")
    frame.locator("#transcript .msg--bot:not(.typing)").nth(1).wait_for(timeout=REPLY_TIMEOUT_MS)
    assert frame.locator("#transcript .msg--system").count() == 0
    page.screenshot(path=str(screenshots_dir / "widget.png"))
    frame.get_by_role("button", name="Close chat").click()
    panel_hidden = (
        "() => document.querySelector('[data-shop-chat]').shadowRoot.querySelector('.panel').hidden"
    )
    wait_until(page, panel_hidden, None, 10_000)
    assert launcher.get_attribute("aria-expanded") == "false"


def test_a_conversation_id_the_server_did_not_issue_is_replaced(page, rasa_server) -> None:
    forged = "web:" + "0" * 32 + "." + "A" * 43
    page.goto(f"{rasa_server}/webhooks/multimodal/")  # the chat page's origin, for its localStorage
    page.evaluate("(id) => localStorage.setItem('shopChat.senderId', id)", forged)
    open_chat(page, rasa_server)
    statuses = []
    page.on("response", lambda r: statuses.append(r.status) if r.url.endswith("/webhook") else None)
    assert_answered(send_text(page, "hi"))
    sender = page.evaluate("localStorage.getItem('shopChat.senderId')")
    assert SIGNED_SENDER.fullmatch(sender) and sender != forged
    assert statuses == [403, 200]  # refused once, then sent again in a new conversation


def test_widget_hands_the_customer_token_to_the_chat_in_a_header(page, rasa_server) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLW9mLXRoZS1zaG9w"
    requests = []
    page.on("request", lambda r: requests.append((r.method, r.url, r.headers)))
    page.goto(f"{rasa_server}/webhooks/multimodal/")
    page.set_content(
        "<!doctype html><html><body><h1>Fresh Market</h1>"
        f"<script src='{rasa_server}/webhooks/multimodal/widget.js' data-title='Chat with us' "
        f"data-customer-token='{token}'></script></body></html>"
    )
    assert page.locator("script[data-customer-token]").count() == 0  # read once, then removed
    page.get_by_role("button", name="Chat with us").click()
    frame = page.frame_locator("iframe[title='Chat with us']")
    frame.locator("#transcript .msg--bot").first.wait_for()
    frame.get_by_label("Message").fill("where is my order?")
    frame.get_by_label("Message").press("Enter")
    frame.locator("#transcript .msg--bot:not(.typing)").nth(1).wait_for(timeout=REPLY_TIMEOUT_MS)
    posts = [headers for method, url, headers in requests if method == "POST" and url.endswith("/webhook")]
    assert posts and all(headers.get("x-customer-token") == token for headers in posts)
    assert not any(token in url for _, url, _ in requests)  # never in a URL (logs, referrers, history)
