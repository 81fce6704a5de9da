"""Segments to workers: a bounded submission loop over the pool, with retries and progress.

One segment per worker at a time, in segment order; each result is handed to ``on_result`` (the
driver writes it into the job and marks it done) as it arrives, in any order. A worker that dies
(killed, out of memory, its node lost) or whose result is lost is replaced, and its segment goes
back to the front of the queue for the next free worker: nothing is lost, and nothing is doubled,
because a segment counts only when its result arrives whole. An error the segment itself raised
(an unreadable input, a full disk) ends the job with that error. ``stop`` asks the busy workers
to end their segments, keeps those that still finish within a grace period, and ends the run.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ClusterError
from ..stats import Progress
from .pool import WorkerPool, unwrap
from .worker import SegmentResult, SegmentTask

__all__ = ["Dispatcher", "Tally"]

log = logging.getLogger(__name__)

POLL_S = 0.25
"""How often the loop wakes for progress and ``stop`` while segments run."""

GRACE_S = 10.0
"""After ``stop``, how long segments in flight may take to finish (and be kept)."""


@dataclass
class WorkerFigures:
    """One worker slot's work so far: finished segments, their frames and seconds, the frames of
    the segment it is on now, how often its segment was lost with it."""

    segments: int = 0
    frames: int = 0
    busy_s: float = 0.0
    live: int = 0
    lost: int = 0


class Tally:
    """Progress over every worker: frames, fps, ETA, segments, each worker's rate."""

    def __init__(self, size: int, total_frames: int, frames_before: int, segments: int, done: int):
        self.workers = [WorkerFigures() for _ in range(size)]
        self.total, self.before = total_frames, frames_before
        self.segments, self.done = segments, done
        self.started = time.perf_counter()
        self._bar = Progress(total_frames, enabled=False)

    def add(self, slot: int, result: SegmentResult) -> None:
        w = self.workers[slot]
        w.segments += 1
        w.frames += result.frames
        w.busy_s += result.seconds
        w.live = 0
        self.done += 1

    @property
    def frames(self) -> int:
        """Frames upscaled in this run (finished segments and those in flight)."""
        return sum(w.frames + w.live for w in self.workers)

    def line(self) -> str:
        """``[####   ] 120/300 frames  24.0 fps  ETA 8s  seg 3/10  workers 12.1 11.9 fps``."""
        elapsed = max(time.perf_counter() - self.started, 1e-6)
        done = self.before + self.frames
        # Progress.line's fps is done / elapsed; the fps (and ETA) of this run count its frames only
        bar = self._bar.line(done, elapsed * done / self.frames if self.frames else elapsed)
        rates = " ".join(f"{(w.frames + w.live) / elapsed:.1f}" for w in self.workers)
        return f"{bar} seg {self.done}/{self.segments}  workers {rates} fps "

    def figures(self, pool: WorkerPool) -> list[dict[str, Any]]:
        """Per-worker figures for ``--json-stats`` (``extra["workers"]``)."""
        pool.pids()  # a replacement's pid, once it has started
        out = []
        for i, (w, slot) in enumerate(zip(self.workers, pool.slots, strict=True)):
            out.append(
                {
                    "worker": i,
                    "pid": slot.info.get("pid"),
                    "host": slot.info.get("host"),
                    "node": slot.info.get("node"),
                    "segments": w.segments,
                    "frames": w.frames,
                    "busy_s": round(w.busy_s, 3),
                    "fps": round(w.frames / w.busy_s, 3) if w.busy_s > 0 else 0.0,
                    "lost_segments": w.lost,
                    "replaced": slot.replaced,
                }
            )
        return out


class Dispatcher:
    """Runs segment tasks on ``pool``'s workers (see the module doc)."""

    def __init__(
        self,
        pool: WorkerPool,
        tally: Tally,
        on_result: Callable[[SegmentResult], None],
        *,
        retries: int,
        stop: threading.Event,
        on_status: Callable[[str], None] | None = None,
    ) -> None:
        self.pool, self.tally, self.on_result = pool, tally, on_result
        self.retries, self.stop, self.on_status = retries, stop, on_status
        self.lost: collections.Counter[int] = collections.Counter()
        self.running: dict[Any, tuple[int, SegmentTask]] = {}
        self.lost_errors = _lost_errors(pool.ray)

    def run(self, tasks: list[SegmentTask]) -> bool:
        """Run every task to its result; returns True when ``stop`` ended the run first. On an
        error the segments in flight are stopped (not kept) before it is raised."""
        try:
            return self._run(tasks)
        finally:
            if self.running:
                self._drain(keep=False)

    def _run(self, tasks: list[SegmentTask]) -> bool:
        queue = collections.deque(tasks)
        free = collections.deque(range(self.pool.size))
        last_status = 0.0
        while queue or self.running:
            if self.stop.is_set():
                self._drain()
                return True
            while queue and free:
                slot, task = free.popleft(), queue.popleft()
                self.running[self.pool.submit(slot, task)] = (slot, task)
            ready, _ = self.pool.ray.wait(list(self.running), num_returns=1, timeout=POLL_S)
            for ref in ready:
                slot, task = self.running.pop(ref)
                if not self._collect(ref, slot, task):
                    queue.appendleft(task)
                free.append(slot)
            if self.on_status is not None and time.perf_counter() - last_status >= 2 * POLL_S:
                last_status = time.perf_counter()
                self._status()
        return False

    def _collect(self, ref: Any, slot: int, task: SegmentTask) -> bool:
        """Hand a finished segment on (True), or replace its dead worker (False: run it again)."""
        try:
            result: SegmentResult = self.pool.ray.get(ref)
        except self.lost_errors as exc:
            self._lost(slot, task, exc)
            return False
        except self.pool.ray.exceptions.RayTaskError as exc:
            raise unwrap(exc) from None
        self.tally.add(slot, result)
        self.on_result(result)
        return True

    def _lost(self, slot: int, task: SegmentTask, exc: BaseException) -> None:
        index = task.span.index
        self.lost[index] += 1
        self.tally.workers[slot].lost += 1
        self.tally.workers[slot].live = 0
        pid = self.pool.slots[slot].info.get("pid")
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if self.lost[index] > self.retries:
            raise ClusterError(
                f"segment {index} was lost with its worker {self.lost[index]} times (last: {reason}); "
                "the segments done are kept: run the same command again to resume"
            )
        log.warning(
            "worker %d (pid %s) died during segment %d; running it again on another worker", slot, pid, index
        )
        log.debug("worker %d lost: %s", slot, reason)
        self.pool.replace(slot)

    def _status(self) -> None:
        busy = sorted({slot for slot, _ in self.running.values()})
        for slot, frames in self.pool.progress(busy).items():
            self.tally.workers[slot].live = frames
        assert self.on_status is not None
        self.on_status(self.tally.line())

    def _drain(self, keep: bool = True) -> None:
        """``stop``: the busy workers end their segments; those that finish in time are kept
        (``keep``), and the workers are free for what comes next."""
        self.pool.stop([slot for slot, _ in self.running.values()])
        deadline = time.perf_counter() + GRACE_S
        while self.running and time.perf_counter() < deadline:
            ready, _ = self.pool.ray.wait(list(self.running), num_returns=1, timeout=POLL_S)
            for ref in ready:
                slot, _task = self.running.pop(ref)
                try:
                    result: SegmentResult = self.pool.ray.get(ref)
                except Exception:  # stopping: a lost or failed segment is simply not kept
                    continue
                if keep and not result.interrupted:
                    self.tally.add(slot, result)
                    self.on_result(result)
        self.running.clear()


def _lost_errors(ray: Any) -> tuple[type[BaseException], ...]:
    """Ray's errors that mean the worker or its result is gone (not the segment's own error)."""
    names = ("RayActorError", "ObjectLostError", "WorkerCrashedError", "NodeDiedError", "OutOfMemoryError")
    return tuple(getattr(ray.exceptions, n) for n in names if hasattr(ray.exceptions, n))
