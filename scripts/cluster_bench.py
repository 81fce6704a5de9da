"""Cluster benchmark (issue #14): segments on Ray workers against one process, on this machine.

1. ``--workers 2`` (1 inference thread each) against one process with 2 threads, same job
   (``fast``, 320x180 -> 1280x720, libx264 defaults, 2 s segments), alternated ``--rounds`` times:
   wall time with Ray's start, and the job alone.
2. Fixed costs: starting the local Ray runtime and its workers (model loaded), and the per-segment
   hand-off, from one worker running ``bicubic`` (decode + encode only) at several segment
   lengths: wall = segments x overhead + frames x per-frame cost (least squares).
3. A projection to N GPUs from those per-segment figures and the README's H100 figures (a node's
   libx264 encoder is its ceiling): printed and written with the measurements.

    python scripts/cluster_bench.py --json docs/results/cluster_cpu.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from vsr.cluster.pool import WorkerPool
from vsr.config import ClusterConfig, DecodeConfig, EncodeConfig, ModelConfig, PipelineConfig
from vsr.pipeline import upscale_file

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "slow_traffic_small.mp4"

H100 = {  # README, "Speed on an H100 (480x270 -> 1920x1080, FP16)", 16 CPU cores per node
    "x264_node_fps": 214.2,  # the x264 encoder alone: the ceiling of a node without NVENC
    "frames_fps": {"fast": 612.0, "compact": 337.0, "srgan": 95.0},  # uint8 in -> uint8 out, one GPU
}


def make_clip(dst: Path, seconds: float, keyint: int) -> Path:
    """``seconds`` of a real clip (REAL) at 320x180, 30 fps, H.264 with a keyframe every ``keyint``."""
    with av.open(str(REAL)) as src, av.open(str(dst), "w") as out:
        v = out.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 320, 180, "yuv420p"
        v.codec_context.options = {
            "preset": "fast",
            "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0",
        }
        for i, frame in enumerate(src.decode(video=0)):
            if i >= seconds * 30:
                break
            small = frame.reformat(width=320, height=180, format="yuv420p")
            small.pts, small.time_base = i, Fraction(1, 30)
            out.mux(v.encode(small))
        out.mux(v.encode(None))
    return dst


def job(src: Path, dst: Path, model: ModelConfig, segment_s: float, **kw: Any) -> tuple[float, Any]:
    """Wall seconds and statistics of one file job (a fresh one: ``--no-resume``)."""
    started = time.perf_counter()
    stats = upscale_file(
        DecodeConfig(str(src)),
        EncodeConfig(str(dst), overwrite=True),
        model,
        PipelineConfig(segment_s=segment_s),
        resume=False,
        **kw,
    )
    return time.perf_counter() - started, stats


def compare(src: Path, tmp: Path, rounds: int, model: str) -> dict[str, Any]:
    """Part 1: one process (2 threads) against 2 workers (1 thread each), alternated."""
    rows: list[dict[str, Any]] = []
    for r in range(rounds):
        wall, stats = job(src, tmp / "one.mp4", ModelConfig(model, threads=2), 2.0)
        rows.append({"round": r, "case": "1 process, 2 threads", "wall_s": wall, "job_s": stats.seconds})
        wall, stats = job(
            src, tmp / "two.mp4", ModelConfig(model, threads=1), 2.0, cluster=ClusterConfig(workers=2)
        )
        start = stats.extra["cluster"]["start_s"]
        rows.append(
            {
                "round": r,
                "case": "2 workers, 1 thread each",
                "wall_s": wall,
                "job_s": stats.seconds,
                "ray_start_s": start,
            }
        )
        print(rows[-2], rows[-1], sep="\n")
    frames = stats.frames_out
    per_frame = (tmp / "two.mp4").stat().st_size / frames  # what each segment hands back, per frame
    return {
        "frames": frames,
        "model": model,
        "bytes_per_frame": round(per_frame),
        "rows": rows,
        "summary": _summary(rows, frames),
    }


def _summary(rows: list[dict[str, Any]], frames: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case in sorted({r["case"] for r in rows}):
        mine = [r for r in rows if r["case"] == case]
        wall, job_s = np.median([r["wall_s"] for r in mine]), np.median([r["job_s"] for r in mine])
        out[case] = {
            "wall_s": round(float(wall), 2),
            "fps_wall": round(frames / wall, 2),
            "fps_job": round(frames / job_s, 2),
        }
        if "ray_start_s" in mine[0]:
            out[case]["ray_start_s"] = round(float(np.median([r["ray_start_s"] for r in mine])), 2)
    return out


def overhead(src: Path, tmp: Path, lengths: list[float]) -> dict[str, Any]:
    """Part 2: per-segment hand-off cost, from one bicubic worker at several segment lengths."""
    points = []
    with WorkerPool.open(ClusterConfig(workers=1), ModelConfig("bicubic")) as pool:
        start_s = pool.start_s
        job(src, tmp / "warm.mp4", ModelConfig("bicubic"), 4.0, pool=pool)  # first-call costs
        for seconds in lengths:
            wall, stats = job(src, tmp / "seg.mp4", ModelConfig("bicubic"), seconds, pool=pool)
            w = stats.extra["workers"][0]
            points.append(
                {
                    "segment_s": seconds,
                    "segments": w["segments"],
                    "frames": w["frames"],
                    "job_s": stats.seconds,
                    "worker_s": w["busy_s"],
                    "wall_s": wall,
                }
            )
            print(points[-1])
    _, one = job(src, tmp / "one.mp4", ModelConfig("bicubic"), 3600.0)  # one segment, one process
    return {
        "ray_start_s": start_s,
        "points": points,
        "fit": _fit(points),
        "one_process_bicubic_fps": one.frames_out / one.seconds,
    }


def _fit(points: list[dict[str, Any]]) -> dict[str, float]:
    """job_s = segments x a + frames x b (and the worker's own share of a), least squares."""
    a = np.array([[p["segments"], p["frames"]] for p in points], dtype=float)
    job_s = np.linalg.lstsq(a, np.array([p["job_s"] for p in points]), rcond=None)[0]
    worker = np.linalg.lstsq(a, np.array([p["worker_s"] for p in points]), rcond=None)[0]
    return {
        "per_segment_s": round(float(job_s[0]), 4),
        "per_frame_ms": round(float(job_s[1]) * 1000, 3),
        "per_segment_in_worker_s": round(float(worker[0]), 4),
        "per_segment_driver_and_transfer_s": round(float(job_s[0] - worker[0]), 4),
    }


def projection(per_segment_s: float, start_s: float, clip_s: float = 600.0) -> list[dict[str, Any]]:
    """Part 3: frames/s of N H100 GPUs (8 per node) from the measured per-segment overhead o.

    Each GPU worker runs at r_eff = min(r, nodes*C/N): its GPU's frames/s r, or its share of the
    node's x264 ceiling C. An L-second 30 fps segment keeps it busy L*30/r_eff s, plus o:
    efficiency E = busy / (busy + o); steady state runs at N * r_eff * E. A ``clip_s`` clip
    (S = clip_s/L segments) takes start + ceil(S/N) waves of (busy + o): the last wave's idle
    workers and the start-up cost are what a short job pays."""
    rows = []
    c = H100["x264_node_fps"]
    for model, r in H100["frames_fps"].items():
        for gpus in (1, 2, 4, 8, 16, 64):
            nodes = -(-gpus // 8)
            r_eff = min(r, nodes * c / gpus)
            for seconds in (1.0, 4.0, 16.0):
                busy = seconds * 30 / r_eff
                eff = busy / (busy + per_segment_s)
                wall = start_s + -(-int(clip_s / seconds) // gpus) * (busy + per_segment_s)
                rows.append(
                    {
                        "model": model,
                        "gpus": gpus,
                        "nodes": nodes,
                        "segment_s": seconds,
                        "fps": round(gpus * r_eff * eff, 1),
                        "efficiency": round(eff, 3),
                        "limit": "encoder" if r_eff < r else "GPU",
                        f"clip_{clip_s:g}s_wall_s": round(wall, 1),
                        f"clip_{clip_s:g}s_fps": round(clip_s * 30 / wall, 1),
                    }
                )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=12.0, help="clip length (default 12)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--model", default="fast")
    p.add_argument("--lengths", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0])
    p.add_argument("--json", default=None)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        src = make_clip(tmp / "clip.mp4", args.seconds, keyint=15)
        result: dict[str, Any] = {
            "clip": f"{REAL.name}, first {args.seconds:g} s at 320x180, 30 fps, keyframe every 0.5 s"
        }
        result["overhead"] = overhead(src, tmp, args.lengths)
        result["compare"] = compare(src, tmp, args.rounds, args.model)
    fit = result["overhead"]["fit"]
    result["projection"] = projection(
        fit["per_segment_s"], result["compare"]["summary"]["2 workers, 1 thread each"]["ray_start_s"]
    )
    print(json.dumps(result["compare"]["summary"], indent=1))
    print(json.dumps(result["overhead"]["fit"], indent=1))
    for row in result["projection"]:
        if row["segment_s"] == 4.0:
            print(row)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
