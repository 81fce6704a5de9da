"""The live enhance loop of ``vsr webcam``: capture thread -> budget controller -> upscale -> outputs.

::

    source --capture thread--> FrameQueue (2 frames, drops the oldest) --main thread--> outputs
                                                 BudgetController picks a tier per frame

The capture thread never waits for the upscaler (a camera that waits drops frames anyway, and
stale frames would add latency). The main thread upscales and writes (a preview window must live
on the main thread). Live rules and counters are those of ``vsr stream``
(:class:`~vsr.stream.BudgetController`, :class:`~vsr.stream.LiveStats`). Never imports torch.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import cv2
import numpy as np

from ..backends.base import Backend
from ..stream import DROP, LiveStats, StreamConfig, build_tiers
from ..stream.live import LiveRunState, owned_tiers, warm_up_tiers
from ..stream.queues import CLOSED, FrameQueue, LiveFrame
from .capture import Captured, open_source
from .config import WebcamConfig
from .outputs import PreviewOutput, open_outputs

__all__ = ["build_webcam_tiers", "run_webcam", "side_by_side"]

log = logging.getLogger(__name__)

StatusFn = Callable[[str], None]


def build_webcam_tiers(cfg: WebcamConfig) -> list[tuple[str, Backend]]:
    """The model tiers, best first, ending in bicubic: ``cfg.model``'s chain as in ``vsr stream``,
    or in face mode :func:`vsr.face.face_tiers_for` (face mode down the face model's chain, then
    bicubic). The caller closes them."""
    if cfg.face is None:
        return build_tiers(
            StreamConfig("webcam", "-", model=cfg.model, backend=cfg.backend, threads=cfg.threads)
        )
    from ..face import face_tiers_for

    return face_tiers_for(cfg.face, backend=cfg.backend, threads=cfg.threads)


def side_by_side(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(H, W, 3) input and its (sH, sW, 3) upscale -> (sH, 2sW, 3): bicubic left, vsr right."""
    h, w = high.shape[:2]
    left = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.concatenate([left, high], axis=1)


def run_webcam(
    cfg: WebcamConfig,
    tiers: Sequence[tuple[str, Backend]] | None = None,
    *,
    stop: threading.Event | None = None,
    on_status: StatusFn | None = None,
    status_every_s: float = 1.0,
) -> LiveStats:
    """Capture, enhance and output until the input ends, ``duration_s`` passes, the preview window
    is closed or ``stop`` is set. ``tiers``: (name, backend) pairs, best first (default: built from
    ``cfg`` and closed here; given ones are not closed). Returns the run's statistics; raises
    :class:`~vsr.errors.VsrError` subclasses for inputs/outputs that cannot be opened."""
    with owned_tiers(tiers, lambda: build_webcam_tiers(cfg)) as ready:
        return _WebcamRun(cfg, ready, stop or threading.Event(), on_status, status_every_s).run()


class _WebcamRun(LiveRunState):
    """The state of one webcam session."""

    def __init__(
        self,
        cfg: WebcamConfig,
        tiers: Sequence[tuple[str, Backend]],
        stop: threading.Event,
        on_status: StatusFn | None,
        status_every_s: float,
    ) -> None:
        super().__init__(tiers, cfg.latency_budget_ms, stop, on_status, status_every_s)
        self.cfg = cfg
        self.queue = FrameQueue(max_frames=2)
        self._left_at_stop = 0

    def run(self) -> LiveStats:
        with open_source(self.cfg) as source, contextlib.ExitStack() as stack:
            frames = source.frames(self.stop)
            first = next(frames, None)
            if first is None:
                self.stats.ended = "the input gave no frame"
                return self.stats
            h, w = first.image.shape[:2]
            warm_up_tiers(self.backends, self.controller, h, w)
            scale = self.backends[0].info.scale
            out_w = w * scale * (2 if self.cfg.side_by_side else 1)
            outs = open_outputs(self.cfg, stack, out_w, h * scale, self.cfg.fps or 30.0)
            self.stats.extra.update(source=source.label, input_size=[w, h], output_size=[out_w, h * scale])
            reader = threading.Thread(
                target=self._read, args=(first, frames), name="vsr-webcam-capture", daemon=True
            )
            self.stats.started = time.perf_counter()
            reader.start()
            try:
                self._loop(outs)
            finally:
                self.stop.set()
                self.queue.close()
                reader.join(timeout=2.0)
                self._left_at_stop = self._discard_waiting()
        return self._finish()

    def _discard_waiting(self) -> int:
        """Frames still queued when the run stopped: never delivered, so counted as dropped."""
        left = 0
        while (item := self.queue.get(timeout=0)) not in (CLOSED, None):
            left += isinstance(item, LiveFrame)
        return left

    def _read(self, first: Captured, frames: Iterator[Captured]) -> None:
        """Capture thread: every frame onto the queue (which drops the oldest when full)."""
        try:
            self._put(first)
            for cap in frames:
                self._put(cap)
        except BaseException as exc:  # carried to the caller's thread
            self.errors.append(exc)
            self.stop.set()
        finally:
            self.queue.close()

    def _put(self, cap: Captured) -> None:
        self.queue.put(LiveFrame(cap.arrival, round(cap.t * 1000.0), cap.image))
        self.stats.frames_in += 1
        self.stats.rate_in.tick(cap.arrival)
        self.controller.observe_arrival(cap.arrival)
        self.stats.stages["decode"].add(time.perf_counter() - cap.arrival)

    def _loop(self, outs: list) -> None:
        """Main thread: take the next frame, pick a tier (or drop), upscale, write, report."""
        next_status = time.perf_counter() + self.status_every_s
        while not self.stop.is_set():
            item = self.queue.get(timeout=0.1)
            if item is CLOSED:
                self.stats.ended = "the input ended"
                return
            if isinstance(item, LiveFrame):
                self._frame(item, outs)
                limit = self.cfg.duration_s
                if limit is not None and item.pts / 1000.0 >= limit:
                    self.stats.ended = f"duration {limit:g} s reached"
                    return
            if any(isinstance(o, PreviewOutput) and o.closed for o in outs):
                self.stats.ended = "the preview window was closed"
                return
            now = time.perf_counter()
            if self.on_status is not None and now >= next_status:
                self.on_status(self.stats.status_line(self.queue.frames, 0))
                next_status = now + self.status_every_s
        self.stats.ended = self.stats.ended or "stopped"

    def _frame(self, job: LiveFrame, outs: list) -> None:
        tier = self.controller.choose(time.perf_counter() - job.arrival, self.queue.frames)
        if tier == DROP:
            return
        t0 = time.perf_counter()
        image = self.backends[tier].infer(job.image[None])[0]
        t1 = time.perf_counter()
        self.controller.observe_infer(tier, t1 - t0)
        self.stats.stages["infer"].add(t1 - t0)
        if self.cfg.side_by_side:
            image = side_by_side(job.image, image)
        for out in outs:
            out.write(image, job.pts / 1000.0)
        now = time.perf_counter()
        self.controller.observe_encode(now - t1)
        self.stats.stages["encode"].add(now - t1)
        self.stats.latency.add(now - job.arrival)
        self.stats.frames_out += 1
        self.stats.rate_out.tick(now)

    def _finish(self) -> LiveStats:
        self.stats.seconds = time.perf_counter() - self.stats.started
        self.stats.queue_dropped = self.queue.dropped + self._left_at_stop
        self.stats.extra["tiers"] = [getattr(b, "name", "?") for b in self.backends]
        face_stats = getattr(self.backends[0], "stats", None)
        if face_stats is not None and hasattr(face_stats, "summary"):
            summary = face_stats.summary()
            self.stats.extra.update(face=summary, faces_detected_frames=summary["faces_detected_frames"])
        if self.errors:
            raise self.errors[0]
        return self.stats
