"""Tiny synthetic clips made with PyAV once per session, plus helpers to run and inspect vsr.

Every clip is a few dozen frames of 64x48 (or odd-sized) moving pattern, so the whole suite stays
fast on 2 busy cores. Real clips live in ../shared/data/video beside the repo (optional).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"

VFR_PTS = [0, 40, 60, 130, 140, 250, 260, 270, 400, 433, 520, 600, 610, 700, 820, 830, 900, 1000]


@dataclass
class ClipSpec:
    """How to make one synthetic clip. ``pts`` are in ``time_base``; ``tags`` are AV colour enums."""

    name: str
    width: int = 64
    height: int = 48
    pts: list[int] = field(default_factory=lambda: list(range(24)))
    time_base: Fraction = Fraction(1, 24)
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    audio: str | None = None  # "aac", "libopus"
    subtitle: str | None = None  # "subrip", "mov_text"
    rotation: int = 0
    tags: dict[str, int] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)  # container options
    fill: tuple[int, int, int] | None = None  # a flat colour instead of the moving pattern


def pattern(i: int, h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8 RGB frame i: moving gradients, so every frame differs."""
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 4 + i * 9) % 256
    g = (y * 5 + i * 3) % 256
    b = ((x + y) * 3 + i * 17) % 256
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def _add_video(out: av.container.OutputContainer, spec: ClipSpec) -> av.video.stream.VideoStream:
    v = out.add_stream(spec.codec, rate=24)
    v.width, v.height, v.pix_fmt = spec.width, spec.height, spec.pix_fmt
    v.time_base = spec.time_base
    v.codec_context.time_base = spec.time_base
    if spec.codec == "libx264":
        v.codec_context.options = {"preset": "ultrafast", "crf": "18"}
    for attr, value in spec.tags.items():
        setattr(v.codec_context, attr, value)
    if spec.rotation:
        v.set_display_rotation(spec.rotation)
    return v


def _mux_audio(
    out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float
) -> None:
    rate, n = stream.codec_context.sample_rate, 960
    t = 0
    while t < seconds * rate:
        samples = (0.2 * np.sin(2 * np.pi * 440 * (np.arange(n) + t) / rate)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, t, Fraction(1, rate)
        out.mux(stream.encode(frame))
        t += n
    out.mux(stream.encode(None))


def _mux_subtitles(
    out: av.container.OutputContainer, stream: av.stream.Stream, kind: str, seconds: float
) -> None:
    for k, ms in enumerate(range(0, int(seconds * 1000), 300)):
        text = f"line {k}".encode()
        payload = len(text).to_bytes(2, "big") + text if kind == "mov_text" else text
        packet = av.Packet(payload)
        packet.stream = stream
        packet.time_base = Fraction(1, 1000)
        packet.pts = packet.dts = ms
        packet.duration = 200
        out.mux(packet)


def make_clip(path: Path, spec: ClipSpec) -> Path:
    """Write ``spec`` to ``path`` (container from the extension) and return the path."""
    with av.open(str(path), "w", options=spec.options) as out:
        v = _add_video(out, spec)
        a = out.add_stream(spec.audio, rate=48000, layout="mono") if spec.audio else None
        s = None
        if spec.subtitle:
            s = out.add_mux_stream(spec.subtitle)
            s.time_base = Fraction(1, 1000)
        for i, pts in enumerate(spec.pts):
            rgb = np.full((spec.height, spec.width, 3), spec.fill, np.uint8) if spec.fill else None
            frame = av.VideoFrame.from_ndarray(
                rgb if rgb is not None else pattern(i, spec.height, spec.width)
            )
            frame.pts, frame.time_base = pts, spec.time_base
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        seconds = float((spec.pts[-1] + 1) * spec.time_base)
        if a is not None:
            _mux_audio(out, a, seconds)
        if s is not None:
            _mux_subtitles(out, s, spec.subtitle, seconds)
    return path


CLIPS = {
    "cfr_aac.mp4": ClipSpec("cfr_aac", audio="aac"),
    "cfr_noaudio.mp4": ClipSpec("cfr_noaudio", pts=list(range(12))),
    "vfr_aac.mp4": ClipSpec("vfr_aac", pts=VFR_PTS, time_base=Fraction(1, 1000), audio="aac"),
    "vfr_opus_srt.mkv": ClipSpec(
        "vfr_opus_srt", pts=VFR_PTS, time_base=Fraction(1, 1000), audio="libopus", subtitle="subrip"
    ),
    "cfr_aac_movtext.mp4": ClipSpec("cfr_aac_movtext", pts=list(range(12)), audio="aac", subtitle="mov_text"),
    "odd_444.mp4": ClipSpec("odd_444", width=63, height=47, pts=list(range(8)), pix_fmt="yuv444p"),
    "rotated.mp4": ClipSpec("rotated", pts=list(range(6)), rotation=90),
    "bt709_flat.mp4": ClipSpec(
        "bt709_flat",
        pts=list(range(6)),
        tags={"color_range": 1, "color_primaries": 1, "color_trc": 1, "colorspace": 1},
        fill=(200, 60, 110),
    ),
    "faststart_aac.mp4": ClipSpec(
        "faststart_aac", pts=list(range(48)), audio="aac", options={"movflags": "+faststart"}
    ),
}


@pytest.fixture(scope="session", autouse=True)
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """vsr's ledger of derived files (vsr.derived) in a session folder, never the user's ~/.local/state."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VSR_STATE_DIR", str(tmp_path_factory.mktemp("vsr-state")))
        mp.setenv("VSR_MODELS_DIR", str(tmp_path_factory.mktemp("vsr-user-models")))  # not the user's models
        yield


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> path of every synthetic clip in :data:`CLIPS`, made once per session."""
    root = tmp_path_factory.mktemp("clips")
    made = {name: make_clip(root / name, spec) for name, spec in CLIPS.items()}
    audio_only = root / "audio_only.m4a"
    with av.open(str(audio_only), "w", format="mp4") as out:
        _mux_audio(out, out.add_stream("aac", rate=48000, layout="mono"), 0.5)
    made["audio_only.m4a"] = audio_only
    return made


def run_vsr(*args: str, stdin: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m vsr ARGS`` in a subprocess (bytes stdout, text stderr)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "vsr", *args], input=stdin, capture_output=True, timeout=timeout, env=env
    )
    proc.stderr = proc.stderr.decode("utf-8", "replace")
    return proc


def video_times(path: Path | str) -> list[Fraction]:
    """Presentation time (seconds, exact) of every decoded video frame, in order."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [Fraction(f.pts) * s.time_base for f in c.decode(s)]


def packets_of(path: Path | str, kind: str) -> list[bytes]:
    """The payload bytes of every packet of the first ``kind`` (audio, subtitle) stream."""
    with av.open(str(path)) as c:
        streams = getattr(c.streams, {"audio": "audio", "subtitle": "subtitles"}[kind])
        return [bytes(p) for p in c.demux(streams[0]) if p.size]


class StopAfter(threading.Event):
    """A stop flag that sets itself after it was checked ``n`` times (the reader checks it about
    once per decoded item): a run interrupted part-way, deterministically."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.seen = n, 0

    def is_set(self) -> bool:
        self.seen += 1
        return self.seen > self.n or super().is_set()
