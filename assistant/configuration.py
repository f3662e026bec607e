"""One way for every project component to check its configuration: a pydantic model per component.

Each component declares a :class:`ComponentConfig` subclass whose fields are its config keys, each with its
default and a ``valid=...`` text that says, in words, what values the key takes (it ends up in the error
message). Building the model checks it: whatever is wrong becomes one ``InvalidConfigException`` that names the
component, the key, its valid values and the value that was given; unknown keys (usually typos) are refused
with the list of valid keys. :func:`validate_config` builds the model from the config Rasa hands over, and a
model built in code (``ChannelSettings(upload_burst=0)``) is checked just as strictly.

The field types below are strict where YAML would otherwise be coerced silently: ``true`` is not a number,
``"5"`` is not an integer, ``NaN`` is not a probability.

Example::

    class SanitizerConfig(ComponentConfig):
        max_chars: int = Integer(
            1000, ge=16, le=100_000, valid="a whole number of characters from 16 to 100000"
        )

    config = validate_config("TextSanitizer", SanitizerConfig, {"max_chars": 5})
    # InvalidConfigException: TextSanitizer: `max_chars` must be a whole number of characters from 16 to
    # 100000, got 5.
"""
from __future__ import annotations

import math
import os
import re
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Type, TypeVar

from pydantic import BaseModel, Extra, Field, ValidationError
from rasa.shared.exceptions import InvalidConfigException

__all__ = [
    "ComponentConfig",
    "ConfigError",
    "Flag",
    "Integer",
    "Integers",
    "Names",
    "Number",
    "OptionalPath",
    "Choice",
    "TextValue",
    "defaults_of",
    "validate_config",
]

_C = TypeVar("_C", bound="ComponentConfig")


class ConfigError(ValueError):
    """Raised inside a :meth:`ComponentConfig.check` for a rule that spans several keys.

    Args:
        key: The key to name in the message.
        valid: What the key must be, in words (``"positive when `x` is 0"``).
    """

    def __init__(self, key: str, valid: str) -> None:
        super().__init__(f"{key}: {valid}")
        self.key = key
        self.valid = valid


class ComponentConfig(BaseModel):
    """Base of every component's config model: strict fields, unknown keys refused, immutable once checked.

    The component's name in error messages is ``Config.title`` (default: the class name).

    Raises:
        InvalidConfigException: from the constructor, as :func:`validate_config` describes.
    """

    class Config:
        extra = Extra.forbid
        allow_mutation = False
        arbitrary_types_allowed = True

    def __init__(self, **data: Any) -> None:
        _validated_init(self, type(self).__config__.title or type(self).__name__, data)

    def check(self) -> None:
        """Rules that span several keys; raise :class:`ConfigError` to refuse. Runs after the field checks."""


# ---------------------------------------------------------------------------------------------------------
# Strict field types
# ---------------------------------------------------------------------------------------------------------
def _strict_integer(value: Any) -> None:
    """An ``int`` that is not a ``bool`` (YAML ``true`` would otherwise pass as 1)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not an integer")


def _strict_number(value: Any) -> None:
    """A finite ``int`` or ``float`` that is not a ``bool``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError("not a finite number")


def _bounded(
    low: Optional[float], high: Optional[float], gt: Optional[float], lt: Optional[float]
) -> Callable:
    def check(value: Any) -> Any:
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError("out of range")
        if (gt is not None and value <= gt) or (lt is not None and value >= lt):
            raise ValueError("out of range")
        return value

    return check


def _field(default: Any, valid: str, **extra: Any) -> Any:
    return Field(default, valid=valid, **extra)


def Integer(  # noqa: N802 (a field factory, named like a type)
    default: Any, *, valid: str, ge: Optional[int] = None, le: Optional[int] = None, optional: bool = False
) -> Any:
    """A strict integer field in ``[ge, le]`` (``optional=True``: or null); ``valid`` says so in words."""
    return _field(default, valid, strict_type="int", bounds=(ge, le, None, None), optional=optional)


def Integers(  # noqa: N802
    default: Any, *, valid: str, ge: Optional[int] = None, le: Optional[int] = None, min_items: int = 0
) -> Any:
    """A list of strict integers, each in ``[ge, le]``, at least ``min_items`` long (e.g. units per layer)."""
    return _field(default, valid, strict_type="ints", bounds=(ge, le, None, None), min_count=min_items)


def Number(  # noqa: N802
    default: Any,
    *,
    valid: str,
    ge: Optional[float] = None,
    le: Optional[float] = None,
    gt: Optional[float] = None,
    lt: Optional[float] = None,
    optional: bool = False,
) -> Any:
    """A finite number (int or float, not bool) in bounds (``optional=True``: or null)."""
    return _field(default, valid, strict_type="number", bounds=(ge, le, gt, lt), optional=optional)


def Flag(default: bool, *, valid: str = "true or false") -> Any:  # noqa: N802
    """A strict boolean field."""
    return _field(default, valid, strict_type="bool")


def TextValue(  # noqa: N802
    default: Any,
    *,
    valid: str,
    optional: bool = False,
    allow_empty: bool = False,
    pattern: Optional[str] = None,
) -> Any:
    """A non-blank string field (``optional=True``: or null; ``allow_empty=True``: or ``""``), which must match
    the regular expression ``pattern`` in full when one is given."""
    return _field(default, valid, strict_type="text", optional=optional, allow_empty=allow_empty, pattern=pattern)


def OptionalPath(default: Any, *, valid: str) -> Any:  # noqa: N802
    """A path (non-blank string or ``os.PathLike``) or null."""
    return _field(default, valid, strict_type="path")


def Choice(default: Any, *values: Any, valid: Optional[str] = None) -> Any:  # noqa: N802
    """One of ``values`` (compared with ``==``, type included: ``True`` is not ``1``)."""
    text = valid or "one of " + ", ".join(repr(v) for v in values)
    return _field(default, text, strict_type="choice", choices=tuple(values))


def Names(  # noqa: N802
    default: Any,
    *,
    valid: str,
    choices: Optional[Iterable[str]] = None,
    distinct: bool = False,
    min_items: int = 0,
) -> Any:
    """A list of non-empty strings (optionally from ``choices``, distinct, at least ``min_items``)."""
    return _field(
        default,
        valid,
        strict_type="names",
        choices=None if choices is None else tuple(choices),
        distinct=distinct,
        min_count=min_items,  # not `min_items`: pydantic would claim that name as its own constraint
    )


def _check_value(extra: Mapping[str, Any], value: Any) -> None:
    """Raise ``ValueError`` when ``value`` breaks the rule recorded in a field's ``extra``."""
    kind = extra.get("strict_type")
    if value is None and extra.get("optional"):
        return
    if kind == "int":
        _strict_integer(value)
        _bounded(*extra["bounds"])(value)
    elif kind == "ints":
        if not isinstance(value, (list, tuple)) or len(value) < extra["min_count"]:
            raise ValueError("not a list of integers")
        for item in value:
            _strict_integer(item)
            _bounded(*extra["bounds"])(item)
    elif kind == "number":
        _strict_number(value)
        _bounded(*extra["bounds"])(value)
    elif kind == "bool":
        if not isinstance(value, bool):
            raise TypeError("not true or false")
    elif kind == "text":
        if not isinstance(value, str):
            raise ValueError("not text")
        if value == "" and extra.get("allow_empty"):
            return
        if not value.strip() or (extra.get("pattern") and not re.fullmatch(extra["pattern"], value)):
            raise ValueError("not text of the expected form")
    elif kind == "path":
        if value is not None and not (isinstance(value, (str, os.PathLike)) and str(value).strip()):
            raise ValueError("not a path")
    elif kind == "choice":
        if not any(type(value) is type(choice) and value == choice for choice in extra["choices"]):
            raise ValueError("not a choice")
    elif kind == "names":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise ValueError("not a list of names")
        choices = extra.get("choices")
        if choices is not None and not all(v in choices for v in value):
            raise ValueError("unknown name")
        if extra.get("distinct") and len(set(value)) != len(value):
            raise ValueError("repeated name")
        if len(value) < extra["min_count"]:
            raise ValueError("too few names")


def validate_config(
    component: str, schema: Type[_C], config: Mapping[str, Any], ignore: Iterable[str] = ()
) -> _C:
    """Check a component's config against its model and return the checked model.

    Missing keys take the model's defaults. Keys in ``ignore`` (keys that a Rasa base class adds, such as a
    policy's ``priority``) are passed over without a check.

    Args:
        component: Name used in the messages, e.g. ``"ProductRecognizer"``.
        schema: The component's :class:`ComponentConfig` subclass.
        config: The config as Rasa hands it over (defaults merged with config.yml).
        ignore: Keys to leave to someone else.

    Returns:
        The validated, immutable model.

    Raises:
        InvalidConfigException: ``"<component>: unknown config key(s) 'x'; valid keys are a, b, c."`` or
            ``"<component>: `<key>` must be <valid values>, got <value>."``.
    """
    skipped = set(ignore)
    values = {key: value for key, value in dict(config or {}).items() if key not in skipped}
    model = schema.__new__(schema)
    _validated_init(model, component, values)
    return model


def _validated_init(model: ComponentConfig, component: str, values: Dict[str, Any]) -> None:
    """Check ``values`` strictly, then initialise ``model`` with them and run its ``check()``.

    Raises:
        InvalidConfigException: see :func:`validate_config`.
    """
    fields = type(model).__fields__
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InvalidConfigException(
            f"{component}: unknown config key(s) {', '.join(map(repr, unknown))}; valid keys are "
            f"{', '.join(sorted(fields))}."
        )

    def refuse(key: str, valid: str) -> InvalidConfigException:
        given = values[key] if key in values else getattr(model, key, None)
        return InvalidConfigException(f"{component}: `{key}` must be {valid}, got {given!r}.")

    for key, field in fields.items():
        if key not in values:
            continue
        try:
            _check_value(field.field_info.extra, values[key])
        except (TypeError, ValueError):
            raise refuse(key, field.field_info.extra["valid"]) from None
    try:
        BaseModel.__init__(model, **values)
    except ValidationError as error:  # a field with a plain pydantic type or a @validator of its own
        first = error.errors()[0]
        key = str(first["loc"][0]) if first.get("loc") else "?"
        field = fields.get(key)
        raise refuse(key, field.field_info.extra.get("valid", first["msg"]) if field else first["msg"]) from None
    try:
        model.check()
    except ConfigError as error:
        raise refuse(error.key, error.valid) from None


def defaults_of(schema: Type[ComponentConfig]) -> Dict[str, Any]:
    """The model's defaults as a plain dict (for ``get_default_config``), lists copied."""
    return {
        key: (list(field.default) if isinstance(field.default, (list, tuple)) else field.default)
        for key, field in schema.__fields__.items()
    }
