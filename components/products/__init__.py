"""The parts of `components.product_recognizer.ProductRecognizer`, one responsibility per module.

- `catalog`: the catalog as the recogniser reads it (the snapshot written by `shop.catalog_snapshot`, else the
  seed catalog), the catalog image root and the safe resolution of photo paths, the photo limits;
- `embeddings`: catalog photos and texts encoded exactly as the ImageFeaturizer and the
  TransformerTextFeaturizer encode a customer's (`encoders.image`, `encoders.text`);
- `knn`: L2 normalisation, the shrinkage-LDA projection, per-product photo groups and centroids, local-mean
  k-NN scores and their softmax ranking;
- `labels`: the ImageNet label → catalog kind mapping and its votes;
- `index`: `CatalogIndex`, built from the embeddings and persisted as `.npy` arrays + JSON (no pickle);
- `recommender`: similar products by text and photo similarity;
- `photo_import` and `grocery`: attaching product photos to the catalog (`make catalog-images`), also from the
  Grocery Store Dataset (used by the benchmarks too).

Nothing is imported here, so a module can be used without loading the others (or Rasa).
"""
