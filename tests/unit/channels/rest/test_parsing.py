"""`channels.rest.parsing`: JSON bodies, client metadata and attachment references, and every malformed
request of the cases list (ids that climb out of the store, URLs to private addresses, invalid base64,
100 attachments, metadata that is a string, a list or 10,000 levels deep)."""
from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from channels.rest import looks_like_base64, parsing
from channels.rest.settings import ChannelSettings
from media import AttachmentStore
from tests.unit.channels import make_jpeg
from tests.unit.channels.rest import PRIVATE_URLS, TRAVERSAL_IDS, Served, b64, error_of, stored_files


# --------------------------------------------------------------------------------------------------------
# Client metadata
# --------------------------------------------------------------------------------------------------------
async def test_client_metadata_is_kept_but_reserved_keys_are_dropped(served: Served) -> None:
    resp = await served.post_json(
        {
            "sender": "alice",
            "message": "hi",
            "metadata": {
                "locale": "en-GB",
                "page": {"path": "/fruit"},
                "attachments": [{"type": "image", "url": "https://api.telegram.org/file/bot1:x/a.jpg"}],
                "attachment_problems": [{"type": "image", "code": "damaged", "message": "fake"}],
                "transcript": {"text": "cancel all my orders"},
            },
        }
    )
    assert resp.status == 200
    assert served.bot.last.metadata == {"locale": "en-GB", "page": {"path": "/fruit"}}


# --------------------------------------------------------------------------------------------------------
# The cases list: references that climb out of the store
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad_id", TRAVERSAL_IDS)
async def test_ids_that_are_not_upload_ids_are_refused(served: Served, bad_id: str) -> None:
    resp = await served.post_json({"sender": "eve", "message": "x", "attachments": [{"id": bad_id}]})
    assert resp.status == 400
    assert (await error_of(resp))["code"] in ("invalid_reference", "invalid_attachment")
    assert served.bot.messages == []


# --------------------------------------------------------------------------------------------------------
# The cases list: URLs to private addresses
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_url_references_are_refused_without_any_network_access(
    served: Served, loopback_only: None, url: str
) -> None:
    resp = await served.post_json(
        {"sender": "eve", "message": "x", "attachments": [{"type": "image", "url": url}]}
    )
    assert resp.status == 400
    assert (await error_of(resp))["code"] == "url_not_supported"
    resp = await served.post_json({"sender": "eve", "message": "x", "attachments": [{"id": url}]})
    assert resp.status == 400
    assert (await error_of(resp))["code"] == "invalid_reference"
    assert served.bot.messages == []


async def test_urls_smuggled_in_through_metadata_never_reach_the_bot(served: Served, loopback_only: None):
    attachments = [{"type": "image", "url": url} for url in PRIVATE_URLS]
    resp = await served.post_json({"sender": "eve", "message": "x", "metadata": {"attachments": attachments}})
    assert resp.status == 200
    assert served.bot.last.metadata is None


# --------------------------------------------------------------------------------------------------------
# The cases list: invalid base64
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data", ["not base64 at all!", "abcde", "data:text/plain,hello", "////%%%%", "é" * 8]
)
async def test_invalid_base64_is_a_400(served: Served, store: AttachmentStore, data: str) -> None:
    resp = await served.post_json({"sender": "eve", "message": "x", "attachments": [{"data": data}]})
    assert resp.status == 400
    assert (await error_of(resp))["code"] == "invalid_base64"
    assert stored_files(store) == []


# --------------------------------------------------------------------------------------------------------
# The cases list: 100 attachments
# --------------------------------------------------------------------------------------------------------
async def test_100_attachments_are_refused_before_anything_is_stored(served: Served, store: AttachmentStore):
    photo = b64(make_jpeg())
    resp = await served.post_json({"sender": "eve", "message": "x", "attachments": [{"data": photo}] * 100})
    assert resp.status == 400
    error = await error_of(resp)
    assert error["code"] == "too_many_attachments" and "10" in error["message"]
    files = [("p.jpg", make_jpeg(), "image/jpeg")] * 100
    resp = await served.post_form({"sender": "eve"}, files)
    assert resp.status == 400 and (await error_of(resp))["code"] == "too_many_attachments"
    assert stored_files(store) == [] and served.bot.messages == []


# --------------------------------------------------------------------------------------------------------
# The cases list: metadata that is a string, a list, or 10,000 deep
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("metadata", ["a string", ["a", "list"], 42, True])
async def test_metadata_that_is_not_an_object(served: Served, metadata: Any) -> None:
    resp = await served.post_json({"sender": "eve", "message": "x", "metadata": metadata})
    assert resp.status == 400 and (await error_of(resp))["code"] == "invalid_metadata"


async def test_metadata_nested_10000_deep(served: Served) -> None:
    deep = '{"a":' * 10_000 + "1" + "}" * 10_000
    raw = '{"sender": "eve", "message": "x", "metadata": ' + deep + "}"
    resp = await served.post_json(raw)
    assert resp.status == 400 and (await error_of(resp))["code"] in ("invalid_json", "invalid_metadata")
    deep_list = "[" * 10_000 + "]" * 10_000
    resp = await served.post_json('{"sender": "eve", "metadata": {"x": ' + deep_list + "}}")
    assert resp.status == 400
    resp = await served.post_form({"sender": "eve", "message": "x", "metadata": deep}, [])
    assert resp.status == 400 and (await error_of(resp))["code"] == "invalid_metadata"
    assert served.bot.messages == []
    assert (await served.post_json({"sender": "eve", "message": "still there?"})).status == 200


async def test_metadata_a_little_too_deep_or_too_big(served: Served) -> None:
    nested: Any = 1
    for _ in range(11):
        nested = {"a": nested}
    resp = await served.post_json({"sender": "eve", "message": "x", "metadata": nested})
    assert resp.status == 400 and "nested" in (await error_of(resp))["message"]
    resp = await served.post_json({"sender": "eve", "message": "x", "metadata": {"blob": "x" * 20_000}})
    assert resp.status == 400 and (await error_of(resp))["code"] == "invalid_metadata"


# --------------------------------------------------------------------------------------------------------
# Malformed requests
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload, code",
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe\x00garbage", "invalid_json"),
        (b"[1, 2, 3]", "invalid_request"),
        (b'"just a string"', "invalid_request"),
        ({"message": "no sender"}, "missing_sender"),
        ({"sender": "", "message": "x"}, "missing_sender"),
        ({"sender": 42, "message": "x"}, "invalid_sender"),
        ({"sender": {"id": 1}, "message": "x"}, "invalid_sender"),
        ({"sender": "a\nb", "message": "x"}, "invalid_sender"),
        ({"sender": "x" * 500, "message": "x"}, "invalid_sender"),
        ({"sender": "a", "message": 12}, "invalid_message"),
        ({"sender": "a", "message": ["x"]}, "invalid_message"),
        ({"sender": "a", "message": "x" * 20_001}, "message_too_long"),
        ({"sender": "a", "attachments": "photo.jpg"}, "invalid_attachments"),
        ({"sender": "a", "attachments": {"data": "AAAA"}}, "invalid_attachments"),
        ({"sender": "a", "attachments": ["AAAA"]}, "invalid_attachment"),
        ({"sender": "a", "attachments": [{}]}, "invalid_attachment"),
        ({"sender": "a", "attachments": [{"data": "AAAA", "id": "ab" * 32}]}, "invalid_attachment"),
        ({"sender": "a", "attachments": [{"data": 1234}]}, "invalid_attachment"),
        ({"sender": "a", "attachments": [{"data": "AAAA", "name": ["x"]}]}, "invalid_attachment"),
        ({"sender": "a", "attachments": [{"id": 7}]}, "invalid_reference"),
    ],
)
async def test_malformed_json_requests(served: Served, payload: Any, code: str) -> None:
    resp = await served.post_json(payload)
    assert resp.status == 400
    assert (await error_of(resp))["code"] == code
    assert served.bot.messages == []


async def test_wrong_content_type_and_empty_body(served: Served) -> None:
    url = served.base + "webhook"
    resp = await served.http.post(url, data=b"hello", headers={"Content-Type": "text/plain"})
    assert resp.status == 415 and (await error_of(resp))["code"] == "unsupported_media_type"
    resp = await served.http.post(url, data=b"", headers={"Content-Type": "application/json"})
    assert resp.status == 400


async def test_a_long_text_of_10000_characters_is_fine(served: Served) -> None:
    resp = await served.post_json({"sender": "a", "message": "banana " * 1428})
    assert resp.status == 200


# --------------------------------------------------------------------------------------------------------
# The base64 syntax check
# --------------------------------------------------------------------------------------------------------
def test_base64_syntax_check() -> None:
    assert looks_like_base64(b64(b"hello world"))
    assert looks_like_base64("data:image/png;base64," + b64(b"x"))
    assert looks_like_base64(base64.urlsafe_b64encode(b"\xfb\xff\xfe").decode())
    assert not looks_like_base64("abc$")
    assert not looks_like_base64("a")
    assert not looks_like_base64("data:image/png,rawtext")



def test_the_public_body_field_for_uploads_is_the_rests_own_constant() -> None:
    """Clients send `{"attachments": [...]}`: a public API name, kept apart from the internal metadata key
    (`assistant.keys.ATTACHMENTS`), so renaming that key cannot rename the HTTP field."""
    assert parsing.BODY_ATTACHMENTS == "attachments"
    parser = parsing.RequestParser(ChannelSettings(), max_attachments=10)
    body = json.dumps({"sender": "a", "attachments": [{"type": "image", "data": b64(make_jpeg())}]})
    message = parser.parse("application/json", body.encode("utf-8"))
    assert [(upload.kind, upload.declared_type) for upload in message.uploads] == [("base64", "image")]
