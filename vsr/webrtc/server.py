"""The ``vsr webrtc`` server: an aiohttp app serving the page, ``/offer`` and ``/stats``.

``GET /`` the page (``static/index.html`` + ``app.js``); ``POST /offer`` takes the browser's SDP
offer (JSON ``{"sdp", "type"}``) and answers with an :class:`~vsr.webrtc.track.EnhanceTrack` on
the browser's camera track; ``GET /stats`` is the newest track's statistics (JSON, polled by the
page). One ladder serves every connection (its lock serialises inference).

Hardening (each refusal is one warning line, never a traceback): a request whose ``Host`` is not
the served address, or whose ``Origin`` is not that same address, gets 403 (DNS rebinding,
cross-origin posts); an offer that is not ``{"sdp": "...m=video...", "type": "offer"}`` or that
aiortc cannot negotiate gets 400 and its peer connection is closed; beyond ``max_peers`` open
connections an offer gets 503. A peer that fails, closes or does not connect within
``connect_timeout_s`` is closed and forgotten. On a loopback address, ICE gathers loopback host
candidates only and asks no STUN server, so no media socket listens on another interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ipaddress
import logging
import re
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from ..build_ladder import build_ladder
from ..errors import OutputError
from ..ladder import Ladder
from .config import WebrtcConfig, is_loopback
from .track import EnhanceTrack

__all__ = ["EnhanceServer", "running_server", "serve", "webrtc_ladder"]

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


def webrtc_ladder(cfg: WebrtcConfig) -> Ladder:
    """The ladder ``cfg`` asks for: its model down the catalogue fallbacks, or face mode."""
    return build_ladder(cfg.models, face=cfg.face, live=True)


_ICE_HOSTS: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "vsr_ice_hosts", default=None
)
_VIDEO_SECTION = re.compile(r"^m=video ", re.MULTILINE)


def scope_ice_host_addresses() -> None:
    """Let a context choose the addresses aioice gathers host candidates on (``_ICE_HOSTS``).

    aioice binds one UDP socket per address of every interface (its module function
    ``get_host_addresses``) and neither it nor aiortc 1.16 has an option to narrow that; this wraps
    the function once, process-wide, so that it returns ``_ICE_HOSTS`` where a context set it and
    behaves as before everywhere else (other aiortc users in the process are unaffected).
    """
    from aioice import ice

    original = ice.get_host_addresses
    if getattr(original, "vsr_scoped", False):
        return

    def scoped(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        hosts = _ICE_HOSTS.get()
        return original(use_ipv4=use_ipv4, use_ipv6=use_ipv6) if hosts is None else list(hosts)

    scoped.vsr_scoped = True  # type: ignore[attr-defined]
    ice.get_host_addresses = scoped


def ice_hosts(cfg: WebrtcConfig) -> tuple[str, ...] | None:
    """The host-candidate addresses for ``cfg``: loopback when HTTP is, else None (every interface)."""
    return ("127.0.0.1",) if is_loopback(cfg.host) else None


def allowed_hosts(host: str, port: int) -> frozenset[str] | None:
    """The ``Host`` header values that name the server at ``host:port`` (lower case); None for a
    wildcard bind (0.0.0.0, ::), which any name may reach. Loopback accepts its usual spellings."""
    bracket = f"[{host}]" if ":" in host else host
    if is_loopback(host):
        names = {bracket.lower(), "127.0.0.1", "localhost", "[::1]"}
    else:
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).is_unspecified:
                return None
        names = {bracket.lower()}
    return frozenset({f"{name}:{port}" for name in names} | (names if port == 80 else set()))


def origin_problem(headers: Any, allowed: frozenset[str] | None) -> str | None:
    """Why a request with these headers must be refused (403), or None: its ``Host`` is not one
    of ``allowed`` (None: any), or it has an ``Origin`` other than ``http(s)://`` + that Host."""
    host = headers.get("Host", "").lower()
    if not host or (allowed is not None and host not in allowed):
        return f"Host {host!r:.80} is not this server"
    origin = headers.get("Origin")
    if origin is not None and origin.lower() not in (f"http://{host}", f"https://{host}"):
        return f"cross-origin request from {origin!r:.80}"
    return None


async def read_offer(request: web.Request) -> RTCSessionDescription:
    """The request's offer; ValueError (saying why) unless the body is ``{"sdp", "type"}`` JSON with
    ``type`` ``"offer"`` and an SDP holding at least one ``m=video`` section."""
    try:
        params = await request.json()
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError("the body is not JSON") from exc
    if not isinstance(params, dict):
        raise ValueError('expected a JSON object {"sdp": ..., "type": "offer"}')
    sdp, kind = params.get("sdp"), params.get("type")
    if kind != "offer":
        raise ValueError(f"type must be 'offer', got {kind!r:.40}")
    if not isinstance(sdp, str) or not _VIDEO_SECTION.search(sdp):
        raise ValueError("sdp must be a string with an m=video section")
    return RTCSessionDescription(sdp=sdp, type="offer")


class EnhanceServer:
    """The app's state: the ladder (shared by every track), the open peer connections and tracks."""

    connect_timeout_s: float = 30.0  # a peer not connected by then is closed (it holds a slot)

    def __init__(self, cfg: WebrtcConfig, ladder: Ladder) -> None:
        self.cfg, self.ladder = cfg, ladder
        raise_encoder_bitrates(cfg.max_bitrate_kbps)
        scope_ice_host_addresses()
        self.pcs: set[RTCPeerConnection] = set()
        self.tracks: list[EnhanceTrack] = []
        self._sent: dict[RTCPeerConnection, list[MediaStreamTrack]] = {}  # closed with their peer
        self.allowed_hosts = allowed_hosts(cfg.host, cfg.port)
        self._tasks: set[asyncio.Future[Any]] = set()

    def app(self) -> web.Application:
        """The aiohttp application (closes every peer connection on shutdown)."""
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self._index)
        app.router.add_get("/app.js", self._script)
        app.router.add_post("/offer", self._offer)
        app.router.add_get("/stats", self._stats)
        app.on_shutdown.append(self._shutdown)
        return app

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        problem = origin_problem(request.headers, self.allowed_hosts)
        if problem is not None:
            return _refuse(request, 403, problem)
        return await handler(request)

    async def _index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _script(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "app.js", headers={"Content-Type": "text/javascript"})

    async def _offer(self, request: web.Request) -> web.Response:
        try:
            offer = await read_offer(request)
        except ValueError as exc:
            return _refuse(request, 400, f"bad offer: {exc}")
        if len(self.pcs) >= self.cfg.max_peers:
            return _refuse(request, 503, f"busy: {len(self.pcs)} peers open (max_peers={self.cfg.max_peers})")
        pc = self._new_peer()
        try:
            answer = await self._answer(pc, offer)
        except asyncio.CancelledError:
            self._background(self._drop(pc))
            raise
        except Exception as exc:  # aiortc: ValueError, InvalidAccessError, ... on an unusable SDP
            await self._drop(pc)
            return _refuse(request, 400, f"bad offer: {type(exc).__name__}: {exc}")
        self._sent[pc] = [sender.track for sender in pc.getSenders() if sender.track is not None]
        return web.json_response({"sdp": answer.sdp, "type": answer.type})

    def _new_peer(self) -> RTCPeerConnection:
        """A peer connection, counted at once (before any await: the cap holds under concurrency),
        closed when it fails or closes, or when it has not connected within connect_timeout_s."""
        hosts = ice_hosts(self.cfg)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]) if hosts else None)
        self.pcs.add(pc)
        asyncio.get_running_loop().call_later(self.connect_timeout_s, self._expire, pc)

        @pc.on("connectionstatechange")
        async def _state() -> None:
            log.debug("peer connection %s", pc.connectionState)
            if pc.connectionState in ("failed", "closed", "disconnected"):
                await self._drop(pc)

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                enhanced = EnhanceTrack(track, self.ladder, latency_budget_ms=self.cfg.latency_budget_ms)
                self.tracks.append(enhanced)
                pc.addTrack(enhanced)

        return pc

    async def _answer(self, pc: RTCPeerConnection, offer: RTCSessionDescription) -> RTCSessionDescription:
        token = _ICE_HOSTS.set(ice_hosts(self.cfg))  # gathering runs in tasks copying this context
        try:
            await pc.setRemoteDescription(offer)
            await pc.setLocalDescription(await pc.createAnswer())
        finally:
            _ICE_HOSTS.reset(token)
        return pc.localDescription

    def _expire(self, pc: RTCPeerConnection) -> None:
        if pc in self.pcs and pc.connectionState != "connected":
            log.warning("closing a peer still %s after %.0f s", pc.connectionState, self.connect_timeout_s)
            self._background(self._drop(pc))

    async def _drop(self, pc: RTCPeerConnection) -> None:
        """Forget ``pc`` (its slot is free at once), stop the tracks it sent and close it."""
        if pc not in self.pcs:
            return
        self.pcs.discard(pc)
        sent = self._sent.pop(pc, [])
        for track in sent:
            track.stop()
        self.tracks = [t for t in self.tracks if t not in sent]
        await pc.close()

    def _background(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        await asyncio.gather(*(self._drop(pc) for pc in list(self.pcs)), return_exceptions=True)


def _refuse(request: web.Request, status: int, reason: str) -> web.Response:
    """Answer ``status`` with ``reason``, logged as one line (no traceback)."""
    reason = " ".join(reason.split())[:300]  # one line, however the client's text ran
    log.warning(
        "%s %s from %s refused (%d): %s", request.method, request.raw_path, request.remote, status, reason
    )
    return web.Response(status=status, text=reason)


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
    server.allowed_hosts = allowed_hosts(server.cfg.host, port)
    return runner, f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


async def _stop(runner: web.AppRunner) -> None:
    """Close the app (and so every peer), then cancel what aiortc left running on this loop."""
    await runner.cleanup()
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.contextmanager
def running_server(cfg: WebrtcConfig, ladder: Ladder) -> Iterator[tuple[str, EnhanceServer]]:
    """Run the server in a thread of its own (an event loop there) while the block runs; yields
    (its URL, the server). For tests and embedding; the ladder is not closed."""
    server = EnhanceServer(cfg, ladder)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="vsr-webrtc-loop", daemon=True)
    thread.start()
    runner, url = asyncio.run_coroutine_threadsafe(_start(server), loop).result(timeout=30)
    try:
        yield url, server
    finally:
        asyncio.run_coroutine_threadsafe(_stop(runner), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def serve(
    cfg: WebrtcConfig,
    ladder: Ladder | None = None,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM. ``ladder`` default: built from ``cfg`` (and closed here)."""
    own = ladder is None
    ladder = ladder or webrtc_ladder(cfg)
    try:
        asyncio.run(_serve(EnhanceServer(cfg, ladder), on_ready))
    finally:
        if own:
            ladder.close()


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
