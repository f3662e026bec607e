"""Tests for `media.audio`: the signal level of decoded PCM."""
from __future__ import annotations

import math

import numpy as np
import pytest

from media import loudest_frame_dbfs
from tests.unit.media.samples import RATE


def test_loudest_frame_level():
    t = np.arange(RATE) / RATE
    full_scale = (32767 * np.sin(2 * math.pi * 1000 * t)).astype(np.int16)
    assert loudest_frame_dbfs(full_scale, RATE) == pytest.approx(-3.0, abs=0.1)
    assert loudest_frame_dbfs(np.zeros(RATE, dtype=np.int16), RATE) == float("-inf")
    assert loudest_frame_dbfs(np.zeros(0, dtype=np.int16), RATE) == float("-inf")
    # One loud 30 ms frame in a minute of silence is still found.
    quiet = np.zeros(60 * RATE, dtype=np.int16)
    quiet[RATE : RATE + 480] = full_scale[:480]
    assert loudest_frame_dbfs(quiet, RATE) > -10.0
