"""Similar products: catalog products ranked against the product a message is about.

The reference is the recognised photo product (or, when unsure, the photo itself), else the `product` entity
of the text, else the text without request words ("anything similar to oat milk?" → "oat milk"). Words are
resolved to a catalog product with the repository's tolerant matcher (`shop.matching`) or, failing that,
encoded with the text encoder. A product's score is the weighted mean of the text cosine similarity and, where
both sides have photos, the cosine similarity of plain image embeddings (the photo, or the reference's mean
catalog photo).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from rasa.shared.nlu.constants import ENTITY_ATTRIBUTE_TYPE, ENTITY_ATTRIBUTE_VALUE, EXTRACTOR

from assistant.keys import PRODUCT_ENTITY, RECOGNISED
from components.products.index import CatalogIndex

#: `similar_to["source"]`: where the reference product came from.
SOURCE_PHOTO, SOURCE_ENTITY, SOURCE_TEXT = "photo", "entity", "text"
#: Characters of the words naming a product kept (longer messages are not product references).
TEXT_MAX_CHARS = 256

#: Words that ask for alternatives rather than name a product ("anything similar to oat milk?").
_REQUEST_WORDS = frozenset(
    """
    similar similarly like likes alike alternative alternatives alternate instead substitute substitutes
    replacement replacements replace swap other others another else something anything things thing stuff show
    me see find give recommend recommendation recommendations suggest suggestion suggestions option options do
    you have got any some more same kind sort type types close closest comparable equivalent this that these
    those it one ones what which is are there to for of the a an than as with please could can would i we want
    need looking look product products item items
    """.split()
)
_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)

#: Encodes the words of a query into a unit text vector `float32 (hidden,)`, or None when it cannot.
QueryEncoder = Callable[[str], Optional[np.ndarray]]


@dataclass(frozen=True)
class SimilarityWeights:
    """How the similar-products score is made.

    Attributes:
        text_weight: weight of the text cosine similarity (>= 0).
        image_weight: weight of the photo cosine similarity (>= 0; not both 0).
        top_n: products returned at most.
        use_images: whether photo embeddings may be compared (False when the index was embedded with other
            image weights than the ImageFeaturizer's).
    """

    text_weight: float
    image_weight: float
    top_n: int
    use_images: bool = True


def named_product(
    entities: Sequence[Mapping[str, Any]], text: Any, own_extractor: str, from_payload: bool = False
) -> Optional[Tuple[str, str]]:
    """The words naming the reference product and where they came from ("entity" or "text").

    Args:
        entities: the message's entities (or a `/intent{...}` payload's).
        text: the message text.
        own_extractor: the recogniser's name; its own (photo) entities are not a reference.
        from_payload: the entities come from a button payload: no fall-back to the text.
    """
    for entity in entities:
        value = entity.get(ENTITY_ATTRIBUTE_VALUE)
        if (
            entity.get(ENTITY_ATTRIBUTE_TYPE) == PRODUCT_ENTITY
            and entity.get(EXTRACTOR) != own_extractor
            and isinstance(value, str)
            and value.strip()
        ):
            return " ".join(value.split())[:TEXT_MAX_CHARS], SOURCE_ENTITY
    if from_payload or not isinstance(text, str) or not text.strip() or len(text) > 4 * TEXT_MAX_CHARS:
        return None
    words = [w for w in _WORD_RE.findall(text) if w.casefold() not in _REQUEST_WORDS]
    remainder = " ".join(words)[:TEXT_MAX_CHARS]
    from shop import matching

    return (remainder, SOURCE_TEXT) if matching.query_tokens(remainder) else None


def match_sku(words: str, index: CatalogIndex) -> Optional[str]:
    """The sku of the catalog product `words` name (`shop.matching.rank` at its match threshold), or None."""
    from shop import matching

    ranked = matching.rank(words, index.products)
    if ranked and ranked[0][0] >= matching.MATCH_THRESHOLD:
        return ranked[0][1].sku
    return None


def rank_similar(
    index: CatalogIndex,
    weights: SimilarityWeights,
    reference_sku: Optional[str],
    text_vector: Optional[np.ndarray],
    photo: Optional[np.ndarray],
) -> List[Dict[str, Any]]:
    """`[{"sku", "score"}]` by the weighted mean of text and photo cosine similarities, best first.

    Args:
        index: the catalog index.
        weights: the score's weights and length.
        reference_sku: the reference product (excluded from the ranking), if known.
        text_vector: a unit text vector `float32 (hidden,)` for a reference that is no catalog product.
        photo: the photo's L2-normalised plain embedding `float32 (1280,)`, if the reference is a photo.
    """
    n = len(index.products)
    ref = index.sku_index.get(reference_sku) if reference_sku else None
    total = np.zeros((n,), dtype=np.float64)
    weight = np.zeros((n,), dtype=np.float64)
    if index.has_text and weights.text_weight > 0:
        vector = index.text_embeddings[ref] if ref is not None else text_vector
        if vector is not None:
            total += weights.text_weight * (index.text_embeddings @ vector)
            weight += weights.text_weight
    if index.has_images and weights.image_weight > 0 and weights.use_images:
        vector = photo if photo is not None else (
            index.image_centroids[ref] if ref is not None and index.has_image[ref] else None
        )
        if vector is not None:
            total += np.where(index.has_image, weights.image_weight * (index.image_centroids @ vector), 0.0)
            weight += np.where(index.has_image, weights.image_weight, 0.0)
    usable = weight > 0
    if ref is not None:
        usable[ref] = False
    if not usable.any():
        return []
    scores = np.where(usable, total / np.maximum(weight, 1e-12), -np.inf)
    order = np.argsort(-scores, kind="stable")[: weights.top_n]
    return [{"sku": index.products[i].sku, "score": round(float(scores[i]), 4)} for i in order if usable[i]]


def similar_products(
    index: CatalogIndex,
    weights: SimilarityWeights,
    encode_query: QueryEncoder,
    own_extractor: str,
    text: Any,
    entities: Sequence[Mapping[str, Any]],
    payload_entities: Optional[Sequence[Mapping[str, Any]]] = None,
    recognition: Optional[Mapping[str, Any]] = None,
    photo: Optional[np.ndarray] = None,
) -> Tuple[Optional[Dict[str, Any]], List[Dict[str, Any]]]:
    """Ranks catalog products against the product a message is about.

    Args:
        index: the catalog index.
        weights: the score's weights and length.
        encode_query: encodes words that name no catalog product (see `QueryEncoder`).
        own_extractor: the recogniser's name (its photo entities are not a text reference).
        text: the message text.
        entities: the message's entities.
        payload_entities: entities of a `/intent{...}` payload (replace `entities`; no fall-back to the text).
        recognition: this message's `product_recognition`, if it has a photo.
        photo: the photo's L2-normalised `float32 (1280,)` embedding (no projection), if usable.

    Returns:
        `(similar_to, [{"sku", "score"}, ...])` with `similar_to = {"sku", "name", "query", "source"}`;
        `(None, [])` when the message names no product.
    """
    if not index.products:
        return None, []
    reference_sku: Optional[str] = None
    text_vector: Optional[np.ndarray] = None
    reference: Dict[str, Any] = {"sku": None, "name": None, "query": None, "source": None}
    if recognition is not None and (recognition.get("status") == RECOGNISED or photo is not None):
        reference["source"] = SOURCE_PHOTO
        if recognition.get("status") == RECOGNISED:
            reference_sku = recognition.get("sku")
    else:
        photo = None
        chosen = payload_entities if payload_entities is not None else entities
        wanted = named_product(chosen, text, own_extractor, from_payload=payload_entities is not None)
        if wanted is None:
            return None, []
        words, source = wanted
        reference.update(query=words, source=source)
        reference_sku = match_sku(words, index)
        if reference_sku is None and index.has_text:
            text_vector = encode_query(words)
    if reference_sku is not None and reference_sku in index.sku_index:
        product = index.products[index.sku_index[reference_sku]]
        reference.update(sku=product.sku, name=product.name)
    ranked = rank_similar(index, weights, reference.get("sku"), text_vector, photo)
    if not ranked and reference["sku"] is None:
        return None, []
    return reference, ranked
