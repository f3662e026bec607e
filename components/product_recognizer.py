"""`ProductRecognizer`: the catalog product in a customer's photo, and the catalog products similar to it.

Training (`train`) builds a `CatalogIndex` from the shop catalog and persists it with the model:

- the products (sku, name, kind, category, coarse category, description) from the database through
  `ShopRepository.list_products()`; when the database cannot be read (no file yet, server down), the seed
  catalog `data/catalog/products.csv` without images;
- one EfficientNet-Lite0 embedding per catalog photo (`ShopRepository.product_images()`, files under the image
  root), computed with the ImageFeaturizer's own network and pre-processing (`components.image_featurizer`),
  so catalog photos and customer photos live in one embedding space, L2-normalised;
- when the catalog has several photos per product (`lda_min_photos_per_product` on average), a projection
  learnt from them: shrinkage linear discriminant analysis (Fisher 1936; within-class covariance shrunk
  towards a scaled identity, Ledoit & Wolf 2004; scikit-learn's `LinearDiscriminantAnalysis(solver="eigen")`)
  to at most (products - 1) dimensions, L2-normalised again. It pulls photos of one product together and
  pushes products apart, which a pooled ImageNet feature does not do for look-alike packages
  (benchmarks/bench_images.py);
- one all-MiniLM-L6-v2 sentence embedding per product ("name. kind. coarse category. description"), from the
  TransformerTextFeaturizer's model (`components.text_featurizer.load_model`), mean-pooled and L2-normalised
  as that featurizer does.

Files: `index.json` (products, image rows, encoder settings), `image_embeddings.npy` (projected),
`projection.npy` + `projection_mean.npy` (empty without a projection), `image_centroids.npy` (per product,
plain features, for "looks similar"), `text_embeddings.npy` (`numpy.save`, `allow_pickle=False`; read back
with `allow_pickle=False`). No pickle.

Inference (`process`), for a message with an accepted photo (`image_embeddings` from the ImageFeaturizer):

1. Local-mean k-NN (Mitani & Hamamoto, "A local mean-based nonparametric classifier", Pattern Recognition
   Letters 27, 2006): a product's similarity s_p is the mean cosine similarity of its `k` catalog photos
   closest to the customer's photo (all of them when it has fewer); its confidence is the softmax over all
   photographed products, exp(s_p / temperature) / Σ_q exp(s_q / temperature). `k`, `temperature`,
   `min_confidence` and `min_similarity` are calibrated on the Grocery Store Dataset val photos
   (benchmarks/bench_images.py): the temperature minimises the negative log-likelihood of the true product.
2. When the index has no photos, its nearest photo is less similar than `min_similarity` (plain features) or
   `min_similarity_projected` (projected ones), or k-NN is unsure and the ImageNet labels confidently name a
   product that has no catalog photo: the ImageFeaturizer's top-5 ImageNet labels are mapped to catalog
   kinds / coarse categories with `label_mapping` (data/catalog/imagenet_to_kind.yml); a label's probability
   is shared equally among its targets and then among the products of each target.

The parse result gets `product_recognition` (always, for a photo):
`{"status": "recognised" | "uncertain" | "unknown", "method": "knn" | "imagenet_label" | None, "sku", "name",
"confidence", "candidates": [{"sku", "name", "confidence"}, ...]}`, and, when recognised, a `product` entity
`{"entity": "product", "value": <name>, "sku", "confidence", "method", "candidates", "extractor":
"ProductRecognizer"}`. Only a recognised product becomes an entity, so the `product` slot never takes a guess;
actions offer the candidates of an uncertain photo as buttons.

For the intent `similar_intent` (default `similar_products`; also a `/similar_products{"product": ...}` button
payload) the component ranks catalog products against a reference: the recognised photo product (or, when
unsure, the photo itself), else the `product` entity of the text or the text without request words, resolved
to a catalog product with the repository's tolerant matcher (`shop.matching`) or, failing that, encoded with
MiniLM. The score of a product is the weighted mean of the MiniLM cosine similarity and, where both sides have
photos, the cosine similarity of image embeddings (photo or mean catalog photo). The parse result gets
`similar_products: [{"sku", "score"}, ...]` (best first, reference excluded) and `similar_to: {"sku", "name",
"query", "source": "photo" | "entity" | "text"}` or None when no product was given.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Text, Tuple, Type

import numpy as np

from assistant.paths import PROJECT_ROOT
from components.image_featurizer import ImageFeaturizer
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

logger = logging.getLogger(__name__)

_NAME = "ProductRecognizer"
#: Persisted index layout version (bump when the files change meaning).
INDEX_FORMAT = 1

IMAGE_EMBEDDINGS = "image_embeddings"
IMAGE_LABELS = "image_labels"
PRODUCT_ENTITY = "product"
PRODUCT_RECOGNITION = "product_recognition"
SIMILAR_PRODUCTS = "similar_products"
SIMILAR_TO = "similar_to"

RECOGNISED = "recognised"
UNCERTAIN = "uncertain"
UNKNOWN = "unknown"
METHOD_KNN = "knn"
METHOD_LABEL = "imagenet_label"

DEFAULT_IMAGE_ROOT = "var/catalog-images"
IMAGE_ROOT_ENV = "CATALOG_IMAGE_DIR"
DEFAULT_LABEL_MAPPING = "data/catalog/imagenet_to_kind.yml"

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
_TEXT_MAX_CHARS = 256
_TEXT_MAX_PIECES = 128

_MAPPING_CACHE: Dict[Tuple[str, int, int], Dict[str, List[str]]] = {}
_MAPPING_LOCK = threading.Lock()


# ---------------------------------------------------------------------------------------------- catalog
@dataclass(frozen=True)
class CatalogProduct:
    """A catalog product as the recogniser sees it (what `shop.matching.rank` needs, plus the description).

    `stock` is only a tie-breaker for the matcher and always 1: live stock and prices come from the database
    when an action answers.
    """

    sku: str
    name: str
    kind: str
    category: str
    coarse_category: str
    description: str = ""
    stock: int = 1

    def text(self) -> str:
        """The text embedded with MiniLM: "name. kind. coarse category. description"."""
        parts = [self.name, self.kind, self.coarse_category, self.description]
        return ". ".join(part.strip().rstrip(".") for part in parts if part and part.strip())

    def to_json(self) -> Dict[str, str]:
        """The persisted fields (no stock)."""
        data = asdict(self)
        data.pop("stock")
        return data


def _is_missing_sqlite_file(url: str) -> bool:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    if database in ("", ":memory:") or parsed.query.get("mode") == "memory":
        return False
    return not Path(database).is_file()


def read_catalog(
    database_url: Optional[str] = None,
) -> Tuple[List[CatalogProduct], List[Tuple[str, str]], str]:
    """The catalog: products and product photos from the database, else the seed catalog without photos.

    Args:
        database_url: SQLAlchemy URL; None: `shop.db.database_url()` (DATABASE_URL or var/shop.db).

    Returns:
        `(products, images, source)`: products sorted by sku, `(sku, path relative to the image root)` pairs
        as `ShopRepository.product_images()` returns them, and "database", "seed" or "none".
    """
    from shop.db import database_url as default_url
    from shop.db import make_engine, make_session_factory
    from shop.repository import ShopRepository

    url = database_url or default_url()
    if not _is_missing_sqlite_file(url):
        engine = None
        try:
            engine = make_engine(url)
            repository = ShopRepository(make_session_factory(engine))
            views = repository.list_products()
            images = repository.product_images()
            products = [
                CatalogProduct(v.sku, v.name, v.kind, v.category, v.coarse_category, v.description or "")
                for v in views
            ]
            if products:
                return sorted(products, key=lambda p: p.sku), list(images), "database"
            logger.warning("%s: the shop database has no products; using the seed catalog.", _NAME)
        except Exception as error:  # no schema yet, server unreachable, driver missing: train without images
            logger.warning(
                "%s: the shop database could not be read (%s: %s); using the seed catalog without photos.",
                _NAME,
                type(error).__name__,
                str(error).splitlines()[0][:200] if str(error) else "",
            )
        finally:
            if engine is not None:
                engine.dispose()
    else:
        logger.info("%s: no shop database file yet; using the seed catalog without photos.", _NAME)
    try:
        from shop.seed import load_catalog

        rows = load_catalog()
    except (OSError, ValueError) as error:
        logger.warning("%s: the seed catalog could not be read (%s); the catalog is empty.", _NAME, error)
        return [], [], "none"
    products = [
        CatalogProduct(
            str(row["sku"]),
            str(row["name"]),
            str(row["kind"]),
            str(row["category"]),
            str(row["coarse_category"]),
            str(row.get("description") or ""),
        )
        for row in rows
    ]
    return sorted(products, key=lambda p: p.sku), [], "seed"


def resolve_image_root(image_root: Optional[Text]) -> Path:
    """The catalog image root: `image_root`, else CATALOG_IMAGE_DIR, else var/catalog-images (relative paths
    are taken from the project root)."""
    value = image_root or os.environ.get(IMAGE_ROOT_ENV, "").strip() or DEFAULT_IMAGE_ROOT
    path = Path(value).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def resolve_catalog_image(root: Path, relative: str) -> Optional[Path]:
    """The file of a catalog photo, or None when the path leaves the image root or is not a regular file.

    Absolute paths, `..` parts and symbolic links that resolve outside `root` are refused.
    """
    if not isinstance(relative, str) or not relative.strip() or "\x00" in relative:
        return None
    clean = relative.strip().replace("\\", "/")
    parts = [part for part in clean.split("/") if part not in ("", ".")]
    if clean.startswith("/") or ".." in parts or not parts or ":" in parts[0]:
        return None
    try:
        base = root.resolve()
        path = (base / Path(*parts)).resolve()
    except (OSError, RuntimeError):
        return None
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


def catalog_photo_files(
    pairs: Sequence[Tuple[str, str]], root: Path, known: Optional[Set[str]] = None
) -> List[Tuple[str, str, Path]]:
    """`(sku, relative path, file)` of each listed photo that `resolve_catalog_image` finds inside `root` (and
    whose sku is in `known`, when given); every other one is skipped with one log line."""
    found: List[Tuple[str, str, Path]] = []
    for sku, relative in pairs:
        path = resolve_catalog_image(root, relative) if known is None or sku in known else None
        if path is None:
            logger.warning("%s: catalog photo '%s' of %s not found under %s; skipped.", _NAME, relative, sku, root)
            continue
        found.append((sku, relative, path))
    return found


# ---------------------------------------------------------------------------------------------- encoders
def encode_catalog_images(
    paths: Sequence[Path], encoder_config: Mapping[str, Any], max_bytes: int, batch_size: int
) -> Tuple[np.ndarray, List[bool]]:
    """EfficientNet-Lite0 embeddings of catalog photos, exactly as the ImageFeaturizer embeds customer photos.

    The network is the process-wide one of `components.image_featurizer.load_model` (no second copy). A photo
    that is too large, damaged or not an image is skipped with one log line.

    Args:
        paths: photo files.
        encoder_config: the ImageFeaturizer's config (weights_path, image_size, resize_size, max_pixels, ...).
        max_bytes: largest photo file read (bytes).
        batch_size: photos per forward pass.

    Returns:
        `(embeddings float32 (n_ok, 1280), ok)` where `ok[i]` says whether `paths[i]` was encoded.
    """
    from media import AttachmentError, AttachmentLimits
    from encoders.image import crop_and_resize
    from media.images import decode_image

    config = {**ImageFeaturizer.get_default_config(), **dict(encoder_config)}
    featurizer = ImageFeaturizer(config, f"{_NAME}.encoder")
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
            logger.warning("%s: catalog photo %s skipped (%s)", _NAME, path.name, error)
            ok.append(False)
        if len(pending) >= batch_size:
            chunks.append(featurizer.encode(pending)[0])
            pending = []
    if pending:
        chunks.append(featurizer.encode(pending)[0])
    if not chunks:
        return np.zeros((0, featurizer.dims), dtype=np.float32), ok
    return np.concatenate(chunks).astype(np.float32), ok


def encode_texts(texts: Sequence[str], model_path: Optional[Text] = None, batch_size: int = 32) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embeddings: attention-masked mean of the last layer, L2-normalised.

    The recipe of the TransformerTextFeaturizer's sentence feature (first `_TEXT_MAX_PIECES` word pieces,
    [CLS]/[SEP] included in the mean), on the model it loads once per process
    (`components.text_featurizer.load_model`).

    Returns:
        `float32 (len(texts), hidden)`.
    """
    import torch

    from encoders.text import load_model, resolve_model_path

    loaded = load_model(resolve_model_path(model_path))
    rows: List[np.ndarray] = []
    for start in range(0, len(texts), batch_size):
        batch = [text[:_TEXT_MAX_CHARS * 4] for text in texts[start : start + batch_size]]
        encoded = loaded.tokenizer(
            batch, padding=True, truncation=True, max_length=_TEXT_MAX_PIECES, return_tensors="pt"
        )
        with torch.inference_mode():
            hidden = loaded.model(
                input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]
            ).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        rows.append(mean.float().numpy())
    if not rows:
        return np.zeros((0, loaded.hidden_size), dtype=np.float32)
    return l2_normalise(np.concatenate(rows))


# ---------------------------------------------------------------------------------------------- maths
def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (`float32`); all-zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class Projection:
    """A linear map applied to L2-normalised photo embeddings: `z = (x - mean) @ matrix`.

    Attributes:
        matrix: `float32 (1280, m)`.
        mean: `float32 (1280,)`.
    """

    matrix: np.ndarray
    mean: np.ndarray

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """`float32 (n, m)` projections of `float32 (n, 1280)` rows."""
        return (np.asarray(vectors, dtype=np.float32) - self.mean) @ self.matrix


def prepare_embeddings(vectors: np.ndarray, projection: Optional[Projection]) -> np.ndarray:
    """The space photos are compared in: L2-normalised, projected (when a projection is given), normalised."""
    vectors = l2_normalise(vectors)
    if projection is not None:
        vectors = l2_normalise(projection.apply(vectors))
    return vectors


def fit_lda_projection(
    raw_embeddings: np.ndarray, owners: np.ndarray, shrinkage: float
) -> Optional[Projection]:
    """Shrinkage LDA on L2-normalised photo embeddings labelled by product.

    Args:
        raw_embeddings: `float32 (n, 1280)` pooled photo embeddings.
        owners: `int (n,)` product of each photo.
        shrinkage: weight of the scaled identity in the within-class covariance (0..1).

    Returns:
        The projection to `min(#products - 1, 1280)` dimensions, or None with fewer than two products.
    """
    classes = np.unique(owners)
    if classes.shape[0] < 2:
        return None
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    x = l2_normalise(raw_embeddings).astype(np.float64)
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=shrinkage)
    lda.fit(x, owners)
    dims = min(classes.shape[0] - 1, x.shape[1])
    matrix = np.ascontiguousarray(lda.scalings_[:, :dims], dtype=np.float32)
    # Centred on the photos' mean, so that cosine similarities are measured from the middle of the catalog.
    return Projection(matrix=matrix, mean=x.mean(axis=0).astype(np.float32))


def product_groups(owners: np.ndarray, n_products: int) -> List[np.ndarray]:
    """Row indices of each product's photos (empty for a product without photos)."""
    order = np.argsort(owners, kind="stable")
    bounds = np.searchsorted(owners[order], np.arange(n_products + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(n_products)]


def product_centroids(embeddings: np.ndarray, owners: np.ndarray, n_products: int) -> np.ndarray:
    """`float32 (n_products, d)`: the normalised mean of each product's rows (zeros without rows)."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    dims = embeddings.shape[1] if embeddings.ndim == 2 else 0
    centroids = np.zeros((n_products, dims), dtype=np.float32)
    if dims:
        np.add.at(centroids, np.asarray(owners, dtype=np.int64), embeddings)
        centroids = l2_normalise(centroids)
    return centroids


def knn_scores(
    query: np.ndarray, embeddings: np.ndarray, groups: Sequence[np.ndarray], k: int
) -> Tuple[np.ndarray, float]:
    """Local-mean k-NN similarities: per product, the mean cosine of its `k` photos nearest to `query`.

    Args:
        query: `float32 (d,)`, prepared like the rows (unit length).
        embeddings: `float32 (n, d)` unit rows.
        groups: `product_groups(owners, n_products)`.
        k: photos per product averaged (products with fewer photos use all of theirs).

    Returns:
        `(scores float64 (n_products,), best)`: -inf for products without photos; `best` is the highest cosine
        similarity of any photo (-inf without photos).
    """
    similarities = embeddings @ query
    scores = np.full((len(groups),), -np.inf)
    for product, rows in enumerate(groups):
        if rows.size == 0:
            continue
        values = similarities[rows]
        if values.size > k:
            values = np.partition(values, values.size - k)[-k:]
        scores[product] = float(values.mean())
    best = float(similarities.max()) if similarities.size else float("-inf")
    return scores, best


def softmax_ranking(scores: np.ndarray, temperature: float) -> List[Tuple[int, float]]:
    """`[(product, confidence)]` best first: softmax of `scores / temperature` over the finite scores."""
    finite = np.flatnonzero(np.isfinite(scores))
    if finite.size == 0:
        return []
    logits = scores[finite] / temperature
    weights = np.exp(logits - logits.max())
    confidences = weights / weights.sum()
    order = np.argsort(-confidences, kind="stable")
    return [(int(finite[i]), float(confidences[i])) for i in order]


# ---------------------------------------------------------------------------------------------- label map
def resolve_mapping_path(path: Optional[Text]) -> Path:
    """The label mapping file (relative paths are taken from the project root)."""
    value = Path(path or DEFAULT_LABEL_MAPPING).expanduser()
    return value if value.is_absolute() else PROJECT_ROOT / value


def load_label_mapping(path: Path) -> Dict[str, List[str]]:
    """Reads `{ImageNet label: [catalog kind or coarse category, ...]}`, once per file version.

    Raises:
        InvalidConfigException: if the file is missing, not a YAML mapping of lists of strings, or names a
            label that is not one of the 1000 ImageNet class names the ImageFeaturizer reports.
    """
    if not path.is_file():
        raise InvalidConfigException(f"{_NAME}: `label_mapping` file '{path}' does not exist.")
    status = path.stat()
    key = (str(path), status.st_size, status.st_mtime_ns)
    with _MAPPING_LOCK:
        if key in _MAPPING_CACHE:
            return _MAPPING_CACHE[key]
        from ruamel.yaml import YAML

        from encoders.image import imagenet_labels

        try:
            raw = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
        except Exception as error:
            raise InvalidConfigException(
                f"{_NAME}: `label_mapping` '{path}' is not valid YAML: {error}"
            ) from error
        if not isinstance(raw, dict):
            raise InvalidConfigException(f"{_NAME}: `label_mapping` '{path}' must be a YAML mapping.")
        known = set(imagenet_labels())
        mapping: Dict[str, List[str]] = {}
        for label, targets in raw.items():
            if label not in known:
                raise InvalidConfigException(
                    f"{_NAME}: `label_mapping` '{path}': '{label}' is not an ImageNet class name "
                    f"(see components/imagenet_labels.json)."
                )
            if isinstance(targets, str):
                targets = [targets]
            if not isinstance(targets, list) or not all(isinstance(t, str) and t.strip() for t in targets):
                raise InvalidConfigException(
                    f"{_NAME}: `label_mapping` '{path}': '{label}' must map to a list of catalog kinds or "
                    f"coarse categories, got {targets!r}."
                )
            mapping[str(label)] = [t.strip() for t in targets]
        _MAPPING_CACHE[key] = mapping
        return mapping


def resolve_label_targets(
    mapping: Mapping[str, Sequence[str]], products: Sequence[CatalogProduct]
) -> Dict[str, List[List[int]]]:
    """Per ImageNet label, the product indices of each target that exists in this catalog.

    A target names a product `kind` (preferred), a `coarse_category` or a sku (case-insensitive). Targets that
    match no product of this catalog are left out.
    """
    by_kind: Dict[str, List[int]] = {}
    by_coarse: Dict[str, List[int]] = {}
    by_sku: Dict[str, List[int]] = {}
    for index, product in enumerate(products):
        by_kind.setdefault(product.kind.casefold(), []).append(index)
        by_coarse.setdefault(product.coarse_category.casefold(), []).append(index)
        by_sku.setdefault(product.sku.casefold(), []).append(index)
    resolved: Dict[str, List[List[int]]] = {}
    for label, targets in mapping.items():
        groups = []
        for target in targets:
            key = target.casefold()
            group = by_kind.get(key) or by_coarse.get(key) or by_sku.get(key)
            if group:
                groups.append(list(group))
        if groups:
            resolved[label] = groups
    return resolved


def label_votes(
    labels: Iterable[Mapping[str, Any]], targets: Mapping[str, Sequence[Sequence[int]]]
) -> List[Tuple[int, float]]:
    """Catalog products named by ImageNet labels: a label's probability is shared equally among its targets,
    then among each target's products.

    Args:
        labels: `[{"label": str, "confidence": float}]` as the ImageFeaturizer reports them (top-k).
        targets: `resolve_label_targets` output.

    Returns:
        `[(product index, probability mass in [0, 1]), ...]`, best first.
    """
    scores: Dict[int, float] = {}
    for item in labels or []:
        if not isinstance(item, Mapping):
            continue
        groups = targets.get(str(item.get("label")))
        confidence = item.get("confidence")
        if not groups or not isinstance(confidence, (int, float)) or not math.isfinite(confidence):
            continue
        share = float(confidence) / len(groups)
        for group in groups:
            for product in group:
                scores[product] = scores.get(product, 0.0) + share / len(group)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


# ---------------------------------------------------------------------------------------------- the index
@dataclass
class CatalogIndex:
    """The catalog as the recogniser uses it.

    Attributes:
        products: catalog products, sorted by sku.
        images: one `{"sku", "path", "sha256"}` per row of `image_embeddings`.
        image_owner: `int64 (n_images,)` index into `products` of each row.
        image_embeddings: `float32 (n_images, d)`, prepared (`prepare_embeddings`): unit length, projected
            when `projection` is set (d = its width), else d = 1280.
        projection: the learnt projection, or None.
        text_embeddings: `float32 (n_products, 384)` unit MiniLM vectors, or `(0, 0)` when unavailable.
        encoder: the image encoder settings the rows were computed with (`weights_sha256`, `image_size`,
            `resize_size`).
        source: where the catalog came from: "database", "seed" or "none".
        image_centroids: `float32 (n_products, 1280)`: per product the normalised mean of its L2-normalised
            photo embeddings without projection (zeros without photos), for "looks similar"; the projection
            separates products and is meant for recognising them, not for comparing them. None: computed
            from `image_embeddings`.
    """

    products: List[CatalogProduct]
    images: List[Dict[str, str]]
    image_owner: np.ndarray
    image_embeddings: np.ndarray
    projection: Optional[Projection]
    text_embeddings: np.ndarray
    encoder: Dict[str, Any]
    source: str
    image_centroids: Optional[np.ndarray] = None

    @classmethod
    def empty(cls) -> "CatalogIndex":
        """An index without products."""
        return cls([], [], np.zeros((0,), np.int64), np.zeros((0, 0), np.float32), None,
                   np.zeros((0, 0), np.float32), {}, "none")

    def __post_init__(self) -> None:
        self.sku_index = {product.sku: i for i, product in enumerate(self.products)}
        n_products = len(self.products)
        self.has_image = np.zeros((n_products,), dtype=bool)
        self.has_image[np.asarray(self.image_owner, dtype=np.int64)] = True
        if self.image_centroids is None:
            self.image_centroids = product_centroids(self.image_embeddings, self.image_owner, n_products)
        self.image_groups = product_groups(np.asarray(self.image_owner, dtype=np.int64), n_products)

    @property
    def has_images(self) -> bool:
        """True when at least one catalog photo is indexed."""
        return self.image_embeddings.ndim == 2 and self.image_embeddings.shape[0] > 0

    @property
    def has_text(self) -> bool:
        """True when every product has a text embedding."""
        return self.text_embeddings.ndim == 2 and self.text_embeddings.shape[0] == len(self.products) > 0

    def prepare(self, embedding: np.ndarray) -> Optional[np.ndarray]:
        """A customer photo's raw `float32 (1280,)` embedding in the index space, or None when unusable
        (no photos indexed, wrong width, not finite, all zero)."""
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if not self.has_images or not np.all(np.isfinite(vector)):
            return None
        projection = self.projection
        width = projection.mean.shape[0] if projection is not None else self.image_embeddings.shape[1]
        if vector.shape[0] != width:
            return None
        prepared = prepare_embeddings(vector[None, :], self.projection)[0]
        return prepared if float(np.linalg.norm(prepared)) > 0.5 else None

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> None:
        """Writes `index.json` and the `.npy` arrays (no pickle) into `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": INDEX_FORMAT,
            "source": self.source,
            "encoder": self.encoder,
            "products": [product.to_json() for product in self.products],
            "images": self.images,
            "projection": "lda" if self.projection is not None else None,
        }
        text = json.dumps(meta, ensure_ascii=False, indent=1)
        (directory / "index.json").write_text(text, encoding="utf-8")
        np.save(directory / "image_embeddings.npy", np.ascontiguousarray(self.image_embeddings, np.float32),
                allow_pickle=False)
        projection = self.projection or Projection(np.zeros((0, 0), np.float32), np.zeros((0,), np.float32))
        np.save(directory / "projection.npy", np.ascontiguousarray(projection.matrix, np.float32),
                allow_pickle=False)
        np.save(directory / "projection_mean.npy", np.ascontiguousarray(projection.mean, np.float32),
                allow_pickle=False)
        np.save(directory / "text_embeddings.npy", np.ascontiguousarray(self.text_embeddings, np.float32),
                allow_pickle=False)
        np.save(directory / "image_centroids.npy", np.ascontiguousarray(self.image_centroids, np.float32),
                allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> "CatalogIndex":
        """Reads what `save` wrote.

        Raises:
            ValueError: for a missing or inconsistent file (an unknown format, row counts that differ, an
                image row of an unknown sku).
        """
        try:
            meta = json.loads((directory / "index.json").read_text(encoding="utf-8"))
            embeddings = np.load(directory / "image_embeddings.npy", allow_pickle=False)
            matrix = np.load(directory / "projection.npy", allow_pickle=False)
            mean = np.load(directory / "projection_mean.npy", allow_pickle=False)
            text = np.load(directory / "text_embeddings.npy", allow_pickle=False)
            centroids_file = directory / "image_centroids.npy"  # absent in indexes of the first release
            centroids = (np.load(centroids_file, allow_pickle=False) if centroids_file.is_file()
                         else np.zeros((0, 0), np.float32))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"unreadable catalog index: {error}") from error
        if meta.get("format") != INDEX_FORMAT:
            raise ValueError(f"catalog index format {meta.get('format')!r}, expected {INDEX_FORMAT}")
        products = [CatalogProduct(**{k: str(v) for k, v in item.items()}) for item in meta["products"]]
        skus = {product.sku: i for i, product in enumerate(products)}
        images = [dict(item) for item in meta["images"]]
        if any(item.get("sku") not in skus for item in images):
            raise ValueError("catalog index: an image row names an unknown sku")
        if embeddings.ndim != 2 or embeddings.shape[0] != len(images):
            raise ValueError("catalog index: image rows and embeddings differ")
        if centroids.size and (centroids.ndim != 2 or centroids.shape[0] != len(products)):
            raise ValueError("catalog index: one photo centroid per product expected")
        owners = np.asarray([skus[item["sku"]] for item in images], dtype=np.int64)
        projection = None
        if meta.get("projection"):
            if matrix.ndim != 2 or mean.shape != (matrix.shape[0],) or (
                embeddings.shape[0] and embeddings.shape[1] != matrix.shape[1]
            ):
                raise ValueError("catalog index: projection and embeddings do not fit together")
            projection = Projection(matrix.astype(np.float32), mean.astype(np.float32))
        return cls(
            products=products,
            images=images,
            image_owner=owners,
            image_embeddings=embeddings.astype(np.float32, copy=False),
            projection=projection,
            text_embeddings=text.astype(np.float32, copy=False),
            encoder=dict(meta.get("encoder") or {}),
            source=str(meta.get("source", "none")),
            image_centroids=centroids.astype(np.float32, copy=False) if centroids.size else None,
        )


def build_index(
    products: Sequence[CatalogProduct],
    images: Sequence[Dict[str, str]],
    raw_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    encoder: Dict[str, Any],
    source: str,
    projection: str = "none",
    lda_shrinkage: float = 0.1,
    lda_min_photos_per_product: float = 3.0,
) -> CatalogIndex:
    """An index from raw (pooled, un-normalised) photo embeddings.

    With `projection="lda"` and on average at least `lda_min_photos_per_product` photos per photographed
    product (and at least two such products), a shrinkage LDA projection is fitted on the photos
    (`fit_lda_projection`); the rows are then stored projected.
    """
    products = sorted(products, key=lambda p: p.sku)
    skus = {product.sku: i for i, product in enumerate(products)}
    raw = np.asarray(raw_embeddings, dtype=np.float32)
    owners = np.asarray([skus[item["sku"]] for item in images], dtype=np.int64)
    fitted = None
    if raw.ndim == 2 and raw.shape[0]:
        photographed = np.unique(owners).shape[0]
        enough = photographed >= 2 and raw.shape[0] >= lda_min_photos_per_product * photographed
        if projection == "lda" and enough:
            fitted = fit_lda_projection(raw, owners, lda_shrinkage)
        prepared = prepare_embeddings(raw, fitted)
        centroids = product_centroids(l2_normalise(raw), owners, len(products))
    else:
        prepared = centroids = np.zeros((0, 0), np.float32)
    return CatalogIndex(list(products), [dict(item) for item in images], owners, prepared, fitted,
                        np.asarray(text_embeddings, dtype=np.float32), dict(encoder), source, centroids)


# ---------------------------------------------------------------------------------------------- component
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
        """The component's default config; each key's unit is in its comment."""
        return {
            # Directory the catalog photo paths in the database are relative to (path; relative paths are
            # taken from the project root). None: CATALOG_IMAGE_DIR, else var/catalog-images.
            "image_root": None,
            # Shop database (SQLAlchemy URL). None: DATABASE_URL, else var/shop.db. When it cannot be read the
            # seed catalog data/catalog/products.csv is used, without photos.
            "database_url": None,
            # Photos per product whose cosine similarities are averaged (count, >= 1; local-mean k-NN).
            "k": 3,
            # Softmax temperature over the products' similarities (cosine-similarity units, > 0).
            "temperature": 0.04,
            # Softmax confidence at or above which a k-NN match counts as recognised (probability, 0..1).
            "min_confidence": 0.66,
            # Cosine similarity of the nearest catalog photo below which k-NN is not trusted and the ImageNet
            # labels are used instead (cosine similarity, -1..1), for plain features and for projected ones.
            "min_similarity": 0.36,
            "min_similarity_projected": 0.45,
            # Projection learnt from the catalog photos: "lda" (shrinkage LDA, when there are enough photos
            # per product) or "none".
            "projection": "lda",
            # Weight of the scaled identity in LDA's within-class covariance (0..1).
            "lda_shrinkage": 0.1,
            # Average photos per photographed product needed to fit the LDA projection (count, >= 2).
            "lda_min_photos_per_product": 3,
            # Candidates offered when unsure (count, 1..10).
            "candidates": 3,
            # ImageNet label → catalog kind / coarse category mapping (path to a YAML file; relative paths are
            # taken from the project root).
            "label_mapping": DEFAULT_LABEL_MAPPING,
            # Mapped ImageNet probability at or above which a label match counts as recognised (0..1).
            "label_min_confidence": 0.5,
            # Mapped ImageNet probability below which a label match is not even offered (0..1).
            "label_min_candidate": 0.1,
            # Intent for which similar products are ranked (intent name).
            "similar_intent": "similar_products",
            # Similar products returned at most (count, >= 1).
            "similar_top_n": 5,
            # Weights of the text (MiniLM) and photo (EfficientNet) cosine similarities in the
            # similar-products score (non-negative numbers, not both 0).
            "text_weight": 0.6,
            "image_weight": 0.4,
            # Text encoder directory: must be the TransformerTextFeaturizer's `model_path` (path). None: the
            # packaged all-MiniLM-L6-v2.
            "text_model_path": None,
            # Catalog photos per forward pass at training time (count, >= 1).
            "batch_size": 16,
            # Largest catalog photo file read at training time (bytes).
            "max_image_bytes": 10 * 1024 * 1024,
        }

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Checks every key of this component's config.

        Raises:
            InvalidConfigException: naming the key and its valid values, also for unknown keys.
        """
        known = set(cls.get_default_config())
        unknown = sorted(set(config) - known)
        if unknown:
            raise InvalidConfigException(
                f"{_NAME}: unknown config key(s) {', '.join(map(repr, unknown))}; valid keys: "
                f"{', '.join(sorted(known))}."
            )

        def number(key: str, low: float, high: float, low_open: bool = False) -> None:
            value = config.get(key)
            valid = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not valid or value > high or value < low or (low_open and value == low):
                low_text = f"> {low}" if low_open else f">= {low}"
                raise InvalidConfigException(f"{_NAME}: `{key}` must be a number {low_text} and <= {high}, "
                                             f"got {value!r}.")

        def integer(key: str, low: int, high: Optional[int] = None) -> None:
            value = config.get(key)
            valid = isinstance(value, int) and not isinstance(value, bool)
            if not valid or value < low or (high is not None and value > high):
                bounds = f">= {low}" if high is None else f"between {low} and {high}"
                raise InvalidConfigException(f"{_NAME}: `{key}` must be an integer {bounds}, got {value!r}.")

        def optional_text(key: str, what: str) -> None:
            value = config.get(key)
            if value is not None and not (isinstance(value, (str, os.PathLike)) and str(value).strip()):
                raise InvalidConfigException(f"{_NAME}: `{key}` must be {what} or null, got {value!r}.")

        integer("k", 1, 10_000)
        number("temperature", 0.0, 10.0, low_open=True)
        number("min_confidence", 0.0, 1.0)
        number("min_similarity", -1.0, 1.0)
        number("min_similarity_projected", -1.0, 1.0)
        if config.get("projection") not in ("lda", "none"):
            raise InvalidConfigException(f"{_NAME}: `projection` must be 'lda' or 'none', got "
                                         f"{config.get('projection')!r}.")
        number("lda_shrinkage", 0.0, 1.0)
        number("lda_min_photos_per_product", 2.0, 10_000.0)
        integer("candidates", 1, 10)
        number("label_min_confidence", 0.0, 1.0)
        number("label_min_candidate", 0.0, 1.0)
        integer("similar_top_n", 1, 100)
        number("text_weight", 0.0, 1000.0)
        number("image_weight", 0.0, 1000.0)
        if config["text_weight"] + config["image_weight"] <= 0:
            raise InvalidConfigException(f"{_NAME}: `text_weight` and `image_weight` must not both be 0.")
        integer("batch_size", 1)
        integer("max_image_bytes", 1)
        optional_text("image_root", "the catalog image directory")
        optional_text("database_url", "a SQLAlchemy database URL")
        optional_text("text_model_path", "the text encoder directory")
        if not (isinstance(config.get("label_mapping"), str) and config["label_mapping"].strip()):
            raise InvalidConfigException(f"{_NAME}: `label_mapping` must be the path of a YAML file, got "
                                         f"{config.get('label_mapping')!r}.")
        if not (isinstance(config.get("similar_intent"), str) and config["similar_intent"].strip()):
            raise InvalidConfigException(f"{_NAME}: `similar_intent` must be an intent name, got "
                                         f"{config.get('similar_intent')!r}.")

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        index: Optional[CatalogIndex] = None,
    ) -> None:
        """Validates the config and keeps the index (an empty one until trained or loaded).

        Raises:
            InvalidConfigException: for an invalid config or label mapping.
        """
        config = {**self.get_default_config(), **config}
        self.validate_config(config)
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._image_config = _pipeline_config(execution_context, ImageFeaturizer)
        self._mapping = load_label_mapping(resolve_mapping_path(config["label_mapping"]))
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
                    _NAME, index.encoder, expected,
                )
                self._knn_enabled = False

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
                           _NAME, error)
        return cls(config, model_storage, resource, execution_context, index)

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """A hash of the catalog (products' text fields, photo paths and photo file contents), the label
        mapping and the encoders' weights, so `rasa train` rebuilds the index when any of them changes.

        Prices and stock are left out: they are read from the database when an action answers.
        """
        config = {**cls.get_default_config(), **config}
        digest = hashlib.sha256(f"{_NAME}:{INDEX_FORMAT}".encode())
        try:
            products, images, source = read_catalog(config.get("database_url"))
        except Exception as error:  # pragma: no cover - read_catalog already falls back to the seed
            products, images, source = [], [], f"error:{type(error).__name__}"
        digest.update(source.encode())
        for product in products:
            digest.update(json.dumps(product.to_json(), sort_keys=True, ensure_ascii=False).encode())
        root = resolve_image_root(config.get("image_root"))
        digest.update(str(root).encode())
        for sku, relative in images:
            path = resolve_catalog_image(root, relative)
            content = _file_sha256(path) if path is not None else "missing"
            digest.update(f"{sku}|{relative}|{content}".encode())
        mapping_path = resolve_mapping_path(config.get("label_mapping"))
        digest.update(_file_sha256(mapping_path).encode() if mapping_path.is_file() else b"no-mapping")
        digest.update(_encoders_fingerprint(config.get("text_model_path")).encode())
        return digest.hexdigest()

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages this component imports (besides the featurizers' own)."""
        return ["numpy", "sqlalchemy"]

    # ------------------------------------------------------------------ training
    def train(self, training_data: TrainingData) -> Resource:
        """Builds the catalog index from the database (photos + texts) and persists it.

        The NLU training data is not used: the catalog is the training data. Missing photo files, a missing
        image root or an unreadable database give a smaller (or photo-less) index, never an error.
        """
        config = self._config
        products, image_pairs, source = read_catalog(config["database_url"])
        known = {product.sku for product in products}
        found = catalog_photo_files(image_pairs, resolve_image_root(config["image_root"]), known)
        rows = [{"sku": sku, "path": relative, "sha256": _file_sha256(path)} for sku, relative, path in found]
        paths = [path for _, _, path in found]
        raw = np.zeros((0, 0), dtype=np.float32)
        if paths:
            raw, ok = encode_catalog_images(
                paths, self._image_config, config["max_image_bytes"], config["batch_size"]
            )
            rows = [row for row, kept in zip(rows, ok) if kept]
        text = np.zeros((0, 0), dtype=np.float32)
        if products:
            try:
                text = encode_texts([product.text() for product in products], config["text_model_path"])
            except InvalidConfigException as error:
                logger.warning("%s: no text encoder (%s); similar products use photos only.", _NAME, error)
        index = build_index(
            products, rows, raw, text, encoder_signature(self._image_config) if rows else {}, source,
            config["projection"], config["lda_shrinkage"], config["lda_min_photos_per_product"],
        )
        with self._model_storage.write_to(self._resource) as directory:
            index.save(Path(directory))
        self._set_index(index)
        logger.info("%s: catalog index with %d products and %d photos (source: %s, projection: %s).",
                    _NAME, len(index.products), len(index.images), source,
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
                    entity = {
                        ENTITY_ATTRIBUTE_TYPE: PRODUCT_ENTITY,
                        ENTITY_ATTRIBUTE_VALUE: recognition["name"],
                        "sku": recognition["sku"],
                        "confidence": recognition["confidence"],
                        "method": recognition["method"],
                        "candidates": recognition["candidates"],
                    }
                    entities = list(message.get(ENTITIES) or []) + self.add_extractor_name([entity])
                    message.set(ENTITIES, entities, add_to_output=True)
            intent, payload_entities = _intent_and_payload(message)
            if intent == self._config["similar_intent"]:
                reference, ranked = self.similar_products(message, recognition, photo, payload_entities)
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
        config = self._config
        knn: List[Tuple[int, float]] = []
        if query is not None:
            scores, best_similarity = knn_scores(
                query, self._index.image_embeddings, self._index.image_groups, config["k"]
            )
            projected = self._index.projection is not None
            if best_similarity >= config["min_similarity_projected" if projected else "min_similarity"]:
                knn = softmax_ranking(scores, config["temperature"])
        if knn and knn[0][1] >= config["min_confidence"]:
            return self._result(RECOGNISED, METHOD_KNN, knn)
        by_label = label_votes(labels, self._label_targets)
        if by_label and by_label[0][1] >= config["label_min_confidence"]:
            if not knn or not self._index.has_image[by_label[0][0]]:
                return self._result(RECOGNISED, METHOD_LABEL, by_label)
        if knn:
            return self._result(UNCERTAIN, METHOD_KNN, knn)
        if by_label and by_label[0][1] >= config["label_min_candidate"]:
            return self._result(UNCERTAIN, METHOD_LABEL, by_label)
        return {"status": UNKNOWN, "method": None, "sku": None, "name": None, "confidence": 0.0,
                "candidates": []}

    def _result(self, status: str, method: str, ranked: Sequence[Tuple[int, float]]) -> Dict[str, Any]:
        candidates = [
            {"sku": self._index.products[i].sku, "name": self._index.products[i].name,
             "confidence": round(float(score), 4)}
            for i, score in ranked[: self._config["candidates"]]
        ]
        best = candidates[0]
        return {"status": status, "method": method, "sku": best["sku"], "name": best["name"],
                "confidence": best["confidence"], "candidates": candidates}

    # ------------------------------------------------------------------ similar products
    def similar_products(
        self,
        message: Message,
        recognition: Optional[Mapping[str, Any]],
        photo: Optional[np.ndarray],
        payload_entities: Optional[List[Dict[str, Any]]] = None,
    ) -> Tuple[Optional[Dict[str, Any]], List[Dict[str, Any]]]:
        """Ranks catalog products against the product the message is about.

        Args:
            message: the parsed message (text, entities).
            recognition: this message's `product_recognition`, if it has a photo.
            photo: the photo's L2-normalised `float32 (1280,)` embedding (no projection), if usable.
            payload_entities: entities of a `/intent{...}` payload (replace the predicted ones).

        Returns:
            `(similar_to, [{"sku", "score"}, ...])`; `(None, [])` when the message names no product.
        """
        index = self._index
        if not index.products:
            return None, []
        reference_sku: Optional[str] = None
        text_vector: Optional[np.ndarray] = None
        reference: Dict[str, Any] = {"sku": None, "name": None, "query": None, "source": None}
        if recognition is not None and (recognition.get("status") == RECOGNISED or photo is not None):
            reference["source"] = "photo"
            if recognition.get("status") == RECOGNISED:
                reference_sku = recognition.get("sku")
        else:
            photo = None
            wanted = self._named_product(message, payload_entities)
            if wanted is None:
                return None, []
            words, source = wanted
            reference.update(query=words, source=source)
            reference_sku = self._match_sku(words)
            if reference_sku is None and index.has_text:
                try:
                    text_vector = encode_texts([words], self._config["text_model_path"])[0]
                except InvalidConfigException as error:
                    logger.warning("%s: text encoder unavailable (%s)", _NAME, error)
        if reference_sku is not None and reference_sku in index.sku_index:
            product = index.products[index.sku_index[reference_sku]]
            reference.update(sku=product.sku, name=product.name)
        ranked = self._rank_similar(reference.get("sku"), text_vector, photo)
        if not ranked and reference["sku"] is None:
            return None, []
        return reference, ranked

    def _named_product(
        self, message: Message, payload_entities: Optional[List[Dict[str, Any]]]
    ) -> Optional[Tuple[str, str]]:
        """The words naming the reference product and where they came from ("entity" or "text")."""
        entities = payload_entities if payload_entities is not None else (message.get(ENTITIES) or [])
        for entity in entities:
            if (
                entity.get(ENTITY_ATTRIBUTE_TYPE) == PRODUCT_ENTITY
                and entity.get(EXTRACTOR) != self.name
                and isinstance(entity.get(ENTITY_ATTRIBUTE_VALUE), str)
                and entity[ENTITY_ATTRIBUTE_VALUE].strip()
            ):
                return " ".join(entity[ENTITY_ATTRIBUTE_VALUE].split())[:_TEXT_MAX_CHARS], "entity"
        if payload_entities is not None:
            return None
        text = message.get(TEXT)
        if not isinstance(text, str) or not text.strip() or len(text) > 4 * _TEXT_MAX_CHARS:
            return None
        words = [w for w in _WORD_RE.findall(text) if w.casefold() not in _REQUEST_WORDS]
        remainder = " ".join(words)[:_TEXT_MAX_CHARS]
        from shop import matching

        return (remainder, "text") if matching.query_tokens(remainder) else None

    def _match_sku(self, words: str) -> Optional[str]:
        from shop import matching

        ranked = matching.rank(words, self._index.products)
        if ranked and ranked[0][0] >= matching.MATCH_THRESHOLD:
            return ranked[0][1].sku
        return None

    def _rank_similar(
        self, reference_sku: Optional[str], text_vector: Optional[np.ndarray], photo: Optional[np.ndarray]
    ) -> List[Dict[str, Any]]:
        """`[{"sku", "score"}]` by the weighted mean of text and photo cosine similarities, best first."""
        index = self._index
        n = len(index.products)
        ref = index.sku_index.get(reference_sku) if reference_sku else None
        text_weight, image_weight = self._config["text_weight"], self._config["image_weight"]
        total = np.zeros((n,), dtype=np.float64)
        weight = np.zeros((n,), dtype=np.float64)
        if index.has_text and text_weight > 0:
            vector = index.text_embeddings[ref] if ref is not None else text_vector
            if vector is not None:
                total += text_weight * (index.text_embeddings @ vector)
                weight += text_weight
        if index.has_images and image_weight > 0 and self._knn_enabled:
            vector = photo if photo is not None else (
                index.image_centroids[ref] if ref is not None and index.has_image[ref] else None
            )
            if vector is not None:
                total += np.where(index.has_image, image_weight * (index.image_centroids @ vector), 0.0)
                weight += np.where(index.has_image, image_weight, 0.0)
        usable = weight > 0
        if ref is not None:
            usable[ref] = False
        if not usable.any():
            return []
        scores = np.where(usable, total / np.maximum(weight, 1e-12), -np.inf)
        order = np.argsort(-scores, kind="stable")[: self._config["similar_top_n"]]
        return [
            {"sku": index.products[i].sku, "score": round(float(scores[i]), 4)} for i in order if usable[i]
        ]


# ---------------------------------------------------------------------------------------------- helpers
def _pipeline_config(execution_context: ExecutionContext, component: Type) -> Dict[str, Any]:
    """The config of the first graph node that uses `component` (or a subclass), or {} when there is none."""
    schema = getattr(execution_context, "graph_schema", None)
    for node in getattr(schema, "nodes", {}).values():
        uses = getattr(node, "uses", None)
        if isinstance(uses, type) and issubclass(uses, component):
            return dict(node.config or {})
    return {}


def encoder_signature(image_config: Mapping[str, Any]) -> Dict[str, Any]:
    """What makes photo embeddings comparable: the weight file's sha256 and the pre-processing sizes."""
    from assistant.fingerprints import file_sha256 as file_fingerprint
    from encoders.image import resolve_weights_path

    config = {**ImageFeaturizer.get_default_config(), **dict(image_config)}
    try:
        weights = file_fingerprint(resolve_weights_path(config.get("weights_path")))
    except InvalidConfigException:
        return {}
    return {"weights_sha256": weights, "image_size": int(config["image_size"]),
            "resize_size": int(config["resize_size"])}


def _file_sha256(path: Path) -> str:
    from assistant.fingerprints import file_sha256 as file_fingerprint

    try:
        return file_fingerprint(path)
    except OSError:
        return "unreadable"


def _encoders_fingerprint(text_model_path: Optional[Text]) -> str:
    """Fingerprints of the packaged image weights and the text model directory (memoised per process)."""
    from assistant.fingerprints import file_sha256 as file_fingerprint
    from encoders.image import packaged_weights_path
    from encoders.text import model_directory_fingerprint, resolve_model_path

    try:
        image = file_fingerprint(packaged_weights_path())
    except InvalidConfigException:
        image = "no-packaged-weights"
    try:
        text = model_directory_fingerprint(resolve_model_path(text_model_path))
    except InvalidConfigException:
        text = f"unresolvable:{text_model_path}"
    return f"{image}|{text}"


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
