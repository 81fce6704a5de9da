"""The ``vsr webrtc`` server under hostile or excessive requests, over real HTTP on 127.0.0.1.

Bad offers get 400 and leave no peer connection behind; offers beyond ``max_peers`` get 503 and a
closed peer frees its slot (and its track); a peer that never connects is closed; a foreign
``Host`` or ``Origin`` gets 403; with the default (loopback) config, ICE offers loopback host
candidates only. Valid offers come from a real aiortc client; every refusal is one log line.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import av
import numpy as np
import pytest

from vsr.backends import create_backend
from vsr.errors import ConfigError
from vsr.ladder import Ladder
from vsr.webrtc import WebrtcConfig

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("aiortc") is None, reason="aiortc is not installed (pip install 'vsr[webrtc]')"
)

LOGGER = "vsr.webrtc.server"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def serve(caplog: pytest.LogCaptureFixture) -> Iterator[Any]:
    """A factory: ``serve(**cfg)`` runs the server (bicubic) for the test; yields (url, server)."""
    from contextlib import ExitStack

    from vsr.webrtc import running_server

    caplog.set_level(logging.WARNING, logger=LOGGER)
    with ExitStack() as stack:

        def start(**kw: Any) -> tuple[str, Any]:
            cfg = WebrtcConfig(port=0, model="bicubic", **kw)
            return stack.enter_context(
                running_server(cfg, Ladder([("bicubic", create_backend("auto", "bicubic"))]))
            )

        yield start


def _request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _connections(url: str) -> int:
    return json.loads(_request(url + "stats")[1])["connections"]


def _refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    records = [r for r in caplog.records if r.name == LOGGER and "refused" in r.getMessage()]
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in records)
    return records


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


def _camera():  # -> a small aiortc VideoStreamTrack (64x48 black frames at its own 30 fps clock)
    from aiortc import VideoStreamTrack

    class SmallCamera(VideoStreamTrack):
        async def recv(self) -> av.VideoFrame:
            pts, time_base = await self.next_timestamp()
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            return frame

    return SmallCamera()


async def _client(send: bool = True):  # -> an aiortc RTCPeerConnection with its offer set
    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if send:
        pc.addTrack(_camera())
    else:
        pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc


def _offer_body(pc: Any) -> bytes:
    return json.dumps({"sdp": pc.localDescription.sdp, "type": "offer"}).encode()


async def _post(url: str, body: bytes) -> tuple[int, str]:
    return await asyncio.to_thread(_request, url + "offer", body, JSON)


async def _until(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


def _bad_offers(valid_sdp: str) -> list[bytes]:
    no_ice = "\r\n".join(line for line in valid_sdp.split("\r\n") if not line.startswith("a=ice-"))
    bodies: list[Any] = [
        {"sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "type": "offer"},  # no media
        {"sdp": valid_sdp, "type": "bogus"},
        {"sdp": valid_sdp, "type": "answer"},
        {"sdp": 5, "type": "offer"},
        {"sdp": no_ice, "type": "offer"},  # m=video, but aiortc refuses it (a peer was made)
        {"sdp": "m=video 9 UDP/TLS/RTP/SAVPF 97\r\n", "type": "offer"},
        {},
        [1, 2],
    ]
    return [json.dumps(b).encode() for b in bodies] + [b"not json", b"\xff\xfe"]


def test_bad_offers_get_400_one_line_and_leave_no_peer(serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> None:
        url, server = serve()
        client = await _client()
        bad = _bad_offers(client.localDescription.sdp)
        await client.close()
        fds = _open_fds()
        statuses = [(await _post(url, body))[0] for _ in range(5) for body in bad]
        assert statuses == [400] * len(statuses) == [400] * 50
        assert _connections(url) == 0 and not server.pcs and not server.tracks
        assert _open_fds() <= fds + 2
        assert len(_refusals(caplog)) == 50

    asyncio.run(asyncio.wait_for(run(), timeout=60))


def test_peer_cap_503_and_closed_peers_free_their_slot(serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> None:
        url, server = serve(max_peers=2)
        clients = [await _client() for _ in range(2)]
        for client in clients:
            status, text = await _post(url, _offer_body(client))
            assert status == 200
            await client.setRemoteDescription(_answer(text))
        spare = await _client(send=False)
        statuses = [(await _post(url, _offer_body(spare)))[0] for _ in range(20)]
        assert statuses == [503] * 20 and _connections(url) == 2
        assert len(_refusals(caplog)) == 20
        await _until(
            lambda: all(c.connectionState == "connected" for c in clients), 15, "both peers to connect"
        )
        await _until(lambda: len(server.tracks) == 2, 15, "both enhanced tracks")
        for client in clients:
            await client.close()
        await _until(lambda: not server.pcs, 15, "the server to close both peers")
        assert _connections(url) == 0 and not server.tracks
        assert (await _post(url, _offer_body(spare)))[0] == 200  # a freed slot takes a new peer
        await spare.close()

    asyncio.run(asyncio.wait_for(run(), timeout=60))


def _answer(text: str):  # -> RTCSessionDescription
    from aiortc import RTCSessionDescription

    return RTCSessionDescription(**json.loads(text))


def test_peer_that_never_connects_is_closed(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from vsr.webrtc import EnhanceServer

    monkeypatch.setattr(EnhanceServer, "connect_timeout_s", 0.5)

    async def run() -> None:
        url, server = serve()
        client = await _client()
        body = _offer_body(client)
        await client.close()  # the offer's candidates now lead nowhere
        assert (await _post(url, body))[0] == 200 and _connections(url) == 1
        await _until(lambda: not server.pcs, 5, "the unconnected peer to be closed")
        assert _connections(url) == 0

    asyncio.run(asyncio.wait_for(run(), timeout=30))


def test_foreign_host_or_origin_gets_403(serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    url, _ = serve()
    port = url.rstrip("/").rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        assert _request(url, headers={"Host": host})[0] == 200, host
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1:1", f"127.0.0.1.evil.example:{port}"):
        assert _request(url, headers={"Host": host})[0] == 403, host
        assert _request(url + "offer", b"{}", {"Host": host, **JSON})[0] == 403, host
    for origin in ("http://evil.example", f"http://localhost:{port}", "null", f"http://127.0.0.1:{port}.x"):
        assert _request(url + "offer", b"{}", {"Origin": origin, **JSON})[0] == 403, origin
    same = {"Origin": f"http://127.0.0.1:{port}", **JSON}
    assert _request(url + "offer", b"{}", same)[0] == 400  # same origin: through to the offer check
    assert len(_refusals(caplog)) == 4 * 2 + 4 + 1  # every refusal, one line each (and the 400)


def test_default_ice_candidates_are_loopback_only(serve: Any) -> None:
    async def run() -> None:
        url, server = serve()
        client = await _client()
        status, text = await _post(url, _offer_body(client))
        await client.close()
        assert status == 200
        sdp = json.loads(text)["sdp"]
        answered = [line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")]
        (pc,) = server.pcs
        gathered = [
            c
            for t in pc.getTransceivers()
            for c in t.receiver.transport.transport.iceGatherer.getLocalCandidates()
        ]
        assert gathered and all(ipaddress.ip_address(c.ip).is_loopback and c.type == "host" for c in gathered)
        assert answered and all(ipaddress.ip_address(a).is_loopback for a in answered)

    asyncio.run(asyncio.wait_for(run(), timeout=30))


def test_max_peers_is_validated() -> None:
    assert WebrtcConfig().max_peers == 4 and WebrtcConfig(max_peers=1).max_peers == 1
    for bad in (0, -1, 101):
        with pytest.raises(ConfigError, match="max peers"):
            WebrtcConfig(max_peers=bad)
