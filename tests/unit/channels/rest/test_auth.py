"""`channels.rest.auth`: the bearer token of server-to-server callers, when its variable is set."""
from __future__ import annotations

from typing import Optional

import pytest

from channels.rest import ChannelError, MultimodalRestInput
from channels.rest.auth import check_bearer, expected_token, is_api_caller
from media import AttachmentStore
from tests.unit.channels.rest import error_of, make_channel, serve


async def test_auth_token_when_the_variable_is_set(store: AttachmentStore) -> None:
    channel = make_channel(store, environ={"CHAT_API_TOKEN": "s3cret-token"})
    async with serve(channel) as served:
        message = {"sender": "a", "message": "hi"}
        resp = await served.post_json(message, {"Authorization": "Bearer wrong"})
        assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await error_of(resp))["code"] == "unauthorized"
        resp = await served.post_json(message, {"Authorization": "Basic s3cret-token"})
        assert resp.status == 401
        resp = await served.post_json(message, auth=False)  # no token: only a signed web id may talk
        assert resp.status == 403 and (await error_of(resp))["code"] == "unknown_sender"
        assert served.bot.messages == []
        resp = await served.post_json(message, {"Authorization": "Bearer s3cret-token"})
        assert resp.status == 200
        assert [m.sender_id for m in served.bot.messages] == ["api:a"]
        assert (await served.http.get(served.base + "chat")).status == 200


async def test_no_api_callers_when_the_variable_is_unset_or_empty(store: AttachmentStore) -> None:
    """Without a token nobody may name a conversation; the signed web ids still work."""
    for environ in ({}, {"CHAT_API_TOKEN": ""}):
        async with serve(make_channel(store, environ=environ)) as served:
            message = {"sender": "a", "message": "hi"}
            for headers in (None, {"Authorization": "Bearer anything"}):
                resp = await served.post_json(message, headers)
                assert resp.status == 403 and (await error_of(resp))["code"] == "unknown_sender"
            sender = await served.new_sender()
            assert (await served.post_json({"sender": sender, "message": "hi"})).status == 200
            assert [m.sender_id for m in served.bot.messages] == [sender.split(".")[0]]


@pytest.mark.parametrize(
    "header, api_caller",
    [("Bearer t0ken", True), (None, False)],
)
def test_is_api_caller(header: Optional[str], api_caller: bool) -> None:
    assert is_api_caller(header, "t0ken") is api_caller
    assert is_api_caller(header, None) is False  # no token configured: nobody is an API caller
    with pytest.raises(ChannelError):
        is_api_caller("Bearer wrong", "t0ken")


def test_token_variable_name_comes_from_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    channel = MultimodalRestInput.from_credentials({"token_env": "MY_CHAT_TOKEN"})
    monkeypatch.setenv("MY_CHAT_TOKEN", "abc")
    assert channel.expected_token() == "abc"
    monkeypatch.delenv("MY_CHAT_TOKEN")
    assert channel.expected_token() is None
    assert MultimodalRestInput.from_credentials(None).settings.token_env == "CHAT_API_TOKEN"


@pytest.mark.parametrize(
    "header, accepted",
    [("Bearer t0ken", True), ("bearer t0ken", True), ("BEARER  t0ken ", True), ("Bearer t0ken2", False),
     ("Bearer", False), ("Basic t0ken", False), ("t0ken", False), ("", False), (None, False)],
)
def test_bearer_header(header: Optional[str], accepted: bool) -> None:
    if accepted:
        check_bearer(header, "t0ken")
    else:
        with pytest.raises(ChannelError) as caught:
            check_bearer(header, "t0ken")
        assert (caught.value.status, caught.value.code) == (401, "unauthorized")
        assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")
    check_bearer(header, None)  # no token configured: anything goes


def test_expected_token() -> None:
    assert expected_token("CHAT_API_TOKEN", {"CHAT_API_TOKEN": "abc"}) == "abc"
    assert expected_token("CHAT_API_TOKEN", {"CHAT_API_TOKEN": ""}) is None
    assert expected_token("CHAT_API_TOKEN", {}) is None
    assert expected_token(None, {"CHAT_API_TOKEN": "abc"}) is None
    assert expected_token("", {"": "abc"}) is None
