"""``EnhanceTrack``: an aiortc video track that upscales another track's frames, live.

Usable from any aiortc application::

    from vsr.build_ladder import build_ladder
    from vsr.config import ModelConfig
    from vsr.webrtc import EnhanceTrack

    @pc.on("track")
    def on_track(track):
        if track.kind == "video":
            pc.addTrack(EnhanceTrack(track, build_ladder(ModelConfig("fast-tiny-stream"))))

A composition like every command: the frames the peer pushes (:class:`PeerFrames`) + the live
policy with a one-frame queue (a stale frame is dropped, counted, so the freshest is upscaled) +
a sink that hands yuv420p frames to :meth:`EnhanceTrack.recv` (:class:`TrackSink`). The engine
runs in a thread of its own, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..backends.base import Backend
from ..backends.bicubic import BicubicBackend
from ..engine import END, Frame, Live
from ..engine.live import LiveRun
from ..ladder import Ladder, Rung
from ..video.convert import RgbToYuv
from ..video.meta import ColourTags

__all__ = ["EnhanceTrack", "PeerFrames", "TrackSink", "ladder_of"]

log = logging.getLogger(__name__)


def ladder_of(upscaler: Backend | Ladder | Sequence[Rung]) -> Ladder:
    """A ladder as given (or from (name, backend) rungs), or one backend plus a bicubic floor.
    The caller closes the backends."""
    if isinstance(upscaler, Ladder):
        return upscaler
    if isinstance(upscaler, Sequence):
        return Ladder(upscaler, owned=False)
    rungs = [(upscaler.info.name, upscaler)]
    if upscaler.info.name != "bicubic":
        rungs.append(("bicubic", BicubicBackend(upscaler.info.scale)))
    return Ladder(rungs, owned=False)


class PeerFrames:
    """The engine's source: frames a WebRTC peer pushes (:meth:`push` from the event loop)."""

    def __init__(self) -> None:
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.time_base: Fraction | None = None

    def push(self, arrival: float, frame: av.VideoFrame | object) -> None:
        """One received frame (or :data:`~vsr.engine.END` when the peer's track ended)."""
        self._inbox.put((arrival, frame))

    def items(self, stop: threading.Event) -> Iterator[Frame | object]:
        while not stop.is_set():
            try:
                arrival, frame = self._inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if frame is END:
                return
            self.time_base = self.time_base or frame.time_base
            yield Frame(frame.to_ndarray(format="rgb24"), frame.pts, arrival=arrival)


class TrackSink:
    """The engine's sink: yuv420p frames to the track's event loop, keeping only the newest
    ``keep`` unread ones (older are dropped, counted in ``dropped``)."""

    def __init__(self, outbox: asyncio.Queue, peer: PeerFrames, keep: int = 2) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None  # set when the track starts
        self.outbox, self.peer, self.keep = outbox, peer, keep
        self.dropped = 0
        self._convert: RgbToYuv | None = None

    def open(self, width: int, height: int) -> None:
        self._convert = RgbToYuv(width, height, "yuv420p", ColourTags())
        log.info("enhancing to %dx%d", width, height)

    def write(self, frame: Frame) -> bool:
        assert self._convert is not None
        out = self._convert(frame.image)
        out.pts, out.time_base = frame.pts, self.peer.time_base
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._hand_over, out)
        return True

    def _hand_over(self, item: object) -> None:  # on the event loop
        while self.outbox.qsize() >= self.keep and item is not END:
            self.outbox.get_nowait()
            self.dropped += 1
        self.outbox.put_nowait(item)

    def mux(self, packet: object) -> None:
        """A peer's video track brings no packets to pass through."""

    def close(self, failed: bool) -> None:
        """The end of the track is handed over by :class:`EnhanceTrack` once the run returns."""


class EnhanceTrack(MediaStreamTrack):
    """A video track whose frames are ``source``'s, upscaled (yuv420p out, pts kept).

    ``upscaler``: a :class:`~vsr.ladder.Ladder` (shared between tracks: its lock serialises
    inference) or one backend (a bicubic floor is added). The track does not close it.
    ``stats`` is a :class:`~vsr.engine.LiveStats` (``dropped_queue_full`` = stale frames dropped).
    """

    kind = "video"

    def __init__(
        self,
        source: MediaStreamTrack,
        upscaler: Backend | Ladder | Sequence[Rung],
        *,
        latency_budget_ms: float = 150.0,
    ) -> None:
        super().__init__()
        self.source = source
        self.ladder = ladder_of(upscaler)
        self._peer = PeerFrames()
        self._outbox: asyncio.Queue = asyncio.Queue()
        self._stop = threading.Event()
        self._sink = TrackSink(self._outbox, self._peer)
        policy = Live(latency_budget_ms, queue_frames=1)
        self._run = LiveRun(self._peer, self.ladder, self._sink, policy, self._stop, None, 1.0)
        self.stats = self._run.stats
        self._pump_task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._sink.loop = loop
        self._pump_task = asyncio.ensure_future(self._pump())
        self._thread = threading.Thread(target=self._engine, args=(loop,), name="vsr-webrtc", daemon=True)
        self._thread.start()

    def _engine(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._run.run()
        except Exception as exc:  # the track ends; the peer connection stays up
            log.warning("enhancing stopped: %s", exc)
        finally:
            self.stats.queue_dropped += self._sink.dropped
            if not loop.is_closed():  # a server shutting down closes its loop before this thread ends
                with contextlib.suppress(RuntimeError):  # closed between the check and the call
                    loop.call_soon_threadsafe(self._sink._hand_over, END)

    async def _pump(self) -> None:
        """Pull source frames as they come and push them to the engine."""
        try:
            while True:
                frame = await self.source.recv()
                self._peer.push(time.perf_counter(), frame)
        except MediaStreamError:
            self._peer.push(time.perf_counter(), END)

    async def recv(self) -> av.VideoFrame:
        """The next enhanced frame (the freshest source frame, upscaled), with the source's pts."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._thread is None:
            self._start()
        item = await self._outbox.get()
        if item is END:
            self.stop()
            raise MediaStreamError
        return item

    def stop(self) -> None:
        """End this track (not the source): stops the pump and the engine thread."""
        self._stop.set()
        if self._pump_task is not None:
            self._pump_task.cancel()
        self._peer.push(time.perf_counter(), END)
        super().stop()
