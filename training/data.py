"""Training data: HR image folders preloaded once, random aligned LR/HR crops with flips and rotations.

LR follows the protocol: the mod-cropped HR image downscaled by MATLAB ``imresize(hr, 1/scale)`` on
uint8. Without degradations each *whole* image is downscaled once at load time and crops are cut
from it at aligned positions (LR (i, j) <-> HR (s*i, s*j)); flips and 90-degree rotations commute
with that resize, so this equals resizing the augmented crop minus its border artefacts. With
degradations (:mod:`training.degrade`) the LR crop is degraded per sample; with realistic ones
(:mod:`training.realistic`) a share of the LR crops is made from the HR crop by two rounds of
camera and transmission damage, their codec run once per batch.

A batch for a luma (``y``) model: ``lr`` (N, 1, p, p) Y/255, ``base`` (N, 1, s*p, s*p) the cv2
INTER_CUBIC upscale of the *whole-image* LR Y/255 (what inference adds the residual to), ``hr``
(N, 1, s*p, s*p) Y/255, all float32 in ~[0, 1]. For an ``rgb`` model: ``lr`` and ``hr`` RGB/255.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from vsr.colour import bicubic_up, rgb_to_y
from vsr.evaluate import IMAGE_SUFFIXES, load_image
from vsr.imresize import imresize
from vsr.metrics import modcrop

from .degrade import DegradeConfig, degrade
from .realistic import RealisticConfig, codec_batch, realistic_lr, unsharp

__all__ = ["Batch", "CropSampler", "HRImage", "image_paths", "load_folders"]

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

Batch = dict[str, np.ndarray]


@dataclass
class HRImage:
    """One preloaded training image: uint8 HR RGB (mod-cropped), its LR, and float luma planes."""

    name: str
    hr: np.ndarray  # (H, W, 3) uint8 RGB
    lr: np.ndarray  # (H/s, W/s, 3) uint8 RGB, imresize on uint8
    hr_y: np.ndarray = field(repr=False)  # (H, W) float32 Y/255
    lr_y: np.ndarray = field(repr=False)  # (H/s, W/s) float32 Y/255
    base_y: np.ndarray = field(repr=False)  # (H, W) float32 cv2 bicubic of lr_y


def image_paths(folders: list[Path]) -> list[Path]:
    """Every image file directly inside ``folders``, sorted per folder; raises if none is found."""
    paths: list[Path] = []
    for folder in folders:
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"training data folder {folder} does not exist")
        paths += sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no images in {', '.join(map(str, folders))}")
    return paths


def _prepare(path: Path, scale: int) -> HRImage:
    img = load_image(path)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    hr = np.ascontiguousarray(modcrop(img, scale))
    lr = imresize(hr, 1.0 / scale)
    lr_y = rgb_to_y(lr) / 255.0
    return HRImage(
        name=path.name,
        hr=hr,
        lr=lr,
        hr_y=rgb_to_y(hr) / 255.0,
        lr_y=lr_y,
        base_y=bicubic_up(lr_y, scale),
    )


def load_folders(folders: list[Path], scale: int = 4, min_lr: int = 8) -> list[HRImage]:
    """Load and prepare every image of ``folders`` (smaller than ``min_lr`` LR px: skipped)."""
    images = [_prepare(p, scale) for p in image_paths(folders)]
    kept = [im for im in images if min(im.lr.shape[:2]) >= min_lr]
    log.info("loaded %d training images (%d too small skipped)", len(kept), len(images) - len(kept))
    return kept


def _augment(arrays: list[np.ndarray], k: int, flip: bool) -> list[np.ndarray]:
    """Rotate by k*90 degrees and optionally flip left-right, the same for every (H, W[, C]) array."""
    out = []
    for a in arrays:
        a = np.rot90(a, k) if k else a
        out.append(np.ascontiguousarray(a[:, ::-1] if flip else a))
    return out


class CropSampler:
    """Random aligned crops from preloaded images, reproducible and resumable.

    All randomness comes from one ``numpy.random.Generator`` whose state :meth:`state_dict` /
    :meth:`load_state_dict` save and restore, so a resumed run draws the same batches.
    ``patch`` is the LR crop side; images smaller than it are skipped.
    """

    def __init__(
        self,
        images: list[HRImage],
        *,
        patch: int,
        scale: int = 4,
        colour: Literal["y", "rgb"] = "y",
        augment: bool = True,
        degradations: DegradeConfig | None = None,
        realistic: RealisticConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.images = [im for im in images if min(im.lr.shape[:2]) >= patch]
        if not self.images:
            raise ValueError(f"no training image has an LR side >= patch {patch}")
        self.patch, self.scale, self.colour, self.augment = patch, scale, colour, augment
        self.degradations = degradations if degradations and degradations.enabled else None
        self.realistic = realistic if realistic and realistic.enabled else None
        self.rng = np.random.default_rng(seed)

    def state_dict(self) -> dict[str, Any]:
        return {"bit_generator": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["bit_generator"]

    def _draw(self) -> tuple[int, tuple[slice, slice], tuple[slice, slice], int, bool]:
        """One sample's random choices: image index, HR and LR crop slices, rotation, flip."""
        idx = int(self.rng.integers(len(self.images)))
        im, p, s = self.images[idx], self.patch, self.scale
        i = int(self.rng.integers(im.lr.shape[0] - p + 1))
        j = int(self.rng.integers(im.lr.shape[1] - p + 1))
        k, flip = (int(self.rng.integers(4)), bool(self.rng.integers(2))) if self.augment else (0, False)
        hs = np.s_[s * i : s * (i + p), s * j : s * (j + p)]
        ls = np.s_[i : i + p, j : j + p]
        return idx, hs, ls, k, flip

    def _one_realistic(self) -> dict[str, Any]:
        """RGB ``hr`` / ``lr`` of one sample for a realistic run: second-order LR (codec still to
        come, ``codec`` True) for a ``p`` share, else the protocol LR with the first-order damage."""
        idx, hs, ls, k, flip = self._draw()
        im, real = self.images[idx], self.realistic
        assert real is not None
        if self.rng.random() < real.p:
            (hr,) = _augment([im.hr[hs]], k, flip)
            return {"hr": hr, "lr": realistic_lr(hr, self.scale, real, self.rng), "codec": True}
        hr, lr = _augment([im.hr[hs], im.lr[ls]], k, flip)
        if self.degradations is not None:
            lr = degrade(lr, self.degradations, self.rng)
        return {"hr": hr, "lr": lr, "codec": False}

    def _finish(self, hr: np.ndarray, lr: np.ndarray) -> dict[str, np.ndarray]:
        """The arrays a step takes from RGB ``hr`` / ``lr``: the target sharpened when ``usm`` > 0."""
        if self.realistic is not None and self.realistic.usm > 0:
            hr = unsharp(hr, self.realistic.usm)
        if self.colour == "rgb":
            return {"lr": lr, "hr": hr}
        lr_y = rgb_to_y(lr) / 255.0
        return {"lr": lr_y, "base": bicubic_up(lr_y, self.scale), "hr": rgb_to_y(hr) / 255.0}

    def _realistic_batch(self, size: int) -> list[dict[str, np.ndarray]]:
        raw = [self._one_realistic() for _ in range(size)]
        coded = [i for i, smp in enumerate(raw) if smp["codec"]]
        assert self.realistic is not None
        for i, lr in zip(
            coded, codec_batch([raw[i]["lr"] for i in coded], self.realistic, self.rng), strict=True
        ):
            raw[i]["lr"] = lr
        return [self._finish(smp["hr"], smp["lr"]) for smp in raw]

    def _one(self) -> dict[str, np.ndarray]:
        idx, hs, ls, k, flip = self._draw()
        im = self.images[idx]
        if self.degradations is not None:
            hr, lr = _augment([im.hr[hs], im.lr[ls]], k, flip)
            return self._finish(hr, degrade(lr, self.degradations, self.rng))
        if self.colour == "rgb":
            hr, lr = _augment([im.hr[hs], im.lr[ls]], k, flip)
            return {"lr": lr, "hr": hr}
        lr, base, hr = _augment([im.lr_y[ls], im.base_y[hs], im.hr_y[hs]], k, flip)
        return {"lr": lr, "base": base, "hr": hr}

    def batch(self, size: int) -> Batch:
        """``size`` samples stacked as float32 NCHW arrays (see the module docstring)."""
        if self.realistic is not None:
            samples = self._realistic_batch(size)
        else:
            samples = [self._one() for _ in range(size)]
        out: Batch = {}
        for key in samples[0]:
            arr = np.stack([smp[key] for smp in samples])
            if arr.ndim == 3:
                arr = arr[:, None]
            else:
                arr = arr.transpose(0, 3, 1, 2).astype(np.float32) * (1.0 / 255.0)
            out[key] = np.ascontiguousarray(arr, dtype=np.float32)
        return out

    def batch_on(self, size: int, device: torch.device) -> dict[str, torch.Tensor]:
        """:meth:`batch` cut on ``device``: the same draws and values, as float32 NCHW tensors.

        The images are uploaded once (uint8 RGB, float luma planes) and every crop, rotation and
        flip is a tensor op there, so a GPU is not held up by NumPy crops on one CPU thread. With
        degradations (per-sample CPU codecs) it is :meth:`batch` uploaded.
        """
        import torch

        if self.degradations is not None or self.realistic is not None:
            return {k: torch.from_numpy(v).to(device) for k, v in self.batch(size).items()}
        cache = getattr(self, "_device_images", None)
        if cache is None or cache[0] != device:
            keys = ("hr", "lr") if self.colour == "rgb" else ("lr_y", "base_y", "hr_y")
            tensors = [{k: torch.from_numpy(getattr(im, k)).to(device) for k in keys} for im in self.images]
            self._device_images = cache = (device, tensors)
        parts: dict[str, list[torch.Tensor]] = {}
        for _ in range(size):
            idx, hs, ls, k, flip = self._draw()
            src = cache[1][idx]
            if self.colour == "rgb":
                crops = {"lr": src["lr"][ls], "hr": src["hr"][hs]}
            else:
                crops = {"lr": src["lr_y"][ls], "base": src["base_y"][hs], "hr": src["hr_y"][hs]}
            for key, t in crops.items():
                t = torch.rot90(t, k, dims=(0, 1)) if k else t
                parts.setdefault(key, []).append(t.flip(1) if flip else t)
        out: dict[str, torch.Tensor] = {}
        for key, ts in parts.items():
            t = torch.stack(ts)
            t = t[:, None].float() if t.ndim == 3 else t.permute(0, 3, 1, 2).float() * (1.0 / 255.0)
            out[key] = t.contiguous()
        return out
