"""ExclusionProbe: counts how many holders of a lock are inside their critical section at once."""
from __future__ import annotations

import asyncio
import random


class ExclusionProbe:
    """Call :meth:`critical_section` while holding the lock; ``max_inside`` > 1 means the lock failed."""

    def __init__(self, seed: int = 7) -> None:
        self.inside = 0
        self.max_inside = 0
        self.entries = 0
        self._random = random.Random(seed)

    async def critical_section(self) -> None:
        self.inside += 1
        self.entries += 1
        self.max_inside = max(self.max_inside, self.inside)
        await asyncio.sleep(self._random.uniform(0, 0.003))  # yield to the rivals while "inside"
        self.inside -= 1

