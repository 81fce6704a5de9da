"""How the engine treats frames when the upscaler is slower than the input.

:class:`Lossless` (files, pipes): never drop; the decoder waits for the upscaler (bounded queues,
constant memory); frames go to the top rung of the ladder in batches. :class:`Live` (streams,
cameras, WebRTC): the input sets the pace; a budget controller picks per frame the best rung that
keeps the added latency within ``budget_ms`` (degrading down the ladder, with hysteresis), and the
oldest waiting frame is dropped when even the floor cannot catch up.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["Live", "Lossless", "Policy", "check_budget"]


def check_budget(budget_ms: float) -> None:
    """Raise :class:`ConfigError` unless 1 <= ``budget_ms`` <= 60000 (the one latency rule)."""
    if not 1.0 <= budget_ms <= 60_000.0:
        raise ConfigError(f"latency budget must be 1..60000 ms, got {budget_ms}")


@dataclass(frozen=True)
class Lossless:
    """Every frame, in order. ``batch``: frames per inference call; ``queue_frames``: decoded
    frames that may wait for the upscaler."""

    batch: int = 1
    queue_frames: int = 8

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ConfigError(f"batch must be >= 1, got {self.batch}")
        if self.queue_frames < 1:
            raise ConfigError(f"queue_frames must be >= 1, got {self.queue_frames}")


@dataclass(frozen=True)
class Live:
    """Added latency within ``budget_ms``. ``queue_frames``: frames that may wait before the
    oldest is dropped (1: only the newest, as a video call wants). ``reader_grace_s``: after a
    stop, how long the reader may finish a blocking read before the run ends without it."""

    budget_ms: float = 150.0
    queue_frames: int = 4
    reader_grace_s: float = 1.5

    def __post_init__(self) -> None:
        check_budget(self.budget_ms)
        if self.queue_frames < 1:
            raise ConfigError(f"queue_frames must be >= 1, got {self.queue_frames}")


Policy = Lossless | Live
