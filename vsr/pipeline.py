"""The threaded decode -> infer -> encode pipeline.

Three threads joined by bounded queues (constant memory, backpressure)::

    reader --decode--> q_in --infer (batches of N)--> q_out --encode--> writer
      audio/subtitle packets travel the same queues, in order, and are muxed untouched

Every frame keeps its input pts (output pts = input pts), so variable frame rate stays exact. An
exception in any stage sets ``abort``: the other stages stop at their next queue operation, the
writer is finished (a playable file of the frames done) and the exception is raised in the caller's
thread. Setting ``stop`` (see :func:`stop_on_signals`) ends decoding early but drains the frames in
flight. This module never imports torch: backends take and return uint8 numpy frames.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from .backends import create_backend
from .backends.base import Backend
from .config import DecodeConfig, EncodeConfig, ModelConfig, PipelineConfig
from .models.catalogue import get_spec
from .stats import Progress, RunStats
from .video.reader import VideoReader
from .video.writer import VideoWriter

__all__ = ["END", "FrameJob", "StopFlag", "run_pipeline", "stop_on_signals", "upscale_file"]

log = logging.getLogger(__name__)


class _EndOfStream:
    """The type of :data:`END`, the one object that closes a queue."""

    def __repr__(self) -> str:
        return "END"


END = _EndOfStream()
"""Put on a queue after a stage's last item; the next stage passes it on and stops."""


class _Aborted(Exception):
    """Raised inside a stage when another stage failed; ends it quietly."""


@dataclass
class FrameJob:
    """One video frame on its way: ``image`` is (H, W, 3) uint8 RGB, owned by the job.

    ``pts`` / ``duration`` are in the input stream's time base and reach the encoder unchanged.
    """

    index: int
    pts: int | None
    duration: int
    image: np.ndarray


class StopFlag(threading.Event):
    """An event that also remembers which signal (if any) set it."""

    signum: int | None = None


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """SIGINT / SIGTERM set the yielded flag (finish the frames in flight); a second one aborts.

    Outside the main thread signals cannot be caught; the flag is then only set by the caller.
    """
    stop = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.signum = signum
        stop.set()
        log.warning(
            "%s received: finishing the frames in flight (again to abort)", signal.Signals(signum).name
        )

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, prev in old.items():
            signal.signal(sig, prev)


def run_pipeline(
    reader: VideoReader,
    backend: Backend,
    writer: VideoWriter,
    cfg: PipelineConfig,
    stop: threading.Event | None = None,
) -> RunStats:
    """Upscale every frame of an open ``reader`` into an open ``writer`` and finish the writer.

    Returns the run's statistics. Raises the first exception any stage raised (after finishing the
    writer, which then holds the frames done so far). ``stop`` ends the run early but cleanly.
    """
    return _Run(reader, backend, writer, cfg, stop or threading.Event()).run()


def upscale_file(
    dec: DecodeConfig,
    enc: EncodeConfig,
    model: ModelConfig,
    cfg: PipelineConfig | None = None,
    *,
    stop: threading.Event | None = None,
    backend: Backend | None = None,
) -> RunStats:
    """Upscale the video ``dec`` names into ``enc``: open, validate, build the backend, run, close.

    Everything is checked (input, output path, codec, container) before the backend is built or
    a byte is written. ``backend`` replaces the one ``model`` describes (and is not closed here).
    Raises :class:`~vsr.errors.VsrError` subclasses for what a user can fix.
    """
    spec = get_spec(model.model)
    with VideoReader(dec) as reader:
        writer = VideoWriter(
            enc,
            reader.info,
            scale=spec.scale,
            passthrough=reader.passthrough,
            input_path=dec.path,
            tags=reader.tags,
        )
        own = backend is None
        if backend is None:
            backend = create_backend(
                model.backend,
                spec,
                device=model.device,
                tile=model.tile,
                threads=model.threads,
                compile=model.compile,
            )
        try:
            with writer:
                stats = run_pipeline(reader, backend, writer, cfg or PipelineConfig(), stop)
        finally:
            if own:
                backend.close()
    stats.extra.update(model=spec.name, backend=backend.name, codec=writer.codec, output=enc.path)
    return stats


class _Run:
    """The state of one pipeline run: queues, events, stats, and the three stage bodies."""

    def __init__(
        self,
        reader: VideoReader,
        backend: Backend,
        writer: VideoWriter,
        cfg: PipelineConfig,
        stop: threading.Event,
    ) -> None:
        self.reader, self.backend, self.writer, self.cfg, self.stop = reader, backend, writer, cfg, stop
        self.q_in: queue.Queue = queue.Queue(maxsize=cfg.queue_frames + cfg.batch)
        self.q_out: queue.Queue = queue.Queue(maxsize=2)  # batches: upscaled frames are 16x larger
        self.abort = threading.Event()
        self.errors: list[BaseException] = []
        self.stats = RunStats()

    def run(self) -> RunStats:
        info = self.reader.info
        self.backend.prepare(info.height, info.width, self.cfg.batch)
        progress = Progress(info.frames, enabled=self.cfg.progress)
        start = time.perf_counter()
        threads = [
            threading.Thread(target=self._guard, args=(body,), name=f"vsr-{body.__name__[1:]}", daemon=True)
            for body in (self._decode, self._infer, self._encode)
        ]
        for t in threads:
            t.start()
        try:
            self._wait(threads, progress)
        finally:
            progress.close()
        self.writer.finish(failed=bool(self.errors))
        self.stats.seconds = time.perf_counter() - start
        self.stats.interrupted = self.stop.is_set() or (self.abort.is_set() and not self.errors)
        self.stats.truncated = self.reader.truncated
        if self.errors:
            raise self.errors[0]
        return self.stats

    def _wait(self, threads: list[threading.Thread], progress: Progress) -> None:
        """Wait for the stages, drawing progress; a KeyboardInterrupt here aborts them all."""
        try:
            while any(t.is_alive() for t in threads):
                threads[-1].join(timeout=0.1)
                progress.update(self.stats.frames_out)
            progress.update(self.stats.frames_out, force=True)
        except KeyboardInterrupt:
            log.warning("aborting: closing the output with the frames encoded so far")
            self.abort.set()
        threads[-1].join()  # the encoder must be idle before the writer is finished
        for t in threads[:-1]:
            t.join(timeout=5.0)

    def _guard(self, body: Callable[[], None]) -> None:
        try:
            body()
        except _Aborted:
            pass
        except BaseException as exc:  # carried to the caller's thread
            self.errors.append(exc)
            self.abort.set()

    def _put(self, q: queue.Queue, item: object) -> None:
        while True:
            if self.abort.is_set():
                raise _Aborted
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _get(self, q: queue.Queue) -> object:
        while True:
            if self.abort.is_set():
                raise _Aborted
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue

    def _decode(self) -> None:
        """Frames -> FrameJob (RGB) and packets, in file order, onto q_in."""
        sws, stage, index = VideoReformatter(), self.stats.stages["decode"], 0
        t0 = time.perf_counter()
        for item in self.reader.items(self.stop):
            if isinstance(item, av.VideoFrame):
                image = sws.reformat(item, format="rgb24").to_ndarray()
                item = FrameJob(index, item.pts, item.duration, image)
                index += 1
                self.stats.frames_in = index
                stage.add(time.perf_counter() - t0)
            self._put(self.q_in, item)
            t0 = time.perf_counter()
        self._put(self.q_in, END)

    def _infer(self) -> None:
        """Gather ``batch`` frames (and the packets between them), upscale, pass them on in order."""
        pending: list[object] = []
        frames = 0
        while True:
            item = self._get(self.q_in)
            if item is END:
                break
            pending.append(item)
            frames += isinstance(item, FrameJob)
            if frames >= self.cfg.batch:
                self._upscale(pending)
                pending, frames = [], 0
        if pending:
            self._upscale(pending)
        self._put(self.q_out, END)

    def _upscale(self, chunk: list[object]) -> None:
        jobs = [j for j in chunk if isinstance(j, FrameJob)]
        t0 = time.perf_counter()
        if not jobs:
            pass
        elif len({j.image.shape for j in jobs}) == 1:
            batch = jobs[0].image[None] if len(jobs) == 1 else np.stack([j.image for j in jobs])
            out = self.backend.infer(batch)
            for j, image in zip(jobs, out, strict=True):
                j.image = image
        else:  # the frame size changed inside this batch
            for j in jobs:
                j.image = self.backend.infer(j.image[None])[0]
        self.stats.stages["infer"].add(time.perf_counter() - t0, len(jobs))
        self._put(self.q_out, chunk)

    def _encode(self) -> None:
        """Encode frames and mux packets until END."""
        stage = self.stats.stages["encode"]
        while True:
            chunk = self._get(self.q_out)
            if chunk is END:
                return
            for item in chunk:
                if isinstance(item, FrameJob):
                    t0 = time.perf_counter()
                    self.writer.write(item.image, item.pts, item.duration)
                    stage.add(time.perf_counter() - t0)
                    self.stats.frames_out += 1
                else:
                    self.writer.mux(item)
