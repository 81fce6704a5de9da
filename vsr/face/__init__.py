"""Face-region mode (issue #6): detect and track faces, upscale them with an expensive model and
the rest of the frame with a cheap one, and blend the two without a seam.

Needs numpy and opencv only; the backends it is given bring their own runtimes.

>>> from vsr.face import create_face_upscaler
>>> up = create_face_upscaler("fast", "bicubic")   # or FaceRegionUpscaler(face_backend, bg_backend)
>>> hr = up(frame)   # (H, W, 3) uint8 RGB -> (4H, 4W, 3) uint8 RGB; up.last, up.stats.summary()
"""

from __future__ import annotations

from .detect import DETECTOR_NAMES, FaceDetector, HaarDetector, box_iou, create_detector, nms
from .region import (
    FaceRegionUpscaler,
    best_face_model,
    create_face_upscaler,
    crop_rect,
    feather_for,
    feather_mask,
)
from .stats import FaceFrameInfo, FaceStats
from .track import FaceTracker, OneEuroFilter, Track

__all__ = [
    "DETECTOR_NAMES",
    "FaceDetector",
    "FaceFrameInfo",
    "FaceRegionUpscaler",
    "FaceStats",
    "FaceTracker",
    "HaarDetector",
    "OneEuroFilter",
    "Track",
    "best_face_model",
    "box_iou",
    "create_detector",
    "create_face_upscaler",
    "crop_rect",
    "feather_for",
    "feather_mask",
    "nms",
]
