"""The ``vsr`` command line: sub-commands, pipes, JSON stats, and the eval wiring."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import av
import pytest
from conftest import REPO, packets_of, run_vsr, video_times

from vsr import cli
from vsr.models.catalogue import model_names


def remux(src: Path, dst: Path, fmt: str) -> bytes:
    """``src`` copied packet for packet into a ``fmt`` container; returns its bytes."""
    with av.open(str(src)) as i, av.open(str(dst), "w", format=fmt) as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for packet in i.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            o.mux(packet)
    return dst.read_bytes()


def test_models_lists_the_catalogue():
    proc = run_vsr("models")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    for name in model_names():
        assert name in out


def test_help_and_version():
    assert run_vsr("--version").stdout.decode().startswith("vsr ")
    proc = run_vsr("upscale", "--help")
    assert proc.returncode == 0 and b"--json-stats" in proc.stdout and b"--tile" in proc.stdout


def test_missing_command_is_one_line():
    proc = run_vsr()
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("vsr: error:")


def test_upscale_writes_json_stats_and_logs_to_stderr(clips, tmp_path):
    dst, stats = tmp_path / "o.mkv", tmp_path / "stats.json"
    proc = run_vsr(
        "upscale", str(clips["vfr_aac.mp4"]), "-o", str(dst), "--model", "bicubic", "--json-stats", str(stats)
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b""
    assert "wrote" in proc.stderr and "\r" not in proc.stderr  # no progress bar: stderr is no TTY
    doc = json.loads(stats.read_text())
    assert doc["frames_in"] == doc["frames_out"] == len(video_times(clips["vfr_aac.mp4"]))
    assert doc["fps"] > 0 and doc["seconds"] > 0
    assert all({"p50_ms", "p95_ms"} <= set(doc["stages"][s]) for s in ("decode", "infer", "encode"))


@pytest.mark.parametrize("fmt", ["nut", "mpegts", "matroska", "mp4"])
def test_pipe_stdin_to_stdout(clips, tmp_path, fmt):
    src = tmp_path / "in.nut"
    data = remux(clips["cfr_aac.mp4"], src, "nut")
    proc = run_vsr("upscale", "-", "-o", "-", "--format", fmt, "--model", "bicubic", stdin=data)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out.bin"
    out.write_bytes(proc.stdout)
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.width, v.height) == (256, 192)
    times, want = video_times(out), video_times(src)
    assert len(times) == len(want)
    if fmt != "matroska":
        # nut, mpegts and fragmented mp4 cannot start below 0: FFmpeg shifts every stream by the
        # encoder's B-frame delay (mpegts adds 1.4 s), so timing is exact relative to the first frame
        times = [t - times[0] + want[0] for t in times]
    assert all(abs(t - w) < 0.001 for t, w in zip(times, want, strict=True))
    audio = packets_of(out, "audio")
    if fmt == "mpegts":  # the muxer frames raw AAC in 7-byte ADTS headers; the payload is untouched
        audio = [p[7:] for p in audio]
    assert audio == packets_of(src, "audio")


def test_quiet_prints_nothing_on_success(clips, tmp_path):
    proc = run_vsr(
        "upscale", str(clips["cfr_noaudio.mp4"]), "-o", str(tmp_path / "o.mp4"), "--model", "bicubic", "-q"
    )
    assert proc.returncode == 0 and proc.stderr == ""


def test_eval_wires_to_vsr_evaluate(monkeypatch, tmp_path, capsys):
    calls = []

    def evaluate(model: str, data: Path, backend: str) -> dict:
        calls.append((model, data, backend))
        return {"model": model, "sets": {"Set5": {"psnr_y": 30.0}}}

    fake = types.ModuleType("vsr.evaluate")
    fake.evaluate = evaluate
    fake.format_table = lambda result: f"TABLE {result['model']}"
    monkeypatch.setitem(sys.modules, "vsr.evaluate", fake)
    out = tmp_path / "r.json"
    code = cli.main(["eval", "--model", "bicubic", "--data", str(tmp_path), "--json", str(out)])
    assert code == 0
    assert calls == [("bicubic", tmp_path, "auto")]
    assert "TABLE bicubic" in capsys.readouterr().out
    assert json.loads(out.read_text())["sets"]["Set5"]["psnr_y"] == 30.0


def test_eval_unknown_model_is_one_line(capsys):
    assert cli.main(["eval", "--model", "nope", "--data", "."]) == 2
    assert capsys.readouterr().err.startswith("vsr: error: unknown model 'nope'")


def test_reader_of_stdout_quits(clips):
    """``vsr ... -o - | head -c 2000``: one clear line, no traceback."""
    cmd = [
        sys.executable,
        "-m",
        "vsr",
        "upscale",
        str(clips["faststart_aac.mp4"]),
        "-o",
        "-",
        "--model",
        "bicubic",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [*cmd, "--format", "nut", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    proc.stdout.read(2000)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert err.strip().splitlines() == [
        "vsr: error: the output pipe was closed before the video was finished"
    ]
