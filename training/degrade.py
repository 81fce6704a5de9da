"""Optional LR degradations that imitate low-bandwidth video: blur, noise, chroma subsampling, JPEG, H.264.

All off by default (the PSNR-benchmark runs train on clean protocol LR). Each one applies with its
own probability; randomness comes from the caller's ``numpy.random.Generator`` so runs resume exactly.
Images are (h, w, 3) uint8 RGB in and out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vsr.quality.codec import h264_roundtrip

__all__ = ["DegradeConfig", "degrade", "h264_roundtrip", "jpeg_roundtrip"]


@dataclass(frozen=True)
class DegradeConfig:
    """Probabilities and ranges of each degradation (probability 0 disables it)."""

    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.2, 1.0)
    noise_p: float = 0.0
    noise_sigma: tuple[float, float] = (1.0, 5.0)  # on 0..255
    chroma_p: float = 0.0  # 4:2:0 chroma subsampling round trip
    jpeg_p: float = 0.0
    jpeg_quality: tuple[int, int] = (40, 90)
    h264_p: float = 0.0
    h264_crf: tuple[int, int] = (24, 38)

    @property
    def enabled(self) -> bool:
        return any(p > 0 for p in (self.blur_p, self.noise_p, self.chroma_p, self.jpeg_p, self.h264_p))


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)


def _noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noisy = img.astype(np.float32) + rng.normal(0.0, sigma, img.shape).astype(np.float32)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def _chroma420(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
    for c in (1, 2):
        small = cv2.resize(ycc[:, :, c], ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
        ycc[:, :, c] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """(h, w, 3) uint8 RGB through a JPEG encode at ``quality`` (4:2:0) and back."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def degrade(img: np.ndarray, cfg: DegradeConfig, rng: np.random.Generator) -> np.ndarray:
    """Apply the enabled degradations to one (h, w, 3) uint8 RGB LR image, in a fixed order:
    blur, noise, chroma subsampling, then one codec (H.264 if drawn, else JPEG if drawn)."""
    out = img
    if rng.random() < cfg.blur_p:
        out = _blur(out, float(rng.uniform(*cfg.blur_sigma)))
    if rng.random() < cfg.noise_p:
        out = _noise(out, float(rng.uniform(*cfg.noise_sigma)), rng)
    if rng.random() < cfg.chroma_p:
        out = _chroma420(out)
    if rng.random() < cfg.h264_p:
        out = h264_roundtrip([out], crf=int(rng.integers(cfg.h264_crf[0], cfg.h264_crf[1] + 1)))[0]
    elif rng.random() < cfg.jpeg_p:
        out = jpeg_roundtrip(out, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    return np.ascontiguousarray(out)
