"""Face-region upscaling: the cheap model on the whole frame, the expensive one on face crops.

Each tracked face is cropped with a margin (square, aligned to the face model's size multiple,
clamped inside the frame), the crops of equal size are upscaled in one batch, and each result is
blended into the cheaply upscaled frame with a raised-cosine alpha mask that is 1 over the face
and falls to exactly 0 at the crop edge — except on sides where the crop touches the frame edge,
where there is nothing to blend into. Both paths see the same frame, so colour matches and the
blend leaves no seam.
"""

from __future__ import annotations

import logging
import math
import time
from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..backends.base import Backend, ModelInfo
from ..errors import ConfigError
from .detect import FaceDetector, create_detector
from .stats import FaceFrameInfo, FaceStats
from .track import FaceTracker, Track

if TYPE_CHECKING:  # pragma: no cover
    pass

log = logging.getLogger(__name__)

__all__ = [
    "FaceRegionUpscaler",
    "best_face_model",
    "create_face_upscaler",
    "crop_rect",
    "feather_for",
    "feather_mask",
]


def crop_rect(box: np.ndarray, height: int, width: int, margin: float, multiple: int) -> tuple[int, ...]:
    """The crop (x0, y0, x1, y1) ints for a face ``box`` (xyxy float) in an (H, W) frame.

    A square of side ``max(w, h) * (1 + 2 * margin)`` around the box centre, rounded up to a
    multiple of ``multiple``, then shrunk to the frame where it is larger and shifted inside it.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0, 1.0) * (1.0 + 2.0 * margin)
    side_i = int(math.ceil(side / multiple) * multiple)
    cw, ch = min(side_i, width), min(side_i, height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = min(max(round(cx - cw / 2), 0), width - cw)
    top = min(max(round(cy - ch / 2), 0), height - ch)
    return left, top, left + cw, top + ch


def _ramp(n: int, feather: int, lo_open: bool, hi_open: bool) -> np.ndarray:
    """1-D weights of length ``n``: raised-cosine 0 -> 1 over ``feather`` px at each open end."""
    r = np.ones(n, np.float32)
    f = max(1, min(feather, n // 2))
    edge = (0.5 - 0.5 * np.cos(np.pi * np.arange(f) / f)).astype(np.float32)
    if lo_open:
        r[:f] = edge
    if hi_open:
        r[n - f :] = np.minimum(r[n - f :], edge[::-1])
    return r


@lru_cache(maxsize=64)
def feather_mask(
    height: int, width: int, feather: int, sides: tuple[bool, bool, bool, bool] = (True, True, True, True)
) -> np.ndarray:
    """(H, W, 1) float32 alpha in [0, 1]: 1 inside, a raised-cosine ramp of ``feather`` px to
    exactly 0 at each open side. ``sides`` = (left, top, right, bottom) open. Cached; read-only."""
    left, top, right, bottom = sides
    m = np.outer(_ramp(height, feather, top, bottom), _ramp(width, feather, left, right))[..., None]
    m.setflags(write=False)
    return m


@lru_cache(maxsize=64)
def _blend_weights(
    height: int, width: int, feather: int, sides: tuple[bool, bool, bool, bool]
) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, 1 - alpha) as contiguous (H, W) float32 for cv2.blendLinear. Cached; read-only."""
    a = np.ascontiguousarray(feather_mask(height, width, feather, sides)[..., 0])
    b = np.ascontiguousarray(1.0 - a)
    a.setflags(write=False)
    b.setflags(write=False)
    return a, b


def feather_for(margin: float) -> float:
    """The blend ramp (fraction of the crop side) that fills 80 % of a ``margin`` on each side.

    A crop of side ``face * (1 + 2 * margin)`` has ``margin / (1 + 2 * margin)`` of its side as
    margin on each side; the ramp takes 80 % of that (0.2 at margin 0.5), so the face box and a
    little around it get the face model alone. At least 0.02 (a ramp of a few pixels at margin 0).
    """
    return max(0.02, 0.8 * margin / (1.0 + 2.0 * margin))


def _lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b)


class FaceRegionUpscaler:
    """Upscales frames with ``face`` on face regions and ``background`` everywhere else.

    Stateful (tracking): feed the frames of one stream in order; :meth:`reset` at a seek.
    ``detect_every``: run the detector on every K-th frame (tracks carry the boxes in between);
    ``margin``: crop margin on each side as a fraction of the face size; ``feather``: blend ramp
    as a fraction of the crop side (None: :func:`feather_for` the margin, so the ramp lies inside the
    margin and the face box itself is all face model); ``quantum``: crop sides are multiples of
    lcm(quantum, face size_multiple) input px, so crops of similar faces batch together;
    ``whole_frame_above``: when the crops cover at least this fraction of the frame, the face model
    runs on the whole frame instead (cheaper than crops plus background then), until they cover
    less than 3/4 of it (hysteresis, so the background does not flip between the two paths);
    ``None`` never does. ``max_faces``: at most this many faces (the largest) get the face model.
    Both backends must have the same scale. It takes ownership of them: :meth:`close` closes both.
    """

    def __init__(
        self,
        face: Backend,
        background: Backend,
        *,
        detector: FaceDetector | None = None,
        tracker: FaceTracker | None = None,
        detect_every: int = 3,
        margin: float = 0.3,
        feather: float | None = None,
        quantum: int = 16,
        whole_frame_above: float | None = 0.6,
        max_faces: int = 8,
    ) -> None:
        if face.info.scale != background.info.scale:
            raise ConfigError(
                f"face and background scales differ: {face.info.scale} vs {background.info.scale}"
            )
        if detect_every < 1:
            raise ConfigError(f"detect_every must be >= 1, got {detect_every}")
        if feather is None:
            feather = feather_for(margin)
        if not 0.0 <= margin <= 2.0 or not 0.0 < feather <= 0.5:
            raise ConfigError(f"need 0 <= margin <= 2 and 0 < feather <= 0.5, got {margin}, {feather}")
        if whole_frame_above is not None and not 0.0 < whole_frame_above <= 1.0:
            raise ConfigError(f"whole_frame_above must be in (0, 1] or None, got {whole_frame_above}")
        if max_faces < 1:
            raise ConfigError(f"max_faces must be >= 1, got {max_faces}")
        self.face, self.background = face, background
        self.detector = detector if detector is not None else create_detector()
        self.tracker = tracker if tracker is not None else FaceTracker()
        self.detect_every, self.margin, self.feather = detect_every, margin, feather
        self.whole_frame_above, self.max_faces = whole_frame_above, max_faces
        self._whole = False
        self.multiple = _lcm(max(1, quantum), max(1, face.info.size_multiple))
        self.scale = face.info.scale
        self.info = ModelInfo(
            name=f"face:{face.info.name}+{background.info.name}",
            scale=self.scale,
            size_multiple=background.info.size_multiple,
            supports_fp16=face.info.supports_fp16 and background.info.supports_fp16,
        )
        self.name = f"face region ({face.name} on faces, {background.name} elsewhere)"
        self.stats = FaceStats()
        self.last: FaceFrameInfo | None = None

    def _track(self, frame: np.ndarray) -> tuple[list[Track], bool, float]:
        # the tracker's frame count, not this upscaler's: face tiers sharing a tracker keep one cadence
        detect = self.tracker.frames % self.detect_every == 0
        t0 = time.perf_counter()
        boxes = self.detector.detect(frame) if detect else None
        ms = (time.perf_counter() - t0) * 1000.0
        before = self.tracker.started
        tracks = self.tracker.update(boxes)
        self.stats.tracks_started += self.tracker.started - before
        if len(tracks) > self.max_faces:  # the largest faces, kept in id order
            area = {t.id: float((t.box[2] - t.box[0]) * (t.box[3] - t.box[1])) for t in tracks}
            keep = set(sorted(area, key=lambda i: -area[i])[: self.max_faces])
            tracks = [t for t in tracks if t.id in keep]
        return tracks, detect, ms

    def _paste(self, out: np.ndarray, sr: np.ndarray, rect: tuple[int, ...], h: int, w: int) -> None:
        x0, y0, x1, y1 = rect
        s = self.scale
        sides = (x0 > 0, y0 > 0, x1 < w, y1 < h)
        f = max(1, round(self.feather * max(x1 - x0, y1 - y0) * s))
        alpha, beta = _blend_weights(sr.shape[0], sr.shape[1], f, sides)
        dst = out[y0 * s : y1 * s, x0 * s : x1 * s]
        # alpha * sr + (1 - alpha) * dst in one pass (3x faster than the numpy float32 version)
        np.copyto(dst, cv2.blendLinear(np.ascontiguousarray(sr), np.ascontiguousarray(dst), alpha, beta))

    def _regions(self, frame: np.ndarray, out: np.ndarray, rects: list[tuple[int, ...]]) -> None:
        h, w = frame.shape[:2]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (x0, y0, x1, y1) in enumerate(rects):
            groups.setdefault((y1 - y0, x1 - x0), []).append(i)
        results: dict[int, np.ndarray] = {}
        for idx in groups.values():
            crops = np.stack([frame[rects[i][1] : rects[i][3], rects[i][0] : rects[i][2]] for i in idx])
            for i, sr in zip(idx, self.face.infer(crops), strict=True):
                results[i] = sr
        for i, rect in enumerate(rects):  # in track order, so overlaps resolve the same way each frame
            self._paste(out, results[i], rect, h, w)

    def _use_whole(self, rects: list[tuple[int, ...]], h: int, w: int) -> bool:
        if self.whole_frame_above is None:
            return False
        covered = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in rects) / (h * w)
        self._whole = covered >= self.whole_frame_above * (0.75 if self._whole else 1.0)
        return self._whole

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (sH, sW, 3) uint8 RGB (a new array the caller owns).

        Also sets :attr:`last` (a :class:`FaceFrameInfo`) and adds it to :attr:`stats`.
        """
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ConfigError(f"frame must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        h, w = frame.shape[:2]
        tracks, detected, detect_ms = self._track(frame)
        rects = [crop_rect(t.box, h, w, self.margin, self.multiple) for t in tracks]
        whole = self._use_whole(rects, h, w)
        t0 = time.perf_counter()
        out = np.ascontiguousarray((self.face if whole else self.background).infer(frame[None])[0])
        t1 = time.perf_counter()
        if rects and not whole:
            self._regions(frame, out, rects)
        t2 = time.perf_counter()
        self.last = FaceFrameInfo(
            ids=tuple(t.id for t in tracks),
            boxes=np.array([t.box for t in tracks], np.float32).reshape(-1, 4),
            crops=np.array(rects, np.int64).reshape(-1, 4),
            detected=detected,
            whole_frame=whole,
            detect_ms=detect_ms,
            background_ms=0.0 if whole else (t1 - t0) * 1000.0,
            region_ms=(t1 - t0 if whole else t2 - t1) * 1000.0,
        )
        self.stats.add(self.last)
        return out

    # The Backend protocol, so the pipeline can use face mode wherever it takes a backend.
    def prepare(self, height: int, width: int, batch: int) -> None:
        """Prepare the background backend for full frames (the face backend sees varying crops)."""
        self.background.prepare(height, width, 1)

    def infer(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 consecutive frames -> (N, sH, sW, 3) uint8, in order (new array)."""
        if frames.ndim != 4:
            raise ConfigError(f"frames must be (N, H, W, 3) uint8, got {frames.shape}")
        return np.stack([self(f) for f in frames])

    def reset(self) -> None:
        """Forget tracks (seek or scene cut); the next frame runs the detector. Stats are kept."""
        self.tracker.reset()
        self._whole = False

    def close(self) -> None:
        """Close both backends. Idempotent."""
        self.face.close()
        self.background.close()

    def __enter__(self) -> FaceRegionUpscaler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def best_face_model(cuda: bool | None = None, *, live: bool = False) -> str:
    """The best catalogue model with shipped weights that fits face mode's budget on this machine.

    Quality order, as measured (FFHQ10 Y-PSNR, README): ``compact`` 31.40 > ``fast-plus`` 31.19 >
    ``fast`` 31.09; the shipped ``srresnet`` (30.74, undertrained) is not preferred. On a CUDA GPU:
    ``compact``. On a CPU, files and live runs alike: ``fast-plus`` (66K MACs on the face crops
    only: about whole-frame ``fast``'s speed or faster, where ``compact`` made a file run ~3x
    slower than without ``--face``; docs/face_mode.md). ``live`` is kept for callers; the CPU
    choice no longer depends on it. ``cuda`` None asks torch.
    """
    from ..models.catalogue import get_spec

    if cuda is None:
        try:
            import torch

            cuda = bool(torch.cuda.is_available())
        except ImportError:
            cuda = False
    order = ("compact", "fast-plus", "fast") if cuda else ("fast-plus", "fast")
    for name in order:
        if get_spec(name).has_weights:
            return name
    return "fast"


def create_face_upscaler(
    face_model: str | None = None,
    background_model: str = "bicubic",
    *,
    backend: str = "auto",
    detector: str = "blazeface",
    detect_every: int = 3,
    margin: float = 0.3,
    threads: int | None = None,
    live: bool = False,
) -> FaceRegionUpscaler:
    """Face-region mode from names, as ``--face --face-model X --background-model Y`` mean it.

    ``face_model`` / ``background_model``: catalogue names (``face_model`` None: :func:`best_face_model`;
    the background one should be cheap:
    ``bicubic`` or ``fast``); ``backend``: as for :func:`vsr.backends.create_backend`; ``detector``:
    one of :data:`DETECTOR_NAMES`. Raises :class:`ConfigError` / :class:`ModelError` like
    ``create_backend`` (e.g. a model without trained weights). ``live``: the default face model
    must keep a frame rate (stream, webcam). The result owns both backends.
    """
    from ..backends import create_backend

    face, bg = create_backend(backend, face_model or best_face_model(live=live), threads=threads), None
    try:
        bg = create_backend(backend, background_model, threads=threads)
        det = create_detector(detector)
        return FaceRegionUpscaler(face, bg, detector=det, detect_every=detect_every, margin=margin)
    except Exception:
        face.close()
        if bg is not None:
            bg.close()
        raise
