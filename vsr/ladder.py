"""The fallback ladder: the backends a run may use, best first, ending in a floor (bicubic).

A lossless run (files, pipes) uses the top rung only. A live run's budget controller walks down the
rungs when a frame would miss its latency budget and back up when there is room. The order is
catalogue data (each :class:`~vsr.models.catalogue.ModelSpec` names its ``fallback``):
:func:`build_ladder` follows it, for a plain model or for face mode (one face-region upscaler per
face model down the chain, sharing one detector, tracker and :class:`~vsr.face.FaceStats`).

The ladder owns its backends: ``with build_ladder(...) as ladder:`` closes them all. Inference is
serialised by a lock, so tracks (WebRTC peers) that share one ladder never run a backend twice at
once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .backends.base import Backend
    from .face.region import FaceRegionUpscaler
    from .face.stats import FaceStats

__all__ = ["Ladder", "Rung"]

log = logging.getLogger(__name__)

Rung = tuple[str, "Backend"]
"""(name, backend): one step of the ladder."""

TimeFn = Callable[[int, float], None]
"""Called with (rung index, seconds) for each timed warm-up frame."""


class Ladder:
    """Backends best first; the last is the floor a live run can always afford.

    ``rungs``: (name, backend) pairs. ``faces``: the face-region upscalers among them (their tracks
    are forgotten and their shared ``face_stats`` cleared after the warm-up's probe frames).
    ``owned``: :meth:`close` closes the backends (False: the caller closes them).
    """

    def __init__(
        self,
        rungs: Sequence[Rung],
        *,
        faces: Sequence[FaceRegionUpscaler] = (),
        face_stats: FaceStats | None = None,
        owned: bool = True,
    ) -> None:
        if not rungs:
            raise ValueError("a ladder needs at least one rung")
        scales = {b.info.scale for _, b in rungs}
        if len(scales) != 1:
            raise ValueError(f"every rung of a ladder must have one scale, got {sorted(scales)}")
        self.rungs = list(rungs)
        self.faces = list(faces)
        self.face_stats = face_stats
        self.owned = owned
        self._lock = threading.Lock()
        self._closed = False

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.rungs]

    @property
    def backends(self) -> list[Backend]:
        return [b for _, b in self.rungs]

    @property
    def scale(self) -> int:
        return self.rungs[0][1].info.scale

    @property
    def top(self) -> Backend:
        """The best rung's backend (what a lossless run uses)."""
        return self.rungs[0][1]

    def __len__(self) -> int:
        return len(self.rungs)

    def infer(self, rung: int, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, sH, sW, 3) uint8 RGB through rung ``rung``; caller owns it."""
        with self._lock:
            return self.rungs[rung][1].infer(frames)

    def prepare(self, height: int, width: int, batch: int) -> None:
        """Prepare every rung for frames of this size (no probe frames: a lossless run)."""
        with self._lock:
            for _, backend in self.rungs:
                backend.prepare(height, width, batch)

    def warm_up(self, height: int, width: int, on_time: TimeFn | None = None) -> None:
        """Prepare every rung for (1, height, width, 3) frames and run probe frames through it.

        The first probe pays one-off costs and is not timed; two more are passed to ``on_time``
        (a budget controller seeds its estimates with them). Face rungs then forget the probes:
        tracks reset, shared face statistics cleared in place.
        """
        probe = np.zeros((1, height, width, 3), dtype=np.uint8)
        with self._lock:
            for i, (_, backend) in enumerate(self.rungs):
                backend.prepare(height, width, 1)
                backend.infer(probe)
                for _ in range(2):
                    t0 = time.perf_counter()
                    backend.infer(probe)
                    if on_time is not None:
                        on_time(i, time.perf_counter() - t0)
            for face in self.faces:
                face.reset()
            if self.face_stats is not None:
                self.face_stats.clear()

    def report(self) -> dict[str, object]:
        """What a run's statistics add about the ladder: its rungs' backends and, in face mode, the
        face statistics (``face``, ``faces_detected_frames``)."""
        out: dict[str, object] = {"tiers": [b.name for b in self.backends]}
        if self.face_stats is not None:
            summary = self.face_stats.summary()
            out.update(face=summary, faces_detected_frames=summary["faces_detected_frames"])
        return out

    def close(self) -> None:
        """Close every backend if the ladder owns them. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.owned:
            for _, backend in self.rungs:
                backend.close()

    def __enter__(self) -> Ladder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
