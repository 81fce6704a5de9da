"""``vsr eval --video``: how well models and baselines restore a low-bandwidth stream.

For each clip: the first ``seconds`` of frames make the reference at 4 x ``size`` and the input at
``size`` (the rule is in :mod:`vsr.quality.clip`); the input goes through H.264 at each bitrate
(:mod:`vsr.quality.codec`); every method (the baselines of :mod:`vsr.quality.baselines`, then the
catalogue models, built by :func:`vsr.build_ladder.build_ladder`) upscales the decoded frames; each
output is scored against the reference frame by frame (:mod:`vsr.quality.scores`) and, when an
FFmpeg with libvmaf is found, by VMAF and VMAF NEG (:mod:`vsr.quality.vmaf`). Frames are streamed:
memory holds the coded inputs and one frame per method, the .y4m files for VMAF go to a temporary
folder (about 1.4 MB per 720p frame and method) that is removed after each clip.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.base import Backend
from ..config import ModelConfig
from ..errors import ConfigError, InputError
from ..models.catalogue import CATALOGUE, get_spec
from ..models.entries import bicubic_of_scale
from .baselines import BASELINES, LanczosBackend, UnsharpBackend
from .clip import ClipPlan, iter_frames, plan_clip, probe
from .codec import decode_frames, encode_h264
from .crops import crop_box, face_box, write_crops
from .scores import RefFrame, SequenceScore
from .vmaf import Y4mWriter, find_vmaf_ffmpeg, run_vmaf

__all__ = ["VideoEvalConfig", "evaluate_video"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoEvalConfig:
    """What ``vsr eval --video`` measures. ``size``: the input (W, H) (the reference is
    ``scale`` x it; every model must be of that scale, the baselines follow it);
    ``kbps``: H.264 bitrates in kbit/s; ``models``: catalogue models run on ``backend`` beside
    ``baselines``; ``seconds``: from the start of each clip; ``images``: a folder for the
    side-by-side crops of the first clip; ``vmaf``: False skips VMAF even where it could run."""

    clips: tuple[Path, ...]
    size: tuple[int, int] = (320, 180)
    kbps: tuple[float, ...] = (150.0,)
    models: tuple[str, ...] = ("fast", "fast-stream")
    baselines: tuple[str, ...] = BASELINES
    seconds: float = 4.0
    backend: str = "auto"
    images: Path | None = None
    vmaf: bool = True
    scale: int = 4
    methods: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not self.clips:
            raise ConfigError("--video: give at least one clip")
        for clip in self.clips:
            if not Path(clip).is_file():
                raise InputError(f"--video: no such file {str(clip)!r}")
        w, h = self.size
        if not (8 <= w <= 4096 and 8 <= h <= 4096):
            raise ConfigError(f"--size {w}x{h} is out of range (8..4096 per side)")
        if not self.kbps or min(self.kbps) <= 0:
            raise ConfigError(f"--kbps must be > 0, got {list(self.kbps)}")
        if not self.seconds > 0:
            raise ConfigError(f"--seconds must be > 0, got {self.seconds}")
        for name in self.baselines:
            if name not in BASELINES:
                raise ConfigError(f"unknown baseline {name!r}; choose from: {', '.join(BASELINES)}")
        bicubic_scales = sorted(s.scale for s in CATALOGUE if s.arch == "bicubic")
        if "bicubic" in self.baselines and self.scale not in bicubic_scales:
            raise ConfigError(
                f"eval --video scores x{' and x'.join(map(str, bicubic_scales))} models only (the "
                f"scales of its bicubic baseline); this run is x{self.scale}"
            )
        for name in self.models:
            ModelConfig(name, self.backend)  # raises ConfigError naming the choices
            model_scale = get_spec(name).scale
            if model_scale != self.scale:
                raise ConfigError(
                    f"model {name!r} is x{model_scale}; this run scores x{self.scale} (--scale)"
                )
        if self.images is not None and "bicubic" not in self.baselines:
            raise ConfigError("--images needs the bicubic baseline (it makes the input column)")
        names = [*self.baselines, *self.models]
        object.__setattr__(self, "methods", tuple(dict.fromkeys(names)))


def _open_method(name: str, backend: str, stack: contextlib.ExitStack, scale: int = 4) -> Backend:
    """A baseline at ``scale``, or the top rung of catalogue model ``name``'s ladder (closed with
    ``stack``). The ``bicubic`` baseline is the catalogue's bicubic entry of that scale."""
    if name == "lanczos":
        return LanczosBackend(scale)
    if name == "bicubic+unsharp":
        return UnsharpBackend(scale)
    if name == "bicubic":
        name = bicubic_of_scale(scale) or name  # VideoEvalConfig refused scales without one
    from ..build_ladder import build_ladder

    ladder = stack.enter_context(build_ladder(ModelConfig(name, backend), fallbacks=False))
    return ladder.top


def evaluate_video(cfg: VideoEvalConfig) -> dict[str, Any]:
    """Score every method of ``cfg`` on every clip and bitrate.

    Returns ``{"size", "seconds", "kbps", "vmaf": where it came from or why it is missing,
    "clips": [{"clip", "source", "crop", "ref", "ref_scale", "fps", "frames", "kbps_actual"}],
    "rows": [{"clip", "kbps", "model", "vmaf", "vmaf_neg", "psnr_y", "ssim_y", "tof", "ms",
    "frames"}], "mean": the rows averaged over clips per (kbps, model), "images": paths}``. VMAF
    values are None when no FFmpeg with libvmaf is found (logged once).
    """
    ffmpeg, why = find_vmaf_ffmpeg() if cfg.vmaf else (None, "VMAF not asked for")
    if ffmpeg is None and cfg.vmaf:
        log.warning("VMAF skipped: %s", why)
    result: dict[str, Any] = {
        "size": f"{cfg.size[0]}x{cfg.size[1]}",
        "seconds": cfg.seconds,
        "kbps": list(cfg.kbps),
        "vmaf": why,
        "clips": [],
        "rows": [],
        "images": [],
    }
    with contextlib.ExitStack() as stack:
        methods = {m: _open_method(m, cfg.backend, stack, cfg.scale) for m in cfg.methods}
        for i, clip in enumerate(cfg.clips):
            images = cfg.images if i == 0 else None
            info, rows, written = _evaluate_clip(Path(clip), cfg, methods, ffmpeg, images)
            result["clips"].append(info)
            result["rows"] += rows
            result["images"] += [str(p) for p in written]
    result["mean"] = _means(result["rows"]) if len(cfg.clips) > 1 else []
    return result


def _coded_inputs(
    clip: Path, plan: ClipPlan, cfg: VideoEvalConfig, fps: float
) -> tuple[dict[float, list[np.ndarray]], dict[float, float]]:
    """{kbps: decoded (H, W, 3) uint8 input frames} and {kbps: the bitrate the encoder reached}."""
    lr = [plan.low_res(f) for f in iter_frames(clip, seconds=cfg.seconds)]
    if len(lr) < 2:
        raise InputError(f"{clip}: fewer than 2 frames in its first {cfg.seconds} s")
    coded: dict[float, list[np.ndarray]] = {}
    actual: dict[float, float] = {}
    w, h = plan.lr
    for k in cfg.kbps:
        data = encode_h264(lr, bitrate=round(k * 1000), fps=fps)
        frames = [np.ascontiguousarray(f[:h, :w]) for f in decode_frames(data)]
        if len(frames) != len(lr):
            raise RuntimeError(f"{clip}: {len(lr)} frames went into H.264, {len(frames)} came out")
        coded[k], actual[k] = frames, round(len(data) * 8 / (len(lr) / fps) / 1000, 1)
    return coded, actual


def _evaluate_clip(
    clip: Path,
    cfg: VideoEvalConfig,
    methods: dict[str, Backend],
    ffmpeg: str | None,
    images: Path | None,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[Path]]:
    width, height, fps = probe(clip)
    plan = plan_clip(width, height, cfg.size, cfg.scale)
    coded, actual = _coded_inputs(clip, plan, cfg, fps)
    n = len(coded[cfg.kbps[0]])
    info = _describe(clip, (width, height), plan, fps, n, actual)
    keys = [(k, m) for k in cfg.kbps for m in methods]
    with tempfile.TemporaryDirectory(prefix="vsr-eval-") as tmp:
        y4m = (lambda i: Path(tmp) / f"{i}.y4m") if ffmpeg else (lambda i: None)
        scores = {key: SequenceScore(y4m(i), fps) for i, key in enumerate(keys)}
        ref_path = Path(tmp) / "reference.y4m"
        with contextlib.ExitStack() as files:
            ref_out = files.enter_context(Y4mWriter(ref_path, *plan.ref, fps)) if ffmpeg else None
            for s in scores.values():
                files.callback(s.close)
            ms, shot = _score_frames(clip, cfg, plan, coded, methods, scores, ref_out, n // 2)
        rows = []
        for (k, m), s in scores.items():
            row = {"clip": clip.name, "kbps": k, "model": m, "vmaf": None, "vmaf_neg": None}
            if ffmpeg and s.y4m_path is not None:
                row.update(run_vmaf(ffmpeg, s.y4m_path, ref_path))
                s.y4m_path.unlink()
            rows.append({**row, **s.result(), "ms": round(ms[k, m] / n, 2), "frames": s.frames})
    written = _write_images(images, clip, shot) if images is not None else []
    return info, rows, written


def _describe(
    clip: Path, source: tuple[int, int], plan: ClipPlan, fps: float, n: int, actual: dict[float, float]
) -> dict[str, Any]:
    """The clip's entry of the result, also logged as one line."""
    info = {
        "clip": clip.name,
        "source": f"{source[0]}x{source[1]}",
        "crop": list(plan.crop),
        "ref": f"{plan.ref[0]}x{plan.ref[1]}",
        "ref_scale": round(plan.ref_scale, 3),
        "fps": round(fps, 3),
        "frames": n,
        "kbps_actual": {str(k): v for k, v in actual.items()},
    }
    rates = ", ".join(f"{k:g} (reached {v:g})" for k, v in actual.items())
    log.info(
        "%s: %d frames, %s cropped to %dx%d -> reference %s (x%.2f), input %dx%d at %s kbit/s",
        clip.name,
        n,
        info["source"],
        *plan.crop[2:],
        info["ref"],
        plan.ref_scale,
        *plan.lr,
        rates,
    )
    return info


def _score_frames(
    clip: Path,
    cfg: VideoEvalConfig,
    plan: ClipPlan,
    coded: dict[float, list[np.ndarray]],
    methods: dict[str, Backend],
    scores: dict[tuple[float, str], SequenceScore],
    ref_out: Y4mWriter | None,
    pick: int,
) -> tuple[dict[tuple[float, str], float], dict[str, Any]]:
    """Run every method on every frame and score it; returns milliseconds spent per (kbps, method)
    and the frames of index ``pick`` (``{"reference": frame, kbps: {method: frame}}``)."""
    ms = dict.fromkeys(scores, 0.0)
    shot: dict[str, Any] = {}
    prev: RefFrame | None = None
    for t, src in zip(range(len(coded[cfg.kbps[0]])), iter_frames(clip, seconds=cfg.seconds), strict=False):
        ref = prev = RefFrame.next(plan.reference(src), prev)
        if ref_out is not None:
            ref_out.write(ref.rgb, ref.y)
        if t == pick:
            shot["reference"] = ref.rgb
        for k in cfg.kbps:
            x = coded[k][t][None]
            for m, backend in methods.items():
                t0 = time.perf_counter()
                out = backend.infer(x)[0]
                ms[k, m] += (time.perf_counter() - t0) * 1000.0
                scores[k, m].add(out, ref)
                if t == pick:
                    shot.setdefault(k, {})[m] = out
    return ms, shot


def _write_images(folder: Path, clip: Path, shot: dict[Any, Any]) -> list[Path]:
    """The side-by-side crops of the picked frame, one set per bitrate."""
    ref = shot["reference"]
    box = crop_box(ref.shape[0], ref.shape[1], face_box(ref))
    written: list[Path] = []
    for k, outputs in shot.items():
        if k == "reference":
            continue
        written += write_crops(folder, f"{clip.stem}_{k:g}k", box, ref, outputs)
    return written


def _means(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows averaged over clips, per (kbps, model), in the rows' order."""
    groups: dict[tuple[float, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["kbps"], r["model"]), []).append(r)
    out = []
    for (k, m), rs in groups.items():
        row: dict[str, Any] = {"clip": "mean", "kbps": k, "model": m}
        for key in ("vmaf", "vmaf_neg", "psnr_y", "ssim_y", "tof", "ms"):
            vals = [r[key] for r in rs if r[key] is not None]
            row[key] = float(np.mean(vals)) if len(vals) == len(rs) else None
        out.append(row)
    return out
