"""How fast a model runs on this machine: frames/s of its backend on a small frame (``vsr models add``).

The number is what vsr itself would do with the model on the CPU (the spec's ``cpu_backend``:
torch for PyTorch files, ONNX Runtime for ``.onnx``), frame conversion included: one warm-up
frame, then timed frames until ``max_frames`` or ``budget_s`` is reached (at least one). It is a
rough guide to compare models on one machine, not a benchmark; ``vsr bench`` is that.
"""

from __future__ import annotations

import os
import time

import numpy as np

from .card import Speed
from .spec import ModelSpec

__all__ = ["SPEED_SIZE", "measure_speed"]

SPEED_SIZE = (320, 180)
"""Width x height of the frame a model is timed on when it is added."""


def measure_speed(
    spec: ModelSpec,
    size: tuple[int, int] = SPEED_SIZE,
    *,
    max_frames: int = 8,
    budget_s: float = 3.0,
) -> Speed:
    """Frames/s of ``spec`` on a ``size`` (width, height) frame on the CPU.

    Raises what building or running the backend raises (:class:`~vsr.errors.ModelError`,
    :class:`~vsr.errors.BackendError`): a model that cannot run here is found out now.
    """
    from ..backends import create_backend

    width, height = size
    frame = np.random.default_rng(0).integers(0, 256, (1, height, width, 3), dtype=np.uint8)
    backend = create_backend(spec.cpu_backend, spec, device="cpu")
    try:
        backend.prepare(height, width, 1)
        backend.infer(frame)  # warm-up: allocations, first-call planning
        frames, start = 0, time.perf_counter()
        while frames < max_frames and (frames == 0 or time.perf_counter() - start < budget_s):
            backend.infer(frame)
            frames += 1
        seconds = time.perf_counter() - start
    finally:
        backend.close()
    return Speed(
        fps=frames / seconds,
        backend=spec.cpu_backend,
        device="cpu",
        width=width,
        height=height,
        frames=frames,
        cpus=os.cpu_count(),
    )
