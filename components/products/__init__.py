"""The parts of `components.product_recognizer.ProductRecognizer`, one responsibility per module.

- `catalog`: the catalog as the recogniser reads it (the snapshot written by `shop.catalog_snapshot`, else the
  seed catalog) and the catalog photos it lists (found through `shop.catalog_photos`);
- `embeddings`: catalog photos and texts encoded exactly as the ImageFeaturizer and the
  TransformerTextFeaturizer encode a customer's (`encoders.image`, `encoders.text`);
- `knn`: L2 normalisation, the shrinkage-LDA projection, per-product photo groups and centroids, local-mean
  k-NN scores and their softmax ranking;
- `labels`: the ImageNet label → catalog kind mapping and its votes;
- `index`: `CatalogIndex`, built from the embeddings and persisted as `.npy` arrays + JSON (no pickle);
- `recognition`: the answer for one photo (recognised, uncertain or unknown);
- `recommender`: similar products by text and photo similarity;
- `fingerprint`: what the index depends on besides the training data (snapshot, photos, encoders).

Attaching photos to the catalog (`make catalog-images`) is not part of the graph: see `shop.photo_import` and
`shop.grocery_dataset`.

Only `assistant.keys` is imported here, so a module can be used without loading the others (or Rasa).
"""
from __future__ import annotations

from assistant.keys import PRODUCT_RECOGNIZER_EXTRACTOR

#: Component name used in log lines and error messages: the class name, which is also the `extractor` value of
#: the entities the recogniser adds (`assistant.keys.PRODUCT_RECOGNIZER_EXTRACTOR`).
NAME = PRODUCT_RECOGNIZER_EXTRACTOR
