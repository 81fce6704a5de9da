"""Face detectors for face-region mode: the :class:`FaceDetector` protocol, Haar, and the factory.

Boxes everywhere in :mod:`vsr.face` are ``(N, 4)`` float32 arrays of ``x0, y0, x1, y1`` in pixels
of the frame they were found in (``x1``/``y1`` exclusive), a new array owned by the caller.

The default detector is MediaPipe's BlazeFace short-range model (:mod:`.blazeface`, weights in
``vsr/face/models``, run by cv2.dnn), chosen by measurement against OpenCV's Haar cascades and
dlib's HOG detector (docs/face_detectors.md): best recall on close faces, no false positives on
non-face clips, ~3 ms a frame. Haar (weights inside opencv-python-headless 4.x) stays as the
fallback that needs no model file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from ..config import DETECTOR_NAMES
from ..errors import ConfigError
from .boxes import box_iou, nms

__all__ = [
    "DETECTOR_NAMES",
    "FaceDetector",
    "HaarDetector",
    "box_iou",
    "create_detector",
    "nms",
]


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces in one frame."""

    name: str

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (N, 4) float32 boxes x0, y0, x1, y1 in frame pixels (new array)."""


def _cascade(file_name: str) -> cv2.CascadeClassifier:
    data = getattr(cv2, "data", None)
    if data is None:
        raise ConfigError(
            "this OpenCV build ships no Haar cascades (opencv 5 dropped them); install opencv<5"
        )
    path = Path(data.haarcascades) / file_name
    clf = cv2.CascadeClassifier(str(path))
    if clf.empty():
        raise ConfigError(f"cannot load the Haar cascade {str(path)!r}")
    return clf


class HaarDetector:
    """OpenCV Haar cascades on an equalised grey frame resized to ``detect_width`` px wide.

    ``profile`` adds the profile cascade on the frame and its mirror (OpenCV's profile model only
    knows one direction). ``min_face`` is the smallest face, in pixels of the resized frame; the
    cascades' own window is 24 x 24 (20 x 20 for the profile one). Boxes of the cascades are tight
    (brows to mouth); face-region mode adds its own margin. ~4 ms per 320 x 180 frame.
    """

    def __init__(
        self,
        *,
        profile: bool = True,
        detect_width: int = 320,
        min_face: int = 24,
        min_neighbors: int = 5,
        scale_factor: float = 1.1,
    ) -> None:
        if detect_width < 32:
            raise ConfigError(f"detect_width must be >= 32 px, got {detect_width}")
        if not 1.0 < scale_factor < 2.0:
            raise ConfigError(f"scale_factor must be in (1, 2), got {scale_factor}")
        self.name = "haar" if profile else "haar-frontal"
        self.detect_width = detect_width
        self.min_face = min_face
        self.min_neighbors = min_neighbors
        self.scale_factor = scale_factor
        self._frontal = _cascade("haarcascade_frontalface_default.xml")
        self._profile = _cascade("haarcascade_profileface.xml") if profile else None

    def _run(self, clf: cv2.CascadeClassifier, grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rects, _levels, weights = clf.detectMultiScale3(
            grey,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_face, self.min_face),
            outputRejectLevels=True,
        )
        if len(rects) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        r = np.asarray(rects, np.float32).reshape(-1, 4)
        boxes = np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]], axis=1)
        return boxes, np.asarray(weights, np.float32).reshape(-1)

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (N, 4) float32 xyxy boxes in frame pixels (new array)."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ConfigError(f"frame must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        h, w = frame.shape[:2]
        f = self.detect_width / w
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if abs(f - 1.0) > 1e-3:
            interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
            grey = cv2.resize(grey, (self.detect_width, max(1, round(h * f))), interpolation=interp)
        grey = cv2.equalizeHist(grey)
        boxes, scores = self._run(self._frontal, grey)
        if self._profile is not None:
            pb, ps = self._run(self._profile, grey)
            fb, fs = self._run(self._profile, np.ascontiguousarray(grey[:, ::-1]))
            gw = grey.shape[1]
            fb = np.stack([gw - fb[:, 2], fb[:, 1], gw - fb[:, 0], fb[:, 3]], axis=1) if len(fb) else fb
            # frontal hits first: a profile hit only adds a face the frontal cascade missed
            boxes = np.concatenate([boxes, pb, fb])
            scores = np.concatenate([scores + 1e3, ps, fs])
        return (nms(boxes, scores) / f).astype(np.float32)


def create_detector(name: str = "blazeface", *, detect_width: int = 320) -> FaceDetector:
    """The detector called ``name``: ``blazeface`` (MediaPipe short range, the default),
    ``blazeface-full`` (full range: small faces), ``haar`` (frontal + profile cascades) or
    ``haar-frontal``. ``detect_width`` is the width Haar resizes frames to (BlazeFace has a fixed
    input size). Raises :class:`ConfigError` for other names or a missing model file."""
    if name not in DETECTOR_NAMES:
        raise ConfigError(f"unknown face detector {name!r}; choose one of: {', '.join(DETECTOR_NAMES)}")
    if name.startswith("blazeface"):
        from .blazeface import BlazeFaceDetector

        return BlazeFaceDetector("full_range" if name == "blazeface-full" else "short_range")
    return HaarDetector(profile=name == "haar", detect_width=detect_width)
