"""The live pipeline: read -> (budget controller) infer -> encode, in three threads.

::

    LiveSource --read--> FrameQueue (tiny, drops oldest) --infer--> queue (4) --encode--> LiveSink
                 audio packets travel the same queues, in order, and are never dropped

The source sets the pace. For every frame the :class:`~vsr.stream.budget.BudgetController`
picks the best model tier that keeps the added latency within the budget (or drops the frame when
even bicubic cannot, as a last resort). The run ends when the input ends (or, without reconnect,
stalls), on ``stop`` (SIGINT: both ends are closed cleanly), or when the receiver goes away.
Never imports torch: backends take and return uint8 numpy frames.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction

import av
import cv2
import numpy as np

from ..backends import create_backend
from ..backends.base import Backend
from ..errors import InputError, ModelError
from ..models.catalogue import get_spec
from .budget import DROP, BudgetController
from .config import StreamConfig
from .queues import CLOSED, FrameQueue, LiveFrame
from .sink import LiveSink, ReceiverGone
from .source import Arrival, LiveSource
from .stats import LiveStats

__all__ = ["LiveRunState", "build_tiers", "owned_tiers", "run_stream", "warm_up_tiers"]

log = logging.getLogger(__name__)

StatusFn = Callable[[str], None]


def build_tiers(cfg: StreamConfig) -> list[tuple[str, Backend]]:
    """The backends of ``cfg.tiers``, best first. A cheaper tier without weights is skipped (logged);
    the requested model must build. The caller closes them."""
    tiers: list[tuple[str, Backend]] = []
    for i, name in enumerate(cfg.tiers):
        spec = get_spec(name)
        if i > 0 and not spec.has_weights:
            log.info("fallback tier %s has no weights; skipping it", name)
            continue
        backend = cfg.backend if spec.arch != "bicubic" else "auto"
        try:
            tiers.append((name, create_backend(backend, spec, threads=cfg.threads)))
        except ModelError:
            if i == 0:
                raise
            log.info("fallback tier %s cannot be built; skipping it", name)
    return tiers


def run_stream(
    cfg: StreamConfig,
    tiers: Sequence[tuple[str, Backend]] | None = None,
    *,
    stop: threading.Event | None = None,
    on_status: StatusFn | None = None,
    status_every_s: float = 1.0,
) -> LiveStats:
    """Run one live stream until its input ends, ``stop`` is set or the receiver goes away.

    ``tiers``: (name, backend) pairs, best first, the last the floor (default: built from
    ``cfg`` and closed here; given ones are not closed). ``on_status`` gets the status line every
    ``status_every_s``. Returns the run's statistics (``ended`` says why it ended); raises
    :class:`~vsr.errors.VsrError` subclasses for inputs/outputs that cannot be opened.
    """
    with owned_tiers(tiers, lambda: build_tiers(cfg)) as ready:
        return _LiveRun(cfg, ready, stop or threading.Event(), on_status, status_every_s).run()


def warm_up_tiers(backends: Sequence[Backend], controller: BudgetController, height: int, width: int) -> None:
    """Prepare every tier and seed the controller's inference-time estimate of each with two timed
    frames; a face-region tier then forgets the probe frames in its statistics."""
    probe = np.zeros((1, height, width, 3), dtype=np.uint8)
    for i, backend in enumerate(backends):
        backend.prepare(height, width, 1)
        backend.infer(probe)
        for _ in range(2):
            t0 = time.perf_counter()
            backend.infer(probe)
            controller.observe_infer(i, time.perf_counter() - t0)
        if hasattr(backend, "reset") and hasattr(backend, "stats"):
            backend.reset()
            backend.stats.clear()  # in place: face tiers share one FaceStats


@contextlib.contextmanager
def owned_tiers(
    tiers: Sequence[tuple[str, Backend]] | None, build: Callable[[], list[tuple[str, Backend]]]
) -> Iterator[list[tuple[str, Backend]]]:
    """``tiers`` as given (the caller closes them), or built by ``build`` and closed on exit."""
    if tiers is not None:
        yield list(tiers)
        return
    built = build()
    try:
        yield built
    finally:
        for _, backend in built:
            backend.close()


class LiveRunState:
    """What every live run (stream, webcam) holds: its tiers' backends, the budget controller over
    them, the statistics, the stop event, the status callback and the errors of its threads."""

    def __init__(
        self,
        tiers: Sequence[tuple[str, Backend]],
        budget_ms: float,
        stop: threading.Event,
        on_status: StatusFn | None,
        status_every_s: float,
    ) -> None:
        self.stop, self.on_status, self.status_every_s = stop, on_status, status_every_s
        self.backends = [b for _, b in tiers]
        self.controller = BudgetController([n for n, _ in tiers], budget_ms / 1000.0)
        self.stats = LiveStats(self.controller)
        self.errors: list[BaseException] = []


class _LiveRun(LiveRunState):
    """The state of one live run: source, sink, queues, controller, stats and the stage bodies."""

    def __init__(
        self,
        cfg: StreamConfig,
        tiers: Sequence[tuple[str, Backend]],
        stop: threading.Event,
        on_status: StatusFn | None,
        status_every_s: float,
    ) -> None:
        super().__init__(tiers, cfg.latency_budget_ms, stop, on_status, status_every_s)
        self.cfg = cfg
        self.q_in = FrameQueue(max_frames=4)
        self.q_out: queue.Queue = queue.Queue(maxsize=4)
        self.abort = threading.Event()
        self.live = threading.Event()  # set once the models are warm: frames before it are skipped

    def run(self) -> LiveStats:
        with LiveSource(self.cfg, self.stop) as source:
            items = source.items()
            first = self._first_frame(items, source)
            self.size, self.time_base = (first.width, first.height), first.time_base
            scale = self.backends[0].info.scale
            w, h = first.width * scale, first.height * scale
            with LiveSink(self.cfg, w, h, first.time_base, source.info().rate, source.audio) as sink:
                self._run_threads(items, sink, first.height, first.width)
        return self._finish(source)

    def _first_frame(self, items: Iterator[Arrival], source: LiveSource) -> av.VideoFrame:
        """The first decoded frame (its size is the stream's: a short probe may not know it).

        It and the audio before it are skipped (counted at join). Raises InputError when the
        input ends or stalls before any frame."""
        for _, item in items:
            if isinstance(item, av.VideoFrame):
                self.stats.skipped_at_join += 1
                return item
        raise InputError(f"no video frame arrived from {self.cfg.input} ({source.ended or 'stopped'})")

    def _run_threads(self, items: Iterator[Arrival], sink: LiveSink, height: int, width: int) -> None:
        """Start the reader (it skips what arrives while the models warm up), warm up, go live."""
        bodies = (lambda: self._read(items), self._infer, lambda: self._encode(sink))
        threads = [
            threading.Thread(target=self._guard, args=(body,), name=f"vsr-live-{name}", daemon=True)
            for body, name in zip(bodies, ("read", "infer", "encode"), strict=True)
        ]
        threads[0].start()
        warm_up_tiers(self.backends, self.controller, height, width)
        self.stats.started = time.perf_counter()
        self.live.set()
        for t in threads[1:]:
            t.start()
        self._watch(threads)

    def _watch(self, threads: list[threading.Thread]) -> None:
        """Draw the status line until the encoder ends; after ``stop``, give the reader 1.5 s."""
        next_status = time.perf_counter() + self.status_every_s
        stop_seen: float | None = None
        try:
            while threads[-1].is_alive():
                threads[-1].join(timeout=0.1)
                now = time.perf_counter()
                if self.on_status is not None and now >= next_status:
                    self.on_status(self.stats.status_line(self.q_in.frames, self.q_out.qsize()))
                    next_status = now + self.status_every_s
                if self.stop.is_set() and stop_seen is None:
                    stop_seen = now
                if stop_seen is not None and now - stop_seen > 1.5 and threads[0].is_alive():
                    self.q_in.close()  # the reader is blocked in a read: finish without it
        except KeyboardInterrupt:
            log.warning("aborting: closing the output now")
            self.abort.set()
            self.q_in.close()
        threads[-1].join(timeout=5.0)
        threads[1].join(timeout=1.0)

    def _guard(self, body: Callable[[], None]) -> None:
        try:
            body()
        except ReceiverGone as exc:
            self.stats.ended = str(exc)
            self.stop.set()
            self.abort.set()
        except BaseException as exc:  # carried to the caller's thread
            self.errors.append(exc)
            self.abort.set()
            self.stop.set()
        finally:
            if threading.current_thread().name.endswith("read"):
                self.q_in.close()

    def _finish(self, source: LiveSource) -> LiveStats:
        self.stats.seconds = time.perf_counter() - self.stats.started
        self.stats.queue_dropped = self.q_in.dropped
        self.stats.reconnects = source.reconnects
        self.stats.skipped_at_join += source.skipped_at_join
        self.stats.ended = self.stats.ended or source.ended or "stopped"
        self.stats.extra["tiers"] = [b.name for b in self.backends]
        if self.errors:
            raise self.errors[0]
        return self.stats

    def _read(self, items: Iterator[Arrival]) -> None:
        """Frames (as LiveFrames, RGB, pts in the sink's time base) and audio packets onto q_in."""
        for arrival, item in items:
            if self.abort.is_set():
                return
            if not self.live.is_set():  # still warming up: join the stream once ready
                self.stats.skipped_at_join += isinstance(item, av.VideoFrame)
                continue
            if isinstance(item, av.VideoFrame):
                self.q_in.put(self._to_live(arrival, item))
                self.stats.frames_in += 1
                self.stats.rate_in.tick(arrival)
                self.controller.observe_arrival(arrival)
                self.stats.stages["decode"].add(time.perf_counter() - arrival)  # decode + RGB
            else:
                self.q_in.put(item)

    def _to_live(self, arrival: float, frame: av.VideoFrame) -> LiveFrame:
        image = frame.to_ndarray(format="rgb24")
        if (frame.width, frame.height) != self.size:  # a reconnect brought another size
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        pts = frame.pts
        if frame.time_base != self.time_base:
            pts = round(Fraction(pts) * frame.time_base / self.time_base)
        return LiveFrame(arrival, pts, image)

    def _infer(self) -> None:
        """Per frame: ask the controller for a tier (or a drop), upscale, pass on in order."""
        while not self.abort.is_set():
            item = self.q_in.get()
            if item is None:
                continue
            if item is CLOSED:
                break
            if isinstance(item, LiveFrame) and not self._upscale(item):
                continue
            self._put(item)
        self._put(CLOSED)

    def _upscale(self, job: LiveFrame) -> bool:
        """Upscale ``job`` in place with the tier the controller picks; False when it is dropped."""
        tier = self.controller.choose(time.perf_counter() - job.arrival, self.q_in.frames)
        if tier == DROP:
            return False
        t0 = time.perf_counter()
        job.image = self.backends[tier].infer(job.image[None])[0]
        took = time.perf_counter() - t0
        self.controller.observe_infer(tier, took)
        self.stats.stages["infer"].add(took)
        job.tier = tier
        return True

    def _put(self, item: object) -> None:
        while not self.abort.is_set():
            try:
                self.q_out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _encode(self, sink: LiveSink) -> None:
        """Encode frames and mux audio until CLOSED; records added latency per frame."""
        while not self.abort.is_set():
            try:
                item = self.q_out.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is CLOSED:
                return
            if isinstance(item, LiveFrame):
                self._write(sink, item)
            else:
                sink.mux(item)
                self.stats.audio_packets += 1

    def _write(self, sink: LiveSink, job: LiveFrame) -> None:
        t0 = time.perf_counter()
        if not sink.write(job.image, job.pts):
            self.stats.skipped_pts += 1
            return
        now = time.perf_counter()
        self.controller.observe_encode(now - t0)
        self.stats.stages["encode"].add(now - t0)
        self.stats.latency.add(now - job.arrival)
        self.stats.frames_out += 1
        self.stats.rate_out.tick(now)
