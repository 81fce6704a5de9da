"""Mean colour shift of models against a bicubic upscale of the same frames (issue 15, srgan).

    python scripts/colour_shift.py CLIP --models srgan srresnet [--weights NAME=FILE ...] [--frames 20]

The clip's first frames, area-downscaled to 320x180 (as `vsr eval --video` makes its input, no
codec), are upscaled 4x by each model and by cv2 bicubic; prints, per model, the mean of
(model - bicubic) per RGB channel in levels (0..255) and the high-frequency energy of the output
(mean |Laplacian| of Y) beside the bicubic's and the 4x reference's, a rough measure of added grain.
``--weights NAME=FILE`` registers unshipped weights as catalogue entry NAME (the facts of srgan).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import cv2
import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("clip", type=Path)
    ap.add_argument("--models", nargs="+", default=["srgan", "srresnet"])
    ap.add_argument("--weights", nargs="*", default=[], metavar="NAME=FILE")
    ap.add_argument("--frames", type=int, default=20)
    args = ap.parse_args(argv)

    from vsr.backends import create_backend
    from vsr.metrics import luma
    from vsr.models import catalogue
    from vsr.quality import iter_frames

    for item in args.weights:
        name, file = item.split("=", 1)
        spec = dataclasses.replace(
            catalogue.get_spec("srgan"), name=name, weights=str(Path(file).resolve()), sha256=None
        )
        catalogue.CATALOGUE = (*catalogue.CATALOGUE, spec)
        args.models.append(name)
    ref = [f for _, f in zip(range(args.frames), iter_frames(args.clip, seconds=60.0), strict=False)]
    ref = [cv2.resize(f, (1280, 720), interpolation=cv2.INTER_AREA) for f in ref]
    lr = np.stack([cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA) for f in ref])
    bic = np.stack([cv2.resize(f, (1280, 720), interpolation=cv2.INTER_CUBIC) for f in lr]).astype(np.float64)

    def grain(frames: np.ndarray) -> float:
        return float(np.mean([np.abs(cv2.Laplacian(luma(f), cv2.CV_64F)).mean() for f in frames]))

    print(f"{args.clip.name}: {len(lr)} frames, 320x180 -> 1280x720")
    print(f"{'model':<12} {'dR':>6} {'dG':>6} {'dB':>6} {'|Lap Y|':>8}")
    print(f"{'reference':<12} {'':>6} {'':>6} {'':>6} {grain(np.stack(ref)):8.2f}")
    print(f"{'bicubic':<12} {0:6.2f} {0:6.2f} {0:6.2f} {grain(bic):8.2f}")
    for name in args.models:
        backend = create_backend("torch", name, device="cpu")
        out = np.concatenate([backend.infer(lr[i : i + 4]) for i in range(0, len(lr), 4)]).astype(np.float64)
        d = (out - bic).mean(axis=(0, 1, 2))
        print(f"{name:<12} {d[0]:6.2f} {d[1]:6.2f} {d[2]:6.2f} {grain(out):8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
