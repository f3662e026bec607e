"""The OutOfScopeDetector's configuration: one key per field, with its default, unit and valid values.

The thresholds' defaults are those `benchmarks/calibrate_ood.py` chose (see config.yml for the date).
"""
from __future__ import annotations

from typing import List

from assistant.configuration import ComponentConfig, Integer, Names, Number

__all__ = ["OutOfScopeConfig"]


class OutOfScopeConfig(ComponentConfig):
    """The OutOfScopeDetector's config keys, their defaults and units (``get_default_config`` returns these)."""

    # Dense featurizers (names or aliases) whose sentence feature is compared; the first one present is used.
    featurizers: List[str] = Names(["minilm"], valid="a non-empty list of featurizer names", min_items=1)
    # Nearest training examples whose cosine similarities are averaged (count).
    k: int = Integer(3, ge=1, le=50, valid="a whole number from 1 to 50")
    # Share of known tokens (0..1) below which a message is gibberish and gets nlu_fallback.
    min_familiarity: float = Number(0.4166, ge=0.0, le=1.0, valid="a number from 0.0 to 1.0")
    # Mean top-k cosine similarity to in-domain examples below which a message is off-topic or unclear.
    min_similarity: float = Number(0.374, ge=-1.0, le=1.0, valid="a cosine from -1.0 to 1.0")
    # In-domain minus out-of-scope top-k cosine below which a message is off-topic (out_of_scope).
    min_margin: float = Number(0.0927, ge=-2.0, le=2.0, valid="a number from -2.0 to 2.0")
    # difflib ratio (0..1) from which an unknown word of 4+ letters counts as a typo of a training word.
    typo_ratio: float = Number(0.8, gt=0.0, le=1.0, valid="a number above 0.0 and at most 1.0")
    # Tokens of a message judged at most (the rest are not looked at; bounds the time per message).
    max_tokens: int = Integer(64, ge=1, valid="a positive whole number")
