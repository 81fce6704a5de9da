"""Bad input, bad options and interruptions: one clear stderr line, the right exit code, no traceback.

Each case runs the real command (``python -m vsr``) in a subprocess.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from conftest import REPO, ClipSpec, make_clip, run_vsr, video_times

from vsr.errors import ConfigError, InputError, OutputError


def assert_one_error(proc: subprocess.CompletedProcess, code: int, phrase: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("vsr: error: ") and phrase in lines[0], lines[0]


def up(src: Path | str, dst: Path | str, *extra: str) -> subprocess.CompletedProcess:
    return run_vsr("upscale", str(src), "-o", str(dst), "--model", "bicubic", *extra)


@pytest.fixture
def junk(tmp_path: Path) -> dict[str, Path]:
    files = {
        "empty.mp4": b"",
        "random.mp4": os.urandom(4096),
        "notes.txt": b"hello\nthis is not a video\n" * 20,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in files}


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("missing.mp4", "input file not found"),
        ("empty.mp4", "input file is empty"),
        ("random.mp4", "cannot read"),
        ("notes.txt", "cannot read"),
    ],
)
def test_unreadable_inputs(junk, tmp_path, name, phrase):
    proc = up(junk.get(name, tmp_path / name), tmp_path / "out.mp4")
    assert_one_error(proc, InputError.exit_code, phrase)
    assert not (tmp_path / "out.mp4").exists()


def test_audio_only_input(clips, tmp_path):
    assert_one_error(up(clips["audio_only.m4a"], tmp_path / "o.mp4"), InputError.exit_code, "no video stream")


def test_output_exists_then_overwrite(clips, tmp_path):
    dst = tmp_path / "o.mp4"
    dst.write_bytes(b"keep me")
    assert_one_error(up(clips["cfr_noaudio.mp4"], dst), OutputError.exit_code, "exists; pass --overwrite")
    assert dst.read_bytes() == b"keep me"
    proc = up(clips["cfr_noaudio.mp4"], dst, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert len(video_times(dst)) == 12


@pytest.mark.parametrize("where", ["missing_dir/o.mp4", "a_file/o.mp4"])
def test_unwritable_output(clips, tmp_path, where):
    (tmp_path / "a_file").write_text("x")
    assert_one_error(up(clips["cfr_noaudio.mp4"], tmp_path / where), OutputError.exit_code, "cannot write")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(clips, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    assert_one_error(up(clips["cfr_noaudio.mp4"], ro / "o.mp4"), OutputError.exit_code, "permission denied")


@pytest.mark.parametrize(
    ("extra", "code", "phrase"),
    [
        (("--model", "nope"), ConfigError.exit_code, "unknown model 'nope'"),
        (("--backend", "nope"), ConfigError.exit_code, "unknown backend 'nope'"),
        (("--codec", "nope"), ConfigError.exit_code, "unknown codec 'nope'"),
        (("--codec", "aac"), ConfigError.exit_code, "not a video encoder"),
        (("--preset", "warp"), ConfigError.exit_code, "unknown preset 'warp'"),
        (("--crf", "99"), ConfigError.exit_code, "crf must be"),
        (("--batch", "0"), ConfigError.exit_code, "batch must be"),
        (("--tile", "x"), 2, "invalid int value"),
        (("--pix-fmt", "nv12", "--codec", "libvpx-vp9"), ConfigError.exit_code, "cannot encode pix_fmt"),
    ],
)
def test_bad_options(clips, tmp_path, extra, code, phrase):
    proc = run_vsr("upscale", str(clips["cfr_noaudio.mp4"]), "-o", str(tmp_path / "o.mp4"), *extra)
    assert_one_error(proc, code, phrase)


@pytest.mark.parametrize(("out", "codec"), [("o.webm", "libx264"), ("o.mov", "libvpx-vp9"), ("o.xyz", None)])
def test_codec_or_container_refused(clips, tmp_path, out, codec):
    extra = ("--codec", codec) if codec else ()
    proc = up(clips["cfr_noaudio.mp4"], tmp_path / out, *extra)
    if codec:
        assert_one_error(proc, OutputError.exit_code, "container cannot hold")
    else:
        assert_one_error(proc, ConfigError.exit_code, "cannot tell the container")
    assert list(tmp_path.iterdir()) == []


def test_encoder_without_hardware(clips, tmp_path):
    proc = up(clips["cfr_noaudio.mp4"], tmp_path / "o.mp4", "--codec", "h264_nvenc")
    if proc.returncode == 0:
        pytest.skip("NVENC works on this machine")
    assert_one_error(proc, ConfigError.exit_code, "cannot start on this machine")


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_truncated_input_is_finished_with_warning(clips, tmp_path, ext):
    src = clips["faststart_aac.mp4"] if ext == "mp4" else clips["vfr_opus_srt.mkv"]
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size * 6 // 10])
    dst = tmp_path / f"o.{ext}"
    proc = up(cut, dst)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "truncated" in proc.stderr
    times = video_times(dst)
    assert 0 < len(times) < len(video_times(src))
    assert times == video_times(src)[: len(times)]


@pytest.fixture(scope="module")
def slow_clip(tmp_path_factory) -> Path:
    """320x240, 200 frames: several seconds of 4x encoding, long enough to interrupt."""
    spec = ClipSpec("slow", width=320, height=240, pts=list(range(200)), audio="aac")
    return make_clip(tmp_path_factory.mktemp("slow") / "slow.mp4", spec)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signal_keeps_the_job_and_the_same_command_finishes_it(slow_clip, tmp_path, sig, code):
    """A signal mid-run: one line, its exit code, no partial file under any name, the job kept;
    the same command again writes the whole output (every pts of the input, audio kept).
    (Before file jobs, an interrupted run left a playable partial output; issue 13 asks that the
    final name never hold a partial file and that the same command resume.)"""
    dst = tmp_path / "o.mp4"
    cmd = [sys.executable, "-m", "vsr", "upscale", str(slow_clip), "-o", str(dst), "--model", "bicubic"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, env=env, text=True)
    work = tmp_path / ".o.mp4.vsr-job"
    deadline = time.monotonic() + 30
    while not (work.is_dir() and any(work.glob(".seg_*"))) and time.monotonic() < deadline:
        time.sleep(0.05)  # the first segment is being written
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "run the same command again to resume" in err
    assert not dst.exists() and not list(tmp_path.glob(".o.partial*")) and (work / "job.json").is_file()
    again = subprocess.run(cmd, capture_output=True, env=env, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert video_times(dst) == video_times(slow_clip)
    with av.open(str(dst)) as c:
        assert c.streams.audio, "audio kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]


def test_model_without_weights(clips, tmp_path, monkeypatch, capsys):
    """A build missing a model's weights file: one error line naming it, no output left behind."""
    from vsr import cli
    from vsr.errors import ModelError
    from vsr.models import spec as spec_module

    monkeypatch.setattr(spec_module, "WEIGHTS_DIR", tmp_path / "no-weights")  # as if none were shipped
    out = tmp_path / "out"
    out.mkdir()
    code = cli.main(
        ["upscale", str(clips["cfr_noaudio.mp4"]), "-o", str(out / "o.mp4"), "--model", "srgan", "-q"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == ModelError.exit_code and len(err) == 1, err
    assert err[0].startswith("vsr: error: ") and "no trained weights" in err[0]
    assert list(out.iterdir()) == []
