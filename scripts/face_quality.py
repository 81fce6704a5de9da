"""Face-region mode against whole-frame upscaling on real face clips: quality, speed, stability.

Each clip's first ``--frames`` frames (mod-cropped to 4) are the ground truth; LR = MATLAB-style
bicubic / 4 (the SR protocol). Methods: (a) bicubic, (b) ``fast`` on the whole frame, (c) face
mode: model X (``--face-model``) on faces, bicubic (``--background``) elsewhere, (d) X on the
whole frame. Reported per
clip: Y-PSNR over the face boxes (found by the detector on the HR frames) and over the whole
frame, frames/s of the upscale call, and flicker (vsr.metrics.flicker, ratio to the HR clip's
own frame-to-frame change) over the first face box. Then box jitter of the tracker with and
without smoothing.

    python scripts/face_quality.py --frames 60 --face-model fast-plus --face-model compact talking_head_retalk1.mp4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vsr.backends import create_backend
from vsr.face import FaceRegionUpscaler, FaceTracker, create_detector
from vsr.imresize import imresize
from vsr.metrics import flicker, luma, psnr_y

REPO = Path(__file__).resolve().parents[1]
VIDEO = REPO.parent / "shared" / "data" / "video"
Upscale = Callable[[np.ndarray], np.ndarray]


def load_clip(path: Path, frames: int, max_h: int) -> list[np.ndarray]:
    """The first ``frames`` RGB frames, downscaled by an integer factor to <= ``max_h`` rows, mod 4."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            img = f.to_ndarray(format="rgb24")
            k = -(-img.shape[0] // max_h)
            img = imresize(img, scale=1 / k) if k > 1 else img
            out.append(np.ascontiguousarray(img[: img.shape[0] // 4 * 4, : img.shape[1] // 4 * 4]))
            if len(out) == frames:
                break
    return out


def face_mask(hr: list[np.ndarray], detector_name: str) -> tuple[list[np.ndarray], tuple[int, ...] | None]:
    """Per HR frame a bool mask of its detected face boxes, and the first box as (x, y, w, h)."""
    det = create_detector(detector_name, detect_width=hr[0].shape[1])
    masks, first = [], None
    for img in hr:
        m = np.zeros(img.shape[:2], bool)
        for x0, y0, x1, y1 in det.detect(img).astype(int):
            m[max(y0, 0) : y1, max(x0, 0) : x1] = True
            first = first or (max(x0, 0), max(y0, 0), x1 - max(x0, 0), y1 - max(y0, 0))
        masks.append(m)
    return masks, first


class Score:
    """Running totals of one method on one clip."""

    def __init__(self) -> None:
        self.se = self.n = self.secs = self.share = 0.0
        self.whole: list[float] = []
        self.crops_sr: list[np.ndarray] = []
        self.crops_hr: list[np.ndarray] = []

    def add(self, hr: np.ndarray, sr: np.ndarray, mask: np.ndarray, region: tuple[int, ...]) -> None:
        self.whole.append(psnr_y(hr, sr))
        d = (luma(hr) - luma(sr))[4:-4, 4:-4][mask[4:-4, 4:-4]]
        self.se, self.n = self.se + float(np.sum(d * d)), self.n + d.size
        x, y, w, h = region
        self.crops_sr.append(sr[y : y + h, x : x + w])
        self.crops_hr.append(hr[y : y + h, x : x + w])

    def row(self) -> dict[str, float]:
        frames = len(self.whole)
        return {
            "face": 10 * np.log10(255.0**2 / (self.se / self.n)) if self.n else float("nan"),
            "whole": float(np.mean(self.whole)),
            "fps": frames / self.secs,
            "flicker": flicker(self.crops_sr, self.crops_hr)["ratio"],
            "share": self.share / frames,
        }


def evaluate(ups: dict[str, Upscale], hr: list[np.ndarray], lr: list[np.ndarray], masks, region) -> dict:
    """Every method on every frame, interleaved frame by frame so that the load of this shared
    machine hits all methods alike: name -> face/whole Y-PSNR, frames/s, flicker, model px share."""
    region = region or (0, 0, hr[0].shape[1], hr[0].shape[0])
    scores = {name: Score() for name in ups}
    for up in ups.values():
        up(lr[0])  # warm-up: sessions, exports, first allocations
        if isinstance(up, FaceRegionUpscaler):
            up.reset()
    for img, small, m in zip(hr, lr, masks, strict=True):
        for name, up in ups.items():
            t0 = time.perf_counter()
            sr = up(small)
            scores[name].secs += time.perf_counter() - t0
            scores[name].share += _model_share(up, small)
            scores[name].add(img, sr, m, region)
    return {name: sc.row() for name, sc in scores.items()}


def _model_share(up: Upscale, frame: np.ndarray) -> float:
    """Fraction of the frame's pixels the (face) model ran on for the last call."""
    if not isinstance(up, FaceRegionUpscaler) or up.last is None:
        return 1.0
    if up.last.whole_frame:
        return 1.0
    c = up.last.crops
    return float(np.sum((c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1]))) / (frame.shape[0] * frame.shape[1])


def jitter(lr: list[np.ndarray], detector_name: str, every: int, smooth: bool) -> tuple[float, float]:
    """Mean |change| and mean |second difference| (px, LR) of the first track's box, frame to frame."""
    det = create_detector(detector_name)
    tr = FaceTracker(smooth=smooth)
    boxes = []
    for i, img in enumerate(lr):
        tracks = tr.update(det.detect(img) if i % every == 0 else None)
        if tracks and tracks[0].id == 0:
            boxes.append(tracks[0].box)
    if len(boxes) < 3:
        return float("nan"), float("nan")
    b = np.array(boxes)
    return float(np.abs(np.diff(b, axis=0)).mean()), float(np.abs(np.diff(b, n=2, axis=0)).mean())


def methods(
    face_models: list[str], background: str, detector: str, every: int, margin: float
) -> dict[str, Callable[[], Upscale]]:
    """Name -> factory of a fresh upscaler (face mode is stateful, so one per clip)."""

    def face_mode(face_model: str) -> Upscale:
        return FaceRegionUpscaler(
            create_backend("auto", face_model),
            create_backend("auto", background),
            detector=create_detector(detector),
            detect_every=every,
            margin=margin,
        )

    def whole(model: str) -> Upscale:
        b = create_backend("auto", model)
        return lambda f: b.infer(f[None])[0]

    out: dict[str, Callable[[], Upscale]] = {
        "(a) bicubic": lambda: whole("bicubic"),
        "(b) fast, whole frame": lambda: whole("fast"),
    }
    for m in face_models:
        out[f"(c) face mode: {m} on faces, {background} elsewhere"] = lambda m=m: face_mode(m)
        out[f"(d) {m}, whole frame"] = lambda m=m: whole(m)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="+", help="clip names under ../shared/data/video")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--max-height", type=int, default=720, help="HR frames are downscaled to at most this")
    ap.add_argument("--detector", default="blazeface")
    ap.add_argument("--detect-every", type=int, default=3)
    ap.add_argument("--margin", type=float, default=0.3, help="face crop margin (fraction of the face)")
    ap.add_argument(
        "--face-model",
        action="append",
        default=None,
        help="face model for (c) and (d); repeat for more (fast-plus)",
    )
    ap.add_argument("--background", default="bicubic", help="background model of face mode")
    ap.add_argument("--json", type=Path, default=None, help="also write every row here")
    args = ap.parse_args()
    args.face_model = args.face_model or ["fast-plus"]
    print(f"detector {args.detector} every {args.detect_every} frames, margin {args.margin}\n")
    report: dict[str, dict] = {}
    for clip in args.clips:
        hr = load_clip(VIDEO / clip, args.frames, args.max_height)
        lr = [imresize(img, scale=0.25) for img in hr]
        masks, region = face_mask(hr, args.detector)
        print(
            f"## {clip}: {len(hr)} frames, HR {hr[0].shape[1]}x{hr[0].shape[0]}, face px {np.mean([m.mean() for m in masks]):.1%} of the frame"
        )
        print("| method | Y-PSNR faces | Y-PSNR frame | frames/s | face flicker ratio | model px |")
        print("|---|---|---|---|---|---|")
        made = methods(args.face_model, args.background, args.detector, args.detect_every, args.margin)
        ups = {name: make() for name, make in made.items()}
        rows = evaluate(ups, hr, lr, masks, region)
        report[clip] = {"lr": [lr[0].shape[1], lr[0].shape[0]], "frames": len(hr), "methods": rows}
        for name, r in rows.items():
            share = "-" if name.startswith("(a)") else f"{r['share']:.0%}"
            print(
                f"| {name} | {r['face']:.2f} | {r['whole']:.2f} | {r['fps']:.1f} | {r['flicker']:.3f} | {share} |"
            )
        print("\n| tracker | mean abs box change px (LR) | mean abs 2nd difference px |\n|---|---|---|")
        for every, smooth in [(1, False), (args.detect_every, False), (args.detect_every, True)]:
            d1, d2 = jitter(lr, args.detector, every, smooth)
            print(f"| detect every {every}, {'smoothed' if smooth else 'raw'} | {d1:.2f} | {d2:.2f} |")
            report[clip][f"jitter every {every} {'smoothed' if smooth else 'raw'}"] = [d1, d2]
        b = rows["(b) fast, whole frame"]
        for m in args.face_model:
            c = rows[f"(c) face mode: {m} on faces, {args.background} elsewhere"]
            d = rows[f"(d) {m}, whole frame"]
            print(
                f"\n{m}: face mode {c['face'] - b['face']:+.2f} dB over (b) on the faces, "
                f"{c['fps'] / d['fps']:.2f}x the frames/s of (d), {c['fps'] / b['fps']:.2f}x of (b)"
            )
        print()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
