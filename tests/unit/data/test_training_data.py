"""Static checks of the NLU training data that `rasa data validate` does not make."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import List

import pytest
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.loading import load_data

from assistant.keys import SENTIMENT_LABELS
from assistant.paths import nlu_training_files
from components.fusion.features import sentiment_label_of

NLU_FILES = nlu_training_files()


def _examples_with_entities(path: Path) -> List:
    data = load_data(str(path))
    return [m for m in data.training_examples if m.get("entities")]


@pytest.mark.parametrize("path", NLU_FILES, ids=lambda p: p.name)
def test_entity_annotations_match_token_boundaries(path: Path) -> None:
    """An entity must start and end on a WhitespaceTokenizer token boundary.

    A misaligned span ("#[10045](order_number)": the token is "#10045") is dropped from DIET's training with a
    warning, so the annotation teaches nothing; annotate the whole token and give the value instead
    (`[#10045]{"entity": "order_number", "value": "10045"}`).
    """
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    misaligned = []
    for message in _examples_with_entities(path):
        tokens = tokenizer.tokenize(message, TEXT)
        starts, ends = {t.start for t in tokens}, {t.end for t in tokens}
        for entity in message.get("entities"):
            if entity["start"] not in starts or entity["end"] not in ends:
                span = f"{entity['entity']} {entity['start']}-{entity['end']}"
                misaligned.append(f"{message.get(TEXT)!r}: {span}")
    assert not misaligned, "entities not on token boundaries:\n" + "\n".join(misaligned)


def test_sentiment_labels_are_those_the_classifier_predicts() -> None:
    """Every `metadata: {sentiment: ...}` in the NLU data is a label of the fusion classifier's sentiment head
    (any other label would be dropped from training with a warning), and each label has examples."""
    labels = Counter(
        label
        for path in NLU_FILES
        for label in map(sentiment_label_of, load_data(str(path)).training_examples)
        if label is not None
    )
    assert set(labels) == set(SENTIMENT_LABELS), labels
