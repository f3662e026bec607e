"""`channels.telegram.client`: settings from credentials.yml and the environment, the Bot API server, and the
output channel."""
from __future__ import annotations

from typing import Dict

import pytest
from rasa.shared.exceptions import RasaException

from assistant.paths import PROJECT_ROOT
from channels.telegram import MultimodalTelegramInput
from tests.unit.channels.telegram import CHAT_ID, SECRET, TOKEN
from tests.unit.channels.telegram.bot_api_stub import BOT_USERNAME, BotApiStub

WITH_SECRET = {"TELEGRAM_ACCESS_TOKEN": TOKEN, "TELEGRAM_SECRET_TOKEN": SECRET}


# ------------------------------------------------------------------------------------------------------------
# The output channel
# ------------------------------------------------------------------------------------------------------------
async def test_output_channel_is_reused_and_talks_to_the_configured_server(bot_api: BotApiStub, store):
    channel = MultimodalTelegramInput(
        TOKEN, None, None, secret_token=SECRET, api_url=bot_api.url, store=store
    )
    out = channel.get_output_channel()
    assert channel.get_output_channel() is out and out.name() == "telegram"
    try:
        await out.send_text_message(str(CHAT_ID), "hello")
        await out.send_text_message(f"telegram:{CHAT_ID}", "hello again")  # a conversation's sender id
    finally:
        await out.session.close()
    assert bot_api.sent_texts == ["hello", "hello again"]
    assert {call["chat_id"] for call in bot_api.methods("sendMessage")} == {str(CHAT_ID)}


# ------------------------------------------------------------------------------------------------------------
# Settings
# ------------------------------------------------------------------------------------------------------------
def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TELEGRAM_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_VERIFY", BOT_USERNAME)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://shop.example/webhooks/telegram/webhook")
    monkeypatch.setenv("TELEGRAM_SECRET_TOKEN", SECRET)
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:8081/")
    channel = MultimodalTelegramInput.from_credentials(None)
    assert (channel.access_token, channel.verify, channel.secret_token) == (TOKEN, BOT_USERNAME, SECRET)
    assert channel.webhook_url == "https://shop.example/webhooks/telegram/webhook"
    file_url = channel.server.file_url(token="T", path="voice/a.oga")
    assert file_url == "http://127.0.0.1:8081/file/botT/voice/a.oga"
    assert channel.name() == "telegram" and channel.url_prefix() == "telegram"


def test_credentials_win_over_the_environment_and_empty_ones_fall_back(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TELEGRAM_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_VERIFY", "env_bot")
    monkeypatch.setenv("TELEGRAM_SECRET_TOKEN", SECRET)
    channel = MultimodalTelegramInput.from_credentials(
        {"verify": "yaml_bot", "access_token": "", "secret_token": "yaml-secret"}
    )
    assert (channel.access_token, channel.verify, channel.secret_token) == (TOKEN, "yaml_bot", "yaml-secret")
    assert channel.server.api_url(token="T", method="getMe") == "https://api.telegram.org/botT/getMe"


def test_rasa_builds_the_channel_from_an_empty_credentials_entry(monkeypatch: pytest.MonkeyPatch):
    from rasa.core.run import _create_single_channel
    from rasa.shared.utils.io import read_yaml

    monkeypatch.setenv("TELEGRAM_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_SECRET_TOKEN", SECRET)
    credentials = read_yaml("channels.telegram.MultimodalTelegramInput:\n")
    [(name, entry)] = credentials.items()
    channel = _create_single_channel(name, entry)
    assert isinstance(channel, MultimodalTelegramInput) and channel.secret_token == SECRET


def test_the_repository_credentials_file_names_this_channel():
    text = (PROJECT_ROOT / "credentials.yml").read_text(encoding="utf-8")
    assert "channels.telegram.MultimodalTelegramInput:" in text


@pytest.mark.parametrize(
    "env, message",
    [
        ({}, "TELEGRAM_ACCESS_TOKEN"),
        ({"TELEGRAM_ACCESS_TOKEN": "not-a-token"}, "TELEGRAM_ACCESS_TOKEN"),
        ({"TELEGRAM_ACCESS_TOKEN": TOKEN}, "TELEGRAM_SECRET_TOKEN"),  # no secret: refuses to start
        ({"TELEGRAM_ACCESS_TOKEN": TOKEN, "TELEGRAM_SECRET_TOKEN": " "}, "TELEGRAM_SECRET_TOKEN"),
        ({**WITH_SECRET, "TELEGRAM_WEBHOOK_URL": "http://shop.example/hook"}, "https"),
        ({"TELEGRAM_ACCESS_TOKEN": TOKEN, "TELEGRAM_SECRET_TOKEN": "has spaces"}, "TELEGRAM_SECRET_TOKEN"),
        ({**WITH_SECRET, "TELEGRAM_API_URL": "ftp://api.telegram.org"}, "TELEGRAM_API_URL"),
        ({**WITH_SECRET, "TELEGRAM_API_URL": "https://u:p@api.example"}, "TELEGRAM_API_URL"),
        ({**WITH_SECRET, "TELEGRAM_API_URL": "https://api.example/?x"}, "TELEGRAM_API_URL"),
    ],
)
def test_bad_settings_fail_at_start_naming_the_variable(monkeypatch, env: Dict[str, str], message: str):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(RasaException, match=message):
        MultimodalTelegramInput.from_credentials({})

