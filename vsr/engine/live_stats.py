"""Live-stream telemetry: per-stage p50/p95/p99, added latency, counts, and the status line.

Latencies are kept in milliseconds, one sample per frame, in bounded ring buffers (a stream may run
for days: memory stays constant; percentiles cover the last ``window`` frames).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import numpy as np

from .budget import BudgetController

__all__ = ["LiveStats", "Samples"]


class Samples:
    """The last ``window`` samples of a duration (ms); one writer thread, any reader."""

    def __init__(self, window: int = 100_000) -> None:
        self._ms: deque[float] = deque(maxlen=window)
        self.count = 0

    def add(self, seconds: float) -> None:
        self._ms.append(seconds * 1000.0)
        self.count += 1

    def percentiles(self) -> dict[str, float | int | None]:
        """``count`` and ``p50_ms`` / ``p95_ms`` / ``p99_ms`` (None before any sample)."""
        if not self._ms:
            return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None}
        ms = np.fromiter(list(self._ms), dtype=np.float64)
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        return {
            "count": self.count,
            "p50_ms": round(p50, 2),
            "p95_ms": round(p95, 2),
            "p99_ms": round(p99, 2),
        }

    def trend(self, n: int = 300) -> dict[str, float | None]:
        """Median of the first and of the last ``n`` samples kept (ms): a growing backlog shows as
        ``last`` well above ``first``."""
        ms = list(self._ms)
        if not ms:
            return {"first_p50_ms": None, "last_p50_ms": None}
        return {
            "first_p50_ms": round(float(np.median(ms[:n])), 2),
            "last_p50_ms": round(float(np.median(ms[-n:])), 2),
        }

    def recent(self, n: int = 60) -> float | None:
        """Median of the last ``n`` samples (ms), for the status line."""
        if not self._ms:
            return None
        tail = list(self._ms)[-n:]
        return float(np.median(tail))


class _Rate:
    """Events per second over a sliding ``span`` of seconds."""

    def __init__(self, span: float = 2.0) -> None:
        self.span = span
        self._t: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float) -> None:
        with self._lock:
            self._t.append(now)
            while self._t and self._t[0] < now - self.span:
                self._t.popleft()

    def per_second(self, now: float) -> float:
        with self._lock:
            while self._t and self._t[0] < now - self.span:
                self._t.popleft()
            return len(self._t) / self.span


class LiveStats:
    """Everything one live run measures. ``to_dict`` is the ``--json-stats`` document."""

    def __init__(self, controller: BudgetController) -> None:
        self.controller = controller
        self.stages = {name: Samples() for name in ("decode", "infer", "encode")}
        self.latency = Samples()
        self.frames_in = 0
        self.frames_out = 0
        self.queue_dropped = 0
        self.skipped_pts = 0
        self.skipped_at_join = 0
        self.reconnects = 0
        self.audio_packets = 0
        self.ended = ""
        self.failed = False  # the input was lost for good (gave up reconnecting)
        self.started = time.perf_counter()
        self.seconds = 0.0
        self.rate_in, self.rate_out = _Rate(), _Rate()
        self.extra: dict[str, Any] = {}

    @property
    def dropped(self) -> int:
        """Frames vsr had and dropped: by the controller, by a full input queue, or for a pts that
        did not increase. (Frames the probe read before the join are ``skipped_at_join``.)"""
        return self.controller.dropped + self.queue_dropped + self.skipped_pts

    def status_line(self, q_in: int, q_out: int) -> str:
        """One line for stderr: fps in/out, added latency, tier, degraded/dropped, queue depths."""
        now = time.perf_counter()
        lat = self.latency.recent()
        lat_s = "-" if lat is None else f"{lat:4.0f}"
        c = self.controller
        return (
            f"in {self.rate_in.per_second(now):5.1f} fps  out {self.rate_out.per_second(now):5.1f} fps  "
            f"+{lat_s} ms  tier {c.tiers[c.level]}  degraded {c.degraded}  dropped {self.dropped}  "
            f"queues {q_in}/{q_out}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: counts, per-stage and added-latency percentiles, the controller's summary."""
        c = self.controller
        full = c.used[0] if c.used else 0
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "frames_degraded": c.degraded,
            "frames_dropped": self.dropped,
            "frames_full_quality": full,
            "full_quality_ratio": round(full / self.frames_in, 4) if self.frames_in else None,
            "dropped_by_controller": c.dropped,
            "dropped_queue_full": self.queue_dropped,
            "dropped_bad_pts": self.skipped_pts,
            "skipped_at_join": self.skipped_at_join,
            "reconnects": self.reconnects,
            "audio_packets": self.audio_packets,
            "seconds": round(self.seconds, 3),
            "ended": self.ended,
            "failed": self.failed,
            "added_latency": self.latency.percentiles() | self.latency.trend(),
            "stages": {name: s.percentiles() for name, s in self.stages.items()},
            "controller": c.summary(),
            **self.extra,
        }
