"""Cutting a video into segments at keyframes, by timestamp.

A segment is the frames whose pts lie in ``[start, end)``: ``start`` is the pts of a keyframe (the
first segment starts at minus infinity, the last ends at plus infinity). Cutting by pts, not by
decode order, keeps every frame in exactly one segment, also for variable frame rate and for
open-GOP streams whose leading pictures come after the keyframe in decode order. Only packet
headers are read: planning does not decode.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction

import av

from ..errors import InputError

__all__ = ["DEFAULT_SEGMENT_S", "Span", "plan_segments", "span_of"]

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_S = 4.0
"""Seconds a segment lasts at least (it ends at the first keyframe after that)."""


@dataclass(frozen=True)
class Span:
    """Segment ``index``: frames with ``start`` <= pts < ``end`` (None: unbounded), stream time base."""

    index: int
    start: int | None
    end: int | None

    def holds(self, pts: int) -> bool:
        return (self.start is None or pts >= self.start) and (self.end is None or pts < self.end)


def span_of(spans: list[Span], pts: int) -> int:
    """The index of the span holding ``pts``."""
    for span in spans:
        if span.holds(pts):
            return span.index
    raise ValueError(f"pts {pts} lies in no segment")  # spans cover everything; a bug otherwise


def keyframe_pts(path: str, stream_index: int) -> tuple[list[int], Fraction, bool]:
    """(sorted keyframe pts, time base, every packet had a pts) of the video stream, from packet
    headers only. Read errors end the scan early (a truncated file): what was read is used."""
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    keys: set[int] = set()
    timed = True
    with container:
        stream = container.streams[stream_index]
        try:
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                timed = timed and packet.pts is not None
                if packet.is_keyframe and packet.pts is not None:
                    keys.add(packet.pts)
        except (av.error.FFmpegError, OSError) as exc:
            log.debug("keyframe scan ended early: %s", exc)
        return sorted(keys), Fraction(stream.time_base), timed


def plan_segments(path: str, stream_index: int, segment_s: float = DEFAULT_SEGMENT_S) -> list[Span]:
    """Spans of at least ``segment_s`` seconds, each starting at a keyframe. A stream without
    timestamps on every packet (a raw elementary stream) is one segment: it cannot be cut exactly."""
    keys, tb, timed = keyframe_pts(path, stream_index)
    if not timed or len(keys) < 2:
        return [Span(0, None, None)]
    starts: list[int] = []
    last = keys[0]
    for pts in keys[1:]:
        if (pts - last) * tb >= segment_s:
            starts.append(pts)
            last = pts
    bounds = [None, *starts, None]
    return [Span(i, bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
