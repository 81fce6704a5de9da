"""File jobs: segments cut at keyframes, interruption in any way, the same command resumes, and the
result equals an uninterrupted run (lossless: every frame; lossy: count, pts, audio)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import StopAfter, _mux_audio, pattern

from vsr.config import DecodeConfig, EncodeConfig, ModelConfig, PipelineConfig
from vsr.errors import ConfigError
from vsr.jobs.manifest import work_dir_for
from vsr.jobs.plan import plan_segments
from vsr.pipeline import upscale_file

REPO = Path(__file__).resolve().parents[1]
FFV1 = {"codec": "ffv1", "pix_fmt": "yuv444p"}


def make_gop_clip(path: Path, pts: list[int], *, open_gop: bool = False, size=(64, 48)) -> Path:
    """H.264 with a keyframe every 12 frames, B-frames, AAC audio; ``pts`` in 1/48 s (VFR allowed)."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=24)
        v.width, v.height, v.pix_fmt = *size, "yuv420p"
        v.time_base = v.codec_context.time_base = Fraction(1, 48)
        params = "keyint=12:min-keyint=12:scenecut=0:bframes=2" + (":open-gop=1" if open_gop else "")
        v.codec_context.options = {"preset": "fast", "x264-params": params}
        a = out.add_stream("aac", rate=48000, layout="mono")
        for i, t in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(pattern(i, size[1], size[0]), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 48)
            out.mux(v.encode(frame.reformat(format="yuv420p")))
        out.mux(v.encode(None))
        _mux_audio(out, a, (pts[-1] + 2) / 48)
    return path


@pytest.fixture(scope="module")
def gop_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    vfr = [i * 2 + (1 if i % 7 == 3 else 0) for i in range(72)]  # 1.5 s at ~24 fps, uneven steps
    return make_gop_clip(tmp_path_factory.mktemp("jobs") / "gop.mp4", vfr)


def job(src: Path, dst: Path, *, stop=None, resume: bool | None = True, **enc) -> object:
    return upscale_file(
        DecodeConfig(str(src)),
        EncodeConfig(str(dst), **enc),
        ModelConfig("bicubic"),
        PipelineConfig(segment_s=0.2),
        stop=stop,
        resume=resume,
    )


def frames_of(path: Path) -> list[tuple[int, bytes]]:
    with av.open(str(path)) as c:
        return [(f.pts, f.to_ndarray().tobytes()) for f in c.decode(video=0)]


def audio_of(path: Path) -> list[tuple[int, int, bytes]]:
    with av.open(str(path)) as c:
        return [(p.pts, p.duration, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]


def test_plan_cuts_at_keyframes_and_covers_everything(gop_clip: Path) -> None:
    spans = plan_segments(str(gop_clip), 0, segment_s=0.2)
    assert len(spans) == 6 and spans[0].start is None and spans[-1].end is None
    assert all(a.end == b.start for a, b in itertools.pairwise(spans))
    with av.open(str(gop_clip)) as c:
        keys = {p.pts for p in c.demux(video=0) if p.is_keyframe}
        pts = [f.pts for f in c.decode(video=0)]
    assert {s.start for s in spans[1:]} <= keys
    assert all(sum(s.holds(t) for s in spans) == 1 for t in pts)  # every frame in exactly one segment


def test_interrupted_lossless_job_resumes_to_the_same_frames(gop_clip: Path, tmp_path: Path) -> None:
    ref, out = tmp_path / "ref.mkv", tmp_path / "out.mkv"
    job(gop_clip, ref, resume=None, **FFV1)  # one uninterrupted pass
    stats = job(gop_clip, out, stop=StopAfter(45), **FFV1)
    work = work_dir_for(str(out))
    assert stats.interrupted and not out.exists() and (work / "job.json").is_file()
    done = [s for s in json.loads((work / "job.json").read_text())["segments"] if s["done"]]
    assert 1 <= len(done) < 6
    stats = job(gop_clip, out, **FFV1)
    assert stats.extra["job"]["resumed_at"] == len(done) and not stats.interrupted
    assert frames_of(out) == frames_of(ref)  # every decoded frame identical, every pts equal
    assert audio_of(out) == audio_of(ref)
    assert not work.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv", "ref.mkv"]


def test_lossy_job_keeps_count_pts_audio_and_duration(gop_clip: Path, tmp_path: Path) -> None:
    ref, out = tmp_path / "ref.mp4", tmp_path / "out.mp4"
    job(gop_clip, ref, resume=None, preset="medium")  # B-frames in the output too
    job(gop_clip, out, stop=StopAfter(60), preset="medium")
    job(gop_clip, out, preset="medium")
    assert [p for p, _ in frames_of(out)] == [p for p, _ in frames_of(ref)]
    assert audio_of(out) == audio_of(ref)
    with av.open(str(out)) as a, av.open(str(ref)) as b:
        assert a.streams.video[0].duration == b.streams.video[0].duration


def test_open_gop_input_loses_and_doubles_nothing(tmp_path: Path) -> None:
    src = make_gop_clip(tmp_path / "open.mp4", [i * 2 for i in range(60)], open_gop=True)
    ref, out = tmp_path / "ref.mkv", tmp_path / "out.mkv"
    job(src, ref, resume=None, **FFV1)
    job(src, out, stop=StopAfter(40), **FFV1)
    job(src, out, **FFV1)
    assert frames_of(out) == frames_of(ref) and len(frames_of(out)) == 60


def test_changed_setting_or_input_refuses_to_resume(gop_clip: Path, tmp_path: Path) -> None:
    src, out = tmp_path / "in.mp4", tmp_path / "out.mkv"
    src.write_bytes(gop_clip.read_bytes())
    job(src, out, stop=StopAfter(45), **FFV1)
    with pytest.raises(ConfigError, match=r"cannot resume .*settings differ.*--no-resume"):
        job(src, out, codec="ffv1", pix_fmt="yuv420p")
    os.utime(src, ns=(time.time_ns(), time.time_ns()))
    with pytest.raises(ConfigError, match="input changed"):
        job(src, out, **FFV1)
    stats = job(src, out, resume=False, **FFV1)  # --no-resume: starts over
    assert stats.extra["job"]["resumed_at"] is None and len(frames_of(out)) == 72


def _cli(src: Path, dst: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vsr", "upscale", str(src), "-o", str(dst), "--model", "bicubic", *extra]


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2.7 s at 160x120, keyframe every 0.5 s: long enough to kill mid-job (0.5 s segments)."""
    return make_gop_clip(
        tmp_path_factory.mktemp("long") / "long.mp4", [i * 2 for i in range(64)], size=(160, 120)
    )


def _done_segments(work: Path) -> int:
    try:
        return sum(s["done"] for s in json.loads((work / "job.json").read_text())["segments"])
    except (OSError, ValueError):
        return 0


CODEC = ["--codec", "ffv1", "--pix-fmt", "yuv444p", "--segment-seconds", "0.5"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def long_ref(long_clip: Path) -> Path:
    """The uninterrupted run of the command the kill tests interrupt."""
    ref = long_clip.with_name("ref.mkv")
    subprocess.run(_cli(long_clip, ref, *CODEC), env=ENV, check=True, capture_output=True, timeout=120)
    return ref


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP])
def test_killed_command_resumes_when_run_again(
    long_clip: Path, long_ref: Path, tmp_path: Path, sig: int
) -> None:
    """SIGKILL (no chance to clean up) or SIGHUP mid-job; the same command again finishes it."""
    dst, env, codec = tmp_path / "o.mkv", ENV, CODEC
    proc = subprocess.Popen(_cli(long_clip, dst, *codec), env=env, stderr=subprocess.PIPE, text=True)
    work, deadline = work_dir_for(str(dst)), time.monotonic() + 60
    while _done_segments(work) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (-9 if sig == signal.SIGKILL else 128 + sig), err
    assert not dst.exists() and _done_segments(work) >= 1
    if sig == signal.SIGHUP:
        assert "Traceback" not in err and "run the same command again to resume" in err
    again = subprocess.run(_cli(long_clip, dst, *codec), env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr
    assert frames_of(dst) == frames_of(long_ref) and audio_of(dst) == audio_of(long_ref)
    assert [p.name for p in tmp_path.iterdir()] == ["o.mkv"]  # no partial file, no work folder


def test_pipes_run_in_one_pass(gop_clip: Path, tmp_path: Path) -> None:
    """stdin/stdout cannot seek: no job, no work folder, the stream as before."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(gop_clip, "rb") as f:
        run = subprocess.run(
            _cli(Path("-"), Path("-"), "--format", "nut", "-q"),
            stdin=f,
            capture_output=True,
            env=env,
            timeout=60,
        )
    assert run.returncode == 0, run.stderr
    out = tmp_path / "p.nut"
    out.write_bytes(run.stdout)
    assert len(frames_of(out)) == 72 and not list(tmp_path.glob(".*vsr-job"))
    assert np.array_equal(
        np.array([p for p, _ in frames_of(out)]) * 0, np.zeros(72, int)
    )  # decodable, every frame


def test_job_settings_name_the_weights_by_sha256(tmp_path):
    """A model file replaced under the same name between two runs must not resume into one output."""
    from vsr.config import DecodeConfig, EncodeConfig, ModelConfig
    from vsr.jobs.job import job_settings
    from vsr.models.catalogue import get_spec

    dec, enc = DecodeConfig(tmp_path / "in.mp4"), EncodeConfig(tmp_path / "out.mp4")
    settings = job_settings(dec, enc, ModelConfig("fast"), None)
    assert settings["weights_sha256"] == get_spec("fast").sha256 is not None
    assert (
        job_settings(dec, enc, ModelConfig("fast-stream"), None)["weights_sha256"]
        != settings["weights_sha256"]
    )
