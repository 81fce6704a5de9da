"""Evaluate a catalogue model on a folder of HR images with the standard 4x SR protocol.

For each HR image: mod-crop to the scale, LR = MATLAB ``imresize(hr, 1/scale)`` on uint8, SR = the
backend's ``infer`` on the LR RGB, scored on BT.601 Y with a ``scale``-px border cropped
(:mod:`vsr.metrics`). Beside it, the protocol's bicubic baseline: MATLAB ``imresize`` x4 of the LR.
Grayscale images go through the network as R = G = B and are scored on their gray values.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import ConfigError
from .imresize import imresize
from .metrics import luma, modcrop, psnr, ssim

__all__ = ["IMAGE_SUFFIXES", "evaluate", "format_table", "load_image"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


def load_image(path: Path) -> np.ndarray:
    """Read an image as uint8: (H, W, 3) RGB, or (H, W) for a grayscale file. Alpha is dropped."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ConfigError(f"cannot read image {path}")
    if img.dtype != np.uint8:
        raise ConfigError(f"image {path} is {img.dtype}; only 8-bit images are supported")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3:
        img = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(img)


def _image_paths(data: Path) -> list[Path]:
    data = Path(data)
    if data.is_file():
        return [data]
    if not data.is_dir():
        raise ConfigError(f"--data {str(data)!r} is neither an image nor a folder")
    paths = sorted(p for p in data.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ConfigError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {data}")
    return paths


def _gray_of(sr_rgb: np.ndarray) -> np.ndarray:
    """The gray value of an R = G = B image the network returned: the mean of its channels."""
    return sr_rgb.astype(np.float64).mean(axis=2)


def _score_one(backend: Any, hr: np.ndarray, scale: int) -> dict[str, Any]:
    hr = modcrop(hr, scale)
    lr = imresize(hr, 1.0 / scale)
    gray = hr.ndim == 2
    lr_rgb = np.repeat(lr[:, :, None], 3, axis=2) if gray else lr
    t0 = time.perf_counter()
    sr = backend.infer(np.ascontiguousarray(lr_rgb[None]))[0]
    ms = (time.perf_counter() - t0) * 1000.0
    bic = imresize(lr, float(scale))
    y_hr = luma(hr)
    y_sr = _gray_of(sr) if gray else luma(sr)
    y_bic = luma(bic)
    return {
        "psnr_y": psnr(y_hr, y_sr, scale),
        "ssim_y": ssim(y_hr, y_sr, scale),
        "bicubic_psnr_y": psnr(y_hr, y_bic, scale),
        "bicubic_ssim_y": ssim(y_hr, y_bic, scale),
        "ms": ms,
        "gray": gray,
        "size": [int(hr.shape[1]), int(hr.shape[0])],
    }


def evaluate(
    model: str,
    data: Path,
    backend: str = "auto",
    *,
    net: Any = None,
    weights: Path | None = None,
) -> dict[str, Any]:
    """Score catalogue ``model`` on the HR images in folder ``data`` (or one image file).

    ``backend`` is passed to :func:`vsr.backends.create_backend`; ``net`` runs that torch module
    instead of the shipped weights; ``weights`` loads a ``.safetensors`` file in their place.
    Returns ``{"model", "backend", "data", "images", "psnr_y", "ssim_y", "bicubic_psnr_y",
    "bicubic_ssim_y", "per_image": [{"name", "psnr_y", ...}, ...]}`` with means over images.
    The ``bicubic_*`` columns are the protocol's MATLAB bicubic; the catalogue model ``bicubic`` is
    cv2's bicubic (what the backend runs), so its own columns differ slightly from them.
    """
    from .backends import create_backend
    from .models.catalogue import get_spec

    spec = get_spec(model)
    if weights is not None and net is None and spec.arch != "bicubic":
        from .models.catalogue import build_model

        net = build_model(spec, weights=Path(weights))
    paths = _image_paths(Path(data))
    be = create_backend(backend, spec, net=net)
    try:
        per_image = [{"name": p.name, **_score_one(be, load_image(p), spec.scale)} for p in paths]
        backend_name = str(getattr(be, "name", backend))
    finally:
        be.close()
    keys = ("psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y")
    means = {k: float(np.mean([r[k] for r in per_image])) for k in keys}
    return {
        "model": spec.name,
        "backend": backend_name,
        "data": str(data),
        "images": len(per_image),
        **means,
        "per_image": per_image,
    }


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of an :func:`evaluate` result: per image and mean, model beside bicubic."""
    name = str(result["model"])
    head = f"{'image':<16} {name + ' PSNR':>14} {'SSIM':>7} {'bicubic PSNR':>13} {'SSIM':>7} {'gain dB':>8}"
    lines = [
        f"{result['model']} on {result['data']} ({result['images']} images, {result.get('backend', '')})"
    ]
    lines += [head, "-" * len(head)]

    def row(label: str, r: dict[str, Any]) -> str:
        gain = r["psnr_y"] - r["bicubic_psnr_y"]
        return (
            f"{label:<16} {r['psnr_y']:>14.2f} {r['ssim_y']:>7.4f} "
            f"{r['bicubic_psnr_y']:>13.2f} {r['bicubic_ssim_y']:>7.4f} {gain:>+8.2f}"
        )

    lines += [row(str(r["name"])[:16], r) for r in result["per_image"]]
    lines += ["-" * len(head), row("mean", result)]
    return "\n".join(lines)
