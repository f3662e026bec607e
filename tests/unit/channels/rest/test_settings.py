"""`channels.rest.settings`: credentials.yml keys checked at start, naming the key and its valid values."""
from __future__ import annotations

from typing import Any, Dict

import pytest
from rasa.shared.exceptions import InvalidConfigException, RasaException

from channels.rest import ChannelSettings, MultimodalRestInput


@pytest.mark.parametrize(
    "credentials",
    [
        {"token": "abc"},  # unknown key (a secret must not be written here)
        {"token_env": "not a variable name"},
        {"token_env": True},  # YAML `token_env: yes`: must not become the variable "True" and turn auth off
        {"token_env": 1},
        {"max_body_bytes": "lots"},
        {"upload_rate_per_minute": -1},
        {"upload_burst": 3},  # less than max_attachments
        {"address_burst": 5},
        {"address_rate_per_minute": "fast"},
        {"frame_ancestors": "*; script-src *"},
    ],
)
def test_bad_credentials_fail_early_naming_the_key(credentials: Dict[str, Any]) -> None:
    with pytest.raises(RasaException) as caught:
        MultimodalRestInput.from_credentials(credentials)
    assert next(iter(credentials)) in str(caught.value)


def test_a_yaml_boolean_never_turns_the_token_off() -> None:
    import yaml

    with pytest.raises(InvalidConfigException, match="`token_env` must be an environment variable name"):
        MultimodalRestInput.from_credentials(yaml.safe_load("token_env: yes"))
    channel = MultimodalRestInput.from_credentials(yaml.safe_load("token_env: CHAT_API_TOKEN"))
    assert channel.settings.token_env == "CHAT_API_TOKEN"


def test_settings_built_in_code_name_the_channel() -> None:
    with pytest.raises(InvalidConfigException, match="^MultimodalRestInput: `upload_burst` must be"):
        ChannelSettings(upload_burst=0)
    with pytest.raises(InvalidConfigException, match="^MultimodalRestInput: `token_env`"):
        ChannelSettings(token_env=True)


def test_defaults_and_the_message_format() -> None:
    settings = ChannelSettings.from_credentials(None)
    assert settings == ChannelSettings()
    assert (settings.token_env, settings.max_body_bytes, settings.upload_rate_per_minute) == (
        "CHAT_API_TOKEN", 32 * 1024 * 1024, 20.0
    )
    with pytest.raises(InvalidConfigException) as caught:
        ChannelSettings.from_credentials({"max_text_chars": 0})
    assert str(caught.value) == (
        "MultimodalRestInput: `max_text_chars` must be an integer >= 1 (characters), got 0."
    )


@pytest.mark.parametrize(
    "credentials",
    [{"token_env": None}, {"token_env": ""}, {"upload_rate_per_minute": 0}, {"address_rate_per_minute": 2.5},
     {"frame_ancestors": "'self' https://shop.example"}, {"web_chat": False}],
)
def test_good_credentials(credentials: Dict[str, Any]) -> None:
    settings = MultimodalRestInput.from_credentials(credentials).settings
    key, value = next(iter(credentials.items()))
    assert getattr(settings, key) == value


@pytest.mark.parametrize(
    "values", [{"max_body_bytes": True}, {"upload_burst": 0}, {"address_rate_per_minute": -0.5}]
)
def test_settings_built_in_code_are_checked_as_strictly(values: Dict[str, Any]) -> None:
    with pytest.raises(RasaException) as caught:
        MultimodalRestInput(ChannelSettings(**values))
    assert next(iter(values)) in str(caught.value)
