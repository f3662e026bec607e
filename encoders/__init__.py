"""The pretrained encoders (text: all-MiniLM-L6-v2; image: EfficientNet-Lite0), independent of Rasa's graph.

Each module loads its network once per process from package-shipped weights, and owns the pre- and
post-processing that turns inputs into embeddings: one sentence pooling (`encoders.text.pool_sentences`), one
image pre-processing (`encoders.image.crop_and_resize`). The NLU components, the ProductRecognizer's catalog
index, the offline tuning tools and the benchmarks all embed through here, so their vectors live in one space.
"""
