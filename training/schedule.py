"""Learning-rate schedule of both training stages: linear warm-up, then cosine decay."""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["cosine_schedule"]


def cosine_schedule(
    warmup: int, steps: int, lr: float, lr_min: float, decay_start: int = 0
) -> Callable[[int], float]:
    """LambdaLR factor: linear warm-up over ``warmup`` steps, then cosine from ``lr`` to ``lr_min``.

    ``decay_start`` > ``warmup`` holds ``lr`` constant until that step and runs the cosine over
    [decay_start, steps] only (warm-up/stable/decay): the decay can then be placed late, on resume,
    once it is known how many steps the machine will give.
    """
    start = max(warmup, decay_start)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, max(0.0, step - start) / max(1, steps - start))
        return (lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * t))) / lr

    return factor
