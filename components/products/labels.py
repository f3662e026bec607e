"""ImageNet labels → catalog products: the recogniser's fallback when no catalog photo is close enough.

The mapping (data/catalog/imagenet_to_kind.yml) names, for an ImageNet class, the catalog kinds, coarse
categories or skus it stands for. A label's probability (the ImageFeaturizer's softmax) is shared equally
among its targets that exist in the catalog, then equally among the products of each target.
"""
from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Text, Tuple

from rasa.shared.exceptions import InvalidConfigException

from assistant.paths import project_path
from components.products import NAME
from components.products.catalog import CatalogProduct

#: The shipped mapping (relative to the project root).
DEFAULT_LABEL_MAPPING = "data/catalog/imagenet_to_kind.yml"

_MAPPING_CACHE: Dict[Tuple[str, int, int], Dict[str, List[str]]] = {}
_MAPPING_LOCK = threading.Lock()


def resolve_mapping_path(path: Optional[Text]) -> Path:
    """The label mapping file (relative paths are taken from the project root)."""
    return project_path(path or DEFAULT_LABEL_MAPPING)


def load_label_mapping(path: Path) -> Dict[str, List[str]]:
    """Reads `{ImageNet label: [catalog kind or coarse category, ...]}`, once per file version.

    Raises:
        InvalidConfigException: if the file is missing, not a YAML mapping of lists of strings, or names a
            label that is not one of the 1000 ImageNet class names the ImageFeaturizer reports.
    """
    if not path.is_file():
        raise InvalidConfigException(f"{NAME}: `label_mapping` file '{path}' does not exist.")
    status = path.stat()
    key = (str(path), status.st_size, status.st_mtime_ns)
    with _MAPPING_LOCK:
        if key in _MAPPING_CACHE:
            return _MAPPING_CACHE[key]
        from ruamel.yaml import YAML

        from encoders.image import LABELS_PATH, imagenet_labels

        try:
            raw = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
        except Exception as error:
            raise InvalidConfigException(
                f"{NAME}: `label_mapping` '{path}' is not valid YAML: {error}"
            ) from error
        if not isinstance(raw, dict):
            raise InvalidConfigException(f"{NAME}: `label_mapping` '{path}' must be a YAML mapping.")
        known = set(imagenet_labels())
        mapping: Dict[str, List[str]] = {}
        for label, targets in raw.items():
            if label not in known:
                raise InvalidConfigException(
                    f"{NAME}: `label_mapping` '{path}': '{label}' is not an ImageNet class name "
                    f"(see {LABELS_PATH.name} in the encoders package)."
                )
            if isinstance(targets, str):
                targets = [targets]
            if not isinstance(targets, list) or not all(isinstance(t, str) and t.strip() for t in targets):
                raise InvalidConfigException(
                    f"{NAME}: `label_mapping` '{path}': '{label}' must map to a list of catalog kinds or "
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
