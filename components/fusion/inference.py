"""Running a fusion network: logits for a `Batch` in mini-batches.

Used by the component's `process` and by the training loop's validation; nothing here trains.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch

from components.fusion.features import Batch, to_torch
from components.fusion.network import FusionNetwork


def predict_logits(
    network: FusionNetwork, data: Batch, batch_size: int
) -> Tuple[Optional[torch.Tensor], torch.Tensor]:
    """Logits of all rows of `data`, `batch_size` rows per forward pass, without gradients.

    Returns:
        (intent logits `float32 (n, n_intents)` or None without an intent head, sentiment logits
        `float32 (n, n_sentiments)`).
    """
    intent_parts, sentiment_parts = [], []
    n = len(data)
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            rows = np.arange(start, min(n, start + batch_size))
            intent_logits, sentiment_logits = network(*to_torch(data.rows(rows)))
            if intent_logits is not None:
                intent_parts.append(intent_logits)
            sentiment_parts.append(sentiment_logits)
    intent = torch.cat(intent_parts) if intent_parts else None
    return intent, torch.cat(sentiment_parts)
