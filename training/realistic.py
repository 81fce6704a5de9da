"""Second-order degradations: LR crops that look like camera video sent over a thin pipe.

In the spirit of Real-ESRGAN (Wang et al. 2021), an HR crop goes through two rounds of damage
before it becomes the LR the network sees: a camera/optics round at HR size (Gaussian, anisotropic
or defocus blur; a resize by a random factor and filter; Gaussian or Poisson noise, colour or
grey; an optional JPEG) and a transmission round (mild blur, the resize to the exact LR size with
a random filter, sensor noise, then one codec: H.264 or HEVC at a random CRF, or JPEG, all 4:2:0).
A share of the samples (``clean_p``) keeps the clean protocol LR so that clean input is not harmed.
``usm`` sharpens the HR *target* with an unsharp mask (Real-ESRGAN's trick for crisper output).

Randomness comes from the caller's ``numpy.random.Generator`` (resumable runs). Images are
(h, w, 3) uint8 RGB.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vsr.quality.codec import h264_roundtrip, hevc_roundtrip

from .degrade import jpeg_roundtrip

__all__ = ["RealisticConfig", "codec_batch", "realistic_lr", "unsharp"]

_RESIZE = (cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC)


@dataclass(frozen=True)
class RealisticConfig:
    """How often and how hard each round damages a crop (``p`` = 0: off, the default)."""

    p: float = 0.0  # share of samples made this way; the rest use the clean protocol LR
    blur_sigma: tuple[float, float] = (0.2, 2.4)  # round 1, at HR size
    defocus_p: float = 0.15
    defocus_radius: tuple[float, float] = (1.0, 3.0)
    resize1: tuple[float, float] = (0.5, 1.2)  # round 1 resize factor, relative to HR
    noise_sigma: tuple[float, float] = (1.0, 12.0)  # Gaussian, on 0..255
    poisson_p: float = 0.4
    poisson_scale: tuple[float, float] = (0.05, 1.5)
    grey_noise_p: float = 0.4
    jpeg1_p: float = 0.3
    jpeg_quality: tuple[int, int] = (35, 90)
    blur2_p: float = 0.5
    blur2_sigma: tuple[float, float] = (0.2, 1.2)  # round 2, at the intermediate size
    noise2_p: float = 0.5
    noise2_sigma: tuple[float, float] = (1.0, 5.0)
    h264_p: float = 0.55
    hevc_p: float = 0.2  # of the crops not H.264-coded
    crf: tuple[int, int] = (26, 44)
    usm: float = 0.0  # unsharp-mask amount on the HR target (0: the plain target)

    @property
    def enabled(self) -> bool:
        return self.p > 0 or self.usm > 0


def _gaussian_kernel(rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    """A normalised isotropic or rotated anisotropic Gaussian kernel."""
    sx, sy = rng.uniform(lo, hi), rng.uniform(lo, hi)
    if rng.random() < 0.5:
        sy = sx
    theta = rng.uniform(0, np.pi)
    size = int(2 * np.ceil(3 * max(sx, sy)) + 1)
    r = np.arange(size) - size // 2
    xx, yy = np.meshgrid(r, r)
    c, s = np.cos(theta), np.sin(theta)
    u, v = c * xx + s * yy, -s * xx + c * yy
    k = np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
    return (k / k.sum()).astype(np.float32)


def _defocus_kernel(radius: float) -> np.ndarray:
    """A disk (out-of-focus lens) kernel, antialiased at its edge."""
    size = int(2 * np.ceil(radius) + 3)
    r = np.arange(size) - size // 2
    xx, yy = np.meshgrid(r, r)
    k = np.clip(radius + 0.5 - np.hypot(xx, yy), 0.0, 1.0)
    return (k / k.sum()).astype(np.float32)


def _filter(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT)


def _noise(img: np.ndarray, cfg: RealisticConfig, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian or Poisson (shot) noise, per channel or the same on all three (grey)."""
    x = img.astype(np.float32)
    grey = rng.random() < cfg.grey_noise_p
    shape = (*x.shape[:2], 1) if grey else x.shape
    if rng.random() < cfg.poisson_p:
        scale = float(rng.uniform(*cfg.poisson_scale))
        vals = 10 ** rng.uniform(2, 4) / 255.0  # photons per level
        base = x.mean(axis=2, keepdims=True) if grey else x
        shot = rng.poisson(np.clip(base, 0, 255) * vals) / vals - base
        x = x + scale * shot.astype(np.float32)
    else:
        x = x + rng.normal(0.0, sigma, shape).astype(np.float32)
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def _resize(img: np.ndarray, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    return cv2.resize(img, (w, h), interpolation=_RESIZE[int(rng.integers(len(_RESIZE)))])


def _camera_round(hr: np.ndarray, cfg: RealisticConfig, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < cfg.defocus_p:
        out = _filter(hr, _defocus_kernel(float(rng.uniform(*cfg.defocus_radius))))
    else:
        out = _filter(hr, _gaussian_kernel(rng, *cfg.blur_sigma))
    f = float(rng.uniform(*cfg.resize1))
    h, w = hr.shape[:2]
    out = _resize(out, max(8, round(w * f)), max(8, round(h * f)), rng)
    out = _noise(out, cfg, rng, float(rng.uniform(*cfg.noise_sigma)))
    if rng.random() < cfg.jpeg1_p:
        out = jpeg_roundtrip(out, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    return out


def _transmission_round(
    img: np.ndarray, size: int, cfg: RealisticConfig, rng: np.random.Generator
) -> np.ndarray:
    """Mild blur, the resize to the LR size and sensor noise; the codec comes per batch."""
    out = img
    if rng.random() < cfg.blur2_p:
        out = _filter(out, _gaussian_kernel(rng, *cfg.blur2_sigma))
    out = _resize(out, size, size, rng)
    if rng.random() < cfg.noise2_p:
        out = _noise(out, cfg, rng, float(rng.uniform(*cfg.noise2_sigma)))
    return out


def realistic_lr(hr: np.ndarray, scale: int, cfg: RealisticConfig, rng: np.random.Generator) -> np.ndarray:
    """The (h/scale, w/scale, 3) uint8 LR of a square (h, w, 3) uint8 HR crop, before its codec."""
    return np.ascontiguousarray(
        _transmission_round(_camera_round(hr, cfg, rng), hr.shape[0] // scale, cfg, rng)
    )


def codec_batch(images: list[np.ndarray], cfg: RealisticConfig, rng: np.random.Generator) -> list[np.ndarray]:
    """One codec for a batch of LR crops, the last step of the transmission round.

    H.264 or HEVC code the crops as the frames of one all-intra clip at one CRF (an encoder start
    costs ~10-20 ms, a 48 px frame well under 1 ms); otherwise each crop is JPEG-coded at its own
    quality. Crops must share one size.
    """
    if not images:
        return []
    crf = int(rng.integers(cfg.crf[0], cfg.crf[1] + 1))
    if rng.random() < cfg.h264_p:
        return [np.ascontiguousarray(f) for f in h264_roundtrip(images, crf=crf, intra=True)]
    if rng.random() < cfg.hevc_p:
        return [np.ascontiguousarray(f) for f in hevc_roundtrip(images, crf=crf, intra=True)]
    q = cfg.jpeg_quality
    return [jpeg_roundtrip(im, int(rng.integers(q[0], q[1] + 1))) for im in images]


def unsharp(img: np.ndarray, amount: float, sigma: float = 1.5) -> np.ndarray:
    """``img`` + ``amount`` x (img - Gaussian blur), uint8 (the sharpened training target)."""
    x = img.astype(np.float32)
    blur = cv2.GaussianBlur(x, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    return np.clip(x + amount * (x - blur) + 0.5, 0, 255).astype(np.uint8)
