"""``vsr bench``: model-only and end-to-end frames/s for models x backends x sizes, with baselines.

Model-only time is ``backend.infer`` on a batch of uint8 frames (the full frame path: colour
handling, padding, network, back to uint8), after warm-up. On a GPU backend that can (torch on
CUDA), network-only time is the network alone on input already on the GPU, timed with CUDA events
(``net_fps``). End-to-end time is a real decode -> upscale -> encode run of a clip at that size
through :mod:`vsr.pipeline`. Baselines in the same run: the ``bicubic`` model, the encoder alone on
pre-made frames of the output size (the ceiling any end-to-end run can reach with those encoder
settings) and, when an ``ffmpeg`` binary is on PATH, the same clip through
``ffmpeg -vf scale=iw*4:ih*4:flags=bicubic`` with the same encoder settings.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .bench_report import format_report, plot_report
from .errors import ConfigError, VsrError
from .sysinfo import RssSampler, machine_info

__all__ = ["BenchConfig", "bench_model", "format_report", "parse_size", "plot_report", "run_bench"]

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
    """What to measure. ``sizes`` are input (width, height); ``frames`` timed frames per case.

    ``random_weights``: time models whose trained weights are not in this build with randomly
    initialised ones (speed does not depend on the weights); their rows say ``random_weights``.
    ``compile``: torch on CUDA runs the networks through ``torch.compile`` (compile time untimed).
    """

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
    random_weights: bool = False
    compile: bool = False
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


def _cuda() -> Any:
    """The torch module when a CUDA device is usable, else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def _gpu_peak_mb() -> float | None:
    torch = _cuda()
    return None if torch is None else torch.cuda.max_memory_allocated() / 2**20


def _random_net(model: str, cfg: BenchConfig) -> Any:
    """A seeded random-init network for a model shipped without weights, when asked; else None."""
    from .models.catalogue import build_model, get_spec

    spec = get_spec(model)
    if not cfg.random_weights or spec.arch == "bicubic" or spec.has_weights:
        return None
    import torch

    torch.manual_seed(0)
    return build_model(spec, random_init=True)


def _net_timing(b: object, h: int, w: int, cfg: BenchConfig) -> dict[str, float | None]:
    """``net_ms`` / ``net_fps``: the network alone on device-resident input, when the backend can."""
    time_network = getattr(b, "time_network", None)
    ms = time_network(h, w, cfg.batch, max(cfg.frames // cfg.batch, 20)) if time_network else None
    if not ms:
        return {"net_fps": None, "net_ms": None}
    return {"net_fps": 1000.0 / ms, "net_ms": ms}


def bench_model(model: str, backend: str, size: tuple[int, int], cfg: BenchConfig) -> dict[str, object]:
    """Time ``backend.infer`` on (batch, h, w, 3) uint8 frames; per-frame p50/p95 ms, fps, memory.

    On a backend with ``time_network`` (torch on CUDA) also the network alone (``net_fps``).
    """
    from .backends import create_backend

    w, h = size
    frames = np.random.default_rng(0).integers(0, 256, (cfg.batch, h, w, 3), dtype=np.uint8)
    net = _random_net(model, cfg)
    torch = _cuda()
    if torch is not None:
        torch.cuda.reset_peak_memory_stats()  # this case's peak, not the largest case's so far
    with RssSampler() as rss:
        b = create_backend(backend, model, net=net, compile=cfg.compile)
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
            net_timing = _net_timing(b, h, w, cfg)
            name = b.name
        finally:
            b.close()
    return {
        "model": model,
        "backend": backend,
        "backend_used": name,
        "size": f"{w}x{h}",
        "out_size": f"{4 * w}x{4 * h}",
        "random_weights": net is not None,
        "model_fps": done / seconds,
        **{f"model_{k}": v for k, v in _percentiles(times).items()},
        **net_timing,
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
            results.append(_bench_encoder(clip, cfg))
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
    from .ladder import Ladder
    from .pipeline import upscale_file

    out = clip.with_name(f"out_{model}_{backend}.mp4")
    enc = EncodeConfig(str(out), codec=cfg.codec, crf=cfg.crf, preset=cfg.preset, overwrite=True)
    net = _random_net(model, cfg)
    b = None
    if net is not None:
        from .backends import create_backend

        b = create_backend(backend, model, net=net, compile=cfg.compile)
    try:
        stats = upscale_file(
            DecodeConfig(str(clip)),
            enc,
            ModelConfig(model=model, backend=backend, compile=cfg.compile),
            PipelineConfig(batch=cfg.batch),
            ladder=None if b is None else Ladder([(model, b)], owned=False),
        ).to_dict()
    finally:
        if b is not None:
            b.close()
    out.unlink(missing_ok=True)
    stages = {k: {"p50_ms": v.get("p50_ms"), "p95_ms": v.get("p95_ms")} for k, v in stats["stages"].items()}
    return {"e2e_fps": stats["fps"], "e2e_frames": stats["frames_out"], "e2e_stages": stages}


_ENCODER_FRAMES_BYTES = 1 << 30  # at most this much of pre-made output frames (cycled when more)


def _output_frames(clip: Path, scale: int) -> tuple[Any, list[np.ndarray], list[tuple[int, int]]]:
    """The clip's video facts, the bicubic upscales of its first frames (as many as fit in
    :data:`_ENCODER_FRAMES_BYTES`, at most 120) and every frame's (pts, duration)."""
    import av

    from .colour import bicubic_up
    from .config import DecodeConfig
    from .video.reader import VideoReader, frame_to_rgb

    with VideoReader(DecodeConfig(str(clip))) as reader:
        info = reader.info
        keep = max(1, min(120, _ENCODER_FRAMES_BYTES // (3 * scale * scale * info.width * info.height)))
        frames: list[np.ndarray] = []
        stamps: list[tuple[int, int]] = []
        for item in reader.items():
            if not isinstance(item, av.VideoFrame):
                continue
            if len(frames) < keep:
                frames.append(bicubic_up(frame_to_rgb(item), scale))
            stamps.append((item.pts, item.duration or 0))
    return info, frames, stamps


def _bench_encoder(clip: Path, cfg: BenchConfig) -> dict[str, object]:
    """The encoder alone: as many frames as the clip has, at the output size (bicubic upscales of
    the clip's frames, made before timing), through the same writer and settings as the end-to-end
    runs (RGB -> YUV conversion, encode, mux). The ceiling of any end-to-end figure."""
    from .config import EncodeConfig
    from .video.writer import VideoWriter

    scale = 4
    info, frames, stamps = _output_frames(clip, scale)
    out = clip.with_name("out_encoder.mp4")
    enc = EncodeConfig(str(out), codec=cfg.codec, crf=cfg.crf, preset=cfg.preset, overwrite=True)
    writer = VideoWriter(enc, info, scale=scale)
    t0 = time.perf_counter()
    with writer:
        for i, (pts, duration) in enumerate(stamps):
            writer.write(frames[i % len(frames)], pts, duration)
    seconds = time.perf_counter() - t0
    out.unlink(missing_ok=True)
    return {
        "model": f"encoder alone ({writer.codec} {cfg.preset} crf {cfg.crf})",
        "backend": "encoder",
        "size": f"{info.width}x{info.height}",
        "out_size": f"{scale * info.width}x{scale * info.height}",
        "e2e_fps": len(stamps) / seconds,
        "e2e_frames": len(stamps),
    }


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
