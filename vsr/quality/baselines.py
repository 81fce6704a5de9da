"""The baselines a model must beat, as backends: bicubic, Lanczos and a sharpened bicubic.

``bicubic`` is the catalogue's (cv2, a = -0.75: what a player does). ``lanczos`` is cv2's
Lanczos-4. ``bicubic+unsharp`` is that bicubic followed by FFmpeg's ``unsharp=5:5:1.5``: a 5x5
binomial blur ([1 4 6 4 1] / 16 each way, edges replicated, as FFmpeg's filter sums it) and
Y + 1.5 (Y - blur) on BT.601 luma only, chroma untouched — plain sharpening, so that a model's
gain is seen against it and not only against a soft upscale.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..backends.base import ModelInfo
from ..backends.bicubic import BicubicBackend
from ..colour import rgb_to_ycbcr, ycbcr_to_rgb

__all__ = ["BASELINES", "LanczosBackend", "UnsharpBackend", "unsharp"]

BASELINES: tuple[str, ...] = ("bicubic", "lanczos", "bicubic+unsharp")
"""The baseline names :func:`vsr.quality.methods.open_methods` knows besides catalogue models."""


def unsharp(rgb: np.ndarray, size: int = 5, amount: float = 1.5) -> np.ndarray:
    """FFmpeg's ``unsharp=size:size:amount`` on the luma of an (H, W, 3) uint8 RGB image.

    ``size`` is odd (3..23); the blur is the binomial kernel of that many taps. Returns a new
    (H, W, 3) uint8 RGB array.
    """
    if size < 3 or size % 2 == 0:
        raise ValueError(f"unsharp: size must be odd and >= 3, got {size}")
    k = np.array([1.0], dtype=np.float32)
    for _ in range(size - 1):
        k = np.convolve(k, [1.0, 1.0]).astype(np.float32)
    k /= k.sum()
    ycc = rgb_to_ycbcr(rgb)
    y = np.ascontiguousarray(ycc[..., 0])
    blur = cv2.sepFilter2D(y, -1, k, k, borderType=cv2.BORDER_REPLICATE)
    ycc[..., 0] = np.clip(y + amount * (y - blur), 0.0, 255.0)
    return ycbcr_to_rgb(ycc)


class LanczosBackend(BicubicBackend):
    """cv2.resize(INTER_LANCZOS4) by the scale."""

    name = "lanczos (cv2)"
    interpolation = cv2.INTER_LANCZOS4

    def __init__(self, scale: int = 4) -> None:
        self.info = ModelInfo(name="lanczos", scale=scale)


class UnsharpBackend(BicubicBackend):
    """cv2 bicubic by the scale, then :func:`unsharp` (FFmpeg's ``unsharp=5:5:1.5`` by default)."""

    name = "bicubic (cv2) + unsharp"

    def __init__(self, scale: int = 4, size: int = 5, amount: float = 1.5) -> None:
        self.info = ModelInfo(name="bicubic+unsharp", scale=scale)
        self.size, self.amount = size, amount

    def infer(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, sH, sW, 3) uint8, a new array."""
        out = super().infer(frames)
        for i, f in enumerate(out):
            out[i] = unsharp(f, self.size, self.amount)
        return out
