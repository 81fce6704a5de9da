"""The ``vsr webrtc`` server: an aiohttp app serving the page, ``/offer`` and ``/stats``.

``GET /`` the page (``static/index.html`` + ``app.js``); ``POST /offer`` takes the browser's SDP
offer (JSON ``{"sdp", "type"}``) and answers with an :class:`~vsr.webrtc.track.EnhanceTrack` on
the browser's camera track; ``GET /stats`` is the newest track's statistics (JSON, polled by the
page). One upscaler (its tiers) serves every connection, in one worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from ..backends.base import Backend
from ..errors import OutputError
from .config import WebrtcConfig
from .track import EnhanceTrack

__all__ = ["EnhanceServer", "build_webrtc_tiers", "running_server", "serve"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"


def raise_encoder_bitrates(max_kbps: int) -> None:
    """Let aiortc's VP8 / H.264 encoders use up to ``max_kbps`` (starting at a third of it).

    aiortc keeps these limits as module constants (VP8: start 500 kbit/s, ceiling 1.5 Mbit/s) that
    suit a webcam, not a 4x upscale: at 1280x960 they undo the enhancement. Congestion control
    still lowers the rate when the network needs it. Affects every connection in this process.
    """
    from aiortc.codecs import h264, vpx

    for mod in (vpx, h264):
        mod.MAX_BITRATE = max_kbps * 1000
        mod.DEFAULT_BITRATE = max(mod.MIN_BITRATE, max_kbps * 1000 // 3)


def build_webrtc_tiers(cfg: WebrtcConfig) -> list[tuple[str, Backend]]:
    """The upscaler tiers ``cfg`` asks for, best first (as ``vsr webcam`` builds them)."""
    from ..webcam import WebcamConfig, build_webcam_tiers

    wc = WebcamConfig(
        input="webrtc", model=cfg.model, backend=cfg.backend, threads=cfg.threads, face=cfg.face, preview=True
    )
    return build_webcam_tiers(wc)


class EnhanceServer:
    """The app's state: the tiers, the worker thread, the open peer connections and tracks."""

    def __init__(self, cfg: WebrtcConfig, tiers: Sequence[tuple[str, Backend]]) -> None:
        self.cfg, self.tiers = cfg, list(tiers)
        raise_encoder_bitrates(cfg.max_bitrate_kbps)
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="vsr-webrtc-infer")
        self.pcs: set[RTCPeerConnection] = set()
        self.tracks: list[EnhanceTrack] = []

    def app(self) -> web.Application:
        """The aiohttp application (closes every peer connection on shutdown)."""
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/app.js", self._script)
        app.router.add_post("/offer", self._offer)
        app.router.add_get("/stats", self._stats)
        app.on_shutdown.append(self._shutdown)
        return app

    async def _index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _script(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "app.js", headers={"Content-Type": "text/javascript"})

    async def _offer(self, request: web.Request) -> web.Response:
        try:
            params = await request.json()
            offer = RTCSessionDescription(sdp=params["sdp"], type=params["type"])
        except (ValueError, KeyError, TypeError) as exc:
            raise web.HTTPBadRequest(text=f"bad offer: {exc}") from exc
        pc = RTCPeerConnection()
        self.pcs.add(pc)

        @pc.on("connectionstatechange")
        async def _state() -> None:
            log.debug("peer connection %s", pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                await pc.close()
                self.pcs.discard(pc)

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                enhanced = EnhanceTrack(
                    track, self.tiers, latency_budget_ms=self.cfg.latency_budget_ms, executor=self.executor
                )
                self.tracks.append(enhanced)
                pc.addTrack(enhanced)

        await pc.setRemoteDescription(offer)
        await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription
        return web.json_response({"sdp": answer.sdp, "type": answer.type})

    async def _stats(self, request: web.Request) -> web.Response:
        if not self.tracks:
            return web.json_response({"connections": len(self.pcs)})
        track = self.tracks[-1]
        data = track.stats.to_dict()
        now = time.perf_counter()
        data.update(
            connections=len(self.pcs),
            fps_in=track.stats.rate_in.per_second(now),
            fps_out=track.stats.rate_out.per_second(now),
            latency_recent_ms=track.stats.latency.recent(),
            seconds=round(now - track.stats.started, 3),
        )
        return web.json_response(data)

    async def _shutdown(self, app: web.Application) -> None:
        await asyncio.gather(*(pc.close() for pc in list(self.pcs)), return_exceptions=True)
        self.pcs.clear()
        self.executor.shutdown(wait=False)


async def _start(server: EnhanceServer) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, server.cfg.host, server.cfg.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OutputError(
            f"cannot listen on {server.cfg.host}:{server.cfg.port}: {exc.strerror or exc}"
        ) from exc
    host, port = runner.addresses[0][:2]
    return runner, f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


@contextlib.contextmanager
def running_server(
    cfg: WebrtcConfig, tiers: Sequence[tuple[str, Backend]]
) -> Iterator[tuple[str, EnhanceServer]]:
    """Run the server in a thread of its own (an event loop there) while the block runs; yields
    (its URL, the server). For tests and embedding; ``tiers`` are not closed."""
    server = EnhanceServer(cfg, tiers)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="vsr-webrtc-loop", daemon=True)
    thread.start()
    runner, url = asyncio.run_coroutine_threadsafe(_start(server), loop).result(timeout=30)
    try:
        yield url, server
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def serve(
    cfg: WebrtcConfig,
    tiers: Sequence[tuple[str, Backend]] | None = None,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM. ``tiers`` default: built from ``cfg`` (and closed here)."""
    own = tiers is None
    tiers = build_webrtc_tiers(cfg) if tiers is None else list(tiers)
    try:
        asyncio.run(_serve(EnhanceServer(cfg, tiers), on_ready))
    finally:
        if own:
            for _, backend in tiers:
                backend.close()


async def _serve(server: EnhanceServer, on_ready: Callable[[str], None] | None) -> None:
    runner, url = await _start(server)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows: Ctrl-C raises instead
            loop.add_signal_handler(sig, done.set)
    if on_ready is not None:
        on_ready(url)
    try:
        await done.wait()
    finally:
        await runner.cleanup()
