"""``vsr upscale`` batches: a folder or several inputs into an output folder (issue 13)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import REPO, ClipSpec, make_clip, run_vsr, video_times

from vsr import cli
from vsr.config import EncodeConfig, ModelConfig
from vsr.errors import ConfigError, InputError
from vsr.jobs.batch import FileResult, collect_inputs, output_name, upscale_batch

FRAMES = {"a.mp4": 6, "b.mkv": 5, "c.mov": 4}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three tiny clips, a corrupt .mp4 and a text file."""
    root = tmp_path_factory.mktemp("batch_in")
    for name, n in FRAMES.items():
        make_clip(root / name, ClipSpec(name, width=32, height=24, pts=list(range(n))))
    (root / "broken.mp4").write_bytes(b"not a video " * 20)
    (root / "notes.txt").write_text("not a video either")
    return root


def vsr(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``vsr ARGS`` in this process; returns (exit code, stderr)."""
    code = cli.main(list(args))
    return code, capsys.readouterr().err


def table_rows(err: str) -> dict[str, str]:
    """file name -> the rest of its row in the end-of-batch table."""
    lines = err.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("file "))
    rows = {}
    for line in lines[start + 1 :]:
        name, _, rest = line.partition(" ")
        if name in (*FRAMES, "broken.mp4"):
            rows[name] = rest.strip()
    return rows


def test_folder_batch_done_failed_then_skipped(folder, tmp_path, capsys):
    out = tmp_path / "out"  # created by the batch
    code, err = vsr(capsys, "upscale", str(folder), "-o", str(out), "--model", "bicubic")
    assert code == 3  # the corrupt file's InputError
    rows = table_rows(err)
    assert list(rows) == ["a.mp4", "b.mkv", "broken.mp4", "c.mov"]  # sorted; notes.txt is no video
    for name, n in FRAMES.items():
        assert rows[name].split()[0] == str(n) and rows[name].endswith("done")
        assert len(video_times(out / name)) == n
    assert rows["broken.mp4"].startswith("-") and "failed: cannot read" in rows["broken.mp4"]
    assert [line for line in err.splitlines() if "broken.mp4: failed" in line] == [
        next(line for line in err.splitlines() if line.startswith("vsr: warning: [3/4] broken.mp4"))
    ]
    assert "[1/4] a.mp4" in err and "4 files: 3 done, 1 failed" in err
    assert not (out / "broken.mp4").exists()

    code, err = vsr(capsys, "upscale", str(folder), "-o", str(out), "--model", "bicubic")
    assert code == 3
    rows = table_rows(err)
    assert all(rows[name].endswith("skipped") for name in FRAMES)
    assert "[2/4] b.mkv: skipped" in err and "4 files: 3 skipped, 1 failed" in err

    shutil.copy(folder / "c.mov", out / "a.mp4")  # shorter than a.mp4: an unfinished output
    code, err = vsr(capsys, "upscale", str(folder), "-o", str(out), "--model", "bicubic", "--overwrite")
    assert code == 3 and "4 files: 3 done, 1 failed" in err
    assert len(video_times(out / "a.mp4")) == FRAMES["a.mp4"]


def test_short_output_is_replaced_only_with_overwrite(folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(folder / "c.mov", out / "a.mp4")  # 4 frames where a.mp4 has 6: not complete
    args = ["upscale", str(folder / "a.mp4"), "-o", str(out), "--model", "bicubic"]
    code, err = vsr(capsys, *args)  # one file into an existing folder is a batch of one
    assert code == 4 and "[1/1] a.mp4: failed: output " in err and "exists; pass --overwrite" in err
    code, err = vsr(capsys, *args, "--overwrite")
    assert code == 0 and table_rows(err)["a.mp4"].endswith("done")
    assert len(video_times(out / "a.mp4")) == FRAMES["a.mp4"]


def test_positional_inputs_and_naming(folder, tmp_path, capsys):
    out = tmp_path / "o"
    args = [str(folder / "b.mkv"), str(folder / "a.mp4"), "-o", str(out), "--model", "bicubic"]
    code, err = vsr(capsys, "upscale", *args, "--format", "mpegts")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a.ts", "b.ts"]
    assert list(table_rows(err)) == ["b.mkv", "a.mp4"]  # the order given
    assert len(video_times(out / "b.ts")) == FRAMES["b.mkv"]


def test_output_names():
    mkv = EncodeConfig("t.mkv")
    assert output_name(Path("d/x.mp4"), mkv) == "x.mp4"  # the input's container holds libx264
    assert output_name(Path("x.MOV"), mkv) == "x.MOV"
    assert output_name(Path("x.flv"), mkv) == "x.mkv"  # no container vsr writes
    assert output_name(Path("x.webm"), EncodeConfig("t.mkv", codec="libx264")) == "x.mkv"  # no H.264
    assert output_name(Path("x.webm"), mkv) == "x.webm"  # webm's own default, VP9
    assert output_name(Path("x.mp4"), EncodeConfig("t.mkv", format="matroska")) == "x.mkv"
    assert output_name(Path("x.mkv"), EncodeConfig("t.mkv", format="mp4")) == "x.mp4"


def test_name_clash_fails_the_second(folder, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(folder / "a.mp4", other / "a.mp4")
    out = tmp_path / "out"
    code, err = vsr(
        capsys, "upscale", str(folder / "a.mp4"), str(other / "a.mp4"), "-o", str(out), "--model", "bicubic"
    )
    assert code == 4
    assert "[1/2] a.mp4: done" in err
    assert f"[2/2] a.mp4: failed: same output name as {folder / 'a.mp4'}" in err
    assert [p.name for p in out.iterdir()] == ["a.mp4"]


def test_stdout_and_empty_folders_are_refused(folder, tmp_path, capsys):
    code, err = vsr(capsys, "upscale", str(folder), "-o", "-", "--model", "bicubic")
    assert code == 2 and err.strip().splitlines() == [
        "vsr: error: a batch writes files: -o must name a folder, not - (stdout)"
    ]
    code, err = vsr(capsys, "upscale", str(folder / "a.mp4"), "-", "-o", str(tmp_path), "--model", "bicubic")
    assert code == 2 and "stdin (-) cannot be part of a batch" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = vsr(capsys, "upscale", str(empty), "-o", str(tmp_path / "o"), "--model", "bicubic")
    lines = err.strip().splitlines()
    assert code == 3 and len(lines) == 1
    assert lines[0].startswith(f"vsr: error: no video files in folder {empty} (looked for .3gp .avi")
    (empty / "readme.txt").write_text("x")
    code, err = vsr(capsys, "upscale", str(empty), "-o", str(tmp_path / "o"), "--model", "bicubic")
    assert code == 3 and err.count("\n") == 1 and "no video files in folder" in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(InputError, match="no video files"):
        collect_inputs([empty])
    with pytest.raises(ConfigError, match="not - "):
        upscale_batch([folder], "-", EncodeConfig("t.mkv"), ModelConfig("bicubic"))


def test_stop_ends_the_batch_after_the_current_file(folder, tmp_path):
    stop = threading.Event()
    seen: list[FileResult] = []

    def on_file(n: int, total: int, item: FileResult) -> None:
        seen.append(item)
        if item.status == "running":
            stop.set()  # as Ctrl-C during the first file

    result = upscale_batch(
        [folder / "a.mp4", folder / "b.mkv", folder / "c.mov"],
        tmp_path / "out",
        EncodeConfig("t.mkv"),
        ModelConfig("bicubic"),
        stop=stop,
        on_file=on_file,
    )
    assert [f.status for f in result.files] == ["interrupted", "not started", "not started"]
    assert result.interrupted and result.exit_code == 0
    assert [f.status for f in seen] == ["running", "interrupted", "not started", "not started"]


def test_batch_in_a_subprocess_prints_the_table(folder, tmp_path):
    proc = run_vsr(
        "upscale", str(folder / "a.mp4"), str(folder / "c.mov"), "-o", str(tmp_path), "--model", "bicubic"
    )
    assert proc.returncode == 0, proc.stderr
    assert "[1/2] a.mp4 -> " in proc.stderr and "2 files: 2 done" in proc.stderr
    assert proc.stdout == b""


def test_ctrl_c_stops_after_the_current_file(folder, tmp_path):
    """SIGINT during the first file: it stops cleanly, the rest are listed as not started."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(REPO / "samples" / "scene_480x270.mp4", src / "long.mp4")  # 120 frames: seconds of work
    shutil.copy(folder / "a.mp4", src / "short.mp4")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "vsr",
        "upscale",
        str(src),
        "-o",
        str(tmp_path / "out"),
        "--model",
        "bicubic",
    ]
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stderr is not None
        lines = [proc.stderr.readline()]
        assert "[1/2] long.mp4 ->" in lines[0]
        proc.send_signal(signal.SIGINT)
        lines += proc.stderr.readlines()
    assert proc.returncode == 130, lines
    err = "".join(lines)
    assert "long.mp4: interrupted after" in err
    assert re.search(r"short\.mp4 +- +- +not started", err) and "2 files: 1 interrupted, 1 not started" in err
