"""The backend contract, and the frame adapters every backend shares.

A backend turns uint8 RGB frames into uint8 RGB frames 4x larger. It owns normalisation, layout,
colour handling (luma-only models), padding to the model's size multiple, tiling and transfers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from ..colour import bicubic_up
from ..errors import ConfigError
from ..models.catalogue import ModelSpec

__all__ = [
    "Backend",
    "ClosingBackend",
    "FrameAdapter",
    "ModelInfo",
    "NetFn",
    "min_tile",
    "pad_amounts",
    "pad_frames",
    "tiled",
]

# A network call: float32 NCHW (N, C, h, w) in [0, 1] -> float32 (N, C, s*h, s*w). May reuse buffers.
NetFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ModelInfo:
    """What a running backend serves: the model name, its scale and its input constraints."""

    name: str
    scale: int
    size_multiple: int = 1
    supports_fp16: bool = True

    @classmethod
    def of(cls, spec: ModelSpec) -> ModelInfo:
        """What a backend serving catalogue entry ``spec`` reports."""
        return cls(spec.name, spec.scale, spec.size_multiple, spec.fp16_safe)


@runtime_checkable
class Backend(Protocol):
    """What the pipeline needs from an inference backend."""

    info: ModelInfo
    name: str  # e.g. "onnx (CPUExecutionProvider)"

    def prepare(self, height: int, width: int, batch: int) -> None:
        """Allocate, pick a profile and warm up for frames of this size. Optional to call."""

    def infer(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, s*H, s*W, 3) uint8 RGB; the caller owns the result."""

    def close(self) -> None:
        """Release resources. Idempotent."""


class ClosingBackend:
    """What every shipped backend inherits: ``with create_backend(...) as b:`` closes it on exit.
    (The :class:`Backend` protocol itself asks only for ``close``, so a stand-in stays small.)"""

    def close(self) -> None:
        """Release resources. Idempotent."""

    def __enter__(self):  # -> Self
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# BT.601 studio luma (MATLAB rgb2ycbcr) as a 1x4 affine for cv2.transform: RGB 0..255 -> Y/255
_RGB2Y01 = np.array([[65.481, 128.553, 24.966, 16.0 * 255.0]], dtype=np.float32) / (255.0 * 255.0)
_Y_TO_RGB_GAIN = np.float32(255.0 * 255.0 / 219.0)  # residual (Y/255 units) -> R, G, B 0..255 units
# Full-range BT.601 luma (what image tools call gray) as a 1x3 cv2.transform: RGB 0..255 -> gray/255
_RGB2GRAY01 = np.array([[0.299, 0.587, 0.114]], dtype=np.float32) / np.float32(255.0)


def pad_amounts(height: int, width: int, multiple: int, minimum: int = 0) -> tuple[int, int]:
    """(rows, columns) to add below and right so that each side is >= ``minimum`` and a multiple
    of ``multiple``."""

    def need(side: int) -> int:
        target = max(side, minimum)
        return target + (-target) % multiple - side

    return need(height), need(width)


def pad_frames(frames: np.ndarray, ph: int, pw: int, mode: str, axes: tuple[int, int] = (1, 2)) -> np.ndarray:
    """``frames`` padded by ``ph`` rows and ``pw`` columns at the bottom and right, a new array.

    ``axes``: the row and column axes ((1, 2) for NHWC frames, (2, 3) for NCHW tensors). ``edge``
    repeats the last row/column; ``reflect`` mirrors (without repeating the edge) as far as the
    frame allows, then repeats the edge, as spandrel pads model inputs.
    """

    def widths(rows: int, cols: int) -> list[tuple[int, int]]:
        out = [(0, 0)] * frames.ndim
        out[axes[0]], out[axes[1]] = (0, rows), (0, cols)
        return out

    if mode == "reflect":
        h, w = frames.shape[axes[0]], frames.shape[axes[1]]
        rh, rw = min(ph, h - 1), min(pw, w - 1)
        frames = np.pad(frames, widths(rh, rw), mode="reflect")
        ph, pw = ph - rh, pw - rw
        if not (ph or pw):
            return frames
    return np.pad(frames, widths(ph, pw), mode="edge")


def min_tile(spec: ModelSpec) -> int:
    """The smallest tile (input px) worth running ``spec`` on: ``max(16, 4 x receptive_radius)``.

    Every tile carries ``receptive_radius`` px of context on each side, so a tile of ``t`` px costs
    ``((t + 2r) / t)^2`` times its own area: at most 2.25x from ``4r`` up, but 169x at ``t = 1`` for
    the ``fast`` model (r = 6): seconds per frame and minutes of warm-up for nothing.
    """
    return max(16, 4 * spec.receptive_radius)


def tiled(net: NetFn, x: np.ndarray, scale: int, tile: int, overlap: int) -> np.ndarray:
    """Run ``net`` over (N, C, H, W) float32 in tiles of ``tile`` px with ``overlap`` px of context.

    Each tile is extended by ``overlap`` input pixels on every side (clamped at the frame edge), run,
    and only its core is kept, so with ``overlap`` >= the model's receptive radius the result equals
    the untiled one up to float rounding: no seams.
    """
    n, _c, h, w = x.shape
    if tile <= 0 or (h <= tile and w <= tile):
        return net(x)
    out: np.ndarray | None = None
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            cy0, cx0 = max(y0 - overlap, 0), max(x0 - overlap, 0)
            cy1, cx1 = min(y1 + overlap, h), min(x1 + overlap, w)
            res = net(np.ascontiguousarray(x[:, :, cy0:cy1, cx0:cx1]))
            if out is None:
                out = np.empty((n, res.shape[1], h * scale, w * scale), dtype=np.float32)
            oy, ox = (y0 - cy0) * scale, (x0 - cx0) * scale
            out[:, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = res[
                :, :, oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale
            ]
    assert out is not None
    return out


class FrameAdapter:
    """Converts uint8 RGB frames to what a network takes and its output back to uint8 RGB frames.

    ``rgb`` models: RGB/255 in, RGB out. ``y`` models: BT.601 luma/255 in, luma residual out, added
    to the cv2-bicubic upscale of the frame (chroma stays bicubic). Gray model files (``channels``
    1): full-range luma/255 in, the new luma out (see ``_gray``). Frames are padded (``spec.pad``:
    edge, or reflect for model files) to ``size_multiple`` and ``min_size``, and the output
    cropped. ``tile`` > 0 runs the network in tiles (see :func:`tiled`).
    """

    def __init__(
        self, spec: ModelSpec, net: NetFn, *, tile: int = 0, tile_overlap: int | None = None
    ) -> None:
        if tile < 0:
            raise ConfigError(f"tile must be >= 0, got {tile}")
        self.spec = spec
        self.net = net
        self.tile = tile
        self.overlap = spec.receptive_radius if tile_overlap is None else tile_overlap

    def _run(self, x: np.ndarray) -> np.ndarray:
        return tiled(self._fitted if self.tile else self.net, x, self.spec.scale, self.tile, self.overlap)

    def _fitted(self, x: np.ndarray) -> np.ndarray:
        """``net`` on a tile padded to the spec's size needs (edge tiles have any size), cropped."""
        h, w = x.shape[2:]
        ph, pw = pad_amounts(h, w, self.spec.size_multiple, self.spec.min_size)
        if not (ph or pw):
            return self.net(x)
        s = self.spec.scale
        return self.net(pad_frames(x, ph, pw, self.spec.pad, axes=(2, 3)))[:, :, : h * s, : w * s]

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, sH, sW, 3) uint8 RGB, a new array (s: the model's scale)."""
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ConfigError(f"frames must be (N, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        _n, h, w, _ = frames.shape
        s = self.spec.scale
        ph, pw = pad_amounts(h, w, self.spec.size_multiple, self.spec.min_size)
        if ph or pw:
            frames = pad_frames(frames, ph, pw, self.spec.pad)
        if self.spec.colour == "y":
            out = self._y(frames)
        elif self.spec.channels == 1:
            out = self._gray(frames)
        else:
            out = self._rgb(frames)
        return out[:, : h * s, : w * s] if (ph or pw) else out

    def _rgb(self, frames: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(frames.transpose(0, 3, 1, 2), dtype=np.float32)
        x *= 1.0 / 255.0
        y = self._run(x)
        y = np.clip(y * 255.0 + 0.5, 0, 255)
        return np.ascontiguousarray(y.astype(np.uint8).transpose(0, 2, 3, 1))

    def _gray(self, frames: np.ndarray) -> np.ndarray:
        # Gray (1 -> 1) model files: full-range BT.601 luma/255 in; the output replaces the luma of
        # the bicubic upscale, as an equal change of R, G and B (Cb, Cr fixed). A gray video thus
        # comes out exactly as the model draws it (what image tools give for gray models), and a
        # colour video keeps its colour instead of turning gray.
        luma = np.stack([cv2.transform(f.astype(np.float32), _RGB2GRAY01) for f in frames])
        res = self._run(np.ascontiguousarray(luma[:, None]))
        s = self.spec.scale
        out = np.empty((len(frames), frames.shape[1] * s, frames.shape[2] * s, 3), np.uint8)
        for i, f in enumerate(frames):
            up = bicubic_up(f, s)
            delta = np.clip(res[i, 0], 0.0, 1.0) * np.float32(255.0) - cv2.transform(
                up.astype(np.float32), _RGB2GRAY01 * np.float32(255.0)
            )
            cv2.add(up, cv2.merge([delta, delta, delta]), dst=out[i], dtype=cv2.CV_8U)
        return out

    def _y(self, frames: np.ndarray) -> np.ndarray:
        # Y/255 in; the luma residual goes back as an equal change of R, G and B, because adding dY
        # to Y with Cb, Cr fixed is RGB + dY * 255/219 (BT.601 studio range): no full YCbCr round
        # trip at the output size, which cost 4x more than the adds below.
        luma = np.stack([cv2.transform(f.astype(np.float32), _RGB2Y01) for f in frames])
        res = self._run(np.ascontiguousarray(luma[:, None]))
        out = np.empty(
            (len(frames), frames.shape[1] * self.spec.scale, frames.shape[2] * self.spec.scale, 3), np.uint8
        )
        for i, f in enumerate(frames):
            delta = res[i, 0] * _Y_TO_RGB_GAIN
            cv2.add(
                bicubic_up(f, self.spec.scale), cv2.merge([delta, delta, delta]), dst=out[i], dtype=cv2.CV_8U
            )
        return out
