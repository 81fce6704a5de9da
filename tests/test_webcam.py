"""``vsr webcam``: configuration, real-time file pacing, the live loop's counters, outputs, and the
command end to end on a real face clip (skipped with a reason when ../shared/data is missing).

Every run is bounded by ``--duration`` (a few seconds of real time: pacing is the point).
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from vsr.backends import create_backend
from vsr.cli import main
from vsr.config import FaceConfig
from vsr.errors import ConfigError, InputError
from vsr.ladder import Ladder
from vsr.webcam import (
    FileSource,
    WebcamConfig,
    output_kind,
    parse_size,
    preview_unavailable,
    run_webcam,
    side_by_side,
)
from vsr.webcam.capture import RatePicker

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "face_320x180.mp4"
SHARED_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
FACE_CLIP = SHARED_VIDEO / "talking_head_retalk1.mp4"


def _times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return sorted(float(p.pts * v.time_base) for p in c.demux(v) if p.pts is not None)


def _size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as c:
        ctx = c.streams.video[0].codec_context
        return ctx.width, ctx.height


# --- configuration -------------------------------------------------------------------------


def test_parse_size() -> None:
    assert parse_size("320x180") == (320, 180)
    with pytest.raises(ConfigError, match="WxH"):
        parse_size("320-180")
    with pytest.raises(ConfigError, match="even"):
        parse_size("321x180")


def test_output_kinds() -> None:
    assert output_kind("out.mp4") == "file"
    assert output_kind("vcam") == "vcam"
    assert output_kind("-") == "stream"
    assert output_kind("udp://127.0.0.1:5000") == "stream"
    assert output_kind("hls_dir") == "stream"
    with pytest.raises(ConfigError, match="cannot stream"):
        output_kind("http://example.com/x")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "/dev/video0", "input": "a.mp4", "outputs": ("o.mp4",)}, "either --device or --input"),
        ({"input": "a.mp4"}, "nowhere to send frames"),
        ({"input": "a.mp4", "outputs": ("o.mp4",), "fps": 0.0}, "fps must be"),
        ({"input": "a.mp4", "outputs": ("vcam", "vcam")}, "only one virtual camera"),
        ({"input": "a.mp4", "outputs": ("o.mp4",), "model": "nope"}, "nope"),
    ],
)
def test_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WebcamConfig(**kwargs)


def test_opencv_index() -> None:
    assert WebcamConfig(device="cv:1", outputs=("o.mp4",)).opencv_index == 1
    assert WebcamConfig(device="/dev/video0", outputs=("o.mp4",)).opencv_index is None


def test_rate_picker_keeps_at_most_fps() -> None:
    picker = RatePicker(10.0)
    kept = [t for t in np.arange(0, 2, 1 / 30) if picker.keep(float(t))]
    assert 19 <= len(kept) <= 21
    assert all(picker.keep(t) for t in (5.0,))  # after a gap the next frame is kept at once


def test_side_by_side_shape() -> None:
    low = np.zeros((10, 12, 3), np.uint8)
    assert side_by_side(low, np.zeros((40, 48, 3), np.uint8)).shape == (40, 96, 3)


# --- capture -------------------------------------------------------------------------------


def test_file_source_plays_at_real_time_pace() -> None:
    cfg = WebcamConfig(input=str(SAMPLE), outputs=("o.mp4",))
    arrivals, times = [], []
    with FileSource(cfg) as source:
        for cap in source.frames(threading.Event()):
            arrivals.append(cap.arrival)
            times.append(cap.t)
            if cap.t >= 1.5:
                break
    wall = np.array(arrivals) - arrivals[0]
    lag = wall - np.array(times)
    assert times[0] == 0.0 and len(times) >= 40
    assert abs(wall[-1] - times[-1]) < 0.25  # released at the clip's pace, not as fast as it decodes
    assert np.percentile(np.abs(lag), 90) < 0.1


def test_file_source_resizes_and_samples() -> None:
    cfg = WebcamConfig(input=str(SAMPLE), size=(160, 90), fps=10, outputs=("o.mp4",))
    with FileSource(cfg) as source:
        caps = []
        for cap in source.frames(threading.Event()):
            caps.append(cap)
            if cap.t >= 0.9:
                break
    assert caps[0].image.shape == (90, 160, 3)
    assert np.allclose(np.diff([c.t for c in caps]), 0.1, atol=0.02)


def test_missing_input_is_one_clear_error(tmp_path: Path) -> None:
    cfg = WebcamConfig(input=str(tmp_path / "nope.mp4"), outputs=(str(tmp_path / "o.mp4"),), model="bicubic")
    with pytest.raises(InputError, match="cannot open"):
        run_webcam(cfg)


# --- the live loop -------------------------------------------------------------------------


def test_counters_add_up_with_a_network_tier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A random-init ``fast`` net (ONNX Runtime) as the best tier: every frame that came in went
    out (at some tier) or was dropped and counted; output size is 4x; timestamps increase."""
    pytest.importorskip("onnxruntime")
    torch = pytest.importorskip("torch")
    from vsr.models.catalogue import new_network

    monkeypatch.setenv("VSR_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    net = create_backend("onnx", "fast", net=new_network("fast").eval(), threads=1)
    tiers = [("fast", net), ("bicubic", create_backend("auto", "bicubic"))]
    out = tmp_path / "o.mp4"
    cfg = WebcamConfig(input=str(SAMPLE), size=(160, 90), outputs=(str(out),), duration_s=2.0)
    try:
        stats = run_webcam(cfg, Ladder(tiers, owned=False))
    finally:
        net.close()
    d = stats.to_dict()
    assert d["frames_in"] >= 50
    assert d["frames_out"] + d["frames_dropped"] == d["frames_in"]
    assert sum(d["controller"]["frames_per_tier"].values()) == d["frames_out"]
    assert _size(out) == (640, 360)
    times = _times(out)
    assert len(times) == d["frames_out"] and bool(np.all(np.diff(times) > 0))


def test_tiny_budget_degrades_instead_of_lagging(tmp_path: Path) -> None:
    """A 1 ms budget cannot be met: frames degrade to the floor (counted), latency stays bounded."""
    cfg = WebcamConfig(
        input=str(SAMPLE), outputs=(str(tmp_path / "o.mp4"),), duration_s=1.0, latency_budget_ms=1.0
    )
    slow = SlowBackend(0.05)
    stats = run_webcam(cfg, Ladder([("slow", slow), ("bicubic", create_backend("auto", "bicubic"))]))
    d = stats.to_dict()
    assert d["frames_degraded"] >= d["frames_out"] - 2 and d["frames_out"] > 10
    assert d["added_latency"]["p95_ms"] < 200


class SlowBackend:
    """A backend that takes ``seconds`` per frame (nearest-neighbour 4x)."""

    name = "slow"

    def __init__(self, seconds: float) -> None:
        from vsr.backends.base import ModelInfo

        self.seconds, self.info = seconds, ModelInfo(name="slow", scale=4)

    def prepare(self, height: int, width: int, batch: int) -> None:
        return None

    def infer(self, frames: np.ndarray) -> np.ndarray:
        time.sleep(self.seconds)
        return frames.repeat(4, axis=1).repeat(4, axis=2)

    def close(self) -> None:
        return None


def test_stream_output_writes_hls(tmp_path: Path) -> None:
    hls = tmp_path / "hls"
    cfg = WebcamConfig(
        input=str(SAMPLE), model="bicubic", size=(160, 90), outputs=(str(hls),), duration_s=1.5
    )
    stats = run_webcam(cfg)
    assert stats.frames_out > 20
    assert (hls / "index.m3u8").is_file() and list(hls.glob("seg_*.ts"))


def test_preview_without_gui_says_why(tmp_path: Path) -> None:
    if preview_unavailable() is None:
        pytest.skip("this machine has a GUI OpenCV and a display")
    cfg = WebcamConfig(input=str(SAMPLE), model="bicubic", preview=True)
    with pytest.raises(ConfigError, match="cannot open a preview window"):
        run_webcam(cfg)


def test_vcam_without_pyvirtualcam_says_how(tmp_path: Path) -> None:
    if importlib.util.find_spec("pyvirtualcam") is not None:
        pytest.skip("pyvirtualcam is installed here")
    cfg = WebcamConfig(input=str(SAMPLE), model="bicubic", outputs=("vcam",))
    with pytest.raises(ConfigError, match=r"pip install 'vsr\[vcam\]'"):
        run_webcam(cfg)


# --- the command, on a real face clip ------------------------------------------------------


@pytest.mark.skipif(not FACE_CLIP.is_file(), reason=f"real face clip {FACE_CLIP} is not here")
def test_cli_webcam_real_face_clip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``vsr webcam --input CLIP --face`` to a file: 4x size, 15 fps pacing in real time, faces."""
    out, stats_path = tmp_path / "webcam.mp4", tmp_path / "stats.json"
    args = ["webcam", "--input", str(FACE_CLIP), "--size", "176x176", "--fps", "15", "--duration", "3"]
    args += ["--model", "bicubic", "--face", "--face-model", "bicubic", "-o", str(out)]
    t0 = time.perf_counter()
    assert main([*args, "--json-stats", str(stats_path), "-q"]) == 0
    wall = time.perf_counter() - t0
    stats = json.loads(stats_path.read_text())
    assert _size(out) == (704, 704)
    times = _times(out)
    steps = np.diff(times)
    assert len(times) == stats["frames_out"] >= 40
    assert abs(float(np.median(steps)) - 1 / 15) < 0.01  # frame pacing: the requested 15 fps
    assert 2.8 <= times[-1] <= 3.2 and wall >= 2.8  # real time, not as fast as it decodes
    assert stats["faces_detected_frames"] >= 0.8 * stats["frames_out"]
    assert stats["frames_out"] + stats["frames_dropped"] == stats["frames_in"]


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["webcam", "--input", str(SAMPLE), "--model", "bicubic"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vsr: error: nowhere to send frames: give --output (file, stream URL, vcam) or --preview"]
    assert main(["webcam", "--input", str(SAMPLE), "--size", "big", "-o", str(tmp_path / "o.mp4")]) == 2
    assert "WxH" in capsys.readouterr().err


def test_face_config_reaches_the_face_upscaler(tmp_path: Path) -> None:
    cfg = WebcamConfig(
        input=str(SAMPLE),
        model="bicubic",
        face=FaceConfig(face_model="bicubic", detect_every=2),
        outputs=(str(tmp_path / "o.mp4"),),
        duration_s=1.0,
    )
    stats = run_webcam(cfg)
    assert stats.extra["face"]["frames"] == stats.controller.used[0]
    assert stats.extra["faces_detected_frames"] > 0
