"""Real-time pacing for a file read as a live input (like ``ffmpeg -re``).

A file can be read much faster than it plays; a live pipeline fed that fast would skip or drop
most of it. :class:`Pacer` releases each item when the wall clock, started at the first video
frame, reaches the item's timestamp. A file has no live edge to keep up with: when the consumer
comes back more than :data:`MAX_LATE_S` late (its models were warming up, or it stalled), the
clock waits for it instead of handing it the backlog in one burst (a live queue would drop it).
"""

from __future__ import annotations

import threading
import time

__all__ = ["MAX_GAP_S", "MAX_LATE_S", "Pacer"]

MAX_GAP_S = 2.0
"""A video timestamp this far from the previous one is a discontinuity: the clock restarts there
(and audio is never held back longer than this)."""

MAX_LATE_S = 0.5
"""A video frame asked for this late restarts the clock at it (the file pauses, nothing is lost)."""


class Pacer:
    """Holds items back until their time: ``due = start_wall + (t - start_t)``.

    :meth:`wait` takes an item's timestamp ``t`` in seconds and whether it is a video frame; the
    first video frame starts the clock (items before it pass at once). ``stop`` cuts a wait short.
    """

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self._origin: tuple[float, float] | None = None  # (wall, media) seconds: the clock's start
        self._last_video = 0.0

    def wait(self, t: float, video: bool) -> float:
        """Sleep until ``t`` is due; returns the release time (``time.perf_counter()``), the
        item's arrival for the consumer."""
        now = time.perf_counter()
        if self._origin is None:
            if video:
                self._origin, self._last_video = (now, t), t
            return now
        wall, media = self._origin
        if video:
            if abs(t - self._last_video) > MAX_GAP_S:  # a jump: play on from the previous frame's time
                self._origin = wall, media = wall + (self._last_video - media), t
            if now - (wall + t - media) > MAX_LATE_S:  # the consumer was away: resume from here
                self._origin = wall, media = now, t
            self._last_video = t
        due = wall + (t - media)
        if due > now and (video or due - now <= MAX_GAP_S):
            self.stop.wait(due - now)
            now = time.perf_counter()
        return now
