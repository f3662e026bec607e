"""Product recognition from photos on the Grocery Store Dataset: accuracy, calibration and latency.

Usage: `python -m benchmarks.bench_images [DATASET] [--out reports/images] [--latency-images 60]
[--num-threads 1]`
(DATASET defaults to ../shared/data/grocery; part of `make bench`, never of `make test`).

Data (Klasson, Zhang & Kjellström, "A Hierarchical Grocery Store Image Dataset with Visual and Semantic
Labels", WACV 2019; MIT licence): 81 fine / 42 coarse classes, one iconic product photo per class, 2,640 train
and 296 val phone photos taken in stores. The catalog is the project's seed catalog; each class is matched to
its product with the repository's `find_product` (shop/grocery_dataset.py), so predictions are
skus and a prediction is correct when it is the sku of the photo's class; coarse accuracy maps skus back to
coarse classes.

Every photo is embedded exactly as in the assistant: `decode_image` → `crop_and_resize` → the
ImageFeaturizer's EfficientNet-Lite0 (`ImageFeaturizer.encode`, packaged ImageNet weights). Rows:

- ImageNet labels → catalog: the ProductRecognizer's fallback (data/catalog/imagenet_to_kind.yml), no photos;
- 1-NN and the recogniser's local-mean k-NN (k, temperature from config.yml) on the plain ImageNet features,
  with the iconic photos as the catalog (81 photos), then with the train photos added (2,721 photos);
- ProductRecognizer as configured (config.yml), the component itself run on every val photo: shrinkage-LDA
  projection learnt from the catalog photos (when there are several per product), local-mean k-NN,
  thresholds, label fallback;
- a linear probe: multinomial logistic regression (C = 10, fixed beforehand) on the frozen L2-normalised
  features of the catalog photos — a classifier, not a catalog lookup, shown for comparison;
- shipped catalog (data/catalog photos): the catalog a fresh clone has after `make db`, the iconic photos and a
  few downscaled train photos per product that scripts/ship_grocery_photos.py put into data/catalog/photos/
  (`shop.shipped_photos`, no val photo among them), with 1-NN and the ProductRecognizer as configured: the
  out-of-the-box accuracy (packaged weights, no `make tune-images`).

Calibration, on the val photos (the dataset's test photos are kept back): k from {1, 2, 3, 5, 10} and the
softmax temperature with the lowest negative log-likelihood (NLL) of the true product; `min_confidence` = the
smallest confidence at which the recognised photos are at least 90 % correct; `min_similarity` from generated
non-product pictures (flat colours, gradients, noise, text, checkerboards): the highest nearest-photo cosine
they reach, against the val photos' 1st percentile and minimum. The values for config.yml are printed and
written to the report; the report's thresholded figures use the values config.yml has.

Latency: per photo, one at a time (batch 1, as a user turn): decode + pre-processing, network + recogniser, as
wall-clock and process CPU time (p50, p90), with the torch thread count.

Outputs: reports/images/report.md, reports/images/accuracy_latency.png (top-1 accuracy per method and the
coarse confusion matrix of the configured recogniser), reports/images/metrics.json; a table on stdout with the
machine (CPU model, cores, load) and the date. Embeddings are cached in reports/images/features-<key>.npz.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from assistant.keys import RECOGNISED, UNCERTAIN, UNKNOWN
from assistant.paths import PROJECT_ROOT
from benchmarks.machine import load_1min, machine_description
from shop import grocery_dataset as grocery

# Rasa imports TensorFlow; keep its start-up banner out of the report's output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_DATASET = PROJECT_ROOT.parent / "shared" / "data" / "grocery"
DEFAULT_OUT = PROJECT_ROOT / "reports" / "images"
TARGET_PRECISION = 0.90
#: Catalog name of the rows on the photos shipped with the demo catalog.
SHIPPED_CATALOG = "shipped catalog (data/catalog photos)"
#: ProductRecognizer settings recorded with the results.
CONFIG_KEYS = ("k", "temperature", "min_confidence", "min_similarity", "min_similarity_projected",
               "projection", "lda_shrinkage", "label_min_confidence", "label_min_candidate")
PROBE_C = 10.0
K_GRID = (1, 2, 3, 5, 10)
TEMPERATURE_GRID = tuple(float(t) for t in np.round(np.geomspace(0.01, 0.2, 14), 4))

logger = logging.getLogger("bench_images")


# ---------------------------------------------------------------------------------------------- dataset
def read_split(dataset: Path, name: str) -> Tuple[List[Path], np.ndarray, np.ndarray]:
    """Paths, fine ids and coarse ids of `train.txt` / `val.txt` (`grocery.read_split`)."""
    rows = grocery.read_split(dataset, name)
    return ([dataset / path for path, _, _ in rows], np.asarray([fine for _, fine, _ in rows]),
            np.asarray([coarse for _, _, coarse in rows]))


def read_classes(dataset: Path) -> Tuple[List[str], np.ndarray, List[Path]]:
    """Class names, coarse id per fine id, iconic photo per fine id (index = fine id)."""
    classes = grocery.read_classes(dataset)
    return ([c.name for c in classes], np.asarray([c.coarse_id for c in classes]),
            [dataset / c.iconic for c in classes])


# ---------------------------------------------------------------------------------------------- encoding
@functools.lru_cache(maxsize=1)
def image_settings() -> Dict[str, Any]:
    """The ImageFeaturizer's config as config.yml sets it (defaults filled in)."""
    from components.image_featurizer import ImageFeaturizer

    settings = pipeline_settings("components.image_featurizer.ImageFeaturizer")
    return {**ImageFeaturizer.get_default_config(), **settings}


def make_featurizer(weights_path: Optional[Path] = None):
    """The pipeline's ImageFeaturizer with the config.yml settings; `weights_path` replaces its weights."""
    from components.image_featurizer import ImageFeaturizer

    settings = image_settings()
    if weights_path is not None:
        settings = {**settings, "weights_path": str(weights_path)}
    return ImageFeaturizer(settings, "bench")


def pipeline_settings(name: str) -> Dict[str, Any]:
    """The keys config.yml sets for the pipeline component `name` (without `name`)."""
    import yaml

    config = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))
    for item in config.get("pipeline") or []:
        if isinstance(item, dict) and item.get("name") == name:
            return {k: v for k, v in item.items() if k != "name"}
    return {}


def preprocess(featurizer, path: Path) -> np.ndarray:
    from encoders.image import crop_and_resize
    from media.images import decode_image

    config = image_settings()
    image = decode_image(path.read_bytes(), 40_000_000, config["resize_size"])
    return crop_and_resize(image, config["image_size"], config["resize_size"])


def encode_paths(featurizer, paths: Sequence[Path], batch: int = 16) -> Tuple[np.ndarray, np.ndarray]:
    """(embeddings float32 (n, 1280), ImageNet probabilities float32 (n, 1000))."""
    embeddings, probabilities = [], []
    for start in range(0, len(paths), batch):
        inputs = [preprocess(featurizer, p) for p in paths[start : start + batch]]
        e, p = featurizer.encode(inputs)
        embeddings.append(e)
        probabilities.append(p)
        if start and start % 800 < batch:
            logger.info("  %d / %d photos", start, len(paths))
    return np.concatenate(embeddings), np.concatenate(probabilities)


def features(dataset: Path, out: Path, featurizer, groups: Dict[str, List[Path]]) -> Dict[str, np.ndarray]:
    """Embeddings and probabilities per group, cached by file list, weights and pre-processing."""
    from assistant.fingerprints import file_sha256 as file_fingerprint

    key = hashlib.sha256()
    key.update(file_fingerprint(featurizer._loaded.weights_path).encode())
    key.update(json.dumps({k: image_settings()[k] for k in ("image_size", "resize_size")}).encode())
    for name, paths in groups.items():
        key.update(name.encode())
        for path in paths:
            key.update(str(path.relative_to(dataset)).encode())
    cache = out / f"features-{key.hexdigest()[:12]}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    result: Dict[str, np.ndarray] = {}
    for name, paths in groups.items():
        logger.info("Embedding %d %s photos ...", len(paths), name)
        result[f"{name}_emb"], result[f"{name}_prob"] = encode_paths(featurizer, paths)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **result)
    return result


def shipped_features(out: Path, featurizer, sku_index: Dict[str, int]) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Raw embeddings `float32 (n, 1280)` and product indices `int64 (n,)` of the photos shipped with the demo
    catalog (data/catalog/photos/<SKU>/), cached by their content, the weights and the pre-processing; None
    when there are none. Photos of skus outside the catalog are left out."""
    from assistant.fingerprints import file_sha256
    from shop.shipped_photos import shipped_photos

    photos = [photo for photo in shipped_photos()[0] if photo.sku in sku_index]
    if not photos:
        return None
    key = hashlib.sha256()
    key.update(file_sha256(featurizer._loaded.weights_path).encode())
    key.update(json.dumps({k: image_settings()[k] for k in ("image_size", "resize_size")}).encode())
    for photo in photos:
        key.update(f"{photo.sku} {file_sha256(photo.path)}".encode())
    cache = out / f"features-shipped-{key.hexdigest()[:12]}.npz"
    owners = np.asarray([sku_index[photo.sku] for photo in photos], dtype=np.int64)
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            return data["emb"], owners
    logger.info("Embedding %d shipped catalog photos ...", len(photos))
    embeddings, _ = encode_paths(featurizer, [photo.path for photo in photos])
    out.mkdir(parents=True, exist_ok=True)
    np.savez(cache, emb=embeddings)
    return embeddings, owners


def generated_pictures(count: int = 30, seed: int = 0) -> List[np.ndarray]:
    """Pre-processed non-product pictures: flat colours, gradients, noise, text on white, checkerboards."""
    from PIL import Image, ImageDraw

    from encoders.image import crop_and_resize

    rng = np.random.default_rng(seed)
    pictures = []
    for i in range(count):
        kind = i % 5
        if kind == 0:
            image = Image.new("RGB", (320, 240), tuple(int(v) for v in rng.integers(0, 256, 3)))
        elif kind == 1:
            ramp = np.linspace(0, 255, 320, dtype=np.float32)[None, :, None] * rng.random(3)[None, None, :]
            image = Image.fromarray(np.repeat(ramp, 240, axis=0).astype(np.uint8))
        elif kind == 2:
            image = Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
        elif kind == 3:
            image = Image.new("RGB", (320, 240), (255, 255, 255))
            draw = ImageDraw.Draw(image)
            for row in range(8):
                draw.text((10, 10 + 28 * row), "invoice 10023 total 12.50 EUR" * 2, fill=(0, 0, 0))
        else:
            cells = rng.integers(0, 2, (6, 8)).repeat(40, axis=0).repeat(40, axis=1)
            image = Image.fromarray((cells * 255).astype(np.uint8)).convert("RGB")
        pictures.append(crop_and_resize(image, 224, 256))
    return pictures


# ---------------------------------------------------------------------------------------------- metrics
def knn_rankings(
    queries: np.ndarray, catalog: np.ndarray, owners: np.ndarray, k: int, temperature: float
) -> Tuple[List[List[Tuple[int, float]]], np.ndarray]:
    """The recogniser's scoring (`knn_scores` + `softmax_ranking`) for every prepared query row:
    (ranked (product, confidence) per query, best cosine per query)."""
    from components.products.knn import knn_scores, product_groups, softmax_ranking

    groups = product_groups(np.asarray(owners, dtype=np.int64), int(np.max(owners)) + 1)
    ranked, best = [], []
    for query in queries:
        scores, similarity = knn_scores(query, catalog, groups, k)
        ranked.append(softmax_ranking(scores, temperature))
        best.append(similarity)
    return ranked, np.asarray(best)


def topk_accuracy(ranked: Sequence[Sequence[int]], truth: Sequence[int], k: int) -> float:
    """Share of rows whose true item is among the first `k`."""
    return float(np.mean([t in list(r)[:k] for r, t in zip(ranked, truth)]))


def nll(ranked: Sequence[Sequence[Tuple[int, float]]], truth: Sequence[int]) -> float:
    """Mean negative log of the confidence given to the true product (floored at 1e-6)."""
    return float(np.mean([-np.log(max(dict(r).get(t, 0.0), 1e-6)) for r, t in zip(ranked, truth)]))


def calibrate(queries: np.ndarray, catalog: np.ndarray, owners: np.ndarray, truth: Sequence[int]) -> Dict:
    """k and temperature with the lowest NLL, and the smallest confidence with ≥ 90 % precision."""
    best: Optional[Dict[str, Any]] = None
    for k in K_GRID:
        for temperature in TEMPERATURE_GRID:
            ranked, _ = knn_rankings(queries, catalog, owners, k, temperature)
            loss = nll(ranked, truth)
            if best is None or loss < best["nll"]:
                top1 = topk_accuracy([[p for p, _ in r] for r in ranked], truth, 1)
                best = {"k": k, "temperature": temperature, "top1": top1, "nll": loss, "ranked": ranked}
    ranked = best.pop("ranked")
    confidence = np.asarray([r[0][1] for r in ranked])
    correct = np.asarray([r[0][0] == t for r, t in zip(ranked, truth)])
    threshold = 1.0
    for candidate in sorted(set(np.round(confidence, 3))):
        kept = confidence >= candidate
        if kept.sum() >= 10 and correct[kept].mean() >= TARGET_PRECISION:
            threshold = float(candidate)
            break
    kept = confidence >= threshold
    best.update(min_confidence=threshold, coverage=float(kept.mean()),
                precision=float(correct[kept].mean()) if kept.any() else float("nan"))
    return best


@dataclass
class Setting:
    """The catalog and the truth in catalog terms: product indices of the seed catalog."""

    products: List[Any]
    sku_index: Dict[str, int]
    truth: List[int]
    to_coarse: Dict[int, int]
    val_coarse: np.ndarray
    config: Dict[str, Any]

    def row(self, method: str, catalog: str, ranked: Sequence[Sequence[int]], **extra: Any) -> Dict[str, Any]:
        """Fine and coarse top-1/top-3 of rankings of product indices (coarse: first occurrence kept)."""
        coarse = []
        for items in ranked:
            seen: List[int] = []
            for item in items:
                value = self.to_coarse.get(item)
                if value is not None and value not in seen:
                    seen.append(value)
            coarse.append(seen)
        return {
            "method": method, "catalog": catalog,
            "fine_top1": topk_accuracy(ranked, self.truth, 1),
            "fine_top3": topk_accuracy(ranked, self.truth, 3),
            "coarse_top1": topk_accuracy(coarse, self.val_coarse, 1),
            "coarse_top3": topk_accuracy(coarse, self.val_coarse, 3),
            **extra,
        }

    def index(self, raw: np.ndarray, owners: np.ndarray, projection: str):
        """A CatalogIndex of `raw` photo embeddings owned by product indices `owners`."""
        from components.products.index import build_index

        images = [{"sku": self.products[o].sku, "path": f"{i}.jpg", "sha256": "0" * 64}
                  for i, o in enumerate(owners)]
        no_text = np.zeros((0, 0), np.float32)
        return build_index(self.products, images, raw, no_text, {}, "benchmark", projection,
                           self.config["lda_shrinkage"], self.config["lda_min_photos_per_product"])

    def recogniser(self, index=None):
        """The ProductRecognizer with config.yml's settings on `index` (None: the catalog without photos)."""
        import tempfile

        from components.product_recognizer import ProductRecognizer
        from components.products.index import CatalogIndex
        from rasa.engine.graph import ExecutionContext, GraphSchema
        from rasa.engine.storage.local_model_storage import LocalModelStorage
        from rasa.engine.storage.resource import Resource

        if index is None:
            empty = np.zeros((0, 0), np.float32)
            index = CatalogIndex(list(self.products), [], np.zeros((0,), np.int64), empty, None, empty, {},
                                 "benchmark")
        storage = LocalModelStorage(Path(tempfile.mkdtemp(prefix="bench-images-")))
        context = ExecutionContext(GraphSchema({}), "bench")
        return ProductRecognizer(self.config, storage, Resource("bench"), context, index)

    def run_recogniser(self, recogniser, embeddings: np.ndarray, labels: Sequence) -> Tuple[List, List[str]]:
        """(candidate product indices, status) of each photo, by the component itself."""
        results = [recogniser.recognise(e, l) for e, l in zip(embeddings, labels)]
        ranked = [[self.sku_index[c["sku"]] for c in r["candidates"]] for r in results]
        return ranked, [r["status"] for r in results]

    def outcome(self, ranked: Sequence[Sequence[int]], status: Sequence[str]) -> Dict[str, Any]:
        """Shares of recognised / uncertain / unknown answers, the precision of the recognised ones, and how
        often the right product is among the candidates of an uncertain one."""
        recognised = np.asarray([s == RECOGNISED for s in status])
        right = np.asarray([bool(r) and r[0] == t for r, t in zip(ranked, self.truth)])
        uncertain = [t in r for r, t, s in zip(ranked, self.truth, status) if s == UNCERTAIN]
        return {
            "recognised_share": float(recognised.mean()),
            "recognised_precision": float(right[recognised].mean()) if recognised.any() else float("nan"),
            "uncertain_share": float(np.mean([s == UNCERTAIN for s in status])),
            "unknown_share": float(np.mean([s == UNKNOWN for s in status])),
            "true_in_candidates_when_uncertain": float(np.mean(uncertain)) if uncertain else float("nan"),
        }


def nearest_similarity(index, embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity of each raw embedding's nearest catalog photo, in the index's space."""
    return np.asarray([float((index.image_embeddings @ index.prepare(e)).max()) for e in embeddings])


# ---------------------------------------------------------------------------------------------- run
def run(dataset: Path, out: Path, latency_images: int, tune_epochs: int = 0) -> Dict[str, Any]:
    """Every measurement; returns what `write_report` writes."""
    from components.product_recognizer import ProductRecognizer
    from components.products.catalog import seed_catalog
    from components.products.knn import prepare_embeddings
    from shop.db import make_engine, make_session_factory
    from shop.repository import ShopRepository
    from shop.seed import create_and_seed

    started = datetime.now(timezone.utc)
    names, coarse_of_fine, iconic_paths = read_classes(dataset)
    train_paths, train_fine, _ = read_split(dataset, "train")
    val_paths, val_fine, val_coarse = read_split(dataset, "val")

    engine = make_engine("sqlite://")
    create_and_seed(engine)
    class_sku = grocery.grocery_skus(dataset, ShopRepository(make_session_factory(engine)))
    engine.dispose()
    if any(sku is None for sku in class_sku.values()):
        raise SystemExit("some Grocery classes match no catalog product (see shop/grocery_dataset.py)")
    products = seed_catalog()  # without photos
    sku_index = {p.sku: i for i, p in enumerate(products)}
    product_of = {c: sku_index[class_sku[c]] for c in range(len(names))}  # class id → product index
    config = {**ProductRecognizer.get_default_config(),
              **pipeline_settings("components.product_recognizer.ProductRecognizer")}
    setting = Setting(products, sku_index, [product_of[int(c)] for c in val_fine],
                      {product_of[c]: int(coarse_of_fine[c]) for c in range(len(names))}, val_coarse, config)

    featurizer = make_featurizer()
    groups = {"iconic": iconic_paths, "train": train_paths, "val": val_paths}
    data = features(dataset, out, featurizer, groups)
    labels = [_top_labels(p) for p in data["val_prob"]]
    iconic_owner = np.asarray([product_of[c] for c in range(len(names))])
    full_owner = np.concatenate([iconic_owner, [product_of[int(c)] for c in train_fine]])
    iconic_raw, full_raw = data["iconic_emb"], np.concatenate([data["iconic_emb"], data["train_emb"]])
    catalogs = {"iconic (81)": (iconic_raw, iconic_owner),
                f"iconic + train ({full_raw.shape[0]})": (full_raw, full_owner)}
    full_name = list(catalogs)[1]
    k, temperature = config["k"], config["temperature"]

    ranked, status = setting.run_recogniser(setting.recogniser(), data["val_emb"], labels)
    fallback = setting.outcome(ranked, status)
    rows = [setting.row("ImageNet labels → catalog (fallback)", "no photos", ranked, **fallback)]
    calibration: Dict[str, Any] = {}
    queries = prepare_embeddings(data["val_emb"], None)
    for name, (raw, owners) in catalogs.items():
        prepared = prepare_embeddings(raw, None)
        for k_ in (1, k):
            scored, _ = knn_rankings(queries, prepared, owners, k_, temperature)
            method = "1-NN" if k_ == 1 else f"local-mean {k_}-NN"
            top = [[p for p, _ in r] for r in scored]
            rows.append(setting.row(f"{method}, ImageNet features", name, top))
        calibration[f"plain, {name}"] = calibrate(queries, prepared, owners, setting.truth)

    indexes = {name: setting.index(raw, owners, config["projection"])
               for name, (raw, owners) in catalogs.items()}
    projected = indexes[full_name]
    calibration[f"{config['projection']}, {full_name}"] = calibrate(
        np.stack([projected.prepare(e) for e in data["val_emb"]]), projected.image_embeddings,
        projected.image_owner, setting.truth)
    recognisers = {name: setting.recogniser(index) for name, index in indexes.items()}
    start = time.perf_counter()
    outcomes = {name: setting.run_recogniser(r, data["val_emb"], labels) for name, r in recognisers.items()}
    recogniser_ms = (time.perf_counter() - start) * 1000 / (len(outcomes) * len(labels))
    for name, (ranked, status) in outcomes.items():
        lda = "LDA + " if indexes[name].projection is not None else ""
        method = f"ProductRecognizer as configured ({lda}local-mean {k}-NN)"
        rows.append(setting.row(method, name, ranked, **setting.outcome(ranked, status)))

    probe_ranked, probe_ms = _linear_probe(full_raw, full_owner, data["val_emb"])
    rows.append(setting.row(f"linear probe (logistic regression, C={PROBE_C:g})", full_name, probe_ranked))
    shipped = shipped_features(out, featurizer, sku_index)
    shipped_index = None
    if shipped is not None:
        raw, owners = shipped
        name = f"{SHIPPED_CATALOG} ({raw.shape[0]})"
        scored, _ = knn_rankings(queries, prepare_embeddings(raw, None), owners, 1, temperature)
        rows.append(setting.row("1-NN, ImageNet features", name, [[p for p, _ in r] for r in scored]))
        shipped_index = setting.index(raw, owners, config["projection"])
        ranked, status = setting.run_recogniser(setting.recogniser(shipped_index), data["val_emb"], labels)
        lda = "LDA + " if shipped_index.projection is not None else ""
        method = f"ProductRecognizer as configured ({lda}local-mean {k}-NN)"
        rows.append(setting.row(method, name, ranked, **setting.outcome(ranked, status)))
        space = config["projection"] if shipped_index.projection is not None else "plain"
        calibration[f"{space}, {name}"] = calibrate(
            np.stack([shipped_index.prepare(e) for e in data["val_emb"]]), shipped_index.image_embeddings,
            shipped_index.image_owner, setting.truth)

    pictures, _ = featurizer.encode(generated_pictures())
    similarity = {}
    for name, index in (("projected", projected), ("plain", setting.index(full_raw, full_owner, "none")),
                        ("plain_iconic", indexes["iconic (81)"])):
        real, generated = nearest_similarity(index, data["val_emb"]), nearest_similarity(index, pictures)
        similarity[name] = {"generated_max": float(generated.max()), "val_min": float(real.min()),
                            **{f"val_p{q:02d}": float(np.percentile(real, q)) for q in (1, 5, 50)}}
    similarity["projected"]["generated_recognised"] = sum(
        recognisers[full_name].recognise(e, [])["status"] == RECOGNISED for e in pictures)
    if shipped_index is not None:
        real, generated = nearest_similarity(shipped_index, data["val_emb"]), nearest_similarity(
            shipped_index, pictures)
        similarity["shipped"] = {
            "generated_max": float(generated.max()), "val_min": float(real.min()),
            **{f"val_p{q:02d}": float(np.percentile(real, q)) for q in (1, 5, 50)},
            "generated_recognised": sum(setting.recogniser(shipped_index).recognise(e, [])["status"]
                                        == RECOGNISED for e in pictures)}

    latency = _latency(featurizer, recognisers[full_name], val_paths[:latency_images])
    latency.update(recogniser_ms=recogniser_ms, linear_probe_ms_per_image=probe_ms,
                   torch_threads=_torch_threads())
    tuning = None
    if tune_epochs > 0:
        tuned_rows, tuning = _tuned_encoder(dataset, out, setting, groups, full_owner, full_name, tune_epochs)
        rows.extend(tuned_rows)
    best = outcomes[full_name][0]
    return {
        "date": started.isoformat(timespec="seconds"),
        "machine": {**machine_description(), "load_1min": load_1min()},
        "dataset": str(dataset),
        "sizes": {"classes": len(names), "coarse_classes": int(np.unique(coarse_of_fine).size),
                  "iconic": len(iconic_paths), "train": len(train_paths), "val": len(val_paths)},
        "config": {key: config[key] for key in CONFIG_KEYS},
        "rows": rows, "calibration": calibration, "similarity": similarity, "latency": latency,
        "coarse_confusion": _confusion(best, setting, int(coarse_of_fine.max()) + 1).tolist(),
        "tuning": tuning,
    }


def _tuned_encoder(dataset: Path, out: Path, setting: "Setting", groups: Dict[str, List[Path]],
                   full_owner: np.ndarray, full_name: str, epochs: int) -> Tuple[List[Dict[str, Any]], Dict]:
    """`make tune-images` on the full catalog (iconic + train photos, labelled with their product's sku), then
    the val photos again on the tuned weights: 1-NN, the configured ProductRecognizer, the linear probe.

    The tuned weights go to `<out>/image-encoder/` and are reused while photos and settings are unchanged.
    """
    from encoders.image import packaged_weights_path
    from tuning.image import (
        WEIGHTS_FILE,
        ImageTuningConfig,
        fine_tune_images,
        is_up_to_date,
        iter_photos,
        photo_digest,
        read_report,
    )
    from components.products.knn import prepare_embeddings

    settings = image_settings()
    config = ImageTuningConfig(epochs=epochs, image_size=settings["image_size"],
                               resize_size=settings["resize_size"], num_threads=os.cpu_count() or 1)
    paths = list(groups["iconic"]) + list(groups["train"])
    skus = [setting.products[int(o)].sku for o in full_owner]
    tuned_dir, base = out / "image-encoder", packaged_weights_path()
    digest = photo_digest(paths, skus)
    if not is_up_to_date(tuned_dir, digest, config, base):
        logger.info("Fine-tuning EfficientNet-Lite0 on %d catalog photos (%d epochs) ...", len(paths), epochs)
        photos = iter_photos(paths, skus, config, 50 * 1024 * 1024, 40_000_000)
        fine_tune_images(photos, base, tuned_dir, config, lambda line: logger.info("  %s", line), digest)
    report = read_report(tuned_dir) or {}
    featurizer = make_featurizer(tuned_dir / WEIGHTS_FILE)
    data = features(dataset, out, featurizer, groups)
    labels = [_top_labels(p) for p in data["val_prob"]]
    full_raw = np.concatenate([data["iconic_emb"], data["train_emb"]])
    scored, _ = knn_rankings(prepare_embeddings(data["val_emb"], None), prepare_embeddings(full_raw, None),
                             full_owner, 1, setting.config["temperature"])
    tag = f"tuned encoder (make tune-images, {epochs} epochs)"
    rows = [setting.row(f"1-NN, {tag}", full_name, [[p for p, _ in r] for r in scored])]
    index = setting.index(full_raw, full_owner, setting.config["projection"])
    ranked, status = setting.run_recogniser(setting.recogniser(index), data["val_emb"], labels)
    lda = "LDA + " if index.projection is not None else ""
    method = f"ProductRecognizer as configured ({lda}local-mean {setting.config['k']}-NN), {tag}"
    rows.append(setting.row(method, full_name, ranked, **setting.outcome(ranked, status)))
    probe_ranked, _ = _linear_probe(full_raw, full_owner, data["val_emb"])
    rows.append(setting.row(f"linear probe (C={PROBE_C:g}), {tag}", full_name, probe_ranked))
    tuning = {key: report.get(key) for key in ("config", "history", "seconds", "front_seconds", "photos")}
    return rows, tuning


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _top_labels(probabilities: np.ndarray, k: int = 5) -> List[Dict[str, Any]]:
    """The top-k ImageNet labels as the ImageFeaturizer reports them."""
    from encoders.image import imagenet_labels

    labels = imagenet_labels()
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"label": labels[int(i)], "confidence": round(float(probabilities[i]), 4)} for i in order]


def _linear_probe(train: np.ndarray, owners: np.ndarray, val: np.ndarray) -> Tuple[List[List[int]], float]:
    """Top-5 product indices per val photo from a logistic regression, and its ms per photo."""
    from sklearn.linear_model import LogisticRegression

    from components.products.knn import l2_normalise

    probe = LogisticRegression(C=PROBE_C, max_iter=3000)
    probe.fit(l2_normalise(train), owners)
    start = time.perf_counter()
    probabilities = probe.predict_proba(l2_normalise(val))
    ms = (time.perf_counter() - start) * 1000 / len(val)
    order = np.argsort(-probabilities, axis=1)[:, :5]
    return [[int(probe.classes_[i]) for i in row] for row in order], ms


def _latency(featurizer, recogniser, paths: Sequence[Path]) -> Dict[str, float]:
    """Per photo, batch 1: decode + pre-processing, network + recogniser, wall and CPU time (ms)."""
    decode, network, wall, cpu = [], [], [], []
    for path in [paths[0]] * 3 + list(paths):  # three warm-up calls
        w0, c0 = time.perf_counter(), time.process_time()
        x = preprocess(featurizer, path)
        w1 = time.perf_counter()
        embedding, probabilities = featurizer.encode([x])
        recogniser.recognise(embedding[0], _top_labels(probabilities[0]))
        w2, c2 = time.perf_counter(), time.process_time()
        decode.append((w1 - w0) * 1000)
        network.append((w2 - w1) * 1000)
        wall.append((w2 - w0) * 1000)
        cpu.append((c2 - c0) * 1000)
    decode, network, wall, cpu = (values[3:] for values in (decode, network, wall, cpu))
    return {
        "images": len(wall), "decode_ms_p50": statistics.median(decode),
        "network_ms_p50": statistics.median(network), "wall_ms_p50": statistics.median(wall),
        "wall_ms_p90": float(np.percentile(wall, 90)), "cpu_ms_p50": statistics.median(cpu),
    }


def _confusion(ranked: Sequence[Sequence[int]], setting: Setting, n_coarse: int) -> np.ndarray:
    """Coarse confusion counts (rows: true coarse class, columns: predicted) of top-1 predictions."""
    matrix = np.zeros((n_coarse, n_coarse), dtype=np.int64)
    for items, truth in zip(ranked, setting.truth):
        if items:
            matrix[setting.to_coarse[truth], setting.to_coarse[items[0]]] += 1
    return matrix


# ---------------------------------------------------------------------------------------------- output
def table(rows: Sequence[Dict[str, Any]]) -> str:
    """The accuracy rows as a Markdown table."""
    lines = ["| method | catalog | fine top-1 | fine top-3 | coarse top-1 | coarse top-3 |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['catalog']} | {r['fine_top1']:.1%} | {r['fine_top3']:.1%} | "
                     f"{r['coarse_top1']:.1%} | {r['coarse_top3']:.1%} |")
    return "\n".join(lines)


def outcome_line(row: Dict[str, Any]) -> str:
    """How the configured recogniser answered the val photos of one catalog."""
    return (
        f"{row['catalog']}: {row['recognised_share']:.1%} of the val photos named "
        f"({row['recognised_precision']:.1%} of them correctly), {row['uncertain_share']:.1%} answered with "
        f"candidates (right product among them for {row['true_in_candidates_when_uncertain']:.1%}), "
        f"{row['unknown_share']:.1%} \"unknown\""
    )


def write_report(result: Dict[str, Any], out: Path) -> None:
    """reports/images/report.md, accuracy_latency.png and metrics.json."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=1, default=float), encoding="utf-8")
    _plot(result, out / "accuracy_latency.png")
    machine, latency, sizes = result["machine"], result["latency"], result["sizes"]
    sim, cfg = result["similarity"], result["config"]
    outcomes = "\n".join(f"- {outcome_line(r)}" for r in result["rows"] if "recognised_share" in r)
    calibration = "\n".join(
        f"| {name} | {c['k']} | {c['temperature']:g} | {c['top1']:.1%} | {c['nll']:.3f} | "
        f"{c['min_confidence']:.3f} | {c['precision']:.1%} | {c['coverage']:.1%} |"
        for name, c in result["calibration"].items()
    )
    similarity = "\n".join(
        f"| {name} | {s['generated_max']:.3f} | {s['val_min']:.3f} | {s['val_p01']:.3f} | "
        f"{s['val_p05']:.3f} | {s['val_p50']:.3f} |"
        for name, s in sim.items()
    )
    tuning = result.get("tuning")
    tuned = ""
    if tuning and tuning.get("history"):
        c, last = tuning["config"], tuning["history"][-1]
        tuned = (f"\nRows marked \"tuned encoder\": `make tune-images` (tuning/image.py) on the "
                 f"{tuning['photos']} catalog photos, blocks {c['first_tuned_block']}-15 and the head "
                 f"convolution trained for {c['epochs']} epochs on cached activations of 4 views per photo, "
                 f"{c['num_threads']} torch threads: {tuning['seconds']:.0f} s "
                 f"({tuning['front_seconds']:.0f} s of them for the frozen front), final training loss "
                 f"{last['loss']:.3f}, accuracy {last['train_accuracy']:.1%}. The catalog is then "
                 "re-embedded with the tuned weights; the val photos are never seen in tuning.\n")
    text = f"""# Product recognition from photos (Grocery Store Dataset)

{result['date']}; {machine['cpu']}, {machine['logical_cores']} logical cores
({machine['usable_cores']} usable), 1-minute load {machine['load_1min']} at the start (a shared machine);
Python {machine['python']}; torch threads {latency['torch_threads']}.

Data: {sizes['classes']} fine / {sizes['coarse_classes']} coarse classes; catalog = the {sizes['iconic']}
iconic photos, then also the {sizes['train']} train photos, and the {SHIPPED_CATALOG} that a fresh clone
has after `make db` (iconic + a few downscaled train photos per product, scripts/ship_grocery_photos.py);
test = the {sizes['val']} val photos (the dataset's test photos are kept back). Features: EfficientNet-Lite0
with the packaged ImageNet weights and the ImageFeaturizer's pre-processing. Predictions are catalog skus (each
class matched to its seed-catalog product).

{table(result['rows'])}
{tuned}
The configured recogniser (config.yml: k = {cfg['k']}, temperature = {cfg['temperature']}, min_confidence =
{cfg['min_confidence']}, min_similarity = {cfg['min_similarity']} plain / {cfg['min_similarity_projected']}
projected, label fallback) per catalog:
{outcomes}

## Calibration (val photos)
k and the temperature minimise the negative log-likelihood (NLL) of the true product's confidence;
min_confidence is the smallest confidence at which the named products are at least
{TARGET_PRECISION:.0%} right (precision and coverage at that value).

| features, catalog | k | temperature | top-1 | NLL | min_confidence | precision | coverage |
|---|---:|---:|---:|---:|---:|---:|---:|
{calibration}

Cosine similarity of the nearest catalog photo, for 30 generated non-product pictures (flat colours,
gradients, noise, text, checkerboards) and for the val photos ({sim['projected']['generated_recognised']} of
the pictures were named as a product by the configured recogniser on the full catalog):

| space, catalog | pictures max | val min | val 1st pct | val 5th pct | val median |
|---|---:|---:|---:|---:|---:|
{similarity}

## Latency (one photo at a time, {latency['images']} val photos)
| step | p50 |
|---|---:|
| decode + pre-processing | {latency['decode_ms_p50']:.1f} ms |
| network + recogniser | {latency['network_ms_p50']:.1f} ms |
| recogniser alone (mean, full catalog) | {latency['recogniser_ms']:.2f} ms |
| whole photo, wall clock (p90) | {latency['wall_ms_p50']:.1f} ms ({latency['wall_ms_p90']:.1f} ms) |
| whole photo, process CPU time | {latency['cpu_ms_p50']:.1f} ms |

![accuracy and coarse confusion matrix](accuracy_latency.png)
"""
    (out / "report.md").write_text(text, encoding="utf-8")


def _plot(result: Dict[str, Any], path: Path) -> None:
    """Top-1 accuracy per method (bars) and the configured recogniser's coarse confusion matrix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(16, 7), gridspec_kw={"width_ratios": [1.1, 1]})
    y = np.arange(len(rows))
    left.barh(y - 0.2, [r["fine_top1"] for r in rows], height=0.4, label="fine top-1")
    left.barh(y + 0.2, [r["coarse_top1"] for r in rows], height=0.4, label="coarse top-1")
    left.set_yticks(y, [f"{r['method']}\n[{r['catalog']}]" for r in rows], fontsize=7)
    left.invert_yaxis()
    left.set_xlim(0, 1)
    left.set_xlabel("accuracy on the val photos")
    left.axvline(0.8, color="grey", linestyle=":", linewidth=1)
    left.legend(loc="upper right")
    latency = result["latency"]
    left.set_title(f"Top-1 accuracy (one photo: {latency['wall_ms_p50']:.0f} ms wall p50, "
                   f"{latency['cpu_ms_p50']:.0f} ms CPU)")
    matrix = np.asarray(result["coarse_confusion"], dtype=float)
    matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    right.imshow(matrix, cmap="viridis", vmin=0, vmax=1)
    right.set_title("Configured recogniser, full catalog: coarse confusion (row-normalised)")
    right.set_xlabel("predicted coarse class id")
    right.set_ylabel("true coarse class id")
    machine = result["machine"]
    figure.suptitle(f"{machine['cpu']}, {machine['logical_cores']} cores, {result['date'][:10]}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the exit code (2: no dataset)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--latency-images", type=int, default=60)
    parser.add_argument("--num-threads", type=int, default=1,
                        help="torch CPU threads (default 1, as the encoder benchmarks use)")
    parser.add_argument("--tune-epochs", type=int, default=None,
                        help="epochs of the tuned-encoder rows (make tune-images on the catalog photos; "
                             "default tuning.image.ImageTuningConfig; 0 skips them)")
    args = parser.parse_args(argv)
    if args.num_threads > 0:
        import torch

        torch.set_num_threads(args.num_threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("components", "shop", "rasa", "sqlalchemy", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not (args.dataset / "classes.csv").is_file():
        print(f"Grocery Store Dataset not found at {args.dataset}; nothing to benchmark.", file=sys.stderr)
        return 2
    if args.tune_epochs is None:
        from tuning.image import ImageTuningConfig

        args.tune_epochs = ImageTuningConfig().epochs
    result = run(args.dataset, args.out, max(args.latency_images, 1), max(args.tune_epochs, 0))
    write_report(result, args.out)
    machine, latency = result["machine"], result["latency"]
    print(f"\nProduct recognition, Grocery Store Dataset val photos, {result['date']}")
    print(f"Machine: {machine['cpu']}, {machine['logical_cores']} logical cores, load {machine['load_1min']}")
    print(table(result["rows"]))
    for row in result["rows"]:
        if "recognised_share" in row and row["catalog"] != "no photos":
            print(f"configured recogniser, {outcome_line(row)}")
    for row in result["rows"]:
        if row["catalog"].startswith(SHIPPED_CATALOG) and "recognised_share" in row:
            print(f"{row['catalog']}, out of the box: fine top-1 {row['fine_top1']:.1%}, top-3 "
                  f"{row['fine_top3']:.1%}, coarse top-1 {row['coarse_top1']:.1%}; named "
                  f"{row['recognised_share']:.1%}, {row['recognised_precision']:.1%} of them correctly")
    for name, c in result["calibration"].items():
        print(f"calibration [{name}]: k={c['k']} temperature={c['temperature']:g} top-1={c['top1']:.1%} "
              f"NLL={c['nll']:.3f} min_confidence={c['min_confidence']:.3f} (precision {c['precision']:.1%}, "
              f"coverage {c['coverage']:.1%})")
    for name, s in result["similarity"].items():
        print(f"nearest-photo cosine [{name}]: generated pictures max {s['generated_max']:.3f}, val min "
              f"{s['val_min']:.3f}, 1st pct {s['val_p01']:.3f}, 5th pct {s['val_p05']:.3f}")
    print(f"Latency per photo (batch 1): {latency['wall_ms_p50']:.1f} ms wall p50, "
          f"{latency['cpu_ms_p50']:.1f} ms CPU; recogniser alone {latency['recogniser_ms']:.2f} ms")
    print(f"Report: {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
