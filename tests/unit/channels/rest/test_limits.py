"""`channels.rest.limits`: the upload rate limit per sender id and per client address."""
from __future__ import annotations

from media import AttachmentStore
from tests.unit.channels import make_jpeg
from tests.unit.channels.rest import b64, error_of, make_channel, serve


# --------------------------------------------------------------------------------------------------------
# Rate limit
# --------------------------------------------------------------------------------------------------------
async def test_upload_rate_limit_per_sender(store: AttachmentStore) -> None:
    channel = make_channel(store, upload_rate_per_minute=1, upload_burst=10)
    async with serve(channel) as served:
        photo = b64(make_jpeg())
        resp = await served.post_json({"sender": "a", "attachments": [{"data": photo}] * 10})
        assert resp.status == 200
        resp = await served.post_json({"sender": "a", "attachments": [{"data": photo}]})
        assert resp.status == 429
        assert int(resp.headers["Retry-After"]) >= 1
        error = await error_of(resp)
        assert error["code"] == "rate_limited" and "please wait" in error["message"]
        # text is never limited, and another sender has its own bucket
        assert (await served.post_json({"sender": "a", "message": "hello?"})).status == 200
        assert (await served.post_json({"sender": "b", "attachments": [{"data": photo}]})).status == 200
        assert len(served.bot.messages) == 3


async def test_upload_rate_limit_per_address_whatever_the_sender_id(store: AttachmentStore) -> None:
    channel = make_channel(store, address_rate_per_minute=1, address_burst=10)
    async with serve(channel) as served:
        photo = b64(make_jpeg())
        for index in range(10):
            resp = await served.post_json({"sender": f"s{index}", "attachments": [{"data": photo}]})
            assert resp.status == 200
        resp = await served.post_json({"sender": "fresh-id", "attachments": [{"data": photo}]})
        assert resp.status == 429
        assert len(served.bot.messages) == 10



# --------------------------------------------------------------------------------------------------------
# Messages (every message, text included)
# --------------------------------------------------------------------------------------------------------
async def test_message_rate_limit_per_sender(store: AttachmentStore) -> None:
    channel = make_channel(store, message_rate_per_minute=1, message_burst=2)
    async with serve(channel) as served:
        for text in ("one", "two"):
            assert (await served.post_json({"sender": "a", "message": text})).status == 200
        resp = await served.post_json({"sender": "a", "message": "three"})
        assert resp.status == 429 and 1 <= int(resp.headers["Retry-After"]) <= 60
        error = await error_of(resp)
        assert error["code"] == "rate_limited" and "faster than I can answer" in error["message"]
        assert (await served.post_json({"sender": "b", "message": "hi"})).status == 200  # its own bucket
        web = await served.new_sender()
        for _ in range(2):
            assert (await served.post_json({"sender": web, "message": "hi"}, auth=False)).status == 200
        assert (await served.post_json({"sender": web, "message": "hi"}, auth=False)).status == 429
        assert [m.text for m in served.bot.messages] == ["one", "two", "hi", "hi", "hi"]


async def test_message_rate_limit_per_address_counts_new_conversations_too(store: AttachmentStore) -> None:
    channel = make_channel(store, address_message_rate_per_minute=1, address_message_burst=3)
    async with serve(channel) as served:
        sender = await served.new_sender()  # one token
        for index in range(2):
            resp = await served.post_json({"sender": f"s{index}", "message": "hi"})
            assert resp.status == 200
        resp = await served.http.post(served.base + "session")
        assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
        assert (await error_of(resp))["code"] == "rate_limited"
        resp = await served.post_json({"sender": sender, "message": "hi"}, auth=False)
        assert resp.status == 429
        assert len(served.bot.messages) == 2
