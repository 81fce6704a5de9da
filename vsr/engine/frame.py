"""What travels through the engine: :class:`Frame` objects and untouched packets, then :data:`END`.

A source yields frames (decoded, RGB) and the packets it passes through (audio, subtitles) in input
order; the engine keeps that order to the sink. Nothing here imports torch or the model catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["END", "Frame"]


class _End:
    def __repr__(self) -> str:
        return "END"


END = _End()
"""Closes a queue: put after a stage's last item; the next stage passes it on and stops."""


@dataclass
class Frame:
    """One video frame on its way from a source to a sink.

    ``image``: (H, W, 3) uint8 RGB owned by this object: the input, then (after the upscaler) the
    output. ``low``: the input image, kept once the frame is upscaled (side-by-side sinks).
    ``pts`` / ``duration``: in the time base the source and sink agree on; the sink writes them
    unchanged (output pts = input pts). ``arrival``: ``time.perf_counter()`` seconds when the frame
    came off the input (live latency is measured from it). ``tier``: the ladder rung that upscaled it.
    ``alpha``: the input's (H, W) uint8 alpha plane, for a source with one (models see RGB only; the
    sink upscales it).
    """

    image: np.ndarray
    pts: int | None
    duration: int = 0
    arrival: float = 0.0
    index: int = 0
    tier: int = 0
    low: np.ndarray | None = None
    alpha: np.ndarray | None = None
