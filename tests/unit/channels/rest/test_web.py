"""`channels.rest.web`: stored files by id only, and the web chat's page, script, style sheet and widget."""
from __future__ import annotations

import json

import pytest

from channels.rest.web import SERVED_MIME_TYPES
from media import AUDIO_DEMUXER_MIME, IMAGE_MIME, AttachmentStore
from tests.unit.channels import make_jpeg
from tests.unit.channels.rest import Served, make_channel, serve, yarl_url


# --------------------------------------------------------------------------------------------------------
# Files by id
# --------------------------------------------------------------------------------------------------------
async def test_stored_file_is_served_by_id_with_its_mime_and_nosniff(served: Served, store: AttachmentStore):
    photo = make_jpeg(shade=33)
    ref = store.save(photo, name="x.jpg")
    resp = await served.http.get(served.base + "files/" + ref.id)
    assert resp.status == 200
    assert await resp.read() == photo
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in resp.headers["Content-Security-Policy"]


def test_every_type_the_store_produces_is_served_and_nothing_else() -> None:
    produced = {*IMAGE_MIME.values(), *AUDIO_DEMUXER_MIME.values()}  # what media.sniff can record
    assert SERVED_MIME_TYPES == produced
    assert SERVED_MIME_TYPES == {
        "image/jpeg", "image/png", "image/webp", "image/gif", "audio/ogg", "audio/webm", "audio/mp4",
        "audio/3gpp", "audio/mpeg", "audio/wav", "audio/flac", "audio/aac",
    }


async def test_a_stored_type_outside_the_served_ones_is_sent_as_bytes(served: Served, store: AttachmentStore):
    ref = store.save(make_jpeg(shade=34), name="x.jpg")
    sidecar = store.path_for(ref.id).with_suffix(".json")
    info = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**info, "mime_type": "text/html"}))
    resp = await served.http.get(served.base + "files/" + ref.id)
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize(
    "path",
    [
        "files/../../../../etc/passwd",
        "files/..%2F..%2F..%2Fetc%2Fpasswd",
        "files/%2Fetc%2Fpasswd",
        "files/" + "ab" * 32 + "/../../outside/secret.txt",
        "files/" + "ab" * 32,
        "files/" + "AB" * 32,
        "files/.tmp",
        "files/",
    ],
)
async def test_file_serving_is_by_id_only(served: Served, path: str) -> None:
    url = yarl_url(served.base + path)
    resp = await served.http.get(url)
    assert resp.status == 404
    assert b"TOP-SECRET" not in await resp.read()


# --------------------------------------------------------------------------------------------------------
# The web page
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, content_type",
    [
        ("chat", "text/html; charset=utf-8"),
        ("chat/", "text/html; charset=utf-8"),
        ("chat.js", "text/javascript; charset=utf-8"),
        ("chat.css", "text/css; charset=utf-8"),
        ("widget.js", "text/javascript; charset=utf-8"),
    ],
)
async def test_web_files_are_served_with_their_content_types(served: Served, path: str, content_type: str):
    resp = await served.http.get(served.base + path)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == content_type
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    body = await resp.text()
    if path.startswith("chat") and content_type.startswith("text/html"):
        assert 'src="/webhooks/multimodal/chat.js"' in body
        assert 'href="/webhooks/multimodal/chat.css"' in body
        assert "__BASE__" not in body
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp
        for external in ("http://", "https://", "//fonts."):
            assert external not in body.replace("http://www.w3.org", "")


async def test_only_the_known_web_files_are_served(served: Served) -> None:
    for path in ("index.html", "web/chat.js", "rest.py", "../rest.py", "chat.js/../../rest.py"):
        resp = await served.http.get(yarl_url(served.base + path))
        assert resp.status in (404, 405), path


async def test_web_chat_can_be_turned_off(store: AttachmentStore) -> None:
    async with serve(make_channel(store, web_chat=False)) as served:
        assert (await served.http.get(served.base + "chat")).status == 404
        assert (await served.post_json({"sender": "a", "message": "hi"})).status == 200

