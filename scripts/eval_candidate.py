"""Score a trained-but-not-shipped weights file on low-bitrate video beside a shipped model.

    python scripts/eval_candidate.py --weights runs/fast_real/export/fast-stream.safetensors \
        --like fast-stream --against fast-stream fast --clips ../shared/data/video/talking_head_retalk1.mp4 ...

The file is registered as catalogue entry ``candidate`` (the facts of ``--like``, these weights,
no checksum) for this process only, then ``vsr.quality.evaluate_video`` runs as ``vsr eval
--video`` does, bicubic as the only baseline unless ``--all-baselines``. Prints the table and
writes ``--json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--like", required=True, help="the catalogue model whose architecture the file holds")
    ap.add_argument("--against", nargs="*", default=[], help="shipped models in the same run")
    ap.add_argument("--clips", nargs="+", type=Path, required=True)
    ap.add_argument("--size", default="320x180")
    ap.add_argument("--kbps", type=float, default=150.0)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--all-baselines", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--images", type=Path, default=None, help="side-by-side crops of the first clip")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    from vsr.bench import parse_size
    from vsr.models import catalogue
    from vsr.quality import VideoEvalConfig, evaluate_video, format_video_table
    from vsr.quality.baselines import BASELINES

    like = catalogue.get_spec(args.like)
    candidate = dataclasses.replace(
        like, name="candidate", weights=str(args.weights.resolve()), sha256=None, description="candidate"
    )
    catalogue.CATALOGUE = (*catalogue.CATALOGUE, candidate)
    cfg = VideoEvalConfig(
        tuple(args.clips),
        size=parse_size(args.size),
        kbps=(args.kbps,),
        models=("candidate", *args.against),
        baselines=BASELINES if args.all_baselines else ("bicubic",),
        seconds=args.seconds,
        backend="torch",
        scale=like.scale,
        images=args.images,
    )
    result = evaluate_video(cfg)
    print(format_video_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
