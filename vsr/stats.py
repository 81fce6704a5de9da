"""Per-stage timing, run statistics and the stderr progress bar of :mod:`vsr.pipeline`.

Stage latencies are milliseconds per frame (a batch's time is shared among its frames);
percentiles are nearest-rank over every frame of the run.
"""

from __future__ import annotations

import re
import resource
import sys
import threading
import time
from array import array
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

__all__ = ["PLAIN_EVERY_S", "Progress", "RunStats", "StageStats", "peak_rss_mb"]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class StageStats:
    """Frame count and per-frame latency of one stage. Thread-safe enough: one writer per stage."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.frames = 0
        self.busy_s = 0.0
        self._ms = array("d")

    def add(self, seconds: float, frames: int = 1) -> None:
        """Record ``frames`` frames that took ``seconds`` in this stage together."""
        if frames <= 0:
            return
        self.frames += frames
        self.busy_s += seconds
        self._ms.extend([seconds * 1000.0 / frames] * frames)

    def summary(self) -> dict[str, float | int]:
        """``frames``, ``busy_s``, ``fps`` (frames per busy second), ``p50_ms``, ``p95_ms``."""
        ms = np.frombuffer(self._ms, dtype=np.float64) if self._ms else np.zeros(1)
        return {
            "frames": self.frames,
            "busy_s": round(self.busy_s, 4),
            "fps": round(self.frames / self.busy_s, 3) if self.busy_s > 0 else 0.0,
            "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p95_ms": round(float(np.percentile(ms, 95)), 3),
        }


@dataclass
class RunStats:
    """What one pipeline run did. ``to_dict`` is the ``--json-stats`` document."""

    frames_in: int = 0
    frames_out: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    truncated: bool = False
    stages: dict[str, StageStats] = field(
        default_factory=lambda: {n: StageStats(n) for n in ("decode", "infer", "encode")}
    )
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        """Output frames per wall-clock second, end to end."""
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: counts, wall time, fps, peak RSS and per-stage p50/p95."""
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "seconds": round(self.seconds, 4),
            "fps": round(self.fps, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "interrupted": self.interrupted,
            "truncated": self.truncated,
            "stages": {name: s.summary() for name, s in self.stages.items()},
            **self.extra,
        }


PLAIN_EVERY_S = 5.0
"""Off a terminal, :class:`Progress` writes one plain line at most this often (seconds)."""

_BAR = re.compile(r"^\[[# ]*\]\s*")


class Progress:
    """Progress on ``stream`` (stderr): a one-line bar (frames, fps, ETA) redrawn in place on a
    terminal; elsewhere (a log file, a pipe, CI) the same text without the bar as a plain line every
    :data:`PLAIN_EVERY_S` seconds, so a long run off a terminal still says how far it is.

    Draws nothing unless ``enabled``; redraws the bar at most every ``interval`` seconds. ``tty``
    None asks ``stream.isatty()``.
    """

    def __init__(
        self,
        total: int,
        *,
        enabled: bool,
        stream: TextIO | None = None,
        interval: float = 0.25,
        tty: bool | None = None,
    ):
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.interval = interval
        self.tty = _isatty(self.stream) if tty is None else tty
        self._start = time.perf_counter()
        self._last = 0.0
        self._last_plain = self._start
        self._lock = threading.Lock()
        self._drawn = False

    def update(self, done: int, *, force: bool = False) -> None:
        """Redraw with ``done`` frames finished."""
        now = time.perf_counter()
        if not self.enabled or (not force and now - self._last < self.interval):
            return
        self._last = now
        self.draw(self.line(done, now - self._start))

    def draw(self, line: str) -> None:
        """Show a line made elsewhere (e.g. by the engine's :meth:`line`): redraw the bar on a
        terminal; off one, write it as a plain line when :data:`PLAIN_EVERY_S` has passed."""
        if not self.enabled:
            return
        with self._lock:
            if self.tty:
                self.stream.write("\r" + line)
                self._drawn = True
            else:
                now = time.perf_counter()
                if now - self._last_plain < PLAIN_EVERY_S:
                    return
                self._last_plain = now
                self.stream.write("vsr: progress: " + " ".join(_BAR.sub("", line).split()) + "\n")
            self.stream.flush()

    def line(self, done: int, elapsed: float) -> str:
        """The text of the bar for ``done`` frames after ``elapsed`` seconds."""
        fps = done / elapsed if elapsed > 0 else 0.0
        if self.total > 0:
            frac = min(done / self.total, 1.0)
            bar = "#" * int(frac * 24)
            eta = f"{(self.total - done) / fps:5.0f}s" if fps > 0 and done < self.total else "    -"
            return f"[{bar:<24}] {done}/{self.total} frames  {fps:6.1f} fps  ETA {eta} "
        return f"{done} frames  {fps:6.1f} fps "

    def close(self) -> None:
        """End the bar's line so later messages start on a fresh one."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
