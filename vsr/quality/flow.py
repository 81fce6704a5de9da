"""Temporal flicker as TecoGAN measures it: tOF, the distance between optical flows.

For each pair of consecutive frames, the Farneback flow (OpenCV, TecoGAN's parameters: pyramid
scale 0.5, 3 levels, window 15, 3 iterations, poly_n 5, poly_sigma 1.2) of the output pair and of
the reference pair, on grey (cv2 RGB2GRAY) frames; the per-pixel length of the difference of the two
flow vectors is averaged over TecoGAN's centred crop (a multiple of 32 px, at least 8 px cut off each
side) and then over all pairs. In pixels of motion per frame; 0 = the output moves exactly as the
reference does, higher = flicker or motion the reference does not have. (Chu et al., "Learning
Temporal Coherence via Self-Supervision for GAN-based Video Generation", 2020, metrics.py.)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["TofMeter", "farneback", "flow_distance", "grey", "tof"]


def grey(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 grey (cv2 RGB2GRAY), a new array."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def farneback(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Flow from grey ``prev`` to ``cur`` ((H, W) uint8) -> (H, W, 2) float32 (dx, dy) in px."""
    return cv2.calcOpticalFlowFarneback(prev, cur, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def _crop(h: int, w: int) -> tuple[slice, slice]:
    """TecoGAN's ``crop_8x8``: the centred box of multiples of 32 px that leaves >= 16 px in all."""

    def span(n: int) -> slice:
        m = (n // 32) * 32
        while m > n - 16:
            m -= 32
        if m <= 0:  # too small for the rule: keep everything
            return slice(0, n)
        o = (n - m) // 2
        return slice(o, o + m)

    return span(h), span(w)


def flow_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean length of ``a - b`` over TecoGAN's crop, for (H, W, 2) flows."""
    ys, xs = _crop(*a.shape[:2])
    d = a[ys, xs] - b[ys, xs]
    return float(np.mean(np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2)))


class TofMeter:
    """tOF frame by frame: ``add(output_grey, reference_flow)`` for each frame in order (the flow is
    that of the reference from the previous frame to this one; None for the first frame)."""

    def __init__(self) -> None:
        self._prev: np.ndarray | None = None
        self._sum = 0.0
        self._pairs = 0

    def add(self, out_grey: np.ndarray, ref_flow: np.ndarray | None) -> None:
        if self._prev is not None:
            if ref_flow is None:
                raise ValueError("TofMeter.add: a reference flow is needed from the second frame on")
            self._sum += flow_distance(farneback(self._prev, out_grey), ref_flow)
            self._pairs += 1
        self._prev = out_grey

    @property
    def value(self) -> float:
        """The mean over the pairs seen; NaN before two frames."""
        return self._sum / self._pairs if self._pairs else float("nan")


def tof(frames: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    """tOF of (H, W, 3) uint8 RGB ``frames`` against the same number (>= 2) of ``reference`` frames."""
    if len(frames) != len(reference) or len(frames) < 2:
        raise ValueError(f"tof needs two equal sequences of >= 2 frames, got {len(frames)}, {len(reference)}")
    meter = TofMeter()
    ref_flows = [None] + [farneback(grey(a), grey(b)) for a, b in itertools.pairwise(reference)]
    for f, flow in zip(frames, ref_flows, strict=True):
        meter.add(grey(f), flow)
    return meter.value
