"""The WebRTC plugin: config rules, ``EnhanceTrack`` on a synthetic track, and the whole path in a
real headless Chromium whose fake camera plays a real face clip.

The browser test needs the Debian packages ``chromium`` and ``chromium-driver`` and the PyPI
packages ``selenium`` and ``aiortc``; without them it tries nothing and skips, saying which is
missing. Its screenshot goes to ``tests/artifacts/`` (or ``$VSR_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from test_webcam import SlowBackend  # a backend that takes a set time per frame

from vsr.backends import create_backend
from vsr.cli import main
from vsr.errors import ConfigError
from vsr.ladder import Ladder
from vsr.webrtc import WebrtcConfig, is_loopback

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
FACE_CLIP = SHARED_VIDEO / "talking_head_retalk1.mp4"
SAMPLE = REPO / "samples" / "face_320x180.mp4"
ARTIFACTS = Path(os.environ.get("VSR_TEST_ARTIFACTS", REPO / "tests" / "artifacts"))

needs_aiortc = pytest.mark.skipif(
    importlib.util.find_spec("aiortc") is None, reason="aiortc is not installed (pip install 'vsr[webrtc]')"
)


# --- configuration -------------------------------------------------------------------------


def test_loopback_only_unless_allowed() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")
    with pytest.raises(ConfigError, match="--allow-remote"):
        WebrtcConfig(host="0.0.0.0")
    assert WebrtcConfig(host="0.0.0.0", allow_remote=True).host == "0.0.0.0"
    with pytest.raises(ConfigError, match="port"):
        WebrtcConfig(port=70000)


def test_cli_refuses_remote_bind_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["webrtc", "--host", "0.0.0.0", "--model", "bicubic"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vsr: error: refusing to bind '0.0.0.0'")


# --- EnhanceTrack on a synthetic track -----------------------------------------------------


def _source_track(n: int, fps: float):  # -> MediaStreamTrack
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    class Source(MediaStreamTrack):
        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self.i = 0

        async def recv(self) -> av.VideoFrame:
            if self.i >= n:
                raise MediaStreamError
            await asyncio.sleep(1 / fps)
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), self.i % 256, np.uint8), format="rgb24")
            frame.pts, frame.time_base = self.i * 3000, Fraction(1, 90000)
            self.i += 1
            return frame

    return Source()


@needs_aiortc
def test_enhance_track_drops_stale_frames_and_keeps_pts() -> None:
    """A 60 ms upscaler on a 100 fps track: output is 4x, pts increase, stale frames are dropped
    (counted) instead of queueing, so the added latency stays near one inference."""
    from aiortc.mediastreams import MediaStreamError

    from vsr.webrtc import EnhanceTrack

    async def consume() -> tuple[list[av.VideoFrame], EnhanceTrack]:
        track = EnhanceTrack(_source_track(60, 100.0), SlowBackend(0.06), latency_budget_ms=500)
        frames = []
        try:
            while True:
                frames.append(await track.recv())
        except MediaStreamError:
            pass
        return frames, track

    frames, track = asyncio.run(asyncio.wait_for(consume(), timeout=30))
    d = track.stats.to_dict()
    assert (frames[0].width, frames[0].height, frames[0].format.name) == (256, 192, "yuv420p")
    assert all(b.pts > a.pts for a, b in itertools.pairwise(frames))
    assert d["frames_in"] == 60 and d["dropped_queue_full"] >= 20
    assert d["frames_out"] + d["dropped_queue_full"] == 60
    assert d["added_latency"]["p95_ms"] < 200


@needs_aiortc
def test_server_serves_page_and_refuses_bad_offer() -> None:
    from vsr.webrtc import running_server

    with running_server(
        WebrtcConfig(port=0, model="bicubic"), Ladder([("bicubic", create_backend("auto", "bicubic"))])
    ) as (
        url,
        _,
    ):
        assert url.startswith("http://127.0.0.1:")
        page = urllib.request.urlopen(url, timeout=10).read().decode()
        assert 'id="remote"' in page and "app.js" in page
        assert b"requestVideoFrameCallback" in urllib.request.urlopen(url + "app.js", timeout=10).read()
        request = urllib.request.Request(
            url + "offer", data=b"{}", headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=10)
        assert err.value.code == 400
        assert json.loads(urllib.request.urlopen(url + "stats", timeout=10).read()) == {"connections": 0}


# --- the whole path in a real browser ------------------------------------------------------


def _browser_missing() -> str | None:
    for exe, package in (("chromium", "chromium"), ("chromedriver", "chromium-driver")):
        if shutil.which(exe) is None:
            return f"{exe} is not installed (apt-get install -y chromium chromium-driver; missing {package})"
    for module in ("selenium", "aiortc"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'vsr[webrtc]' selenium)"
    return None


def make_y4m(src: Path, dst: Path, seconds: float = 4.0, size: tuple[int, int] = (320, 240)) -> Path:
    """A 4:3 centre crop of ``src`` scaled to ``size``, ``seconds`` long, as a .y4m (fake camera)."""
    w, h = size
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i, frame in enumerate(inp.decode(video=0)):
            if i >= seconds * 25:
                break
            rgb = frame.to_ndarray(format="rgb24")
            fh, fw = rgb.shape[:2]
            cw, ch = min(fw, fh * w // h), min(fh, fw * h // w)
            crop = rgb[(fh - ch) // 2 : (fh + ch) // 2, (fw - cw) // 2 : (fw + cw) // 2]
            small = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
            out.mux(
                stream.encode(av.VideoFrame.from_ndarray(small, format="rgb24").reformat(format="yuv420p"))
            )
        out.mux(stream.encode(None))
    return dst


_CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--window-size=1400,900",
)


def _chrome(y4m: Path, profile: str):  # -> selenium webdriver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    for arg in _CHROME_FLAGS:
        opts.add_argument(arg)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument(f"--use-file-for-fake-video-capture={y4m}")
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    driver.set_page_load_timeout(20)
    return driver


def _upscaler() -> tuple[list, object | None]:
    """The ladder every live command uses by default (LIVE_MODEL with its shipped weights, down its
    catalogue fallbacks), when torch is installed, else bicubic; plus whatever must be closed."""
    if importlib.util.find_spec("torch"):
        from vsr.build_ladder import build_ladder
        from vsr.config import ModelConfig
        from vsr.models.catalogue import LIVE_MODEL

        ladder = build_ladder(ModelConfig(LIVE_MODEL), live=True)
        return ladder.rungs, ladder
    return [("bicubic", create_backend("auto", "bicubic"))], None


def _state(driver) -> dict:
    return driver.execute_script("return window.vsrState")


def _wait(driver, cond, timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _state(driver)
        if state and state.get("error"):
            pytest.fail(f"page error while waiting for {what}: {state['error']}")
        if state and cond(state):
            return state
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}: {_state(driver)}")


def test_browser_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chromium's fake camera (a real face clip) -> vsr over WebRTC -> back: 4x the sent size,
    frames keep arriving for the whole test, a screenshot of the page is saved."""
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from vsr.webrtc import running_server

    monkeypatch.setenv("VSR_CACHE", str(tmp_path / "cache"))
    y4m = make_y4m(FACE_CLIP if FACE_CLIP.is_file() else SAMPLE, tmp_path / "cam.y4m")
    tiers, net = _upscaler()
    try:
        with (
            running_server(WebrtcConfig(port=0, latency_budget_ms=150), Ladder(tiers, owned=False)) as (
                url,
                server,
            ),
            tempfile.TemporaryDirectory() as profile,
        ):
            driver = _chrome(y4m, profile)
            try:
                _drive(driver, url, server)
            finally:
                driver.quit()
    finally:
        if net is not None:
            net.close()


def _drive(driver, url: str, server) -> None:
    driver.get(url + "?autostart=1")
    first = _wait(driver, lambda s: s["connected"] and s["remoteFrames"] > 5, 30, "the enhanced video")
    counts = [first["remoteFrames"]]
    for _ in range(4):  # frames keep arriving for the test's duration (8 s)
        time.sleep(2.0)
        counts.append(_state(driver)["remoteFrames"])
    state = _state(driver)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "webrtc_page.png"
    driver.save_screenshot(str(shot))
    print(f"\nscreenshot: {shot}\nstate: {json.dumps({k: v for k, v in state.items() if k != 'server'})}")
    print(f"server: {json.dumps(state.get('server'))}")
    lw, lh = state["localSize"]
    assert (lw, lh) == (320, 240)
    assert state["remoteSize"] == [4 * lw, 4 * lh]
    assert all(b > a for a, b in itertools.pairwise(counts)), counts
    track = server.tracks[-1].stats.to_dict()
    assert (
        track["frames_out"] > 20 and track["frames_out"] + track["dropped_queue_full"] <= track["frames_in"]
    )
    assert shot.stat().st_size > 10_000
