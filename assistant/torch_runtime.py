"""Process-wide torch settings for training and inference: seeds and CPU thread counts.

torch is imported inside the functions, so importing this module costs nothing for code that never trains.
Used by the fusion classifier (training and prediction) and the offline tuning tools alike.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


def seed_everything(seed: int) -> None:
    """Seeds python's `random`, numpy and torch (CPU) with `seed` (an integer)."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Runs the block with `count` torch intra-op CPU threads, then restores the previous count.

    Args:
        count: threads for the block; 0 or less leaves torch's setting untouched.
    """
    if count <= 0:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
