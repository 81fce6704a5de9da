"""Face tracking between detections: IoU association, stable ids, 1-euro smoothing, hold then drop.

Detection runs every few frames; the tracker runs every frame. On a frame without detection it
keeps each track's last measured box and only advances the smoothing filter towards it, so a box
glides to its new place instead of jumping when a detection lands (a jump of the crop would show
as flicker in the upscaled face).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from .detect import box_iou

__all__ = ["FaceTracker", "OneEuroFilter", "Track"]


class OneEuroFilter:
    """The 1-euro filter (Casiez et al. 2012) on a vector, one sample per frame.

    ``min_cutoff`` (Hz at 1 sample/s, i.e. per frame): smoothing when still (lower = smoother);
    ``beta``: how fast the cutoff rises with speed (higher = less lag when moving). ``scale``
    divides the derivative so that speed is measured relative to e.g. the face size.
    """

    def __init__(self, x0: np.ndarray, *, min_cutoff: float = 0.05, beta: float = 0.5, d_cutoff: float = 1.0):
        self.x = np.asarray(x0, np.float64).copy()
        self.dx = np.zeros_like(self.x)
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff

    @staticmethod
    def _alpha(cutoff: np.ndarray | float) -> np.ndarray:
        tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, np.float64))
        return 1.0 / (1.0 + tau)

    def __call__(self, x: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Filter one sample ``x`` (same shape as ``x0``); returns the smoothed value (a copy)."""
        x = np.asarray(x, np.float64)
        dx = x - self.x
        self.dx += self._alpha(self.d_cutoff) * (dx - self.dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx) / max(scale, 1e-6)
        self.x += self._alpha(cutoff) * dx
        return self.x.copy()


def _to_cxcywh(box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = (float(v) for v in box)
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0])


def _to_xyxy(c: np.ndarray) -> np.ndarray:
    cx, cy, w, h = c
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


@dataclass
class Track:
    """One face followed across frames. ``box`` is the smoothed xyxy box (float32, frame px);
    ``measured`` the last detected box, ``since`` frames ago; ``velocity`` its estimated motion
    (px per frame, xyxy); ``missed`` detection rounds without a match."""

    id: int
    measured: np.ndarray
    filter: OneEuroFilter
    box: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    since: int = 0
    hits: int = 1
    missed: int = 0

    def predicted(self, horizon: int) -> np.ndarray:
        """Where the face should be now: the last measurement moved by ``velocity`` for up to
        ``horizon`` frames (constant velocity, then hold)."""
        return (self.measured + self.velocity * min(self.since, horizon)).astype(np.float32)

    def observe(self, box: np.ndarray) -> None:
        """A detection matched this track: update velocity (averaged) and the measurement."""
        if self.since > 0:
            self.velocity = 0.5 * self.velocity + 0.5 * (box - self.measured) / self.since
        self.measured, self.since, self.missed, self.hits = box.copy(), 0, 0, self.hits + 1

    def step(self, smooth: bool, horizon: int) -> None:
        """Advance one frame: move the smoothed box towards the predicted position."""
        c = _to_cxcywh(self.predicted(horizon))
        self.since += 1
        s = self.filter(c, scale=max(c[2], c[3])) if smooth else c
        self.box = _to_xyxy(s)


class FaceTracker:
    """Keeps face identities across frames.

    ``update(boxes)`` with the detections of a detection frame ((N, 4) xyxy), or ``None`` on the
    frames in between; returns the live tracks (sorted by id). Association is greedy by IoU
    (>= ``iou_threshold``); an unmatched detection starts a new id; a track unmatched for more than
    ``max_missed`` detection rounds is dropped. Between detections a track moves on at its
    estimated velocity for up to ``horizon`` frames. ``smooth=False`` returns the unsmoothed
    boxes (for the jitter comparison). Ids are never reused.
    """

    def __init__(
        self,
        *,
        iou_threshold: float = 0.2,
        max_missed: int = 2,
        smooth: bool = True,
        min_cutoff: float = 0.05,
        beta: float = 0.5,
        horizon: int = 3,
    ) -> None:
        if not 0.0 < iou_threshold < 1.0:
            raise ConfigError(f"iou_threshold must be in (0, 1), got {iou_threshold}")
        if max_missed < 0:
            raise ConfigError(f"max_missed must be >= 0, got {max_missed}")
        self.iou_threshold, self.max_missed, self.smooth = iou_threshold, max_missed, smooth
        self.min_cutoff, self.beta, self.horizon = min_cutoff, beta, max(0, horizon)
        self.tracks: list[Track] = []
        self._next_id = 0
        self.frames = 0  # frames advanced since the last reset (the detection cadence counts these)

    def _match(self, boxes: np.ndarray) -> tuple[dict[int, int], list[int]]:
        """Greedy IoU matching: {track index: detection index} and the unmatched detections."""
        pairs: dict[int, int] = {}
        if self.tracks and len(boxes):
            iou = box_iou(np.stack([t.predicted(self.horizon) for t in self.tracks]), boxes)
            while True:
                ti, di = np.unravel_index(int(np.argmax(iou)), iou.shape)
                if iou[ti, di] < self.iou_threshold:
                    break
                pairs[int(ti)] = int(di)
                iou[ti, :], iou[:, di] = -1.0, -1.0
        used = set(pairs.values())
        return pairs, [i for i in range(len(boxes)) if i not in used]

    def _new(self, box: np.ndarray) -> Track:
        c = _to_cxcywh(box)
        t = Track(self._next_id, box.copy(), OneEuroFilter(c, min_cutoff=self.min_cutoff, beta=self.beta))
        self._next_id += 1
        return t

    def update(self, boxes: np.ndarray | None) -> list[Track]:
        """Advance one frame. ``boxes``: (N, 4) float xyxy detections, or ``None`` (no detection run)."""
        if boxes is not None:
            boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
            pairs, fresh = self._match(boxes)
            for i, t in enumerate(self.tracks):
                if i in pairs:
                    t.observe(boxes[pairs[i]])
                else:
                    t.missed += 1
            self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
            self.tracks += [self._new(boxes[i]) for i in fresh]
        for t in self.tracks:
            t.step(self.smooth, self.horizon)
        self.frames += 1
        return sorted(self.tracks, key=lambda t: t.id)

    @property
    def started(self) -> int:
        """How many tracks (ids) were ever started."""
        return self._next_id

    def reset(self) -> None:
        """Forget every track (e.g. at a scene cut or a seek); ids keep counting up."""
        self.tracks = []
        self.frames = 0
