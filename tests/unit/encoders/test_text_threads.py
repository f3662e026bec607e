"""`encoders.text.encode_sentences` beside the featurizer's tokenisation in other threads (the server's parse
workers run both at once): asking the shared fast tokenizer for padding changed its state and failed with
"Already borrowed" while another thread tokenised."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from encoders.text import SentencePooling, encode_sentences, load_model, resolve_model_path
from tests.unit.encoders.tiny_bert import TINY_WINDOW


def test_encode_sentences_and_featurizer_tokenisation_run_in_threads_at_once(tiny_bert_dir: Path) -> None:
    loaded = load_model(resolve_model_path(str(tiny_bert_dir)))
    texts = ["where is my order", "please refund the parcel 12345 unbelievably"]
    alone = encode_sentences(texts, loaded, SentencePooling(), TINY_WINDOW)
    errors = []

    def featurizer_like() -> None:  # the TransformerTextFeaturizer's call (components/text_featurizer.py)
        for _ in range(200):
            try:
                loaded.tokenizer(texts, max_length=TINY_WINDOW, truncation=True, stride=0,
                                 return_overflowing_tokens=True, return_offsets_mapping=True)
            except Exception as error:  # noqa: BLE001  (collected for the assertion)
                errors.append(repr(error))

    def sentences() -> None:  # the ProductRecognizer's text query
        for _ in range(40):
            try:
                np.testing.assert_allclose(
                    encode_sentences(texts, loaded, SentencePooling(), TINY_WINDOW), alone, atol=1e-5
                )
            except Exception as error:  # noqa: BLE001
                errors.append(repr(error))

    threads = [threading.Thread(target=target) for target in (featurizer_like, sentences) * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
