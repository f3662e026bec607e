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

