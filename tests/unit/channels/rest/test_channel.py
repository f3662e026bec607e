"""`channels.rest.channel`: one POST from the request to the bot's replies, through a real Sanic server.

Text and the reply format, photos and voice notes stored and referenced by id, earlier uploads by id,
problem replies for refused attachments, and a store that cannot be escaped through planted symlinks.
"""
from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
from rasa.shared.exceptions import RasaException

from channels import common
from channels.rest import MultimodalRestInput
from channels.rest.channel import _chunks
from channels.rest.settings import ChannelSettings
from channels.worker_pool import LaneSettings, installed_pools
from media import AttachmentLimits, AttachmentStore
from media.limits import CHUNK_BYTES
from tests.unit.channels import HAS_FFMPEG, make_audio, make_jpeg
from tests.unit.channels.rest import (
    TEST_ENVIRON,
    Served,
    b64,
    error_of,
    make_channel,
    serve,
    sha256,
    stored_files,
)


# --------------------------------------------------------------------------------------------------------
# Text and the reply format
# --------------------------------------------------------------------------------------------------------
async def test_health(served: Served) -> None:
    resp = await served.http.get(served.base)
    assert resp.status == 200 and await resp.json() == {"status": "ok"}


async def test_text_message_reaches_the_bot_and_replies_come_back_like_rasa_rest(served: Served) -> None:
    resp = await served.post_json({"sender": "alice", "message": "how much are bananas"})
    assert resp.status == 200
    body = await resp.json()
    assert body == [
        {
            "recipient_id": "alice",
            "text": "you said 'how much are bananas' with 0 attachment(s)",
            "buttons": [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}],
        },
        {"recipient_id": "alice", "image": "https://shop.example/bananas.jpg"},
        {"recipient_id": "alice", "custom": {"kind": "product_card", "sku": "B-1"}},
    ]
    message = served.bot.last
    assert message.text == "how much are bananas"
    assert (message.sender_id, message.input_channel) == ("api:alice", "multimodal")  # the API's namespace
    assert message.metadata is None


async def test_a_bot_failure_is_a_500_json_error_and_the_server_keeps_serving(served: Served) -> None:
    served.bot.fail = True
    resp = await served.post_json({"sender": "alice", "message": "hi"})
    assert resp.status == 500
    assert (await error_of(resp))["code"] == "internal_error"
    served.bot.fail = False
    assert (await served.post_json({"sender": "alice", "message": "hi again"})).status == 200


# --------------------------------------------------------------------------------------------------------
# JSON uploads: base64 and id references
# --------------------------------------------------------------------------------------------------------
async def test_base64_photo_is_stored_and_referenced_in_metadata(served: Served, store: AttachmentStore):
    photo = make_jpeg()
    resp = await served.post_json(
        {"sender": "bob", "message": "is this fresh?", "attachments": [{"type": "image", "data": b64(photo),
                                                                        "name": "../../lunch.jpg"}]}
    )
    assert resp.status == 200
    (ref,) = served.bot.last.metadata["attachments"]
    assert ref == {"type": "image", "id": sha256(photo), "mime_type": "image/jpeg", "size": len(photo),
                   "name": "lunch.jpg"}
    assert store.read(sha256(photo)) == photo
    assert "attachment_problems" not in served.bot.last.metadata
    assert "1 attachment" in (await resp.json())[0]["text"]


@pytest.mark.parametrize("encode", [
    lambda d: "data:image/jpeg;base64," + b64(d),
    lambda d: base64.urlsafe_b64encode(d).decode().rstrip("="),
    lambda d: "\n".join(b64(d)[i:i + 76] for i in range(0, len(b64(d)), 76)),
])
async def test_base64_variants_are_accepted(served: Served, encode) -> None:
    photo = make_jpeg(shade=7)
    resp = await served.post_json({"sender": "bob", "attachments": [{"data": encode(photo)}]})
    assert resp.status == 200
    assert served.bot.last.metadata["attachments"][0]["id"] == sha256(photo)


async def test_photo_only_message_is_a_normal_message(served: Served) -> None:
    resp = await served.post_json({"sender": "bob", "attachments": [{"data": b64(make_jpeg())}]})
    assert resp.status == 200
    assert served.bot.last.text == ""  # a string: Rasa's NLU components fail on None
    assert len(served.bot.last.metadata["attachments"]) == 1


async def test_id_reference_to_an_earlier_upload(served: Served, store: AttachmentStore) -> None:
    photo = make_jpeg(shade=3)
    stored = store.save(photo, name="first.jpg")
    resp = await served.post_json(
        {"sender": "bob", "message": "same again", "attachments": [{"id": stored.id}]}
    )
    assert resp.status == 200
    (ref,) = served.bot.last.metadata["attachments"]
    assert ref["id"] == stored.id and ref["type"] == "image" and ref["mime_type"] == "image/jpeg"


async def test_unknown_id_with_text_passes_the_problem_on_and_the_reply_mentions_it(served: Served) -> None:
    resp = await served.post_json({"sender": "bob", "message": "look", "attachments": [{"id": "ab" * 32}]})
    assert resp.status == 200
    metadata = served.bot.last.metadata
    assert "attachments" not in metadata
    assert metadata["attachment_problems"] == [
        {"type": None, "code": "not_found", "message": metadata["attachment_problems"][0]["message"]}
    ]
    body = await resp.json()
    assert body[0] == {"recipient_id": "bob", "text": metadata["attachment_problems"][0]["message"]}
    assert "couldn't find" in body[0]["text"]
    assert body[1]["text"].startswith("you said 'look'")


async def test_unknown_id_alone_is_answered_by_the_channel(served: Served) -> None:
    resp = await served.post_json({"sender": "bob", "attachments": [{"id": "cd" * 32}]})
    assert resp.status == 200
    body = await resp.json()
    assert len(body) == 1 and "couldn't find" in body[0]["text"]
    assert served.bot.messages == []


# --------------------------------------------------------------------------------------------------------
# The cases list: a store that cannot be escaped
# --------------------------------------------------------------------------------------------------------
async def test_a_symlink_planted_in_the_store_is_never_followed(
    served: Served, store: AttachmentStore, sandbox: Path
) -> None:
    target = sandbox / "photo.jpg"
    fake_id = sha256(target.read_bytes())
    shard = store.root / fake_id[:2]
    shard.mkdir(parents=True, exist_ok=True)
    (shard / fake_id).symlink_to(target)
    (shard / f"{fake_id}.json").write_text(json.dumps({"type": "image", "mime_type": "image/jpeg"}))
    resp = await served.post_json({"sender": "eve", "message": "x", "attachments": [{"id": fake_id}]})
    assert resp.status == 200
    assert served.bot.last.metadata["attachment_problems"][0]["code"] == "invalid_reference"
    assert "attachments" not in served.bot.last.metadata
    file_resp = await served.http.get(served.base + "files/" + fake_id)
    assert file_resp.status == 404


async def test_a_symlinked_shard_directory_is_refused(served: Served, store: AttachmentStore, sandbox: Path):
    photo = (sandbox / "photo.jpg").read_bytes()
    fake_id = sha256(photo)
    (store.root / fake_id[:2]).symlink_to(sandbox, target_is_directory=True)
    resp = await served.post_json({"sender": "eve", "attachments": [{"id": fake_id}]})
    assert resp.status == 200 and served.bot.messages == []
    assert (await served.http.get(served.base + "files/" + fake_id)).status == 404


# --------------------------------------------------------------------------------------------------------
# The cases list: lying MIME types, content that is not a photo or voice note
# --------------------------------------------------------------------------------------------------------
async def test_declared_mime_and_type_that_differ_from_the_content_lose(served: Served) -> None:
    photo = make_jpeg(shade=11)
    resp = await served.post_json(
        {"sender": "eve", "attachments": [{"type": "audio", "mime_type": "audio/ogg", "name": "voice.ogg",
                                            "data": b64(photo)}]}
    )
    assert resp.status == 200
    (ref,) = served.bot.last.metadata["attachments"]
    assert (ref["type"], ref["mime_type"]) == ("image", "image/jpeg")


async def test_text_named_as_jpeg_is_refused_by_content(served: Served, store: AttachmentStore) -> None:
    text = b"Dear shop, this is not a photo at all.\n" * 5
    resp = await served.post_json(
        {"sender": "eve", "attachments": [{"type": "image", "mime_type": "image/jpeg", "name": "banana.jpg",
                                            "data": b64(text)}]}
    )
    assert resp.status == 200
    (reply,) = await resp.json()
    assert "photos" in reply["text"] and "voice notes" in reply["text"]
    assert served.bot.messages == []
    assert [p for p in stored_files(store) if ".tmp" not in p.parts] == []


async def test_one_bad_and_one_good_photo_with_text(served: Served) -> None:
    good, truncated = make_jpeg(shade=1), make_jpeg(120, 90, shade=2)[:200]
    resp = await served.post_json(
        {"sender": "eve", "message": "two photos", "attachments": [
            {"data": b64(good), "name": "good.jpg"}, {"data": b64(truncated), "name": "broken.jpg"}]}
    )
    assert resp.status == 200
    metadata = served.bot.last.metadata
    assert [a["id"] for a in metadata["attachments"]] == [sha256(good)]
    assert [p["code"] for p in metadata["attachment_problems"]] == ["damaged"]
    body = await resp.json()
    assert body[0]["text"].startswith("About “broken.jpg”:") and "damaged" in body[0]["text"]


async def test_empty_file_alone_gets_a_friendly_reply(served: Served) -> None:
    resp = await served.post_json({"sender": "eve", "attachments": [{"data": ""}]})
    assert resp.status == 200
    assert "empty" in (await resp.json())[0]["text"]


@pytest.mark.skipif(not HAS_FFMPEG, reason="ffmpeg/ffprobe not installed")
async def test_voice_note_as_base64(served: Served) -> None:
    voice = make_audio("ogg")
    resp = await served.post_json({"sender": "vic", "attachments": [{"type": "audio", "data": b64(voice)}]})
    assert resp.status == 200
    (ref,) = served.bot.last.metadata["attachments"]
    assert (ref["type"], ref["mime_type"], ref["id"]) == ("audio", "audio/ogg", sha256(voice))


# --------------------------------------------------------------------------------------------------------
# Limits of the store
# --------------------------------------------------------------------------------------------------------
async def test_file_over_the_type_limit_is_refused_while_streaming(tmp_path: Path) -> None:
    limits = AttachmentLimits(image_max_bytes=2000, audio_max_bytes=2000)
    small = AttachmentStore(tmp_path / "uploads", limits)
    async with serve(make_channel(small)) as served:
        big = make_jpeg(400, 300, shade=5)
        assert len(big) > 2000
        resp = await served.post_form(
            {"sender": "eve", "message": "big one"}, [("big.jpg", big, "image/jpeg")]
        )
        assert resp.status == 200
        assert served.bot.last.metadata["attachment_problems"][0]["code"] == "too_large"
        assert "too big" in (await resp.json())[0]["text"]
        assert [p for p in stored_files(small) if ".tmp" not in p.parts] == []


def test_a_decoded_upload_goes_to_the_store_in_the_media_chunk_size() -> None:
    data = memoryview(bytes(2 * CHUNK_BYTES + 1))
    assert [len(chunk) for chunk in _chunks(data)] == [CHUNK_BYTES, CHUNK_BYTES, 1]


def test_the_default_store_is_created_with_the_channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Unlike Telegram and Messenger, the REST channel needs the store's limits when it is built."""
    default = AttachmentStore(tmp_path / "default")
    calls = []
    monkeypatch.setattr(common, "default_store", lambda: calls.append(1) or default)
    channel = MultimodalRestInput(ChannelSettings())
    assert calls == [1] and channel.store is default and calls == [1]


def test_constructing_the_channel_installs_the_worker_pool(no_worker_pool, store: AttachmentStore) -> None:
    make_channel(store, environ={**TEST_ENVIRON, "NLU_QUEUE": "12"})
    pools = installed_pools()
    assert pools is not None and pools.settings.text == LaneSettings(2, 12, 10.0)


def test_a_malformed_worker_pool_setting_stops_the_channel(no_worker_pool, store: AttachmentStore) -> None:
    with pytest.raises(RasaException, match="MultimodalRestInput: malformed worker pool setting NLU_WORKERS='0'"):
        make_channel(store, environ={**TEST_ENVIRON, "NLU_WORKERS": "0"})
    assert installed_pools() is None


@pytest.mark.parametrize(
    "tail",
    [b"Content-Length: 0\r\n\r\n", b"Content-Length: 5\r\n\r\nhello", b"\r\n"],
    ids=["empty", "body", "none"],
)
async def test_a_new_web_conversation_logs_no_error_whatever_the_body(
    served: Served, tail: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Browsers send ``Content-Length: 0`` with a body-less POST; Sanic logged every such new conversation as
    an ERROR ("body not consumed")."""
    with caplog.at_level(logging.INFO):
        answer = await served.raw(
            b"POST /webhooks/multimodal/session HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + tail
        )
    assert answer.startswith(b"HTTP/1.1 200") and b'"sender":"web:' in answer, answer[:300]
    assert [record.message for record in caplog.records if record.levelno >= logging.ERROR] == []
