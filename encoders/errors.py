"""The one error the encoders raise."""
from __future__ import annotations

from rasa.shared.exceptions import InvalidConfigException


class EncoderError(InvalidConfigException):
    """A model that cannot be found, read or loaded (missing package, wrong path, mismatched weights).

    A subclass of Rasa's ``InvalidConfigException`` (itself a ``ValueError``): a component whose config names
    an unusable model fails to load with this error, and Rasa reports it as a configuration problem.
    """
