"""``vsr bench``: model-only and end-to-end frames/s for models x backends x sizes, with baselines.

Model-only time is ``backend.infer`` on a batch of uint8 frames (the full frame path: colour
handling, padding, network, back to uint8), after warm-up. End-to-end time is a real
decode -> upscale -> encode run of a clip at that size through :mod:`vsr.pipeline`. Baselines in
the same run: the ``bicubic`` model and, when an ``ffmpeg`` binary is on PATH, the same clip through
``ffmpeg -vf scale=iw*4:ih*4:flags=bicubic`` with the same encoder settings.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError, VsrError
from .sysinfo import RssSampler, machine_info

__all__ = ["BenchConfig", "bench_model", "format_report", "parse_size", "run_bench"]

log = logging.getLogger(__name__)


def parse_size(text: str) -> tuple[int, int]:
    """``"320x180"`` -> (320, 180); raises ConfigError naming the value."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"size must look like WIDTHxHEIGHT (e.g. 320x180), got {text!r}") from None
    if not (8 <= w <= 8192 and 8 <= h <= 8192):
        raise ConfigError(f"size {text!r} is out of range (8..8192 per side)")
    return w, h


@dataclass(frozen=True)
class BenchConfig:
    """What to measure. ``sizes`` are input (width, height); ``frames`` timed frames per case."""

    models: tuple[str, ...] = ("bicubic", "fast")
    backends: tuple[str, ...] = ("auto",)
    sizes: tuple[tuple[int, int], ...] = ((320, 180),)
    frames: int = 50
    warmup: int = 5
    batch: int = 1
    end_to_end: bool = True
    input: Path | None = None
    codec: str = "libx264"
    preset: str = "veryfast"
    crf: int = 23
    extra: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.frames < 1 or self.warmup < 0 or self.batch < 1:
            raise ConfigError(
                f"frames, warmup, batch must be positive, got {self.frames}, {self.warmup}, {self.batch}"
            )


def _percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p95_ms": float(np.percentile(a, 95)),
        "mean_ms": float(a.mean()),
    }


def _gpu_peak_mb() -> float | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def bench_model(model: str, backend: str, size: tuple[int, int], cfg: BenchConfig) -> dict[str, object]:
    """Time ``backend.infer`` on (batch, h, w, 3) uint8 frames; per-frame p50/p95 ms, fps, memory."""
    from .backends import create_backend

    w, h = size
    frames = np.random.default_rng(0).integers(0, 256, (cfg.batch, h, w, 3), dtype=np.uint8)
    with RssSampler() as rss:
        b = create_backend(backend, model)
        try:
            b.prepare(h, w, cfg.batch)
            for _ in range(cfg.warmup):
                b.infer(frames)
            times: list[float] = []
            done = 0
            start = time.perf_counter()
            while done < cfg.frames:
                t0 = time.perf_counter()
                b.infer(frames)
                times.append((time.perf_counter() - t0) * 1000 / cfg.batch)
                done += cfg.batch
            seconds = time.perf_counter() - start
            name = b.name
        finally:
            b.close()
    return {
        "model": model,
        "backend": backend,
        "backend_used": name,
        "size": f"{w}x{h}",
        "out_size": f"{4 * w}x{4 * h}",
        "model_fps": done / seconds,
        **{f"model_{k}": v for k, v in _percentiles(times).items()},
        "peak_rss_mb": rss.peak_mb,
        "gpu_peak_mb": _gpu_peak_mb(),
    }


def run_bench(cfg: BenchConfig) -> dict[str, object]:
    """Run every model x backend x size case (plus baselines); returns the JSON-able report."""
    results: list[dict[str, object]] = []
    for size in cfg.sizes:
        clip = _make_clip(cfg, size) if cfg.end_to_end else None
        for model in cfg.models:
            for backend in cfg.backends if model != "bicubic" else ("auto",):
                log.info("bench %s / %s at %dx%d", model, backend, *size)
                try:
                    row = bench_model(model, backend, size, cfg)
                    if clip is not None:
                        row.update(_bench_e2e(model, backend, clip, cfg))
                except VsrError as exc:
                    row = {
                        "model": model,
                        "backend": backend,
                        "size": f"{size[0]}x{size[1]}",
                        "error": str(exc),
                    }
                results.append(row)
        if clip is not None:
            ff = _bench_ffmpeg(clip, cfg)
            if ff:
                results.append(ff)
    return {"machine": machine_info(), "config": _config_dict(cfg), "results": results}


def _config_dict(cfg: BenchConfig) -> dict[str, object]:
    d = asdict(cfg)
    d["sizes"] = [f"{w}x{h}" for w, h in cfg.sizes]
    d["input"] = str(cfg.input) if cfg.input else None
    return d


def write_json(report: dict[str, object], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2) + "\n")


def _default_clip() -> Path | None:
    here = Path(__file__).resolve().parent.parent / "samples" / "scene_480x270.mp4"
    return here if here.is_file() else None


def _make_clip(cfg: BenchConfig, size: tuple[int, int]) -> Path:
    """A temporary H.264 clip of ``cfg.frames`` + warm-up frames at ``size`` (from ``cfg.input``,
    the shipped sample, or a moving gradient when neither exists), so every case decodes the same."""
    import tempfile

    import av
    import cv2

    w, h = size
    n = cfg.frames + cfg.warmup
    out = Path(tempfile.mkdtemp(prefix="vsr-bench-")) / f"clip_{w}x{h}.mp4"
    src = cfg.input or _default_clip()
    frames: list[np.ndarray] = []
    if src is not None:
        with av.open(str(src)) as c:
            for f in c.decode(video=0):
                frames.append(cv2.resize(f.to_ndarray(format="rgb24"), (w, h), interpolation=cv2.INTER_AREA))
                if len(frames) >= n:
                    break
    if not frames:
        yy, xx = np.mgrid[0:h, 0:w]
        frames = [
            np.dstack([(xx + i) % 256, (yy + 2 * i) % 256, (xx + yy) % 256]).astype(np.uint8)
            for i in range(n)
        ]
    with av.open(str(out), "w") as c:
        s = c.add_stream("libx264", rate=30, options={"crf": "20", "preset": "veryfast"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            vf = av.VideoFrame.from_ndarray(frames[i % len(frames)], format="rgb24")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))
    return out


def _bench_e2e(model: str, backend: str, clip: Path, cfg: BenchConfig) -> dict[str, object]:
    """Decode -> upscale -> encode ``clip`` through the real pipeline; fps and per-stage p50/p95."""
    from .config import DecodeConfig, EncodeConfig, ModelConfig, PipelineConfig
    from .pipeline import upscale_file

    out = clip.with_name(f"out_{model}_{backend}.mp4")
    enc = EncodeConfig(str(out), codec=cfg.codec, crf=cfg.crf, preset=cfg.preset, overwrite=True)
    stats = upscale_file(
        DecodeConfig(str(clip)),
        enc,
        ModelConfig(model=model, backend=backend),
        PipelineConfig(batch=cfg.batch),
    ).to_dict()
    out.unlink(missing_ok=True)
    stages = {k: {"p50_ms": v.get("p50_ms"), "p95_ms": v.get("p95_ms")} for k, v in stats["stages"].items()}
    return {"e2e_fps": stats["fps"], "e2e_frames": stats["frames_out"], "e2e_stages": stages}


def _bench_ffmpeg(clip: Path, cfg: BenchConfig) -> dict[str, object] | None:
    """The same clip through the ffmpeg command line's bicubic scale and encoder, if ffmpeg exists."""
    import shutil
    import subprocess

    exe = shutil.which("ffmpeg")
    if exe is None:
        log.info("no ffmpeg on PATH: skipping the ffmpeg -vf scale baseline")
        return None
    out = clip.with_name("out_ffmpeg.mp4")
    cmd = [
        exe,
        "-v",
        "error",
        "-y",
        "-i",
        str(clip),
        "-vf",
        "scale=iw*4:ih*4:flags=bicubic",
        "-c:v",
        cfg.codec,
        "-preset",
        cfg.preset,
        "-crf",
        str(cfg.crf),
        "-an",
        str(out),
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - t0
    out.unlink(missing_ok=True)
    n = cfg.frames + cfg.warmup
    return {
        "model": "ffmpeg -vf scale (bicubic)",
        "backend": "ffmpeg",
        "size": clip.stem.split("_")[-1],
        "e2e_fps": n / seconds,
        "e2e_frames": n,
        "command": " ".join(cmd),
    }


def _num(row: dict[str, object], key: str, fmt: str = ".1f") -> str:
    v = row.get(key)
    return format(v, fmt) if isinstance(v, int | float) and v is not None else "-"


def format_report(report: dict[str, object]) -> str:
    """A plain-text table of a :func:`run_bench` report, with the machine in the header."""
    m = report["machine"]
    assert isinstance(m, dict)
    head = f"machine: {m['cpu']}, {m['cores']} cores, GPU: {m['gpu'] or 'none'}; torch {m['torch']}, onnxruntime {m['onnxruntime']}"
    cols = f"{'model':<28} {'backend':<34} {'size':>9} {'model fps':>10} {'p50 ms':>8} {'p95 ms':>8} {'e2e fps':>8} {'RSS MB':>7}"
    lines = [head, cols, "-" * len(cols)]
    for r in report["results"]:  # type: ignore[union-attr]
        if "error" in r:
            lines.append(f"{r['model']:<28} {r['backend']:<34} {r['size']:>9}  error: {r['error']}")
            continue

        lines.append(
            f"{r['model']:<28} {r.get('backend_used', r['backend']):<34} {r['size']:>9} {_num(r, 'model_fps'):>10} "
            f"{_num(r, 'model_p50_ms'):>8} {_num(r, 'model_p95_ms'):>8} {_num(r, 'e2e_fps'):>8} {_num(r, 'peak_rss_mb', '.0f'):>7}"
        )
    return "\n".join(lines)


def plot_report(report: dict[str, object], path: Path) -> None:
    """A horizontal bar chart of model-only and end-to-end frames/s per case, real time marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install matplotlib") from None
    rows = [r for r in report["results"] if "error" not in r]  # type: ignore[union-attr]
    labels = [f"{r['model']} | {r['backend']} | {r['size']}" for r in rows]
    model_fps = [r.get("model_fps") or 0 for r in rows]
    e2e_fps = [r.get("e2e_fps") or 0 for r in rows]
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.55 * len(rows)))
    ax.barh(y - 0.2, model_fps, 0.4, label="model only")
    ax.barh(y + 0.2, e2e_fps, 0.4, label="end to end (decode, upscale, encode)")
    for yy, a, b in zip(y, model_fps, e2e_fps, strict=True):
        for off, v in ((-0.2, a), (0.2, b)):
            if v:
                ax.text(v, yy + off, f" {v:.1f}", va="center", fontsize=8)
    ax.axvline(30, color="grey", ls="--", lw=1, label="30 frames/s (real time)")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    if max(model_fps + e2e_fps, default=0) > 20 * max(
        min((v for v in model_fps + e2e_fps if v), default=1), 1
    ):
        ax.set_xscale("log")  # bicubic runs 100x faster than a network: keep the networks readable
    ax.set_xlabel("frames per second (4x output)")
    m = report["machine"]
    assert isinstance(m, dict)
    ax.set_title(f"vsr bench — {m['cpu']}, {m['cores']} cores, GPU: {m['gpu'] or 'none'}", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
