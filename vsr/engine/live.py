"""The live policy's run: the input sets the pace, the added latency stays within a budget.

The read thread never waits: q_in is a :class:`~vsr.engine.queues.FrameQueue` that drops the
oldest frame when too many wait. Per frame the :class:`~vsr.engine.budget.BudgetController` picks
the best ladder rung whose predicted finish keeps the frame's added latency (arrival -> written)
within the budget, or drops the frame when even the floor cannot catch up. Pass-through packets
(audio) are never dropped.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING

from ..errors import InputError
from .budget import DROP, BudgetController
from .frame import END, Frame
from .live_stats import LiveStats
from .policy import Live
from .ports import Sink, Source
from .queues import CLOSED, FrameQueue
from .run import EngineRun, StatusFn

if TYPE_CHECKING:  # pragma: no cover
    from ..ladder import Ladder

__all__ = ["LiveRun", "NoVideoFrame"]


class NoVideoFrame(InputError):
    """The live input ended or stalled before its first video frame."""


class LiveRun(EngineRun):
    """One live run. ``stats`` is a :class:`LiveStats` over the run's budget controller; its
    ``ended`` says why the run ended (the caller may refine it from the source)."""

    def __init__(
        self,
        source: Source,
        ladder: Ladder,
        sink: Sink,
        policy: Live,
        stop: threading.Event,
        on_status: StatusFn | None,
        status_every_s: float,
    ) -> None:
        super().__init__(source, ladder, sink, stop, on_status, status_every_s)
        self.policy = policy
        self.controller = BudgetController(ladder.names, policy.budget_ms / 1000.0)
        self.stats = LiveStats(self.controller)
        self.q_in = FrameQueue(max_frames=policy.queue_frames)
        self.q_out = queue.Queue(maxsize=4)

    def _no_frame(self, lead: list[object]) -> LiveStats:
        raise NoVideoFrame("no video frame arrived from the input")

    def _warm_up(self, height: int, width: int) -> None:
        self.ladder.warm_up(height, width, self.controller.observe_infer)

    def _grace_s(self) -> float:
        return self.policy.reader_grace_s

    def _feed(self, item: object, seconds: float = 0.0) -> None:
        if isinstance(item, Frame):
            self.q_in.put(item)
            self.stats.frames_in += 1
            self.stats.rate_in.tick(item.arrival)
            self.controller.observe_arrival(item.arrival)
            self.stats.stages["decode"].add(time.perf_counter() - item.arrival)
        else:
            self.q_in.put(item)

    def _end_input(self) -> None:
        self.q_in.close()

    def _close_input(self) -> None:
        self.q_in.close()

    def _infer(self) -> None:
        """Per frame: ask the controller for a rung (or a drop), upscale, pass on in order."""
        while not self.abort.is_set():
            item = self.q_in.get()
            if item is None:
                continue
            if item is CLOSED:
                break
            if isinstance(item, Frame) and not self._upscale(item):
                continue
            self._put_out(item)
        self._put_out(END)

    def _upscale(self, frame: Frame) -> bool:
        """Upscale ``frame`` in place with the rung the controller picks; False when dropped."""
        tier = self.controller.choose(time.perf_counter() - frame.arrival, self.q_in.frames)
        if tier == DROP:
            return False
        t0 = time.perf_counter()
        frame.low = frame.image
        frame.image = self.ladder.infer(tier, frame.image[None])[0]
        took = time.perf_counter() - t0
        self.controller.observe_infer(tier, took)
        self.stats.stages["infer"].add(took)
        frame.tier = tier
        return True

    def _deliver(self, item: object) -> None:
        if not isinstance(item, Frame):
            self.sink.mux(item)
            self.stats.audio_packets += 1
            return
        t0 = time.perf_counter()
        if not self.sink.write(item):
            self.stats.skipped_pts += 1
            return
        now = time.perf_counter()
        self.controller.observe_encode(now - t0)
        self.stats.stages["encode"].add(now - t0)
        self.stats.latency.add(now - item.arrival)
        self.stats.frames_out += 1
        self.stats.rate_out.tick(now)

    def _status_line(self) -> str:
        return self.stats.status_line(self.q_in.frames, self.q_out.qsize())

    def _finish(self) -> None:
        self.stats.started = self.started
        self.stats.queue_dropped = self.q_in.dropped + self._left_waiting()
        self.stats.ended = self.stats.ended or ("stopped" if self.stop.is_set() else "the input ended")
        self.stats.extra.update(self.ladder.report())

    def _left_waiting(self) -> int:
        """Frames still queued when the run ended (never delivered): counted as dropped."""
        left = 0
        while (item := self.q_in.get(timeout=0)) not in (CLOSED, None):
            left += isinstance(item, Frame)
        while not self.q_out.empty():
            left += isinstance(self.q_out.get_nowait(), Frame)
        return left
