"""Make vsr's sample clips from photographs bundled with scikit-image (no downloads, no shared data).

    python samples/make_samples.py [--out samples] [--seconds 4] [--fps 30]

Writes two short H.264 + AAC clips with a generated audio tone:

* ``face_320x180.mp4``  — a slow pan and zoom over the face in ``skimage.data.astronaut()``
  (NASA portrait of Eileen Collins, public domain), 320x180.
* ``scene_480x270.mp4`` — a pan across ``skimage.data.rocket()`` (public domain), 480x270.

Frames are rendered from the full-resolution photo with an area (antialiased) resize, so they look
like a real low-resolution camera, then encoded with libx264 (yuv420p, BT.709 tags).
Needs scikit-image (``pip install scikit-image``), PyAV, OpenCV and numpy.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

AUDIO_RATE = 48_000


def _window(
    t: float, img_hw: tuple[int, int], start: tuple[float, float, float], end: tuple[float, float, float]
):
    """Crop window (cx, cy, width) eased between ``start`` and ``end`` for t in [0, 1]."""
    e = 0.5 - 0.5 * np.cos(np.pi * t)
    return tuple(a + (b - a) * e for a, b in zip(start, end, strict=True))


def render(img: np.ndarray, size: tuple[int, int], cx: float, cy: float, width: float) -> np.ndarray:
    """The (h, w, 3) uint8 view of ``img`` centred at (cx, cy), ``width`` source pixels wide."""
    out_w, out_h = size
    s = out_w / width
    m = np.array([[s, 0, out_w / 2 - s * cx], [0, s, out_h / 2 - s * cy]], dtype=np.float64)
    # area-style prefilter: blur the source by the shrink factor, then sample
    sigma = max(0.0, 0.5 / s - 0.5) if s < 1 else 0.0
    src = cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0 else img
    return cv2.warpAffine(src, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def tone(n: int, freq: float, phase0: int) -> np.ndarray:
    """(1, n) float32 mono samples: a soft tone with a slow tremolo, continuous across calls."""
    t = (np.arange(n) + phase0) / AUDIO_RATE
    amp = 0.2 * (0.75 + 0.25 * np.sin(2 * np.pi * 0.5 * t))
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None, :]


def write_clip(path: Path, img: np.ndarray, size, start, end, seconds: float, fps: int, freq: float) -> None:
    n = round(seconds * fps)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"crf": "24", "preset": "slow"})
        vs.width, vs.height = size
        vs.pix_fmt = "yuv420p"
        vs.codec_context.color_range = 1  # MPEG/limited
        vs.codec_context.colorspace = 1  # BT.709
        vs.codec_context.color_primaries = 1
        vs.codec_context.color_trc = 1
        aus = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        aus.bit_rate = 64_000
        sent = 0
        for i in range(n):
            cx, cy, w = _window(i / max(n - 1, 1), img.shape[:2], start, end)
            frame = av.VideoFrame.from_ndarray(render(img, size, cx, cy, w), format="rgb24")
            frame = frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(vs.encode(frame))
            want = int((i + 1) * AUDIO_RATE / fps)
            if want > sent:
                af = av.AudioFrame.from_ndarray(tone(want - sent, freq, sent), format="flt", layout="mono")
                af.sample_rate, af.pts, af.time_base = AUDIO_RATE, sent, Fraction(1, AUDIO_RATE)
                sent = want
                out.mux(aus.encode(af))
        out.mux(vs.encode(None))
        out.mux(aus.encode(None))


def main() -> None:
    import skimage.data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--fps", type=int, default=30)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    face = skimage.data.astronaut()  # 512x512, face around (x=220, y=110)
    write_clip(
        args.out / "face_320x180.mp4",
        face,
        (320, 180),
        (230, 150, 480),
        (215, 120, 330),
        args.seconds,
        args.fps,
        440.0,
    )
    rocket = skimage.data.rocket()  # 640x427
    write_clip(
        args.out / "scene_480x270.mp4",
        rocket,
        (480, 270),
        (260, 200, 420),
        (380, 230, 460),
        args.seconds,
        args.fps,
        330.0,
    )
    for p in sorted(args.out.glob("*.mp4")):
        print(f"{p}: {p.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
