"""`ProductRecognizer`: the catalog product in a customer's photo, and the catalog products similar to it.

Training (`train`) builds a `CatalogIndex` (components/products/index.py) from the catalog snapshot and
persists it with the model:

- the products (sku, name, kind, category, coarse category, description) and their photos from the snapshot
  file `shop.catalog_snapshot` writes from the shop database (`make db`, `make train`; the database itself is
  never opened here); without a usable snapshot, the seed catalog data/catalog/products.csv without photos
  (components/products/catalog.py);
- one EfficientNet-Lite0 embedding per catalog photo (files under the image root), computed with the
  ImageFeaturizer's weights and pre-processing as the graph schema configures them, so catalog photos and
  customer photos live in one embedding space, L2-normalised (components/products/embeddings.py);
- when the catalog has several photos per product (`lda_min_photos_per_product` on average), a shrinkage LDA
  projection learnt from them (components/products/knn.py);
- one sentence embedding per product ("name. kind. coarse category. description"): the
  TransformerTextFeaturizer's sentence feature of that text, with its model, `max_length`, `pooling` and
  `normalize` as the graph schema configures them, so catalog texts and messages share one space.

Inference (`process`), for a message with an accepted photo (`image_embeddings` from the ImageFeaturizer):

1. Local-mean k-NN over the catalog photos, softmax over products with `temperature` as the confidence
   (`knn_scores`, `softmax_ranking`). `k`, `temperature`, `min_confidence` and `min_similarity` are calibrated
   on the Grocery Store Dataset val photos (benchmarks/bench_images.py).
2. When the index has no photos, its nearest photo is less similar than `min_similarity` (plain features) or
   `min_similarity_projected` (projected ones), or k-NN is unsure and the ImageNet labels confidently name a
   product that has no catalog photo: the ImageFeaturizer's top-5 ImageNet labels are mapped to catalog
   products with `label_mapping` (components/products/labels.py).

The parse result gets `product_recognition` (always, for a photo):
`{"status": "recognised" | "uncertain" | "unknown", "method": "knn" | "imagenet_label" | None, "sku", "name",
"confidence", "candidates": [{"sku", "name", "confidence"}, ...]}`, and, when recognised, a `product` entity
`{"entity": "product", "value": <name>, "sku", "confidence", "method", "candidates", "extractor":
"ProductRecognizer"}`. Only a recognised product becomes an entity, so the `product` slot never takes a guess;
actions offer the candidates of an uncertain photo as buttons.

For the intent `similar_intent` (default `similar_products`; also a `/similar_products{"product": ...}` button
payload) the component ranks catalog products against the photo or the named product
(components/products/recommender.py): the parse result gets `similar_products: [{"sku", "score"}, ...]` (best
first, reference excluded) and `similar_to: {"sku", "name", "query", "source": "photo" | "entity" | "text"}`,
or None when no product was given.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Text, Tuple, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    EXTRACTOR,
    INTENT,
    INTENT_NAME_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.keys import (
    IMAGE_EMBEDDINGS,
    IMAGE_LABELS,
    INTENT_SIMILAR_PRODUCTS,
    PRODUCT_ENTITY,
    PRODUCT_RECOGNITION,
    PRODUCT_RECOGNIZER_EXTRACTOR,
    RECOGNISED,
    SIMILAR_PRODUCTS,
    SIMILAR_TO,
)
from assistant.fingerprints import UNREADABLE, file_sha256_or
from assistant.configuration import (
    Choice,
    ComponentConfig,
    ConfigError,
    Integer,
    Number,
    OptionalPath,
    TextValue,
    defaults_of,
    validate_config,
)
from components.image_featurizer import ImageFeaturizer
from components.products import NAME
from components.products.catalog import catalog_photo_files, read_catalog
from components.products.embeddings import (
    encode_catalog_images,
    encode_catalog_texts,
    encoder_signature,
    image_encoder_config,
    text_encoder_config,
)
from components.products.fingerprint import catalog_fingerprint
from components.products.index import CatalogIndex, build_index
from components.products.knn import l2_normalise
from components.products.labels import (
    DEFAULT_LABEL_MAPPING,
    load_label_mapping,
    resolve_label_targets,
    resolve_mapping_path,
)
from components.products.recognition import RecognitionSettings, recognise
from components.products.recommender import SimilarityWeights, similar_products
from components.text_featurizer import TransformerTextFeaturizer
from media import AttachmentLimits
from shop.catalog_photos import resolve_image_root

logger = logging.getLogger(__name__)

_UNIT = "a number >= 0.0 and <= 1.0"


class ProductRecognizerConfig(ComponentConfig):
    """The ProductRecognizer's config keys, their defaults and units (`get_default_config` returns them)."""

    #: Directory the catalog photo paths are relative to (path; relative paths are taken from the project
    #: root). None: CATALOG_IMAGE_DIR, else var/catalog-images.
    image_root: Any = OptionalPath(None, valid="the catalog image directory or null")
    #: Catalog snapshot file written by `make db` / `make train` (path, relative to the project root). None:
    #: CATALOG_SNAPSHOT, else var/catalog/snapshot.json. Missing: the seed catalog, without photos.
    catalog_snapshot: Any = OptionalPath(None, valid="the catalog snapshot file or null")
    #: Photos per product whose cosine similarities are averaged (count; local-mean k-NN).
    k: int = Integer(3, ge=1, le=10_000, valid="an integer between 1 and 10000")
    #: Softmax temperature over the products' similarities (cosine-similarity units).
    temperature: float = Number(0.04, gt=0.0, le=10.0, valid="a number > 0.0 and <= 10.0")
    #: Softmax confidence at or above which a k-NN match counts as recognised (probability).
    min_confidence: float = Number(0.66, ge=0.0, le=1.0, valid=_UNIT)
    #: Cosine similarity of the nearest catalog photo below which k-NN is not trusted and the ImageNet labels
    #: are used instead, for plain features and for projected ones (cosine similarity, -1..1).
    min_similarity: float = Number(0.36, ge=-1.0, le=1.0, valid="a number >= -1.0 and <= 1.0")
    min_similarity_projected: float = Number(0.45, ge=-1.0, le=1.0, valid="a number >= -1.0 and <= 1.0")
    #: Projection learnt from the catalog photos: "lda" (shrinkage LDA, when there are enough photos per
    #: product) or "none".
    projection: str = Choice("lda", "lda", "none")
    #: Weight of the scaled identity in LDA's within-class covariance (0..1).
    lda_shrinkage: float = Number(0.1, ge=0.0, le=1.0, valid=_UNIT)
    #: Average photos per photographed product needed to fit the LDA projection (count, >= 2).
    lda_min_photos_per_product: float = Number(3, ge=2.0, le=10_000.0, valid="a number >= 2.0 and <= 10000.0")
    #: Candidates offered when unsure (count).
    candidates: int = Integer(3, ge=1, le=10, valid="an integer between 1 and 10")
    #: ImageNet label → catalog kind / coarse category mapping (YAML file; relative to the project root).
    label_mapping: str = TextValue(DEFAULT_LABEL_MAPPING, valid="the path of a YAML file")
    #: Mapped ImageNet probability at or above which a label match counts as recognised (0..1).
    label_min_confidence: float = Number(0.5, ge=0.0, le=1.0, valid=_UNIT)
    #: Mapped ImageNet probability below which a label match is not even offered (0..1).
    label_min_candidate: float = Number(0.1, ge=0.0, le=1.0, valid=_UNIT)
    #: Intent for which similar products are ranked (intent name).
    similar_intent: str = TextValue(INTENT_SIMILAR_PRODUCTS, valid="an intent name")
    #: Similar products returned at most (count).
    similar_top_n: int = Integer(5, ge=1, le=100, valid="an integer between 1 and 100")
    #: Weights of the text and photo cosine similarities in the similar-products score (not both 0).
    text_weight: float = Number(0.6, ge=0.0, le=1000.0, valid="a number >= 0.0 and <= 1000.0")
    image_weight: float = Number(0.4, ge=0.0, le=1000.0, valid="a number >= 0.0 and <= 1000.0")
    #: Catalog photos decoded per run of the network at training time (count).
    batch_size: int = Integer(16, ge=1, valid="an integer >= 1")
    #: Largest catalog photo file read at training time (bytes; default: the customer photo limit, 10 MiB).
    max_image_bytes: int = Integer(AttachmentLimits().image_max_bytes, ge=1, valid="an integer >= 1")

    def check(self) -> None:
        """`text_weight` and `image_weight` are not both 0."""
        if self.text_weight + self.image_weight <= 0:
            raise ConfigError("text_weight", "more than 0 when `image_weight` is 0 (they must not both be 0)")


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=True)
class ProductRecognizer(GraphComponent, EntityExtractorMixin):
    """Recognises the catalog product in a customer's photo and ranks similar catalog products.

    Place it after the ImageFeaturizer (it reads `image_embeddings` and `image_labels`) and, for similar
    products, after the intent classifiers (it reads the predicted intent); at the end of the pipeline is
    right. See the module docstring for the index, the confidence and what is added to the parse result.
    """

    @classmethod
    def required_components(cls) -> List[Type]:
        """The ImageFeaturizer provides the photo embeddings and labels."""
        return [ImageFeaturizer]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config (each key and its unit: `ProductRecognizerConfig`)."""
        return defaults_of(ProductRecognizerConfig)

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> ProductRecognizerConfig:
        """Checks every key of this component's config (`ProductRecognizerConfig`).

        Raises:
            InvalidConfigException: naming the key and its valid values, also for unknown keys.
        """
        return validate_config(NAME, ProductRecognizerConfig, config)

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        index: Optional[CatalogIndex] = None,
    ) -> None:
        """Validates the config, reads the featurizers' settings from the graph schema and keeps the index (an
        empty one until trained or loaded).

        Raises:
            InvalidConfigException: for an invalid config or label mapping.
        """
        self._config = self.validate_config({**self.get_default_config(), **config})
        self._settings = RecognitionSettings.from_config(self._config)
        self._model_storage = model_storage
        self._resource = resource
        self._image_config = image_encoder_config(_pipeline_config(execution_context, ImageFeaturizer))
        text_node = _pipeline_config(execution_context, TransformerTextFeaturizer)
        self._text_config = text_encoder_config(text_node)
        self._mapping = load_label_mapping(resolve_mapping_path(self._config.label_mapping))
        self._set_index(index or CatalogIndex.empty())

    def _set_index(self, index: CatalogIndex) -> None:
        self._index = index
        self._label_targets = resolve_label_targets(self._mapping, index.products)
        self._knn_enabled = index.has_images
        if index.has_images and index.encoder:
            expected = encoder_signature(self._image_config)
            if expected and expected != index.encoder:
                logger.error(
                    "%s: the catalog photos were embedded with %s but the ImageFeaturizer now uses %s; photo "
                    "matching falls back to ImageNet labels until the model is retrained.",
                    NAME, index.encoder, expected,
                )
                self._knn_enabled = False
        config = self._config
        self._weights = SimilarityWeights(config.text_weight, config.image_weight, config.similar_top_n,
                                          self._knn_enabled)

    @property
    def index(self) -> CatalogIndex:
        """The catalog index in use."""
        return self._index

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "ProductRecognizer":
        """Creates an untrained component (empty index)."""
        return cls(config, model_storage, resource, execution_context)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "ProductRecognizer":
        """Loads the persisted index; a missing or unreadable one gives an empty index (photos then get
        ImageNet-label matches or "unknown")."""
        index = None
        try:
            with model_storage.read_from(resource) as directory:
                index = CatalogIndex.load(Path(directory))
        except ValueError as error:
            logger.warning("%s: no usable catalog index in the model (%s); recognising by labels only.",
                           NAME, error)
        return cls(config, model_storage, resource, execution_context, index)

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """A hash of what the index is built from besides the training data (`catalog_fingerprint`: the
        catalog snapshot, the photo files, the label mapping, the packaged encoders), so `rasa train` rebuilds
        the index when any of them changes. The database is not opened.

        A change of the featurizers' config (weights, text model, pooling) re-runs their nodes, and Rasa then
        re-runs every node that depends on them, this one included.
        """
        config = {**cls.get_default_config(), **config}
        return catalog_fingerprint(config["catalog_snapshot"], config["image_root"], config["label_mapping"])

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages this component imports (besides the featurizers' own)."""
        return ["numpy", "sklearn"]

    # ------------------------------------------------------------------ training
    def train(self, training_data: TrainingData) -> Resource:
        """Builds the catalog index from the catalog snapshot (photos + texts) and persists it.

        The NLU training data is not used: the catalog is the training data. Missing photo files, a missing
        image root or a missing snapshot give a smaller (or photo-less) index, never an error.
        """
        config = self._config
        products, image_pairs, source = read_catalog(config.catalog_snapshot)
        known = {product.sku for product in products}
        found = catalog_photo_files(image_pairs, resolve_image_root(config.image_root), known)
        rows = [{"sku": sku, "path": relative, "sha256": file_sha256_or(path, UNREADABLE)}
                for sku, relative, path in found]
        raw = np.zeros((0, 0), dtype=np.float32)
        if found:
            raw, ok = encode_catalog_images([path for _, _, path in found], self._image_config,
                                            config.max_image_bytes, config.batch_size)
            rows = [row for row, kept in zip(rows, ok) if kept]
        text = np.zeros((0, 0), dtype=np.float32)
        if products:
            try:
                text = encode_catalog_texts([product.text() for product in products], self._text_config)
            except InvalidConfigException as error:
                logger.warning("%s: no text encoder (%s); similar products use photos only.", NAME, error)
        index = build_index(
            products, rows, raw, text, encoder_signature(self._image_config) if rows else {}, source,
            config.projection, config.lda_shrinkage, config.lda_min_photos_per_product,
        )
        with self._model_storage.write_to(self._resource) as directory:
            index.save(Path(directory))
        self._set_index(index)
        logger.info("%s: catalog index with %d products and %d photos (source: %s, projection: %s).",
                    NAME, len(index.products), len(index.images), source,
                    "lda" if index.projection is not None else "none")
        return self._resource

    # ------------------------------------------------------------------ inference
    def process(self, messages: List[Message]) -> List[Message]:
        """Adds `product_recognition` and a `product` entity for photos, `similar_products` and `similar_to`
        for the similar-products intent (in place); returns the messages."""
        for message in messages:
            photo = None
            recognition = None
            embeddings = message.get(IMAGE_EMBEDDINGS)
            if embeddings is not None and len(embeddings):
                labels_per_image = message.get(IMAGE_LABELS) or []
                labels = labels_per_image[0] if labels_per_image else []
                raw = np.asarray(embeddings, dtype=np.float32)[0]
                query = self._index.prepare(raw) if self._knn_enabled else None
                photo = l2_normalise(raw[None, :])[0] if query is not None else None
                recognition = self.recognise_prepared(query, labels)
                message.set(PRODUCT_RECOGNITION, recognition, add_to_output=True)
                if recognition["status"] == RECOGNISED:
                    entities = list(message.get(ENTITIES) or []) + [_entity(recognition)]
                    message.set(ENTITIES, entities, add_to_output=True)
            intent, payload_entities = _intent_and_payload(message)
            if intent == self._config.similar_intent:
                reference, ranked = similar_products(
                    self._index, self._weights, self._encode_query, PRODUCT_RECOGNIZER_EXTRACTOR,
                    message.get(TEXT), message.get(ENTITIES) or [], payload_entities, recognition, photo,
                )
                message.set(SIMILAR_TO, reference, add_to_output=True)
                message.set(SIMILAR_PRODUCTS, ranked, add_to_output=True)
        return messages

    def recognise(self, embedding: np.ndarray, labels: Sequence[Mapping[str, Any]] = ()) -> Dict[str, Any]:
        """Recognises one photo from its raw `float32 (1280,)` embedding and ImageNet labels.

        Returns:
            The `product_recognition` dict (see the module docstring).
        """
        query = self._index.prepare(embedding) if self._knn_enabled else None
        return self.recognise_prepared(query, labels)

    def recognise_prepared(
        self, query: Optional[np.ndarray], labels: Sequence[Mapping[str, Any]]
    ) -> Dict[str, Any]:
        """`recognise` for an embedding already in the index space (None: no usable photo embedding)."""
        return recognise(self._index, self._settings, query, labels, self._label_targets)

    def _encode_query(self, words: str) -> Optional[np.ndarray]:
        """The unit text vector `float32 (hidden,)` of words that name no catalog product, or None."""
        try:
            return l2_normalise(encode_catalog_texts([words], self._text_config))[0]
        except InvalidConfigException as error:
            logger.warning("%s: text encoder unavailable (%s)", NAME, error)
            return None


# ---------------------------------------------------------------------------------------------- helpers
def _entity(recognition: Mapping[str, Any]) -> Dict[str, Any]:
    """The `product` entity of a recognised photo (no start/end: it is not in the text), with the `extractor`
    that actions check (`PRODUCT_RECOGNIZER_EXTRACTOR`)."""
    return {
        ENTITY_ATTRIBUTE_TYPE: PRODUCT_ENTITY,
        ENTITY_ATTRIBUTE_VALUE: recognition["name"],
        "sku": recognition["sku"],
        "confidence": recognition["confidence"],
        "method": recognition["method"],
        "candidates": recognition["candidates"],
        EXTRACTOR: PRODUCT_RECOGNIZER_EXTRACTOR,
    }


def _pipeline_config(execution_context: ExecutionContext, component: Type) -> Dict[str, Any]:
    """The config of the first graph node that uses `component` (or a subclass), or {} when there is none."""
    schema = getattr(execution_context, "graph_schema", None)
    for node in getattr(schema, "nodes", {}).values():
        uses = getattr(node, "uses", None)
        if isinstance(uses, type) and issubclass(uses, component):
            return dict(node.config or {})
    return {}


def _intent_and_payload(message: Message) -> Tuple[Optional[str], Optional[List[Dict[str, Any]]]]:
    """The message's intent, and for a `/intent{...}` payload (a button) its intent and entities.

    Payloads are decoded here with Rasa's own parser because the RegexMessageHandler that applies them runs
    after the whole pipeline.
    """
    text = message.get(TEXT)
    if isinstance(text, str) and text.lstrip().startswith("/"):
        from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader

        unpacked = YAMLStoryReader.unpack_regex_message(Message(data={TEXT: text}))
        intent = (unpacked.get(INTENT) or {}).get(INTENT_NAME_KEY)
        if intent:
            return intent, list(unpacked.get(ENTITIES) or [])
    intent = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
    return intent, None
