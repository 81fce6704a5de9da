"""What face-region mode did: per-frame facts (:class:`FaceFrameInfo`) and run totals (:class:`FaceStats`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FaceFrameInfo", "FaceStats"]


@dataclass(frozen=True)
class FaceFrameInfo:
    """One frame of face-region mode.

    ``ids``: track ids of the faces upscaled with the face model; ``boxes``: their smoothed face
    boxes and ``crops`` the crop rectangles, both (N, 4) float32 / int64 xyxy in *input* frame
    pixels; ``detected``: whether the detector ran on this frame; ``whole_frame``: whether the
    crops covered so much of the frame that the face model ran on all of it; times in ms.
    """

    ids: tuple[int, ...]
    boxes: np.ndarray
    crops: np.ndarray
    detected: bool
    whole_frame: bool
    detect_ms: float
    background_ms: float
    region_ms: float

    @property
    def faces(self) -> int:
        return len(self.ids)


WINDOW = 100_000
"""Times kept per kind (the newest): a 30 fps stream's hour; its percentiles cover that window."""


def _pct(values: Collection[float], q: float) -> float:
    return round(float(np.percentile(np.fromiter(values, np.float64), q)), 3) if values else 0.0


def _window() -> deque[float]:
    return deque(maxlen=WINDOW)


@dataclass
class FaceStats:
    """Totals over a run. ``detector_ms``: one entry per detector call; ``region_ms``: one per
    frame with faces (cropping, face model, paste-back; or the face model on the whole frame);
    ``background_ms``: one per frame (0 on whole-frame frames); each keeps the newest
    :data:`WINDOW` times, so a live run of days holds bounded memory (the counts are exact).
    ``whole_frames``: frames where the face model ran on the whole frame."""

    frames: int = 0
    faces_detected_frames: int = 0
    faces_total: int = 0
    max_faces: int = 0
    tracks_started: int = 0
    whole_frames: int = 0
    detector_calls: int = 0
    detector_ms: deque[float] = field(default_factory=_window)
    region_ms: deque[float] = field(default_factory=_window)
    background_ms: deque[float] = field(default_factory=_window)

    def clear(self) -> None:
        """Forget everything counted, in place: tiers that share this object all see it cleared."""
        self.__dict__.update(type(self)().__dict__)

    def add(self, info: FaceFrameInfo) -> None:
        """Count one frame."""
        self.frames += 1
        self.faces_total += info.faces
        self.max_faces = max(self.max_faces, info.faces)
        self.background_ms.append(info.background_ms)
        self.whole_frames += info.whole_frame
        if info.faces:
            self.faces_detected_frames += 1
            self.region_ms.append(info.region_ms)
        if info.detected:
            self.detector_calls += 1
            self.detector_ms.append(info.detect_ms)

    @property
    def faces_per_frame(self) -> float:
        """Mean number of upscaled faces per frame (0.0 before the first frame)."""
        return self.faces_total / self.frames if self.frames else 0.0

    def summary(self) -> dict[str, Any]:
        """A JSON-ready dict: counts, ``faces_per_frame`` and p50/p95 of each time (ms)."""
        return {
            "frames": self.frames,
            "faces_detected_frames": self.faces_detected_frames,
            "faces_per_frame": round(self.faces_per_frame, 3),
            "max_faces": self.max_faces,
            "tracks_started": self.tracks_started,
            "whole_frames": self.whole_frames,
            "detector_calls": self.detector_calls,
            "detector_ms_p50": _pct(self.detector_ms, 50),
            "detector_ms_p95": _pct(self.detector_ms, 95),
            "region_ms_p50": _pct(self.region_ms, 50),
            "region_ms_p95": _pct(self.region_ms, 95),
            "background_ms_p50": _pct(self.background_ms, 50),
            "background_ms_p95": _pct(self.background_ms, 95),
        }
