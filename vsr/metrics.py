"""Quality metrics of the standard SR protocol, plus a temporal flicker measure (numpy and cv2 only).

Protocol (the one of the published 4x tables): HR mod-cropped to the scale, images compared on
BT.601 luma Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 with R, G, B on 0..255 (float, not
rounded), a ``border``-pixel frame (the scale, 4) cropped off, PSNR against a peak of 255 and SSIM
with the 11x11 Gaussian window (sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering) of
Wang et al.'s MATLAB ``ssim``. A grayscale (H, W) image is scored on its own gray values.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["flicker", "luma", "modcrop", "psnr", "psnr_y", "ssim", "ssim_y"]

_Y_COEF = np.array([65.481, 128.553, 24.966], dtype=np.float64) / 255.0


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop (H, W[, C]) so that H and W are multiples of ``scale`` (bottom/right cut). A view."""
    if scale < 1:
        raise ValueError(f"modcrop: scale must be >= 1, got {scale}")
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def luma(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB 0..255 -> (H, W) float64 BT.601 Y (16..235); (H, W) gray -> itself as float64.

    An (H, W, 1) image counts as gray. Any numeric dtype on the 0..255 scale.
    """
    if img.ndim == 2:
        return img.astype(np.float64)
    if img.ndim == 3 and img.shape[2] == 1:
        return img[:, :, 0].astype(np.float64)
    if img.ndim == 3 and img.shape[2] == 3:
        return img.astype(np.float64) @ _Y_COEF + 16.0
    raise ValueError(f"luma: expected (H, W) or (H, W, 3), got shape {img.shape}")


def _crop_pair(a: np.ndarray, b: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if border < 0 or 2 * border >= min(a.shape[:2]):
        raise ValueError(f"border {border} does not fit images of shape {a.shape}")
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, border: int = 0, peak: float = 255.0) -> float:
    """PSNR in dB of two same-shape arrays on a 0..``peak`` scale, ``border`` px cropped off.

    Identical inputs give ``inf``.
    """
    a, b = _crop_pair(a, b, border)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(peak * peak / mse))


def _ssim_2d(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    g = cv2.getGaussianKernel(11, 1.5)

    def filt(x: np.ndarray) -> np.ndarray:  # MATLAB filter2(g @ g.T, x, 'valid'), done separably
        return cv2.sepFilter2D(x, -1, g, g, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def ssim(a: np.ndarray, b: np.ndarray, border: int = 0, peak: float = 255.0) -> float:
    """Mean SSIM of two same-shape (H, W) or (H, W, C) arrays on a 0..``peak`` scale.

    Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, 'valid' region only; multi-channel inputs
    give the mean over channels. ``border`` px are cropped off first.
    """
    a, b = _crop_pair(a, b, border)
    if min(a.shape[:2]) < 11:
        raise ValueError(f"ssim needs images of at least 11x11 after cropping, got {a.shape}")
    if a.ndim == 2:
        return _ssim_2d(a, b, peak)
    return float(np.mean([_ssim_2d(a[..., c], b[..., c], peak) for c in range(a.shape[2])]))


def psnr_y(hr: np.ndarray, sr: np.ndarray, border: int = 4) -> float:
    """Y-PSNR of the protocol: both images through :func:`luma`, ``border`` px cropped."""
    return psnr(luma(hr), luma(sr), border)


def ssim_y(hr: np.ndarray, sr: np.ndarray, border: int = 4) -> float:
    """Y-SSIM of the protocol: both images through :func:`luma`, ``border`` px cropped."""
    return ssim(luma(hr), luma(sr), border)


def flicker(
    frames: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    region: tuple[int, int, int, int] | None = None,
) -> dict[str, float]:
    """Temporal flicker of a frame sequence relative to a reference sequence of the same frames.

    ``frames`` and ``reference``: equally long sequences (>= 2) of same-shape (H, W[, 3]) images on
    0..255 (RGB is reduced to luma). ``region`` = (x, y, w, h) restricts the measure to that box.
    Returns ``{"flicker": mean |f[t] - f[t-1]|, "reference": the same for the reference,
    "ratio": flicker / reference}``; a ratio near 1 means no flicker added beyond the motion.
    """
    if len(frames) != len(reference) or len(frames) < 2:
        raise ValueError(
            f"flicker needs two equal sequences of >= 2 frames, got {len(frames)}, {len(reference)}"
        )

    def mean_diff(seq: Sequence[np.ndarray]) -> float:
        ys = [luma(f) for f in seq]
        if region is not None:
            x, y, w, h = region
            ys = [f[y : y + h, x : x + w] for f in ys]
        return float(np.mean([np.mean(np.abs(b - a)) for a, b in itertools.pairwise(ys)]))

    got, ref = mean_diff(frames), mean_diff(reference)
    ratio = got / ref if ref > 0 else (1.0 if got == 0 else float("inf"))
    return {"flicker": got, "reference": ref, "ratio": ratio}
