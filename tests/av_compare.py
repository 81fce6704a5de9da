"""Read what a media file holds, in seconds, to compare an output with what went in.

Everything here looks only at files, through PyAV, so the tests that use it hold across rewrites of
vsr's frame loops: per-packet timing of audio and subtitle streams, the first video frame's time,
and the frame numbers that :func:`barcode` paints into a picture and :func:`read_barcode` reads back
after encoding and upscaling.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

BITS = 8  # frame numbers 0..255


@dataclass(frozen=True)
class Timed:
    """One packet: its payload and its timing in seconds (exact), with its stream's ``tick``."""

    data: bytes
    pts: Fraction
    duration: Fraction
    tick: Fraction


def timed_packets(path: Path | str, kind: str) -> list[Timed]:
    """Every non-empty packet of the first ``kind`` ("audio", "subtitle") stream, in file order."""
    with av.open(str(path)) as c:
        streams = c.streams.audio if kind == "audio" else c.streams.subtitles
        if not streams:
            return []
        s = streams[0]
        return [
            Timed(
                bytes(p), Fraction(p.pts) * s.time_base, Fraction(p.duration or 0) * s.time_base, s.time_base
            )
            for p in c.demux(s)
            if p.size and p.pts is not None
        ]


def first_video_time(path: Path | str) -> tuple[Fraction, Fraction]:
    """(presentation time of the first decoded video frame in seconds, the video stream's tick)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frame = next(iter(c.decode(s)))
        return Fraction(frame.pts) * s.time_base, s.time_base


def assert_same_timing(got: list[Timed], want: list[Timed], what: str, last_duration: bool = True) -> None:
    """Same count, same bytes in order, and per packet the same pts and duration: exact where both
    streams share a time base, else within one tick of the output (``got``) time base.

    ``last_duration=False`` skips the duration of the last packet: matroska stores no duration on
    an audio block, so its demuxer reports the track's default (a full AAC frame) for a short last
    packet too (FFmpeg's own ``-c copy`` from mp4 to mkv reads back the same)."""
    assert len(got) == len(want), f"{what}: {len(got)} packets out, {len(want)} in"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.data == w.data, f"{what} packet {i}: payload differs"
        tolerance = Fraction(0) if g.tick == w.tick else g.tick
        assert abs(g.pts - w.pts) <= tolerance, f"{what} packet {i}: pts {g.pts} s, input {w.pts} s"
        if last_duration or i < len(got) - 1:
            assert abs(g.duration - w.duration) <= tolerance, (
                f"{what} packet {i}: duration {g.duration} s, input {w.duration} s"
            )


def barcode(index: int, height: int, width: int) -> np.ndarray:
    """(height, width, 3) uint8 gray RGB picture of ``index``: one column per bit, the top half
    light for a 1 (dark for a 0), the bottom half the opposite, so a reader compares halves."""
    bits = [(index >> b) & 1 for b in range(BITS)]
    img = np.empty((height, width), np.uint8)
    for b, bit in enumerate(bits):
        cols = slice(b * width // BITS, (b + 1) * width // BITS)
        img[: height // 2, cols] = 235 if bit else 16
        img[height // 2 :, cols] = 16 if bit else 235
    return np.repeat(img[:, :, None], 3, axis=2)


def read_barcode(frame: av.VideoFrame) -> int:
    """The number :func:`barcode` painted into ``frame`` (any scale). Raises ValueError when a
    column is not clearly light over dark or dark over light (not a barcode frame)."""
    y = frame.to_ndarray(format="gray").astype(np.float32)
    h, w = y.shape
    index = 0
    for b in range(BITS):
        x0, x1 = b * w // BITS + w // (4 * BITS), (b + 1) * w // BITS - w // (4 * BITS)
        top = y[h // 8 : 3 * h // 8, x0:x1].mean()
        bottom = y[5 * h // 8 : 7 * h // 8, x0:x1].mean()
        if abs(top - bottom) < 100:
            raise ValueError(f"bit {b} is unreadable (top {top:.0f}, bottom {bottom:.0f})")
        index |= int(top > bottom) << b
    return index


def video_frames(path: Path | str) -> list[tuple[Fraction, int]]:
    """(presentation time in seconds, barcode number) of every decoded video frame, in order."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(Fraction(f.pts) * s.time_base, read_barcode(f)) for f in c.decode(s)]


def video_tick(path: Path | str) -> Fraction:
    with av.open(str(path)) as c:
        return c.streams.video[0].time_base
