"""Tests for `media.schema`: the attachment reference, display names and `parse_attachments`."""
from __future__ import annotations

import hashlib
import logging
from typing import Dict

import pytest
from pydantic import ValidationError

from media import AttachmentRef, parse_attachments, sanitise_name
from media.limits import MiB

VALID_ID = hashlib.sha256(b"x").hexdigest()


# ------------------------------------------------------------------------------------------------------------
# AttachmentRef schema
# ------------------------------------------------------------------------------------------------------------
def test_ref_accepts_documented_shapes_and_normalises():
    ref = AttachmentRef(type="image", id=VALID_ID, mime_type="Image/JPEG", size=183211, name="photo.jpg")
    assert ref.to_metadata() == {
        "type": "image", "id": VALID_ID, "mime_type": "image/jpeg", "size": 183211, "name": "photo.jpg"
    }
    url_ref = AttachmentRef(
        type="audio", url="https://cdn.fbsbx.com/v/a.mp4", mime_type="audio/webm;codecs=opus"
    )
    assert url_ref.mime_type == "audio/webm" and url_ref.id is None
    assert AttachmentRef(type="image", id=VALID_ID, mime_type="not a mime").mime_type is None


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "image"},  # neither id nor url
        {"type": "image", "id": VALID_ID, "url": "https://api.telegram.org/f"},  # both
        {"type": "video", "id": VALID_ID},
        {"type": "image", "id": VALID_ID.upper()},
        {"type": "image", "id": "../../etc/passwd"},
        {"type": "image", "id": "/etc/passwd"},
        {"type": "image", "id": VALID_ID[:-1]},
        {"type": "image", "url": "http://api.telegram.org/f"},
        {"type": "image", "url": "file:///etc/passwd"},
        {"type": "image", "url": "https://api.telegram.org/a b"},
        {"type": "image", "id": VALID_ID, "size": -1},
    ],
)
def test_ref_rejects_invalid_shapes(fields: Dict):
    with pytest.raises(ValidationError):
        AttachmentRef(**fields)


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("photo.jpg", "photo.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
        ("/abs/path/voice.ogg", "voice.ogg"),
        ("..", None),
        (".hidden", "hidden"),
        ("evil\u202egpj.exe\x00", "evilgpj.exe"),
        ("zero\u200bwidth.png", "zerowidth.png"),
        ("", None),
        (42, None),
    ],
)
def test_names_are_display_only(raw, clean):
    assert sanitise_name(raw) == clean


def test_long_names_are_cut_keeping_the_extension():
    name = sanitise_name("a" * 500 + ".jpeg")
    assert len(name) == 120 and name.endswith(".jpeg")


# ------------------------------------------------------------------------------------------------------------
# parse_attachments
# ------------------------------------------------------------------------------------------------------------
def deep(levels: int, leaf, kind: str = "dict"):
    value = leaf
    for _ in range(levels):
        value = {"a": value} if kind == "dict" else [value]
    return value


@pytest.mark.parametrize(
    "metadata",
    [None, "attachments", '{"attachments": [1]}', ["attachments"], 42, 3.5, b"x", {}, {"other": 1},
     {"attachments": None}, {"attachments": []}],
)
def test_metadata_without_attachments(metadata):
    assert parse_attachments(metadata) == ([], [])


@pytest.mark.parametrize("value", ["x", 5, True, 2.5])
def test_attachments_that_are_not_a_list(value):
    refs, problems = parse_attachments({"attachments": value})
    assert refs == [] and [p.code for p in problems] == ["invalid_reference"]


def test_a_single_attachment_object_is_accepted():
    refs, problems = parse_attachments({"attachments": {"type": "image", "id": VALID_ID}})
    assert [r.id for r in refs] == [VALID_ID] and problems == []


def test_one_hundred_attachments_keep_the_first_ten(caplog):
    items = [{"type": "image", "id": hashlib.sha256(str(i).encode()).hexdigest()} for i in range(100)]
    refs, problems = parse_attachments({"attachments": items})
    assert [r.id for r in refs] == [item["id"] for item in items[:10]]
    assert [p.code for p in problems] == ["too_many"]
    assert "10 attachments" in problems[0].user_message


def test_ten_thousand_deep_nesting_does_not_recurse():
    for kind in ("dict", "list"):
        assert parse_attachments(deep(10_000, "x", kind)) == ([], [])
        refs, problems = parse_attachments({"attachments": deep(10_000, {"type": "image"}, "list")})
        assert refs == [] and [p.code for p in problems] == ["invalid_reference"]
        refs, problems = parse_attachments({"attachments": [deep(10_000, "x", kind)]})
        assert refs == [] and [p.code for p in problems] == ["invalid_reference"]
    refs, problems = parse_attachments(
        {"attachments": [
            {"type": "image", "id": VALID_ID, "name": deep(10_000, "x"), "extra": deep(10_000, 1)}
        ]}
    )
    assert [r.id for r in refs] == [VALID_ID] and refs[0].name is None and problems == []
    refs, problems = parse_attachments({"attachments": [{"type": deep(10_000, "x"), "id": VALID_ID}]})
    assert refs == [] and [p.code for p in problems] == ["unsupported_type"]


def test_mixed_valid_and_invalid_items(caplog):
    caplog.set_level(logging.WARNING, logger="media")
    metadata = {
        "attachments": [
            {"type": "image", "id": VALID_ID, "mime_type": "image/jpeg", "size": 183211, "name": "photo.jpg"},
            "not a dict",
            {"type": "video", "id": VALID_ID},
            {"type": "image", "id": "../../etc/passwd"},
            {"type": "image"},
            {"type": "audio", "id": VALID_ID, "size": 50 * MiB},  # declared size over the audio limit
            {"type": "image", "url": "https://evil.example/x.jpg"},
            {"type": "image", "url": "https://169.254.169.254/latest/meta-data/"},
            {"type": "audio", "url": "http://api.telegram.org/file/bot1:SECRET/voice.oga"},
            {"type": "audio", "url": "https://cdn.fbsbx.com/v/audioclip.mp4", "size": "1234"},
        ]
    }
    refs, problems = parse_attachments(metadata)
    assert [(r.type, r.id or r.url) for r in refs] == [
        ("image", VALID_ID), ("audio", "https://cdn.fbsbx.com/v/audioclip.mp4")
    ]
    assert refs[1].size == 1234
    assert [p.code for p in problems] == [
        "invalid_reference", "unsupported_type", "invalid_reference", "invalid_reference",
        "too_large", "forbidden_url", "forbidden_url", "invalid_reference",
    ]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == len(problems)
    assert "SECRET" not in caplog.text


def test_parse_never_raises_on_hostile_mappings():
    class Exploding(dict):
        def get(self, *args, **kwargs):
            raise RuntimeError("boom")

    refs, problems = parse_attachments(Exploding())
    assert refs == [] and [p.code for p in problems] == ["invalid_reference"]
