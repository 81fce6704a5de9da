"""Colour conversions and cheap resampling shared by backends, metrics and training (numpy only).

Luma follows the SR protocol: BT.601 studio range, Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255
for R, G, B in 0..255 (MATLAB ``rgb2ycbcr``).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["bicubic_up", "rgb_to_y", "rgb_to_ycbcr", "ycbcr_to_rgb"]

_RGB2YCC = (
    np.array(
        [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=np.float32
    )
    / 255.0
)
_YCC_OFF = np.array([16.0, 128.0, 128.0], dtype=np.float32)
_YCC2RGB = np.linalg.inv(_RGB2YCC).astype(np.float32)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB 0..255 (any dtype) -> (..., 3) float32 Y, Cb, Cr (Y 16..235, C 16..240)."""
    return rgb.astype(np.float32) @ _RGB2YCC.T + _YCC_OFF


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB 0..255 -> (...) float32 BT.601 luma, 16..235."""
    return rgb.astype(np.float32) @ _RGB2YCC[0] + 16.0


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """(..., 3) float Y, Cb, Cr -> (..., 3) uint8 RGB (rounded, clipped). Inverse of rgb_to_ycbcr."""
    rgb = (ycc.astype(np.float32) - _YCC_OFF) @ _YCC2RGB.T
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def bicubic_up(img: np.ndarray, scale: int) -> np.ndarray:
    """Upscale (H, W) or (H, W, C) by an integer factor with cv2's bicubic (a = -0.75).

    The cheap upsampler used at inference time (≈1 ms for 320x180 -> 1280x720 RGB). Keeps dtype
    (uint8 saturates). This is *not* the MATLAB protocol resize; see :mod:`vsr.imresize`.
    """
    h, w = img.shape[:2]
    return cv2.resize(img, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
