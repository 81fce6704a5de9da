"""A segment worker: the model loaded once per process, one segment upscaled per call.

:class:`SegmentWorker` is a plain class; :mod:`vsr.cluster.pool` makes it a Ray actor (this module
does not import Ray, so it stays importable and testable without it). Each call runs the same
engine a single-process job runs, over one segment::

    VideoReader(input) -> JobSource(reader, [span]) --engine (Lossless)--> SegmentSink -> scratch file
    -> the file's bytes, returned through Ray's object store (the driver writes them into the job)

The INPUT must be a path every worker can read (a shared filesystem, or the same file on every
machine); the output folder need not be shared: segment bytes travel back to the driver.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..build_ladder import build_ladder
from ..config import DecodeConfig, EncodeConfig, ModelConfig
from ..engine import Lossless, run
from ..engine.frame import Frame
from ..errors import VsrError
from ..jobs.plan import Span
from ..jobs.segments import JobSource, SegmentSink
from ..stats import RunStats
from ..video.ports import open_writer
from ..video.reader import VideoReader
from .identity import check_worker_model

if TYPE_CHECKING:  # pragma: no cover
    from ..ladder import Ladder

__all__ = ["SegmentResult", "SegmentTask", "SegmentWorker"]

SCRATCH_PREFIX = "vsr-worker-"


@dataclass(frozen=True)
class SegmentTask:
    """Upscale segment ``span`` of ``dec`` as job ``enc`` encodes it (``enc.path`` names the
    output: its extension and container; the segment itself is written to a scratch file)."""

    dec: DecodeConfig
    enc: EncodeConfig
    span: Span
    batch: int = 1
    queue_frames: int = 8


@dataclass(frozen=True)
class SegmentResult:
    """A finished segment: its file name in the job (None: no frame fell in it), frames, the
    file's bytes, the worker's seconds on it and its per-stage (frames, busy seconds).
    ``interrupted``: the worker was asked to stop; nothing of it is kept."""

    index: int
    file: str | None
    frames: int
    data: bytes
    seconds: float
    frames_in: int = 0
    truncated: bool = False
    interrupted: bool = False
    stages: dict[str, tuple[int, float]] = field(default_factory=dict)


class _OneSegment:
    """The :class:`~vsr.jobs.segments.SegmentLog` of a worker: a scratch folder, one record."""

    def __init__(self, work_dir: Path) -> None:
        self._work_dir = work_dir
        self.done: tuple[int, str | None, int] | None = None

    @property
    def work_dir(self) -> Path:
        return self._work_dir

    def mark_done(self, index: int, file: str | None, frames: int) -> None:
        self.done = (index, file, frames)


class _CountingSink(SegmentSink):
    """A :class:`SegmentSink` that counts frames as they are written (the driver's progress)."""

    frames = 0

    def write(self, frame: Frame) -> bool:
        self.frames += 1
        return super().write(frame)


class _Peeked:
    """A source whose items up to its first frame were read already (``lead``): the engine
    needs a frame, and a segment may hold none."""

    def __init__(self, source: JobSource, stop: threading.Event) -> None:
        self._items = iter(source.items(stop))
        self.lead: list[object] = []
        for item in self._items:
            self.lead.append(item)
            if isinstance(item, Frame):
                break
        self.has_frame = bool(self.lead) and isinstance(self.lead[-1], Frame)

    def items(self, stop: threading.Event) -> Iterator[object]:
        yield from self.lead
        yield from self._items


class SegmentWorker:
    """Holds one ladder of ``model`` for its lifetime and upscales one segment per :meth:`run`.

    ``sha256``: the weights the driver resolved ``model`` to (see :mod:`vsr.cluster.identity`).
    A model that cannot be built, or whose weights here are not those, is raised by :meth:`info`
    (the pool's first call), so the driver reports it as the model's error, not as a dead worker.
    """

    def __init__(self, model: ModelConfig, sha256: str | None = None) -> None:
        self.error: VsrError | None = None
        self.ladder: Ladder | None = None
        try:
            check_worker_model(model, sha256)  # the driver's weights, not this node's namesake
            self.ladder = build_ladder(model, fallbacks=False)
        except VsrError as exc:
            self.error = exc
        _remove_stale_scratch()
        self.scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
        self._sink: _CountingSink | None = None
        self._stop = threading.Event()
        self._one_at_a_time = threading.Lock()  # run() may be called while one still runs

    def info(self) -> dict[str, Any]:
        """Who this worker is: pid, host, Ray node id (12 hex digits), model, backend, scale."""
        if self.error is not None or self.ladder is None:
            raise self.error or VsrError("the worker has no model")
        top = self.ladder.top
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "node": _node_id(),
            "model": top.info.name,
            "backend": top.name,
            "scale": self.ladder.scale,
        }

    def run(self, task: SegmentTask) -> SegmentResult:
        """Upscale ``task``'s segment and return its file's bytes (see the module doc)."""
        with self._one_at_a_time:
            return self._run(task)

    def _run(self, task: SegmentTask) -> SegmentResult:
        assert self.ladder is not None, "info() reports a worker without a model"
        self._stop = stop = threading.Event()
        started = time.perf_counter()
        record = _OneSegment(self.scratch)
        with VideoReader(task.dec) as reader:
            scale = self.ladder.scale
            sink = _CountingSink(
                record, lambda e: open_writer(e, reader, scale, whole=False), task.enc, task.span.index
            )
            source = _Peeked(JobSource(reader, [task.span]), stop)
            self._sink = sink
            stats = RunStats()
            if source.has_frame:
                stats = run(source, self.ladder, sink, Lossless(task.batch, task.queue_frames), stop=stop)
            elif not stop.is_set():  # a segment no frame falls in: done, without a file
                for item in source.lead:
                    sink.mux(item)
        assert isinstance(stats, RunStats)
        self._sink = None
        return self._result(task, record, stats, reader.truncated, time.perf_counter() - started)

    def _result(
        self, task: SegmentTask, record: _OneSegment, stats: RunStats, truncated: bool, seconds: float
    ) -> SegmentResult:
        if record.done is None:  # stopped before the segment's end: nothing is kept
            return SegmentResult(task.span.index, None, 0, b"", seconds, interrupted=True)
        index, name, frames = record.done
        data = b""
        if name is not None:
            path = self.scratch / name
            data = path.read_bytes()
            path.unlink()
        stages = {n: (s.frames, s.busy_s) for n, s in stats.stages.items()}
        return SegmentResult(index, name, frames, data, seconds, stats.frames_in, truncated, False, stages)

    def progress(self) -> int:
        """Frames of the current segment written so far (0 between segments)."""
        sink = self._sink
        return sink.frames if sink is not None else 0

    def stop(self) -> None:
        """Finish the frames in flight and end the current segment unfinished (it is not kept)."""
        self._stop.set()

    def close(self) -> None:
        """Release the model and the scratch folder. Idempotent."""
        if self.ladder is not None:
            self.ladder.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _node_id() -> str:
    with contextlib.suppress(Exception):  # outside Ray (a test calling the class directly)
        import ray

        return str(ray.get_runtime_context().get_node_id())[:12]
    return "local"


def _remove_stale_scratch() -> None:
    """Scratch folders of workers that were killed (their process is gone) on this machine."""
    for path in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        pid = path.name[len(SCRATCH_PREFIX) :].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
