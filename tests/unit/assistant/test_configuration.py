"""assistant.configuration: the field kinds and the messages of `validate_config`."""
from __future__ import annotations

from typing import Any

import pytest
from rasa.shared.exceptions import InvalidConfigException

from assistant.configuration import ComponentConfig, Integers, Names, defaults_of, validate_config


class LayersConfig(ComponentConfig):
    sizes: Any = Integers([256], ge=1, valid="a list of positive integers")
    bounded: Any = Integers([], ge=0, le=10, min_items=0, valid="a list of integers from 0 to 10")
    two: Any = Integers([1, 2], min_items=2, valid="a list of at least 2 integers")


@pytest.mark.parametrize(
    "config",
    [{}, {"sizes": []}, {"sizes": [1, 512]}, {"sizes": (3,)}, {"bounded": [0, 10]}, {"two": [-5, 0, 7]}],
)
def test_integers_accepts_lists_of_integers_in_range(config):
    validate_config("Layers", LayersConfig, config)


@pytest.mark.parametrize(
    "key, value",
    [
        ("sizes", 128),
        ("sizes", [0]),
        ("sizes", [1.0]),
        ("sizes", [True]),
        ("sizes", ["64"]),
        ("sizes", None),
        ("bounded", [11]),
        ("bounded", [-1]),
        ("two", [1]),
    ],
)
def test_integers_refuses_other_values_naming_the_key_and_its_valid_values(key, value):
    valid = LayersConfig.__fields__[key].field_info.extra["valid"]
    with pytest.raises(InvalidConfigException) as error:
        validate_config("Layers", LayersConfig, {key: value})
    assert str(error.value) == f"Layers: `{key}` must be {valid}, got {value!r}."


def test_integers_default_is_copied():
    defaults = defaults_of(LayersConfig)
    defaults["sizes"].append(1)
    assert defaults_of(LayersConfig)["sizes"] == [256]


class LabelsConfig(ComponentConfig):
    labels: Any = Names(
        ["a", "b"], choices=("a", "b", "c"), distinct=True, min_items=2, valid="2+ of a, b, c"
    )


@pytest.mark.parametrize("value", [["a"], ["a", "a"], ["a", "d"], "ab", ["a", ""]])
def test_names_with_choices_distinct_and_a_minimum(value):
    with pytest.raises(InvalidConfigException, match="`labels` must be 2\\+ of a, b, c"):
        validate_config("Labels", LabelsConfig, {"labels": value})
    assert validate_config("Labels", LabelsConfig, {"labels": ["c", "a"]}).labels == ["c", "a"]
