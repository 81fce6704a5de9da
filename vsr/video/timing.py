"""Frame timing through the encoder: output pts = input pts, durations kept with their frames.

Encoders that reorder frames (B-frames) hand packets out in decode order and attach durations in
that order too; with variable frame rate this would move frames' ends and shorten the stream.
:class:`Timeline` remembers each frame's duration by pts and puts it back on the packet that
carries that frame. Timing is never recomputed from a frame-rate estimate, except for input that
has no timestamps at all (raw elementary streams).
"""

from __future__ import annotations

import logging
from fractions import Fraction

import av

__all__ = ["Timeline"]

log = logging.getLogger(__name__)


class Timeline:
    """Timestamps of one output video stream, all in the input stream's ``time_base``.

    ``rate`` (average frame rate) is used only to space frames that arrive without a pts.
    ``sums_decode_order``: the container derives sample durations from decode order (MP4/MOV), so
    the last packet is stretched to make the track as long as the frames' presentation span.
    """

    def __init__(self, time_base: Fraction, rate: Fraction | None, *, sums_decode_order: bool) -> None:
        self.time_base, self.rate, self.sums_decode_order = time_base, rate, sums_decode_order
        self.frames = 0
        self._last_pts: int | None = None
        self._durations: dict[int, int] = {}  # pts -> duration, for frames inside the encoder
        self._first_pts = self._end_pts = 0
        self._first_dts: int | None = None

    def frame(self, pts: int | None, duration: int) -> int:
        """The pts to encode a frame at: ``pts`` itself, unless it is missing or not increasing
        (then the last one plus this frame's duration, or one frame at the average rate).
        """
        last = self._last_pts
        if pts is None or (last is not None and pts <= last):
            step = duration if duration > 0 else round(1 / (self.rate * self.time_base)) if self.rate else 1
            fixed = 0 if last is None else last + max(step, 1)
            log.debug("frame pts %s is missing or not increasing; using %d", pts, fixed)
            pts = fixed
        self._last_pts = pts
        if duration > 0:
            self._durations[pts] = duration
        if self.frames == 0:
            self._first_pts = pts
        self._end_pts = max(self._end_pts, pts + max(duration, 0))
        self.frames += 1
        return pts

    def packets(self, packets: list[av.Packet], *, final: bool = False) -> list[av.Packet]:
        """Give encoded ``packets`` their frames' durations (``final``: the encoder's last ones)."""
        for packet in packets:
            duration = self._durations.pop(packet.pts, None)
            if duration is not None:
                packet.duration = duration
            if self._first_dts is None:
                self._first_dts = packet.dts
        if final and packets and self.sums_decode_order and self._first_dts is not None:
            last = packets[-1]
            span = self._end_pts - self._first_pts - (last.dts - self._first_dts)
            if span > 0:
                last.duration = span
        return packets
