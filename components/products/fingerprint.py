"""What the ProductRecognizer's index depends on besides the training data, as one hash (`fingerprint_addon`).

Covered: the catalog the recogniser would read (the snapshot's products and photo paths, or the seed catalog),
the content of every photo file under the image root, the label mapping file and the packaged encoders'
weights. Not covered: prices and stock (actions read them live), and the database itself (never opened: the
snapshot is refreshed from it by `make db` / `make train`).
"""
from __future__ import annotations

import hashlib
import json
from typing import Optional, Text

from assistant.fingerprints import UNREADABLE, directory_sha256, file_sha256, file_sha256_or
from components.products import NAME
from components.products.catalog import load_catalog
from components.products.index import INDEX_FORMAT
from components.products.labels import resolve_mapping_path
from encoders.errors import EncoderError
from shop.catalog_photos import resolve_catalog_image, resolve_image_root



def packaged_encoders_fingerprint() -> str:
    """Fingerprints of the packaged image weights and the packaged text model (memoised per process)."""
    from encoders.image import packaged_weights_path
    from encoders.text import packaged_model_path

    try:
        image = file_sha256(packaged_weights_path())
    except EncoderError:
        image = "no-packaged-weights"
    try:
        text = directory_sha256(packaged_model_path().resolve())
    except EncoderError:
        text = "unresolvable:None"
    return f"{image}|{text}"


def catalog_fingerprint(
    snapshot: Optional[Text], image_root: Optional[Text], label_mapping: Optional[Text]
) -> str:
    """SHA-256 (hex) over the index's inputs (see the module docstring).

    Args:
        snapshot: the `catalog_snapshot` config value (None: CATALOG_SNAPSHOT or var/catalog/snapshot.json).
        image_root: the `image_root` config value (None: CATALOG_IMAGE_DIR or var/catalog-images).
        label_mapping: the `label_mapping` config value.
    """
    digest = hashlib.sha256(f"{NAME}:{INDEX_FORMAT}".encode())
    catalog = load_catalog(snapshot)
    digest.update(catalog.source.encode())
    for product in catalog.products:
        digest.update(json.dumps(product.to_json(), sort_keys=True, ensure_ascii=False).encode())
    root = resolve_image_root(image_root)
    digest.update(str(root).encode())
    for sku, relative in catalog.photos:
        path = resolve_catalog_image(root, relative)
        content = file_sha256_or(path, UNREADABLE) if path is not None else "missing"
        digest.update(f"{sku}|{relative}|{content}".encode())
    mapping_path = resolve_mapping_path(label_mapping)
    mapping = file_sha256_or(mapping_path, UNREADABLE) if mapping_path.is_file() else "no-mapping"
    digest.update(mapping.encode())
    digest.update(packaged_encoders_fingerprint().encode())
    return digest.hexdigest()
