"""Segments on Ray workers (a real local Ray runtime on 127.0.0.1, 2 CPUs): the output equals a
single-process run (ffv1: every frame and pts; audio packets), a worker killed mid-job loses and
doubles nothing, an interrupted driver resumes, a batch with a corrupt file fails that file only.

One runtime is started for the module and shut down at its end; every pool ends its own actors.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from conftest import REPO, SHARED_VIDEO
from test_jobs import audio_of, frames_of, make_gop_clip

from vsr import cli
from vsr.config import ClusterConfig, DecodeConfig, EncodeConfig, ModelConfig, PipelineConfig
from vsr.jobs.manifest import work_dir_for
from vsr.pipeline import upscale_file

FFV1 = ["--codec", "ffv1", "--pix-fmt", "yuv444p", "--segment-seconds", "0.5", "--model", "bicubic"]
BICUBIC = ModelConfig("bicubic")


@pytest.fixture(scope="module")
def ray_runtime():
    """One local Ray runtime on loopback for the module (vsr uses a runtime it finds running)."""
    ray = pytest.importorskip("ray", reason="the cluster tests need Ray: pip install 'vsr[cluster]'")
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        logging_level=logging.ERROR,
        log_to_driver=False,
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2.7 s at 160x120, uneven frame steps, a keyframe every 12 frames, AAC audio: 5 segments."""
    pts = [i * 2 + (1 if i % 5 == 2 else 0) for i in range(64)]
    return make_gop_clip(tmp_path_factory.mktemp("cluster") / "vfr.mp4", pts, size=(160, 120))


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s at 160x120, a keyframe every 0.5 s: 8 segments, enough to kill a worker mid-job."""
    return make_gop_clip(
        tmp_path_factory.mktemp("cluster") / "long.mp4", [i * 2 for i in range(96)], size=(160, 120)
    )


def vsr(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(list(args))
    return code, capsys.readouterr().err


def job(src: Path, dst: Path, **kw: object) -> object:
    return upscale_file(
        DecodeConfig(str(src)),
        EncodeConfig(str(dst), codec="ffv1", pix_fmt="yuv444p"),
        BICUBIC,
        PipelineConfig(segment_s=0.5),
        resume=True,
        **kw,
    )


def same_output(out: Path, ref: Path) -> bool:
    return frames_of(out) == frames_of(ref) and audio_of(out) == audio_of(ref)


def test_workers_equal_one_process_on_a_vfr_clip(ray_runtime, vfr_clip, tmp_path, capsys) -> None:
    ref, out, stats = tmp_path / "ref.mkv", tmp_path / "out.mkv", tmp_path / "stats.json"
    assert vsr(capsys, "upscale", str(vfr_clip), "-o", str(ref), *FFV1)[0] == 0
    code, err = vsr(
        capsys, "upscale", str(vfr_clip), "-o", str(out), *FFV1, "--workers", "2", "--json-stats", str(stats)
    )
    assert code == 0, err
    assert "on 2 workers" in err
    assert same_output(out, ref) and len(frames_of(out)) == 64
    data = json.loads(stats.read_text())
    assert data["frames_out"] == 64 and data["cluster"]["workers"] == 2
    assert [w["worker"] for w in data["workers"]] == [0, 1]
    assert (
        sum(w["frames"] for w in data["workers"]) == 64
        and sum(w["segments"] for w in data["workers"]) == data["job"]["segments"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv", "ref.mkv", "stats.json"]


def _real_clip(dst: Path, seconds: float) -> Path:
    """The first ``seconds`` of a real clip with audio, stream-copied (cut by decode time)."""
    src = SHARED_VIDEO / "short_hamilton_clip.mp4"
    if not src.is_file():
        pytest.skip(f"real clip {src} is not here")
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        streams = [inp.streams.video[0], inp.streams.audio[0]]
        outs = {s.index: out.add_stream_from_template(s) for s in streams}
        for packet in inp.demux(streams):
            if packet.dts is None or packet.dts * packet.time_base >= seconds:
                continue
            packet.stream = outs[packet.stream_index]
            out.mux(packet)
    return dst


def test_workers_equal_one_process_on_a_real_clip(ray_runtime, tmp_path, capsys) -> None:
    """H.264 starting at its first keyframe (0.85 s) with AAC, cut at 3.5 s: two segments, 640x360 out."""
    src = _real_clip(tmp_path / "real.mp4", 3.5)
    ref, out = tmp_path / "ref.mkv", tmp_path / "out.mkv"
    small = ["--width", "640"]  # the 4x frames area-resized back: fast to encode, still every pixel compared
    assert vsr(capsys, "upscale", str(src), "-o", str(ref), *FFV1, *small)[0] == 0
    code, err = vsr(capsys, "upscale", str(src), "-o", str(out), *FFV1, *small, "--workers", "2")
    assert code == 0, err
    assert same_output(out, ref) and len(frames_of(out)) > 70


def _when_done(work: Path, segments: int, action, deadline_s: float = 60.0) -> threading.Thread:
    """Run ``action`` as soon as the job in ``work`` has ``segments`` done (in a thread)."""

    def watch() -> None:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            try:
                done = sum(s["done"] for s in json.loads((work / "job.json").read_text())["segments"])
            except (OSError, ValueError):
                done = 0
            if done >= segments:
                action()
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_killed_worker_loses_and_doubles_nothing(ray_runtime, long_clip, tmp_path) -> None:
    from vsr.cluster.pool import WorkerPool

    ref, out = tmp_path / "ref.mkv", tmp_path / "out.mkv"
    job(long_clip, ref)
    with WorkerPool.open(ClusterConfig(workers=2), BICUBIC) as pool:
        victim = pool.pids()[0]
        assert victim is not None and victim != os.getpid()
        watcher = _when_done(work_dir_for(str(out)), 1, lambda: os.kill(victim, signal.SIGKILL))
        stats = job(long_clip, out, pool=pool)
        watcher.join()
        assert pool.pids()[0] != victim  # the slot holds a fresh worker
    assert stats.extra["cluster"]["lost_segments"] >= 1 and stats.extra["workers"][0]["replaced"] == 1
    assert same_output(out, ref) and stats.frames_out == 96
    assert stats.extra["job"]["segments_done"] == 8


def test_interrupted_driver_resumes_every_done_segment(ray_runtime, long_clip, tmp_path) -> None:
    from vsr.cluster.pool import WorkerPool

    ref, out = tmp_path / "ref.mkv", tmp_path / "out.mkv"
    job(long_clip, ref)
    stop = threading.Event()
    with WorkerPool.open(ClusterConfig(workers=2), BICUBIC) as pool:
        watcher = _when_done(work_dir_for(str(out)), 2, stop.set)
        first = job(long_clip, out, pool=pool, stop=stop)
        watcher.join()
        assert first.interrupted and not out.exists()
        done = first.extra["job"]["segments_done"]
        assert 2 <= done < 8
        again = job(long_clip, out, pool=pool)
    assert not again.interrupted and again.frames_out == 96
    assert sum(w["segments"] for w in again.extra["workers"]) == 8 - done  # only the rest ran
    assert same_output(out, ref) and not work_dir_for(str(out)).exists()


def test_batch_on_workers_fails_the_corrupt_file_only(ray_runtime, vfr_clip, tmp_path, capsys) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for name in ("a.mp4", "c.mp4"):
        (folder / name).write_bytes(vfr_clip.read_bytes())
    (folder / "b.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    code, err = vsr(capsys, "upscale", str(folder), "-o", str(out), *FFV1, "--workers", "2")
    assert code == 3, err
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "c.mp4"], err
    failed = [line for line in err.splitlines() if "failed" in line and "b.mp4" in line]
    assert len(failed) == 2 and failed[0].startswith("vsr: warning: [2/3] b.mp4: failed: "), (
        err
    )  # log + table
    assert frames_of(out / "a.mp4") == frames_of(out / "c.mp4") and len(frames_of(out / "a.mp4")) == 64


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def two_nodes(logs: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A head and a second node started with `ray start` on loopback (1 CPU each); yields the
    address and the environment to join with. Both are stopped by their pid (SIGTERM: `ray start
    --block` then ends every process it started)."""
    pytest.importorskip("ray", reason="the cluster tests need Ray: pip install 'vsr[cluster]'")
    ray_cli = str(Path(sys.executable).with_name("ray"))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # else the second node's token is refused
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--block"]
    commands = {
        "head": [ray_cli, "start", "--head", "--port", str(port), "--include-dashboard", "false", *common],
        "node": [ray_cli, "start", "--address", address, *common],
    }
    procs: list[subprocess.Popen] = []
    try:
        for name, command in commands.items():
            log = logs / f"ray-{name}.log"
            with open(log, "w") as f:
                procs.append(subprocess.Popen(command, env=env, stdout=f, stderr=subprocess.STDOUT))
            _wait_for(log, "Ray runtime started", procs[-1])
        yield address, env
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_for(log: Path, text: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and proc.poll() is None:
        if text in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    pytest.fail(f"`ray start` did not start in {timeout_s:.0f} s: {log.read_text(errors='replace')[-2000:]}")


def test_two_node_cluster_equals_one_process(vfr_clip, tmp_path) -> None:
    """`--cluster HEAD` on a head and a second node: a worker on each, the same output."""
    ref, out, stats = tmp_path / "ref.mkv", tmp_path / "out.mkv", tmp_path / "stats.json"
    job(vfr_clip, ref)
    with two_nodes(tmp_path) as (address, env):
        args = [
            "upscale",
            str(vfr_clip),
            "-o",
            str(out),
            *FFV1,
            "--cluster",
            address,
            "--json-stats",
            str(stats),
        ]
        proc = subprocess.run(
            [sys.executable, "-m", "vsr", *args],
            env={**env, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    assert "2 workers (1 CPU each) on 2 nodes" in proc.stderr
    data = json.loads(stats.read_text())
    assert len({w["node"] for w in data["workers"]}) == 2 and all(w["segments"] for w in data["workers"])
    assert same_output(out, ref)
    assert sorted(p.name for p in tmp_path.glob("*.mkv")) == ["out.mkv", "ref.mkv"]


def test_without_ray_the_flag_says_how_to_install_it(vfr_clip, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    for flag in (["--workers", "2"], ["--cluster", "127.0.0.1:1"]):
        code, err = vsr(capsys, "upscale", str(vfr_clip), "-o", str(tmp_path / "o.mkv"), *FFV1, *flag)
        assert code == 2
        assert err == f"vsr: error: {flag[0]} needs Ray: pip install 'vsr[cluster]'\n"
        assert not (tmp_path / "o.mkv").exists() and not work_dir_for(str(tmp_path / "o.mkv")).exists()


def test_vsr_imports_no_ray() -> None:
    """Ray loads only when --workers / --cluster run."""
    code = "import sys, vsr, vsr.cli, vsr.cluster.driver; assert 'ray' not in sys.modules"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_a_segment_error_is_the_worker_s_own_one_line(ray_runtime, tmp_path) -> None:
    """What a segment raises on its worker (here: an input it cannot read) reaches the driver as
    that error, not as Ray's wrapper with a remote traceback."""
    from vsr.cluster.pool import unwrap
    from vsr.cluster.worker import SegmentTask, SegmentWorker
    from vsr.errors import InputError
    from vsr.jobs.plan import Span

    worker = ray_runtime.remote(SegmentWorker).options(num_cpus=1).remote(BICUBIC)
    task = SegmentTask(
        DecodeConfig(str(tmp_path / "gone.mp4")), EncodeConfig(str(tmp_path / "o.mkv")), Span(0, None, None)
    )
    with pytest.raises(ray_runtime.exceptions.RayTaskError) as caught:
        ray_runtime.get(worker.run.remote(task))
    error = unwrap(caught.value)
    assert isinstance(error, InputError) and "gone.mp4" in str(error) and "\n" not in str(error)
    ray_runtime.kill(worker)


def test_a_worker_with_other_weights_fails_the_job_in_one_line(ray_runtime, tmp_path, monkeypatch) -> None:
    """A node whose ``--model`` resolves to other weights than the driver's refuses to start: the
    job fails with that line (here the driver is made to expect other weights)."""
    pytest.importorskip("onnxruntime")
    from tiny_onnx import tiny_onnx

    from vsr.cluster import pool
    from vsr.cluster.identity import WorkerModel
    from vsr.errors import ModelError

    path = tiny_onnx(tmp_path / "x2.onnx")
    model = ModelConfig(str(path), "onnx", threads=1)
    monkeypatch.setattr(pool, "for_workers", lambda m: WorkerModel(m, "ab" * 32))
    opening = pool.WorkerPool.open(ClusterConfig(workers=1), model)
    with pytest.raises(ModelError, match="is not the driver's: its weights' sha256 is") as caught:
        opening.__enter__()
    assert "\n" not in str(caught.value)
