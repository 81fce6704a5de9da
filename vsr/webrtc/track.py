"""``EnhanceTrack``: an aiortc video track that upscales another track's frames, live.

Usable from any aiortc application::

    from vsr.backends import create_backend
    from vsr.webrtc import EnhanceTrack

    @pc.on("track")
    def on_track(track):
        if track.kind == "video":
            pc.addTrack(EnhanceTrack(track, create_backend("auto", "fast")))

Latency stays bounded: a pump task pulls the source track's frames as fast as they come and keeps
only the newest (older ones are *stale* and dropped, counted), so :meth:`recv` always upscales the
freshest frame. Per frame the ``vsr stream`` budget controller picks the best tier that fits the
latency budget (a bicubic floor is always there). Upscaling runs in a worker thread, never on the
event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..backends.base import Backend
from ..backends.bicubic import BicubicBackend
from ..stream import BudgetController, LiveStats
from ..video.convert import RgbToYuv
from ..video.meta import ColourTags

__all__ = ["EnhanceTrack", "as_tiers"]

log = logging.getLogger(__name__)


def as_tiers(upscaler: Backend | Sequence[tuple[str, Backend]]) -> list[tuple[str, Backend]]:
    """(name, backend) tiers, best first: a list as given, or one backend plus a bicubic floor."""
    if isinstance(upscaler, Sequence):
        if not upscaler:
            raise ValueError("EnhanceTrack needs at least one upscaler")
        return list(upscaler)
    tiers = [(upscaler.info.name, upscaler)]
    if upscaler.info.name != "bicubic":
        tiers.append(("bicubic", BicubicBackend(upscaler.info.scale)))
    return tiers


class EnhanceTrack(MediaStreamTrack):
    """A video track whose frames are ``source``'s, upscaled (RGB in, yuv420p out, pts kept).

    ``upscaler``: a backend (``infer((N,H,W,3) uint8) -> (N,sH,sW,3) uint8``) or (name, backend)
    tiers best first; the track does not close them. ``executor``: where upscaling runs (default:
    a thread of its own; share one between tracks that share backends). ``stats`` is a
    :class:`~vsr.stream.LiveStats` (``queue_dropped`` = stale frames dropped).
    """

    kind = "video"

    def __init__(
        self,
        source: MediaStreamTrack,
        upscaler: Backend | Sequence[tuple[str, Backend]],
        *,
        latency_budget_ms: float = 150.0,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.tiers = as_tiers(upscaler)
        self.controller = BudgetController([n for n, _ in self.tiers], latency_budget_ms / 1000.0)
        self.stats = LiveStats(self.controller)
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="vsr-webrtc")
        self._latest: tuple[float, av.VideoFrame] | None = None
        self._fresh = asyncio.Event()
        self._pump_task: asyncio.Task | None = None
        self._source_ended = False
        self._size: tuple[int, int] | None = None
        self._convert: RgbToYuv | None = None

    async def _pump(self) -> None:
        """Pull source frames; keep only the newest (a replaced one is a stale drop)."""
        try:
            while True:
                frame = await self.source.recv()
                now = time.perf_counter()
                if self._latest is not None:
                    self.stats.queue_dropped += 1
                self._latest = (now, frame)
                self.stats.frames_in += 1
                self.stats.rate_in.tick(now)
                self.controller.observe_arrival(now)
                self._fresh.set()
        except MediaStreamError:
            self._source_ended = True
            self._fresh.set()

    async def _next(self) -> tuple[float, av.VideoFrame]:
        if self._pump_task is None:
            self._pump_task = asyncio.ensure_future(self._pump())
        while self._latest is None:
            if self._source_ended:
                self.stop()
                raise MediaStreamError
            self._fresh.clear()
            await self._fresh.wait()
        latest, self._latest = self._latest, None
        return latest

    async def recv(self) -> av.VideoFrame:
        """The next enhanced frame (the freshest source frame, upscaled), with the source's pts."""
        if self.readyState != "live":
            raise MediaStreamError
        arrival, frame = await self._next()
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(self._executor, self._enhance, arrival, frame)
        now = time.perf_counter()
        self.stats.latency.add(now - arrival)
        self.stats.frames_out += 1
        self.stats.rate_out.tick(now)
        return out

    def _enhance(self, arrival: float, frame: av.VideoFrame) -> av.VideoFrame:
        """Worker thread: pick a tier, upscale, convert to yuv420p. Returns a new frame."""
        rgb = frame.to_ndarray(format="rgb24")
        self._prepare(rgb.shape[0], rgb.shape[1])
        tier = self.controller.choose(time.perf_counter() - arrival, 0)
        t0 = time.perf_counter()
        high = self.tiers[tier][1].infer(rgb[None])[0]
        t1 = time.perf_counter()
        self.controller.observe_infer(tier, t1 - t0)
        self.stats.stages["infer"].add(t1 - t0)
        assert self._convert is not None
        out = self._convert(high)
        self.controller.observe_encode(time.perf_counter() - t1)
        out.pts, out.time_base = frame.pts, frame.time_base
        return out

    def _prepare(self, height: int, width: int) -> None:
        """At the first frame and on a size change: prepare every tier, warm it up, time it once."""
        if self._size == (height, width):
            return
        probe = np.zeros((1, height, width, 3), dtype=np.uint8)
        for i, (_, backend) in enumerate(self.tiers):
            backend.prepare(height, width, 1)
            backend.infer(probe)  # the first call pays one-off costs: not a fair estimate
            t0 = time.perf_counter()
            backend.infer(probe)
            self.controller.observe_infer(i, time.perf_counter() - t0)
        scale = self.tiers[0][1].info.scale
        self._convert = RgbToYuv(width * scale, height * scale, "yuv420p", ColourTags())
        self._size = (height, width)
        log.info("enhancing %dx%d -> %dx%d", width, height, width * scale, height * scale)

    def stop(self) -> None:
        """End this track (not the source); stops the pump and a worker thread of its own."""
        if self._pump_task is not None:
            self._pump_task.cancel()
        if self._own_executor:
            self._executor.shutdown(wait=False)
        self.stats.seconds = time.perf_counter() - self.stats.started
        super().stop()
