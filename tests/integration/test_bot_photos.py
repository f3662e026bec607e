"""Photos end to end: upload store → NLU (ImageFeaturizer, ProductRecognizer, AttachmentRouter) → rules →
actions → database.

Photos are stored through `media.attachments.default_store()`, the store the ImageFeaturizer of this
process reads (ATTACHMENT_DIR or var/uploads), and referenced in the message metadata as a channel would.

- With the shared test model, whatever its catalog: a photo alone gets an answer about a product or a question
  back, a damaged photo the friendly rejection, an empty message its own reply; the real banana photo of
  ../shared/cases (skipped when absent) is recognised as the banana, by k-NN or by its ImageNet label.
- With a model trained on a catalog that has generated photos of three products (the session's test database,
  photos in a temporary image root; Rasa's cache retrains only the ProductRecognizer when the test model was
  trained before with the same settings), a new shot of one of them is recognised by k-NN: "do you have
  this?", "how much is this?" and the photo alone are answered for that product from the database.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Tuple

import pytest

from tests.integration.conftest import ROOT, Conversation

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Products given generated catalog photos, and the drawing of each.
PHOTO_PRODUCTS = {"FRU-PINEAPPLE": "rings", "VEG-LEEK": "stripes", "FRU-KIWI": "checks"}
TECHNICAL_PROBLEM = "something went wrong on our side"


def drawing(kind: str, size: Tuple[int, int] = (480, 360), shift: int = 0, quality: int = 92) -> bytes:
    """A generated "product photo" as JPEG bytes: concentric rings, diagonal stripes or a checkerboard, in a
    palette of its own; `shift` moves the pattern (pixels), so another shot of the same product differs."""
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("RGB", size, (250, 248, 240))
    draw = ImageDraw.Draw(image)
    if kind == "rings":
        for radius, colour in zip(range(170, 0, -24), [(240, 170, 20), (120, 70, 10)] * 4):
            cx, cy = width // 2 + shift, height // 2
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
    elif kind == "stripes":
        for x in range(-height, width, 40):
            draw.polygon([(x + shift, 0), (x + 20 + shift, 0), (x + 20 + height + shift, height),
                          (x + height + shift, height)], fill=(30, 140, 60))
    else:
        for row in range(0, height, 45):
            for col in range(0, width, 45):
                if (row // 45 + col // 45) % 2 == 0:
                    draw.rectangle((col + shift, row, col + 44 + shift, row + 44), fill=(90, 60, 160))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def attach(data: bytes, name: str = "photo.jpg") -> Dict:
    """Stores `data` in the process-wide upload store; returns the message metadata referencing it."""
    from media import default_store

    ref = default_store().save(data, name=name)
    return {"attachments": [ref.to_metadata()]}


def plant_damaged_photo() -> Dict:
    """A truncated JPEG placed in the store's layout directly (the store itself refuses to save it), with its
    sidecar, as an older version or a broken disk would have left it; returns the metadata referencing it."""
    from media import AttachmentRef, default_store

    data = drawing("rings")[:400]
    digest = hashlib.sha256(data).hexdigest()
    shard = default_store().root / digest[:2]
    shard.mkdir(parents=True, exist_ok=True)
    (shard / digest).write_bytes(data)
    sidecar = {"id": digest, "type": "image", "mime_type": "image/jpeg", "size": len(data),
               "name": "broken.jpg"}
    (shard / f"{digest}.json").write_text(json.dumps(sidecar), encoding="utf-8")
    ref = AttachmentRef(type="image", id=digest, mime_type="image/jpeg", size=len(data), name="broken.jpg")
    return {"attachments": [ref.to_metadata()]}


def damaged_message() -> str:
    from media import AttachmentError

    return AttachmentError("damaged", "test", attachment_type="image").user_message


# ------------------------------------------------------------------------------------ the shared test model
def test_a_photo_alone_gets_a_product_answer_or_a_question(conversation):
    reply = conversation.say_text("", metadata=attach(drawing("rings", shift=7), "pattern.jpg"))
    assert reply
    assert TECHNICAL_PROBLEM not in reply
    assert any(
        phrase in reply
        for phrase in ("this looks like", "not quite sure which product", "couldn't tell which product")
    ), reply
    latest = conversation.tracker().latest_message.parse_data
    assert latest["intent"]["name"] == "send_image"
    assert latest["product_recognition"]["status"] in ("recognised", "uncertain", "unknown")


def test_a_damaged_photo_gets_the_friendly_rejection(conversation, repository):
    tickets = len(repository.list_tickets(conversation.sender_id))
    reply = conversation.say_text("", metadata=plant_damaged_photo())
    assert damaged_message().lower() in reply
    assert conversation.tracker().latest_message.parse_data["intent"]["name"] == "attachment_problem"
    assert len(repository.list_tickets(conversation.sender_id)) == tickets
    # the conversation goes on
    assert "banana" in conversation.say_text("how much are bananas")


def test_an_empty_message_gets_its_own_reply(conversation):
    reply = conversation.say_text("")
    assert "your message was empty" in reply


def test_the_real_banana_photo_is_recognised(conversation, shared_dir, repository):
    photo = shared_dir / "cases" / "images" / "banana_ok.jpg"
    if not photo.is_file():
        pytest.skip(f"{photo} not found")
    reply = conversation.say_text("", metadata=attach(photo.read_bytes(), "banana_ok.jpg"))
    assert "this looks like banana" in reply, reply
    reply = conversation.say_text("is it in stock?")
    assert "banana" in reply and TECHNICAL_PROBLEM not in reply


def test_a_one_pixel_image_gets_an_answer(conversation, shared_dir):
    photo = shared_dir / "cases" / "images" / "one_pixel.png"
    if not photo.is_file():
        pytest.skip(f"{photo} not found")
    reply = conversation.say_text("", metadata=attach(photo.read_bytes(), "one_pixel.png"))
    assert reply and TECHNICAL_PROBLEM not in reply


# ------------------------------------------------------------------------------------ a catalog with photos
@pytest.fixture(scope="module")
def catalog_photos(repository, tmp_path_factory) -> Path:
    """Generated photos of PHOTO_PRODUCTS in a temporary image root, recorded in the session's database."""
    root = tmp_path_factory.mktemp("catalog-images")
    for sku, kind in PHOTO_PRODUCTS.items():
        data = drawing(kind)
        digest = hashlib.sha256(data).hexdigest()
        relative = f"{digest[:2]}/{digest}.jpg"
        (root / digest[:2]).mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
        repository.add_product_image(sku, relative, digest)
    return root


@pytest.fixture(scope="module")
def photo_agent(catalog_photos, bot_database_url, action_endpoint, tmp_path_factory):
    """The assistant trained on the catalog with photos (same pipeline and epochs as the test model)."""
    from rasa.core.agent import Agent

    out = tmp_path_factory.mktemp("photo-model")
    env = {**os.environ, "DATABASE_URL": bot_database_url, "CATALOG_IMAGE_DIR": str(catalog_photos),
           "CATALOG_SNAPSHOT": str(out / "catalog-snapshot.json")}  # the project's own snapshot stays as it is
    with (out / "train.log").open("w") as log:
        code = subprocess.call(
            [sys.executable, str(ROOT / "scripts" / "train_if_changed.py"), "--max-epochs",
             os.environ.get("TEST_MAX_EPOCHS", "40"), "--out", str(out), "--name", "photos", "--force"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    assert code == 0, (out / "train.log").read_text()[-3000:]
    model = max(out.glob("photos-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return Agent.load(str(model), action_endpoint=action_endpoint)


@pytest.fixture
def photo_conversation(photo_agent, request) -> Conversation:
    import time

    return Conversation(photo_agent, f"photo-{request.node.name}-{time.time_ns()}")


def test_do_you_have_this_is_answered_for_the_photographed_product(photo_conversation, repository):
    product = repository.get_product("FRU-PINEAPPLE")
    photo = attach(drawing("rings", shift=9, quality=80))
    reply = photo_conversation.say_text("do you have this?", metadata=photo)
    parse = photo_conversation.tracker().latest_message.parse_data
    recognition = parse["product_recognition"]
    found = (recognition["status"], recognition["method"], recognition["sku"])
    assert found == ("recognised", "knn", "FRU-PINEAPPLE")
    assert any(e.get("extractor") == "ProductRecognizer" and e.get("sku") == "FRU-PINEAPPLE"
               for e in parse["entities"])
    assert product.name.lower() in reply, reply
    assert "in stock" in reply or "left" in reply, reply


def test_how_much_is_this_gives_the_price_from_the_database(photo_conversation, repository):
    product = repository.get_product("VEG-LEEK")
    reply = photo_conversation.say_text("how much is this?", metadata=attach(drawing("stripes", shift=11)))
    assert product.name.lower() in reply, reply
    assert f"{product.price:.2f}" in reply, reply


def test_a_photo_alone_names_the_product_and_offers_questions(photo_conversation, repository):
    product = repository.get_product("FRU-KIWI")
    messages = photo_conversation.say("", metadata=attach(drawing("checks", shift=13, size=(500, 380))))
    text = " ".join(m.get("text") or "" for m in messages).lower()
    assert f"this looks like {product.name.lower()}" in text, text
    payloads = [b["payload"] for m in messages for b in m.get("buttons") or []]
    assert f'/similar_products{{"product": "{product.name}"}}' in payloads
    # The price button's payload, as the web chat sends it back.
    reply = photo_conversation.say_text(f'/product_price{{"product": "{product.name}"}}')
    assert f"{product.price:.2f}" in reply, reply


def test_similar_products_for_a_named_product(photo_conversation):
    reply = photo_conversation.say_text("anything similar to oat milk?")
    assert "similar to oatly oat milk" in reply, reply
    assert "•" in reply and TECHNICAL_PROBLEM not in reply
