"""A clip's frames for a quality test: reading them, the reference size rule, the low-resolution input.

The rule, for an input ``size`` (W, H) and a clip of w x h pixels:

1. A portrait clip (h > w) with a landscape ``size`` gets the size transposed (a phone sends portrait).
2. The clip is cropped to the largest centred box of the size's aspect ratio (a square talking head
   loses its top and bottom, as a 16:9 call would frame it).
3. Reference = that crop resized to 4 x size (1280x720 for 320x180): cv2 area when it shrinks; when
   the clip holds fewer pixels it is enlarged with cv2 bicubic and ``ref_scale`` (> 1) says so.
4. Input = the same crop area-downscaled straight to ``size`` (then coded, :mod:`vsr.quality.codec`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

__all__ = ["ClipPlan", "iter_frames", "plan_clip", "probe", "read_frames"]


def probe(path: Path) -> tuple[int, int, float]:
    """(width, height, frames per second) of the first video stream of ``path``."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path} has no video stream")
            st = container.streams.video[0]
            return int(st.codec_context.width), int(st.codec_context.height), float(st.average_rate or 25)
    except av.FFmpegError as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc


def iter_frames(
    path: Path, *, seconds: float | None = None, count: int | None = None, start: float = 0.0
) -> Iterator[np.ndarray]:
    """The clip's frames as new (H, W, 3) uint8 RGB arrays, from ``start`` (a fraction of its
    duration; 0 = the first frame) for at most ``seconds`` of pts time and at most ``count`` frames."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        t0 = start * float(container.duration or 0) / 1e6
        if t0 > 0:
            container.seek(int(t0 * 1e6))  # to the keyframe before t0
        first: float | None = None
        n = 0
        for frame in container.decode(stream):
            t = float(frame.time) if frame.time is not None else n / float(stream.average_rate or 25)
            if t < t0 - 1e-6:
                continue
            first = t if first is None else first
            if seconds is not None and t - first >= seconds - 1e-6:
                break
            yield frame.to_ndarray(format="rgb24")
            n += 1
            if count is not None and n >= count:
                break


def read_frames(path: Path, count: int, start: float = 0.0) -> tuple[list[np.ndarray], float]:
    """``count`` frames of a clip from ``start`` (a fraction of its duration) as (H, W, 3) uint8 RGB,
    and its frame rate."""
    return list(iter_frames(path, count=count, start=start)), probe(path)[2]


@dataclass(frozen=True)
class ClipPlan:
    """Where a clip's frames go: ``crop`` (x, y, w, h) in the clip, ``lr`` and ``ref`` sizes (W, H)."""

    crop: tuple[int, int, int, int]
    lr: tuple[int, int]
    ref: tuple[int, int]

    @property
    def ref_scale(self) -> float:
        """Reference height / crop height: > 1 when the reference had to be enlarged."""
        return self.ref[1] / self.crop[3]

    def reference(self, frame: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 clip frame -> the (4H, 4W, 3) uint8 reference (a new array)."""
        return _resize(self._cut(frame), self.ref)

    def low_res(self, frame: np.ndarray) -> np.ndarray:
        """(h, w, 3) uint8 clip frame -> the (H, W, 3) uint8 input, area-downscaled (a new array)."""
        return _resize(self._cut(frame), self.lr)

    def _cut(self, frame: np.ndarray) -> np.ndarray:
        x, y, w, h = self.crop
        return frame[y : y + h, x : x + w]


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = img.shape[:2]
    if (w, h) == size:
        return img.copy()
    shrink = size[0] <= w and size[1] <= h
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def plan_clip(width: int, height: int, size: tuple[int, int], scale: int = 4) -> ClipPlan:
    """The :class:`ClipPlan` of a ``width`` x ``height`` clip for input ``size`` (module docstring)."""
    w, h = size
    if height > width and w > h:
        w, h = h, w
    if width * h >= height * w:  # the clip is wider than the target: keep its height
        cw, ch = max(1, round(height * w / h)), height
    else:
        cw, ch = width, max(1, round(width * h / w))
    return ClipPlan(((width - cw) // 2, (height - ch) // 2, cw, ch), (w, h), (w * scale, h * scale))
