"""`channels.telegram.channel`: the webhook against a local stub of the Telegram Bot API.

Every payload kind, text, commands, edits and button presses, content the assistant cannot read, the secret
token, failures in Rasa or the Bot API, the bot's replies, webhook registration and the `verify` check, and
the team's shared payload files (skipped when ../shared is absent).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, Optional

import pytest
from aiogram.utils.exceptions import ChatNotFound
from rasa.core.channels.channel import UserMessage
from rasa.shared.exceptions import RasaException

from channels.telegram import (
    ALLOWED_UPDATES,
    START_COMMAND_TEXT,
    UNSUPPORTED_CONTENT_REPLY,
    MultimodalTelegramInput,
)
from channels.worker_pool import installed_pools
from media import AttachmentStore
from tests.unit.channels import (
    check_every_shared_payload_is_expected,
    check_payloads_match_the_shared_ones,
    make_audio,
    requires_ffmpeg,
    shared_payload,
)
from tests.unit.channels.telegram import (
    CHAT_ID,
    EXPECTED,
    PAYLOADS,
    SECRET,
    TOKEN,
    Harness,
    check_expected,
    only_message,
    serve_audio,
    serve_files,
    telegram_message,
    update,
)
from tests.unit.channels.telegram.bot_api_stub import BOT_USERNAME


# ------------------------------------------------------------------------------------------------------------
# Every payload kind of cases/README.md, written here
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PAYLOADS))
async def test_payload_kinds(make_harness, store: AttachmentStore, name: str):
    if EXPECTED[name].needs_ffmpeg:
        make_audio("ogg")  # skips without ffmpeg
    harness = await make_harness()
    await check_expected(harness, name, copy.deepcopy(PAYLOADS[name]), store)


async def test_photo_with_caption_is_one_message_with_the_largest_size(harness: Harness, store):
    contents = serve_files(harness.stub)
    await harness.post(PAYLOADS["telegram_photo_with_caption.json"])
    message = only_message(harness)
    assert message.text == "is this in stock?"
    stored = store.ref_for(message.metadata["attachments"][0]["id"])
    assert message.metadata == {"attachments": [stored.to_metadata()]}
    assert [f["file_id"] for f in harness.stub.methods("getFile")] == ["PHOTO_LARGE_ID"]
    assert harness.stub.downloads == ["photos/file_1.jpg"]  # from the configured Bot API server
    assert store.read(message.metadata["attachments"][0]["id"]) == contents["PHOTO_LARGE_ID"]
    assert message.metadata["attachments"][0]["name"] == "file_1.jpg"


@requires_ffmpeg
async def test_voice_note_reaches_rasa_as_audio(harness: Harness, store: AttachmentStore):
    contents = serve_audio(harness.stub)
    await harness.post(PAYLOADS["telegram_voice.json"])
    message = only_message(harness)
    [attachment] = message.metadata["attachments"]
    assert (message.text, attachment["type"], attachment["mime_type"]) == ("", "audio", "audio/ogg")
    assert store.info(attachment["id"])["duration_s"] == pytest.approx(1.0, abs=0.1)
    assert store.read(attachment["id"]) == contents["VOICE_ID"]


@requires_ffmpeg
async def test_audio_file_keeps_its_name_and_caption(harness: Harness):
    serve_audio(harness.stub)
    body = copy.deepcopy(PAYLOADS["telegram_audio_file.json"])
    body["message"]["caption"] = "can I order this?"
    await harness.post(body)
    message = only_message(harness)
    [attachment] = message.metadata["attachments"]
    assert (message.text, attachment["name"], attachment["mime_type"]) == (
        "can I order this?", "question.mp3", "audio/mpeg")


@pytest.mark.parametrize(
    "content",
    [
        {"document": {"file_id": "ZIP", "file_unique_id": "z", "file_name": "list.zip",
                      "mime_type": "application/zip"}},
        {"video": {"file_id": "VID", "file_unique_id": "v", "width": 1, "height": 1, "duration": 1}},
        {"video_note": {"file_id": "VN", "file_unique_id": "v", "length": 1, "duration": 1}},
        {"animation": {"file_id": "GIF", "file_unique_id": "g", "width": 1, "height": 1, "duration": 1}},
        {"location": {"latitude": 52.52, "longitude": 13.40}},
        {"contact": {"phone_number": "+4930123456", "first_name": "Customer"}},
        {"poll": {"id": "1", "question": "?", "options": []}},
        {"dice": {"emoji": "🎲", "value": 3}},
        {"sticker": {"file_id": "STICKER_ID", "file_unique_id": "s", "type": "regular"}, "caption": "hi"},
    ],
)
async def test_unsupported_content_gets_the_polite_reply(harness: Harness, content: Dict[str, Any]):
    status, _ = await harness.post(update(1, **content))
    assert status == 200 and harness.rasa.messages == []
    assert harness.stub.sent_texts == [UNSUPPORTED_CONTENT_REPLY]
    assert "I can read text, photos and voice notes" in UNSUPPORTED_CONTENT_REPLY
    assert harness.stub.methods("getFile") == []


async def test_text_and_commands(harness: Harness):
    await harness.post(update(1, text="do you have oat milk?"))
    await harness.post(update(2, text="/start"))
    await harness.post(update(3, text="/start@grocery_test_bot ref42"))
    await harness.post(update(4, text="/restart@grocery_test_bot"))
    assert [m.text for m in harness.rasa.messages] == [
        "do you have oat milk?", START_COMMAND_TEXT, START_COMMAND_TEXT, "/restart"]
    assert all(m.metadata is None and m.sender_id == f"telegram:{CHAT_ID}" for m in harness.rasa.messages)


async def test_edited_text_is_handled_and_other_edits_are_ignored(harness: Harness):
    serve_files(harness.stub)
    await harness.post(PAYLOADS["telegram_edited_text.json"])
    edited_caption = {"update_id": 5, "edited_message": {
        **PAYLOADS["telegram_photo_with_caption.json"]["message"], "caption": "new caption", "edit_date": 1}}
    status, _ = await harness.post(edited_caption)
    assert status == 200
    assert [m.text for m in harness.rasa.messages] == ["where is my order 45172"]
    assert harness.stub.methods("getFile") == []


async def test_button_press_is_passed_on_and_answered(harness: Harness):
    body = {"update_id": 7, "callback_query": {
        "id": "cbq-1", "from": {"id": CHAT_ID, "is_bot": False, "first_name": "Customer"},
        "message": telegram_message(70, text="Which order?"), "chat_instance": "1", "data": "/track_order"}}
    await harness.post(body)
    assert [(m.text, m.sender_id) for m in harness.rasa.messages] == [("/track_order", f"telegram:{CHAT_ID}")]
    assert harness.stub.methods("answerCallbackQuery") == [{"callback_query_id": "cbq-1"}]


@pytest.mark.parametrize(
    "body",
    [
        {"update_id": 8, "my_chat_member": {"chat": {"id": CHAT_ID}}},
        {"update_id": 9, "message": telegram_message(9, new_chat_title="shop")},
        {"update_id": 10, "message": {"message_id": 10, "text": "no chat"}},
        {"update_id": 11, "message": "not an object"},
        {"update_id": 12, "message": telegram_message(12, photo="not a list")},
        {"update_id": 13, "message": telegram_message(13, voice={"duration": 3})},
        {},
    ],
)
async def test_odd_updates_are_acknowledged_without_a_crash(harness: Harness, body: Dict[str, Any]):
    status, _ = await harness.post(body)
    assert status == 200 and harness.rasa.messages == []
    status, _ = await harness.post(update(14, text="still there?"))
    assert status == 200 and [m.text for m in harness.rasa.messages] == ["still there?"]


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
async def test_a_body_that_is_not_a_json_object_is_a_bad_request(harness: Harness, raw: bytes):
    status, _ = await harness.post(None, raw=raw)
    assert status == 400 and harness.rasa.messages == []


# ------------------------------------------------------------------------------------------------------------
# The secret token
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET + "x", SECRET[:-1]])
async def test_missing_or_wrong_secret_token_is_forbidden(harness: Harness, secret: Optional[str], caplog):
    status, _ = await harness.post(update(1, text="hello"), secret=secret)
    assert status == 403 and harness.rasa.messages == [] and harness.stub.calls == []
    assert SECRET not in caplog.text


async def test_right_secret_token_is_accepted(harness: Harness):
    status, text = await harness.post(update(1, text="hello"), secret=SECRET)
    assert (status, text) == (200, "success") and len(harness.rasa.messages) == 1


def test_constructing_the_channel_installs_the_worker_pool(no_worker_pool, store):
    MultimodalTelegramInput(TOKEN, None, None, secret_token=SECRET, store=store)
    assert installed_pools() is not None


def test_a_malformed_worker_pool_setting_stops_the_channel(no_worker_pool, monkeypatch, store):
    monkeypatch.setenv("NLU_MEDIA_WORKERS", "one")
    with pytest.raises(RasaException, match="MultimodalTelegramInput: .*NLU_MEDIA_WORKERS='one'"):
        MultimodalTelegramInput(TOKEN, None, None, secret_token=SECRET, store=store)
    assert installed_pools() is None


def test_without_a_configured_secret_the_channel_refuses_to_start(store):
    with pytest.raises(RasaException, match="TELEGRAM_SECRET_TOKEN"):
        MultimodalTelegramInput(TOKEN, None, None, secret_token=None, store=store)


async def test_health_route(harness: Harness):
    async with harness.session.get(f"{harness.url}/") as response:
        assert response.status == 200 and await response.json() == {"status": "ok"}


async def test_rasa_failing_on_a_message_does_not_stop_the_channel(harness: Harness, caplog):
    async def crash(message: UserMessage) -> None:
        raise RuntimeError("policy exploded")

    harness.rasa.action = crash
    status, _ = await harness.post(update(1, text="first"))
    assert status == 200
    assert any("Rasa failed on a Telegram message" in r.getMessage() for r in caplog.records)
    harness.rasa.action = None
    status, _ = await harness.post(update(2, text="second"))
    assert status == 200 and [m.text for m in harness.rasa.messages] == ["first", "second"]


async def test_bot_api_down_while_replying_does_not_crash(make_harness, store):
    harness = await make_harness(api_url="http://127.0.0.1:9")  # nothing listens on the discard port
    status, _ = await harness.post(PAYLOADS["telegram_sticker.json"])
    assert status == 200 and harness.rasa.messages == []


# ------------------------------------------------------------------------------------------------------------
# Bot replies and set-up
# ------------------------------------------------------------------------------------------------------------
async def test_bot_replies_with_buttons_and_images_go_through_the_bot_api(harness: Harness):
    async def reply(message: UserMessage) -> None:
        out = message.output_channel
        await out.send_response(message.sender_id, {
            "text": "Which order do you mean?",
            "buttons": [{"title": "45172", "payload": '/inform{"order_number": "45172"}'}],
        })
        await out.send_response(message.sender_id, {"image": "https://shop.example/img/banana.jpg"})
        await out.send_text_message(message.sender_id, "first part\n\nsecond part")

    harness.rasa.action = reply
    await harness.post(update(1, text="where is my order"))
    messages = harness.stub.methods("sendMessage")
    assert [m["text"] for m in messages] == ["Which order do you mean?", "first part", "second part"]
    keyboard = json.loads(messages[0]["reply_markup"])
    button = {"text": "45172", "callback_data": '/inform{"order_number": "45172"}'}
    assert keyboard["inline_keyboard"] == [[button]]
    photo = {"chat_id": str(CHAT_ID), "photo": "https://shop.example/img/banana.jpg"}
    assert harness.stub.methods("sendPhoto") == [photo]
    # Rasa answers the conversation "telegram:<chat id>"; Telegram gets the chat id itself.
    assert {m["chat_id"] for m in messages} == {str(CHAT_ID)}


@pytest.mark.parametrize("recipient", ["web:" + "a" * 32, "messenger:123", "api:42"])
async def test_a_reply_to_another_channels_conversation_is_never_sent(harness: Harness, recipient: str):
    out = harness.channel.get_output_channel()
    with pytest.raises(ChatNotFound):
        await out.send_text_message(recipient, "not for you")
    assert harness.stub.calls == []


async def test_webhook_is_registered_with_the_secret_at_server_start(make_harness):
    url = "https://shop.example/webhooks/telegram/webhook"
    harness = await make_harness(webhook_url=url)
    [call] = harness.stub.methods("setWebhook")
    assert call["url"] == url and call["secret_token"] == SECRET
    assert json.loads(call["allowed_updates"]) == list(ALLOWED_UPDATES)


async def test_verify_checks_the_bot_user_name_once(make_harness):
    harness = await make_harness(verify=BOT_USERNAME)
    await harness.post(update(1, text="one"))
    await harness.post(update(2, text="two"))
    assert [m.text for m in harness.rasa.messages] == ["one", "two"]
    assert len(harness.stub.methods("getMe")) == 1


async def test_updates_are_dropped_when_the_token_belongs_to_another_bot(make_harness, caplog):
    harness = await make_harness(verify="some_other_bot")
    status, text = await harness.post(update(1, text="hello"))
    assert (status, text) == (200, "failed") and harness.rasa.messages == []
    assert "not @some_other_bot" in caplog.text


async def test_unreachable_bot_api_during_the_verify_check_asks_telegram_to_retry(make_harness):
    harness = await make_harness(verify=BOT_USERNAME, api_url="http://127.0.0.1:9")  # nothing listens there
    status, _ = await harness.post(update(1, text="hello"))
    assert status == 503 and harness.rasa.messages == []


# ------------------------------------------------------------------------------------------------------------
# The team's shared payload files (skipped when ../shared is absent)
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_shared_payload_files(shared_dir: Path, make_harness, store: AttachmentStore, name: str):
    body = shared_payload(shared_dir, name)
    if EXPECTED[name].needs_ffmpeg:
        make_audio("ogg")
    harness = await make_harness()
    await check_expected(harness, name, body, store)


def test_every_shared_telegram_payload_has_an_expectation(shared_dir: Path):
    check_every_shared_payload_is_expected(shared_dir, "telegram_", EXPECTED)


def test_payloads_written_here_match_the_shared_ones(shared_dir: Path):
    check_payloads_match_the_shared_ones(shared_dir, PAYLOADS)



# ------------------------------------------------------------------------------------------------------------
# At-least-once delivery
# ------------------------------------------------------------------------------------------------------------
async def test_an_update_delivered_twice_is_handled_once(harness: Harness):
    await harness.post(update(7, text="where is my order"))
    await harness.post(update(7, text="where is my order"))  # Telegram's retry of a slow webhook
    await harness.post(update(8, text="where is my order"))  # the customer asking again: a new update
    assert [m.message_id for m in harness.rasa.messages] == ["telegram-7", "telegram-8"]


async def test_a_store_outage_gets_the_trouble_reply_and_the_redelivery_is_handled(harness: Harness):
    import sqlalchemy as sa

    from channels.common import TROUBLE_REPLY

    async def outage(message: UserMessage) -> None:
        raise sa.exc.OperationalError("SELECT", {}, ConnectionRefusedError("tracker store down"))

    harness.rasa.action = outage
    status, _ = await harness.post(update(9, text="hello"))
    assert status == 200 and harness.stub.sent_texts == [TROUBLE_REPLY]
    harness.rasa.action = None
    await harness.post(update(9, text="hello"))
    assert [m.message_id for m in harness.rasa.messages] == ["telegram-9", "telegram-9"]  # tried, then handled
