"""Colour tags travel on the live path as on files: a BT.709 input streamed by ``vsr stream`` comes out
tagged BT.709 (range, primaries, transfer, matrix), at 4x, with every frame."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vsr.cli import main

BT709 = 1  # AVCOL_PRI_BT709 / AVCOL_TRC_BT709 / AVCOL_SPC_BT709
LIMITED = 1  # AVCOL_RANGE_MPEG


def _tagged_ts(path: Path, frames: int = 15) -> None:
    with av.open(str(path), "w", format="mpegts") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        ctx = s.codec_context
        ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = BT709, BT709, BT709, LIMITED
        ctx.gop_size = 5
        for i in range(frames):
            img = np.full((48, 64, 3), (i * 16) % 256, np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, 25)
            f.color_primaries, f.color_trc, f.colorspace, f.color_range = BT709, BT709, BT709, LIMITED
            c.mux(s.encode(f))
        c.mux(s.encode(None))


def _tags(path: Path) -> tuple[int, int, int, int, int, int]:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    f = frames[0]
    return (
        len(frames),
        f.width,
        int(f.color_primaries),
        int(f.color_trc),
        int(f.colorspace),
        int(f.color_range),
    )


def test_stream_carries_colour_tags(tmp_path: Path) -> None:
    src, out = tmp_path / "in.ts", tmp_path / "out.ts"
    _tagged_ts(src)
    n, w, *tags = _tags(src)
    assert tags == [BT709, BT709, BT709, LIMITED]  # the input really is tagged
    assert main(["stream", str(src), str(out), "--model", "bicubic", "-q"]) == 0
    n_out, w_out, *tags_out = _tags(out)
    assert (n_out, w_out) == (n, 4 * w)
    assert tags_out == tags
