"""Catalog photos and texts embedded exactly as the pipeline's featurizers embed a customer's.

- Photos: EfficientNet-Lite0 (`encoders.image`) with the ImageFeaturizer's weights and pre-processing
  (`media.images.decode_image`, `encoders.image.crop_and_resize`), on the network that featurizer loads once
  per process: a catalog photo and a customer photo of the same product land in one embedding space.
- Texts: the TransformerTextFeaturizer's encoder (`encoders.text`), truncated to its `max_length` word pieces
  and pooled with its `pooling` / `normalize` settings (`encoders.text.encode_sentences`, `SentencePooling`):
  a product's text embedding is the featurizer's sentence feature of the same text.

Both read the featurizer's config as the graph schema has it (the ProductRecognizer finds the node), defaults
filled in by `image_encoder_config` / `text_encoder_config`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np

from components.products import NAME

logger = logging.getLogger(__name__)

#: Characters of a text kept before tokenising (the tokenizer truncates to `max_length` pieces anyway).
TEXT_MAX_CHARS = 1024


def image_encoder_config(node_config: Mapping[str, Any]) -> Dict[str, Any]:
    """The ImageFeaturizer's config with its defaults filled in (`weights_path`, `image_size`, ...)."""
    from components.image_featurizer import ImageFeaturizer

    return {**ImageFeaturizer.get_default_config(), **dict(node_config)}


def text_encoder_config(node_config: Mapping[str, Any]) -> Dict[str, Any]:
    """The TransformerTextFeaturizer's config with its defaults filled in (`model_path`, `pooling`, ...)."""
    from components.text_featurizer import TransformerTextFeaturizer

    return {**TransformerTextFeaturizer.get_default_config(), **dict(node_config)}


def encode_catalog_images(
    paths: Sequence[Path], encoder_config: Mapping[str, Any], max_bytes: int, batch_size: int
) -> Tuple[np.ndarray, List[bool]]:
    """EfficientNet-Lite0 embeddings of catalog photos, exactly as the ImageFeaturizer embeds customer photos.

    A photo that is too large, damaged or not an image is skipped with one log line.

    Args:
        paths: photo files.
        encoder_config: the ImageFeaturizer's config (`weights_path`, `image_size`, `resize_size`,
            `max_pixels`, `batch_size`; missing keys take its defaults).
        max_bytes: largest photo file read (bytes).
        batch_size: photos decoded before each run of the network (count).

    Returns:
        `(embeddings float32 (n_ok, 1280), ok)` where `ok[i]` says whether `paths[i]` was encoded.

    Raises:
        encoders.errors.EncoderError: if the weights cannot be loaded.
    """
    from encoders.image import (
        EMBEDDING_DIMS,
        crop_and_resize,
        encode_images,
        load_model,
        resolve_weights_path,
    )
    from media import AttachmentError, AttachmentLimits
    from media.images import decode_image

    config = image_encoder_config(encoder_config)
    net = load_model(resolve_weights_path(config["weights_path"]), config["image_size"]).net
    max_pixels = config["max_pixels"] or AttachmentLimits().image_max_pixels
    ok: List[bool] = []
    chunks: List[np.ndarray] = []
    pending: List[np.ndarray] = []
    for path in paths:
        try:
            if path.stat().st_size > max_bytes:
                raise AttachmentError("too_large", f"{path.stat().st_size} bytes", attachment_type="image")
            image = decode_image(path.read_bytes(), max_pixels, config["resize_size"])
            pending.append(crop_and_resize(image, config["image_size"], config["resize_size"]))
            ok.append(True)
        except (AttachmentError, OSError) as error:
            logger.warning("%s: catalog photo %s skipped (%s)", NAME, path.name, error)
            ok.append(False)
        if len(pending) >= batch_size:
            chunks.append(encode_images(net, pending, config["batch_size"])[0])
            pending = []
    if pending:
        chunks.append(encode_images(net, pending, config["batch_size"])[0])
    if not chunks:
        return np.zeros((0, EMBEDDING_DIMS), dtype=np.float32), ok
    return np.concatenate(chunks).astype(np.float32), ok


def encode_catalog_texts(texts: Sequence[str], encoder_config: Mapping[str, Any]) -> np.ndarray:
    """Sentence embeddings of catalog texts: the TransformerTextFeaturizer's sentence feature of each text.

    The text is cut to `TEXT_MAX_CHARS` characters, tokenised and truncated to the featurizer's `max_length`
    word pieces (its first window), encoded by its model (loaded once per process) and pooled with its
    `pooling` and `normalize` settings (`encoders.text.encode_sentences`).

    Args:
        texts: the texts.
        encoder_config: the TransformerTextFeaturizer's config (`model_path`, `max_length`, `pooling`,
            `normalize`, `batch_size`; missing keys take its defaults).

    Returns:
        `float32 (len(texts), hidden_size)`.

    Raises:
        encoders.errors.EncoderError: (an InvalidConfigException) if the model cannot be found or loaded.
    """
    from encoders.text import SentencePooling, encode_sentences, load_model, resolve_model_path

    config = text_encoder_config(encoder_config)
    loaded = load_model(resolve_model_path(config["model_path"]))
    clipped = [text[:TEXT_MAX_CHARS] for text in texts]
    return encode_sentences(clipped, loaded, SentencePooling.from_config(config), int(config["max_length"]),
                            int(config["batch_size"]))


def encoder_signature(image_config: Mapping[str, Any]) -> Dict[str, Any]:
    """What makes photo embeddings comparable: the weight file's sha256 and the pre-processing sizes; {} when
    the weights cannot be found."""
    from assistant.fingerprints import file_sha256
    from encoders.errors import EncoderError
    from encoders.image import resolve_weights_path

    config = image_encoder_config(image_config)
    try:
        weights = file_sha256(resolve_weights_path(config.get("weights_path")))
    except EncoderError:
        return {}
    return {"weights_sha256": weights, "image_size": int(config["image_size"]),
            "resize_size": int(config["resize_size"])}
