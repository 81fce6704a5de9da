"""Score a model on low-bitrate video: ``python -m training.eval_video --model fast``.

For each clip: the first ``--frames`` frames, HR = the frames downscaled (MATLAB bicubic) to at
most ``--height`` lines (720p) and mod-cropped to 4; LR = HR / 4 (MATLAB bicubic on uint8, e.g.
320x180), then encoded with libx264 at ``--kbps`` (150 kbit/s at 320x180, scaled by pixel count
for other sizes) and decoded, as a low-bandwidth stream arrives. Each LR frame is upscaled by the
model's backend, by cv2 bicubic (what a player does) and by MATLAB bicubic, and scored against HR
on BT.601 Y (4 px border). The clean LR (no codec) is scored too, to show what the codec costs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from vsr.colour import bicubic_up
from vsr.imresize import imresize
from vsr.metrics import flicker, luma, modcrop, psnr, ssim
from vsr.quality.clip import read_frames
from vsr.quality.codec import h264_roundtrip

from .config import REPO_ROOT

__all__ = ["evaluate_clip", "main"]

log = logging.getLogger("training.eval_video")

VIDEO_DIR = REPO_ROOT.parent / "shared" / "data" / "video"


def _hr(frame: np.ndarray, height: int) -> np.ndarray:
    h = frame.shape[0]
    if h > height:
        frame = imresize(frame, size=(height, round(frame.shape[1] * height / h)))
    return np.ascontiguousarray(modcrop(frame, 4))


def _score(hr: list[np.ndarray], sr: list[np.ndarray]) -> dict[str, float]:
    ys = [(luma(a), luma(b)) for a, b in zip(hr, sr, strict=True)]
    return {
        "psnr_y": float(np.mean([psnr(a, b, 4) for a, b in ys])),
        "ssim_y": float(np.mean([ssim(a, b, 4) for a, b in ys])),
        "flicker_ratio": flicker(sr, hr)["ratio"],
    }


def evaluate_clip(
    path: Path, backend: Any, *, frames: int = 30, height: int = 720, kbps: float = 150.0, start: float = 0.3
) -> dict[str, Any]:
    """Scores of ``backend`` (a vsr backend), cv2 and MATLAB bicubic on one clip, coded and clean."""
    src, fps = read_frames(path, frames, start)
    hr = [_hr(f, height) for f in src]
    clean = [imresize(f, 0.25) for f in hr]
    h, w = clean[0].shape[:2]
    bitrate = kbps * 1000.0 * (w * h) / (320 * 180)
    coded = h264_roundtrip(clean, bitrate=int(bitrate), fps=fps)
    out: dict[str, Any] = {"clip": path.name, "frames": len(hr), "hr": f"{hr[0].shape[1]}x{hr[0].shape[0]}"}
    out["lr"], out["kbps"] = f"{w}x{h}", round(bitrate / 1000.0, 1)
    for tag, lr in (("h264", coded), ("clean", clean)):
        out[tag] = {
            "model": _score(hr, [backend.infer(f[None])[0] for f in lr]),
            "cv2_bicubic": _score(hr, [bicubic_up(f, 4) for f in lr]),
            "matlab_bicubic": _score(hr, [imresize(f, 4.0) for f in lr]),
        }
    return out


def _table(results: list[dict[str, Any]], model: str) -> str:
    head = f"{'clip':<30} {'LR':>8} {'kbps':>6} | {'H.264: ' + model:>14} {'cv2 bic':>8} {'gain':>6} | {'clean: ' + model:>14} {'cv2 bic':>8}"
    lines = [head, "-" * len(head)]
    for r in [*results, _mean(results)]:
        c, k = r["h264"], r["clean"]
        gain = c["model"]["psnr_y"] - c["cv2_bicubic"]["psnr_y"]
        lines.append(
            f"{r['clip'][:30]:<30} {r['lr']:>8} {r['kbps']!s:>6} | {c['model']['psnr_y']:>14.2f} "
            f"{c['cv2_bicubic']['psnr_y']:>8.2f} {gain:>+6.2f} | {k['model']['psnr_y']:>14.2f} {k['cv2_bicubic']['psnr_y']:>8.2f}"
        )
    return "\n".join(lines)


def _mean(results: list[dict[str, Any]]) -> dict[str, Any]:
    def avg(tag: str, method: str, key: str) -> float:
        return float(np.mean([r[tag][method][key] for r in results]))

    methods = ("model", "cv2_bicubic", "matlab_bicubic")
    keys = ("psnr_y", "ssim_y", "flicker_ratio")
    mean: dict[str, Any] = {"clip": "mean", "lr": "", "kbps": "", "frames": sum(r["frames"] for r in results)}
    for tag in ("h264", "clean"):
        mean[tag] = {m: {k: avg(tag, m, k) for k in keys} for m in methods}
    return mean


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.eval_video", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="fast")
    ap.add_argument(
        "--weights", type=Path, default=None, help="a .safetensors file instead of the shipped one"
    )
    ap.add_argument("--backend", default="auto")
    ap.add_argument(
        "--videos", type=Path, nargs="*", default=None, help=f"clips (default: all in {VIDEO_DIR})"
    )
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--start", type=float, default=0.3, help="where to start, as a fraction of the clip")
    ap.add_argument("--kbps", type=float, default=150.0, help="H.264 bitrate at 320x180 (scaled by area)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    from vsr.backends import create_backend
    from vsr.models.catalogue import build_model

    net = build_model(args.model, weights=args.weights) if args.weights else None
    videos = args.videos if args.videos is not None else sorted(p for p in VIDEO_DIR.glob("*") if p.is_file())
    backend = create_backend(args.backend, args.model, net=net)
    try:
        results = []
        for v in videos:
            results.append(
                evaluate_clip(
                    v, backend, frames=args.frames, height=args.height, kbps=args.kbps, start=args.start
                )
            )
            log.info("%s: %s", v.name, json.dumps(results[-1]["h264"]["model"]))
    finally:
        backend.close()
    print(_table(results, args.model))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "mean": _mean(results)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
