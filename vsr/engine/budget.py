"""The latency-budget controller: which model tier each live frame gets, or whether it is dropped.

Per frame the controller knows the frame's age (seconds since it arrived from the input), how many
frames wait behind it, and an EWMA of each tier's inference time and of the encode time. It picks
the best tier whose predicted completion keeps the added latency within the budget::

    predicted(t) = age + infer_ewma[t] + encode_ewma <= budget

Tiers are ordered best first and end in bicubic (the floor). Degrading is immediate and sticky:
the controller's ``level`` (the best tier it currently allows) moves down at once, and moves back up
one step only after ``upgrade_after`` consecutive frames in which the better tier would have fitted
with ``margin`` of the budget to spare *and* is fast enough to keep up with the input's frame rate.
So quality does not flicker frame to frame. While degraded, the better tier is re-timed every
``probe_every`` frames on a burst of ``probe_frames`` consecutive frames (while they fit and
nothing waits), and the burst's first time is not used: a network that ran last a second ago
starts cold (idle thread pool, evicted caches; measured ~41 ms for `fast-lite` against ~27 ms
warm on the 2-core CPU), and a cold estimate would keep a sustainable tier out for good. So an
estimate taken under a load spike does not keep the stream degraded after the spike either. When even the floor cannot make the budget and other
frames are waiting, the oldest frame (this one) is dropped: the only way to catch up.
Pure logic, no clocks of its own: unit-testable with made-up times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["DROP", "BudgetController", "Ewma"]

DROP = -1
"""What :meth:`BudgetController.choose` returns for a frame that should be dropped."""


@dataclass
class Ewma:
    """Exponentially weighted moving average of a duration in seconds (None until first sample)."""

    alpha: float = 0.2
    value: float | None = None

    def add(self, seconds: float) -> None:
        """Fold in one sample (seconds, >= 0)."""
        self.value = seconds if self.value is None else self.value + self.alpha * (seconds - self.value)

    def get(self, default: float = 0.0) -> float:
        return default if self.value is None else self.value


@dataclass
class BudgetController:
    """Chooses a tier index (0 = best) per frame, or :data:`DROP`; counts what it did.

    ``tiers``: model names, best first, the last one the floor. ``budget_s``: the added latency
    allowed per frame. Thread use: one thread calls :meth:`choose` / :meth:`observe_infer`;
    another may call :meth:`observe_encode` (a float assignment, atomic in CPython).
    """

    tiers: Sequence[str]
    budget_s: float
    margin: float = 0.3
    upgrade_after: int = 10
    probe_every: int = 45
    probe_frames: int = 3
    infer: list[Ewma] = field(default_factory=list)
    encode: Ewma = field(default_factory=Ewma)
    interval: Ewma = field(default_factory=lambda: Ewma(alpha=0.05))
    level: int = 0
    used: list[int] = field(default_factory=list)
    dropped: int = 0
    _good_run: int = 0
    _since_probe: int = 0
    _burst: int = 0
    _cold: set[int] = field(default_factory=set)
    _last_arrival: float | None = None

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("BudgetController needs at least one tier")
        self.infer = [Ewma() for _ in self.tiers]
        self.used = [0 for _ in self.tiers]

    @property
    def degraded(self) -> int:
        """Frames that got a tier below the best."""
        return sum(self.used[1:])

    def observe_arrival(self, t: float) -> None:
        """A frame arrived at clock time ``t`` (seconds): tracks the input frame interval."""
        if self._last_arrival is not None and t > self._last_arrival:
            self.interval.add(t - self._last_arrival)
        self._last_arrival = t

    def observe_infer(self, tier: int, seconds: float) -> None:
        """Tier ``tier`` took ``seconds`` for one frame (the cold first frame of a probe burst is
        not folded in)."""
        if tier in self._cold:
            self._cold.discard(tier)
            return
        self.infer[tier].add(seconds)

    def observe_encode(self, seconds: float) -> None:
        """Encoding (and writing) one frame took ``seconds``."""
        self.encode.add(seconds)

    def predicted(self, tier: int, age_s: float) -> float:
        """Added latency (s) of a frame ``age_s`` old if it ran on ``tier`` now."""
        return age_s + self.infer[tier].get() + self.encode.get()

    def choose(self, age_s: float, queued: int) -> int:
        """The tier for a frame ``age_s`` seconds old with ``queued`` frames behind it, or DROP."""
        self._maybe_upgrade(age_s)
        probe = self._probe(age_s, queued)
        if probe is not None:
            self.used[probe] += 1
            return probe
        floor = len(self.tiers) - 1
        for tier in range(self.level, len(self.tiers)):
            if self.predicted(tier, age_s) <= self.budget_s:
                if tier > self.level:
                    self.level, self._good_run = tier, 0
                self.used[tier] += 1
                return tier
        if queued > 0:
            self.dropped += 1
            return DROP
        self.level, self._good_run = floor, 0
        self.used[floor] += 1
        return floor

    def _probe(self, age_s: float, queued: int) -> int | None:
        """While degraded, every ``probe_every`` frames run the better tier on a burst of up to
        ``probe_frames`` frames that it fits (nothing waiting behind them), so its estimate follows
        the machine's load; the burst's first (cold) time is dropped by :meth:`observe_infer`."""
        if self.level == 0:
            self._burst = 0
            return None
        better = self.level - 1
        fits = not queued and self.predicted(better, age_s) <= self.budget_s
        if self._burst > 0:
            if fits:
                self._burst -= 1
                return better
            self._burst = 0
        self._since_probe += 1
        if self._since_probe < self.probe_every or not fits:
            return None
        self._since_probe = 0
        self._burst = self.probe_frames - 1
        if self.probe_frames > 1:
            self._cold.add(better)
        return better

    def _maybe_upgrade(self, age_s: float) -> None:
        """Raise ``level`` by one after a long enough run of frames the better tier would have fit."""
        if self.level == 0:
            return
        better = self.level - 1
        cost = self.infer[better].get()
        sustainable = self.interval.value is None or cost <= self.interval.value
        fits = self.predicted(better, age_s) <= (1.0 - self.margin) * self.budget_s
        self._good_run = self._good_run + 1 if fits and sustainable else 0
        if self._good_run >= self.upgrade_after:
            self.level, self._good_run = better, 0

    def summary(self) -> dict[str, object]:
        """Counts per tier, degraded, dropped, and the EWMA inference time per tier (ms)."""
        return {
            "budget_ms": round(self.budget_s * 1000.0, 1),
            "frames_per_tier": dict(zip(self.tiers, self.used, strict=True)),
            "degraded": self.degraded,
            "dropped": self.dropped,
            "ewma_infer_ms": {
                t: None if e.value is None else round(e.value * 1000.0, 2)
                for t, e in zip(self.tiers, self.infer, strict=True)
            },
            "ewma_encode_ms": None if self.encode.value is None else round(self.encode.value * 1000.0, 2),
        }
