"""`channels.rest.forms` (multipart framing by python-multipart) and multipart/URL-encoded messages."""
from __future__ import annotations

import random
from typing import List, Optional, Tuple

import pytest

from channels.rest.forms import FormError, parse_form
from media import AttachmentStore
from tests.unit.channels import HAS_FFMPEG, make_audio, make_jpeg
from tests.unit.channels.rest import Served, error_of, sha256, stored_files


# --------------------------------------------------------------------------------------------------------
# Multipart
# --------------------------------------------------------------------------------------------------------
async def test_multipart_photo_and_voice_note(served: Served, store: AttachmentStore) -> None:
    photo = make_jpeg(shade=21)
    files = [("photo.jpg", photo, "image/jpeg")]
    if HAS_FFMPEG:
        voice = make_audio("ogg")
        files.append(("voice.webm", voice, "audio/webm"))  # the declared type is wrong; the content wins
    fields = {"sender": "carol", "message": "what is this?", "metadata": '{"locale": "en"}'}
    resp = await served.post_form(fields, files)
    assert resp.status == 200
    message = served.bot.last
    assert message.text == "what is this?" and message.sender_id == "api:carol"
    assert message.metadata["locale"] == "en"
    refs = message.metadata["attachments"]
    assert refs[0] == {"type": "image", "id": sha256(photo), "mime_type": "image/jpeg", "size": len(photo),
                       "name": "photo.jpg"}
    if HAS_FFMPEG:
        assert (refs[1]["type"], refs[1]["mime_type"]) == ("audio", "audio/ogg")
    assert {p.name for p in stored_files(store)} >= {sha256(photo), f"{sha256(photo)}.json"}


async def test_multipart_without_sender_or_with_bad_framing(served: Served) -> None:
    resp = await served.post_form({"message": "hi"}, [])
    assert resp.status == 400 and (await error_of(resp))["code"] == "missing_sender"
    for body in (b"garbage without boundaries", b"--xyz\r\nno-colon-header\r\n\r\nvalue\r\n--xyz--\r\n",
                 b"--xyz\r\nContent-Disposition: form-data; name=\"sender\"\r\n\r\nnever closed"):
        resp = await served.http.post(
            served.base + "webhook", data=body, headers={"Content-Type": "multipart/form-data; boundary=xyz"}
        )
        assert resp.status == 400 and (await error_of(resp))["code"] == "invalid_form"
    resp = await served.http.post(
        served.base + "webhook", data=b"x", headers={"Content-Type": "multipart/form-data"}
    )
    assert resp.status == 400


async def test_multipart_and_urlencoded_forms_without_files(served: Served) -> None:
    """As the web chat sends them (a signed conversation id, no token) and as an API caller may."""
    dora = await served.new_sender()
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="sender"\r\n\r\n' + dora.encode() + b'\r\n'
        b'--xyz\r\nContent-Disposition: form-data; name="message"\r\n\r\nhello there\r\n--xyz--\r\n'
    )
    resp = await served.http.post(
        served.base + "webhook", data=body, headers={"Content-Type": "multipart/form-data; boundary=xyz"}
    )
    assert resp.status == 200
    assert (served.bot.last.sender_id, served.bot.last.text) == (dora.split(".")[0], "hello there")
    auth = {"Authorization": f"Bearer {served.channel.expected_token()}"}
    resp = await served.http.post(
        served.base + "webhook", data={"sender": "ed", "message": "hi & bye"}, headers=auth
    )
    assert resp.status == 200
    assert (served.bot.last.sender_id, served.bot.last.text) == ("api:ed", "hi & bye")


async def test_multipart_bad_metadata(served: Served) -> None:
    for metadata in ("not json", '"a string"', "[1, 2]"):
        resp = await served.post_form({"sender": "a", "message": "x", "metadata": metadata}, [])
        assert resp.status == 400 and (await error_of(resp))["code"] == "invalid_metadata"


# --------------------------------------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------------------------------------
def test_multipart_parser() -> None:
    body = (
        b"preamble\r\n--b1\r\nContent-Disposition: form-data; name=\"sender\"\r\n\r\nann\r\n"
        b"--b1\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"\r\n"
        b"Content-Type: image/jpeg; q=1\r\n\r\n\x00\x01\r\n--b\r\n--b1--\r\nepilogue"
    )
    sender, photo = parse_form(body, "multipart/form-data; boundary=b1", max_parts=5)
    assert (sender.name, sender.filename, sender.text()) == ("sender", None, "ann")
    assert (photo.name, photo.filename, photo.content_type) == ("files", "a.jpg", "image/jpeg")
    assert bytes(photo.data) == b"\x00\x01\r\n--b"
    with pytest.raises(FormError):
        parse_form(body, "multipart/form-data; boundary=b1", max_parts=1)
    with pytest.raises(FormError):
        parse_form(body, "multipart/form-data", max_parts=5)
    header_bomb = b"--b1\r\nX: " + b"a" * 20_000 + b"\r\n\r\nv\r\n--b1--"
    with pytest.raises(FormError):
        parse_form(header_bomb, "multipart/form-data; boundary=b1", max_parts=5)



def _form_body(boundary: bytes, parts: List[Tuple[str, Optional[str], Optional[str], bytes]]) -> bytes:
    """A multipart/form-data body as browsers write it: ``(name, filename, content_type, data)`` per part."""
    body = b""
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        headers = f"Content-Disposition: {disposition}\r\n"
        if content_type is not None:
            headers += f"Content-Type: {content_type}\r\n"
        body += b"--" + boundary + b"\r\n" + headers.encode("utf-8") + b"\r\n" + data + b"\r\n"
    return body + b"--" + boundary + b"--\r\n"


@pytest.mark.parametrize("seed", range(25))
def test_random_forms_come_back_part_for_part(seed: int) -> None:
    """Property: whatever the part contents (CR, LF, dashes, near-boundaries), parsing gives them back."""
    rng = random.Random(seed)
    middle = "".join(rng.choice("abcXYZ019-_") for _ in range(rng.randint(1, 40)))
    boundary = f"----form{middle}Q".encode()  # "Q" is in no piece: the data never holds the whole boundary
    alphabet = [b"\r", b"\n", b"-", b"--", b"\r\n--", b"\r\n" + boundary[:-1], b"\x00", b"x", "é".encode()]
    parts = []
    for index in range(rng.randint(0, 12)):
        data = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        if rng.random() < 0.5:
            parts.append((f"field{index}", None, None, data))
        else:
            parts.append(("files", f"photo {index} ü.jpg", rng.choice(["image/jpeg", "audio/ogg"]), data))
    body = _form_body(boundary, parts)
    parsed = parse_form(body, f"multipart/form-data; boundary={boundary.decode()}", max_parts=len(parts) + 1)
    assert [(p.name, p.filename, p.content_type, bytes(p.data)) for p in parsed] == parts
    assert all(p.data.obj is body for p in parsed)  # views into the body, not copies


def test_form_limits_and_faults() -> None:
    content_type = "multipart/form-data; boundary=b1"
    three = _form_body(b"b1", [("a", None, None, b"1"), ("b", None, None, b"2"), ("c", None, None, b"3")])
    assert len(parse_form(three, content_type, max_parts=3)) == 3
    with pytest.raises(FormError, match="more than 2 form parts"):
        parse_form(three, content_type, max_parts=2)
    disposition = b"Content-Disposition: form-data; name=a\r\n"
    many_headers = b"--b1\r\n" + b"X-A: b\r\n" * 2000 + disposition + b"\r\nv\r\n--b1--"
    with pytest.raises(FormError):
        parse_form(many_headers, content_type, max_parts=5)
    nameless = b'--b1\r\nContent-Disposition: form-data; filename="a.jpg"\r\n\r\nv\r\n--b1--'
    with pytest.raises(FormError, match="name"):
        parse_form(nameless, content_type, max_parts=5)
    with pytest.raises(FormError, match="boundary"):
        parse_form(three, "multipart/form-data; boundary=" + "b" * 201, max_parts=5)
    with pytest.raises(FormError, match="boundary"):
        parse_form(three, "multipart/form-data; boundary=bö", max_parts=5)
    assert parse_form(b"--b1--\r\n", content_type, max_parts=5) == []


def test_rfc2231_file_names_and_raw_utf8_file_names() -> None:
    disposition = b"--b1\r\nContent-Disposition: form-data; name=files; "
    encoded = b"filename*=UTF-8''%D0%B1%D0%B0%D0%BD.jpg\r\n\r\nv\r\n"
    raw = b'filename="\xd0\xb1.jpg"\r\n\r\nw\r\n--b1--'
    body = disposition + encoded + disposition + raw
    first, second = parse_form(body, "multipart/form-data; boundary=b1", max_parts=5)
    assert (first.filename, second.filename) == ("бан.jpg", "б.jpg")
