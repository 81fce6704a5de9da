"""The lossless policy's run: every frame, in order, through the ladder's top rung, in batches.

The read thread waits when q_in is full (backpressure: constant memory); upscaled frames, 16x
larger, wait at most two batches in q_out. Nothing is dropped.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from ..stats import Progress, RunStats
from .frame import END, Frame
from .policy import Lossless
from .ports import Sink, Source
from .run import Aborted, EngineRun, StatusFn

if TYPE_CHECKING:  # pragma: no cover
    from ..ladder import Ladder

__all__ = ["LosslessRun"]


class LosslessRun(EngineRun):
    """One lossless run; ``expected_frames`` (0: unknown) feeds the progress line's ETA."""

    def __init__(
        self,
        source: Source,
        ladder: Ladder,
        sink: Sink,
        policy: Lossless,
        stop: threading.Event,
        on_status: StatusFn | None,
        status_every_s: float,
        expected_frames: int = 0,
    ) -> None:
        super().__init__(source, ladder, sink, stop, on_status, status_every_s)
        self.policy = policy
        self.stats = RunStats()
        self.q_in: queue.Queue = queue.Queue(maxsize=policy.queue_frames + policy.batch)
        self.q_out = queue.Queue(maxsize=2 * policy.batch)
        self._progress = Progress(expected_frames, enabled=False)
        self._index = 0

    def _no_frame(self, lead: list[object]) -> RunStats:
        raise ValueError("the source yielded no video frame")  # sources raise InputError first

    def _warm_up(self, height: int, width: int) -> None:
        self.ladder.prepare(height, width, self.policy.batch)

    def _grace_s(self) -> float:
        return math.inf  # a file source checks ``stop`` itself; never cut it off

    def _put_in(self, item: object) -> None:
        while True:
            if self.abort.is_set():
                raise Aborted
            try:
                self.q_in.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _feed(self, item: object, seconds: float = 0.0) -> None:
        if isinstance(item, Frame):
            item.index = self._index
            self._index += 1
            self.stats.frames_in = self._index
            self.stats.stages["decode"].add(seconds)
        self._put_in(item)

    def _end_input(self) -> None:
        if not self.abort.is_set():
            self._put_in(END)

    def _get_in(self) -> object:
        while True:
            if self.abort.is_set():
                raise Aborted
            try:
                return self.q_in.get(timeout=0.1)
            except queue.Empty:
                continue

    def _infer(self) -> None:
        """Gather ``batch`` frames (and the packets between them), upscale, pass on in order."""
        pending: list[object] = []
        frames = 0
        while (item := self._get_in()) is not END:
            pending.append(item)
            frames += isinstance(item, Frame)
            if frames >= self.policy.batch:
                self._upscale(pending)
                pending, frames = [], 0
        self._upscale(pending)
        self._put_out(END)

    def _upscale(self, chunk: list[object]) -> None:
        jobs = [j for j in chunk if isinstance(j, Frame)]
        t0 = time.perf_counter()
        if len({j.image.shape for j in jobs}) == 1:
            batch = jobs[0].image[None] if len(jobs) == 1 else np.stack([j.image for j in jobs])
            for j, image in zip(jobs, self.ladder.infer(0, batch), strict=True):
                j.image = image
        else:  # the frame size changed inside this batch
            for j in jobs:
                j.image = self.ladder.infer(0, j.image[None])[0]
        self.stats.stages["infer"].add(time.perf_counter() - t0, len(jobs))
        for item in chunk:
            self._put_out(item)

    def _deliver(self, item: object) -> None:
        if isinstance(item, Frame):
            t0 = time.perf_counter()
            self.sink.write(item)
            self.stats.stages["encode"].add(time.perf_counter() - t0)
            self.stats.frames_out += 1
        else:
            self.sink.mux(item)

    def _status_line(self) -> str:
        return self._progress.line(self.stats.frames_out, time.perf_counter() - self.started)

    def _finish(self) -> None:
        self.stats.interrupted = self.stop.is_set() or (self.aborted and not self.errors)
