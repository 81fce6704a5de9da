"""``vsr stream`` as a composition: live source + live policy + live sink, over one ladder.

::

    LiveSource -> StreamFrames --engine (Live: budget, degrade, drop oldest)--> StreamSink -> LiveSink
                 audio packets travel the same queues, in order, and are never dropped

The source sets the pace; the run ends when the input ends (or, without reconnect, stalls), on
``stop`` (SIGINT: both ends are closed cleanly), or when the receiver goes away. Never imports torch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from fractions import Fraction

import av
import cv2

from ..build_ladder import build_ladder
from ..config import FaceConfig
from ..engine import Frame, Live, LiveStats, NoVideoFrame, run
from ..errors import InputError
from ..ladder import Ladder
from ..video.meta import ColourTags
from .config import StreamConfig
from .sink import LiveSink
from .source import LiveSource

__all__ = ["StreamFrames", "StreamSink", "run_stream"]

StatusFn = Callable[[str], None]


class StreamFrames:
    """The engine's source over a :class:`LiveSource`: frames as RGB with pts in the first
    frame's time base (a reconnect may bring another time base or size; frames are resized to
    the first size), audio packets as they are; ``colour`` is the first frame's colour tags."""

    def __init__(self, source: LiveSource) -> None:
        self.source = source
        self.size: tuple[int, int] | None = None
        self.time_base: Fraction | None = None
        self.colour = ColourTags()

    def items(self, stop: threading.Event) -> Iterator[Frame | object]:
        for arrival, item in self.source.items():
            if isinstance(item, av.VideoFrame):
                yield self._frame(arrival, item)
            else:
                yield item

    def _frame(self, arrival: float, frame: av.VideoFrame) -> Frame:
        tb = frame.time_base or self.source.video.time_base
        if self.size is None:
            self.size, self.time_base = (frame.width, frame.height), tb
            self.colour = ColourTags.of(frame)
        image = frame.to_ndarray(format="rgb24")
        if (frame.width, frame.height) != self.size:  # a reconnect brought another size
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        pts = frame.pts
        if tb != self.time_base:
            pts = round(Fraction(pts) * tb / self.time_base)
        return Frame(image, pts, arrival=arrival)


class StreamSink:
    """The engine's sink over a :class:`LiveSink`, opened at the first frame's size and time base."""

    def __init__(self, cfg: StreamConfig, source: LiveSource, frames: StreamFrames) -> None:
        self.cfg, self.source, self.frames = cfg, source, frames
        self.sink: LiveSink | None = None

    def open(self, width: int, height: int) -> None:
        assert self.frames.time_base is not None
        sink = LiveSink(
            self.cfg,
            width,
            height,
            self.frames.time_base,
            self.source.info().rate,
            self.source.audio,
            self.frames.colour,
        )
        self.sink = sink.__enter__()

    def write(self, frame: Frame) -> bool:
        assert self.sink is not None and frame.pts is not None
        return self.sink.write(frame.image, frame.pts)

    def mux(self, packet: object) -> None:
        assert self.sink is not None
        self.sink.mux(packet)  # type: ignore[arg-type]

    def close(self, failed: bool) -> None:
        if self.sink is not None:
            self.sink.close(flush=not failed)


def stream_ladder(cfg: StreamConfig, face: FaceConfig | None = None) -> Ladder:
    """The ladder of a live stream: ``cfg.model`` down its catalogue fallbacks (or face mode)."""
    return build_ladder(cfg.models, face=face, live=True)


def run_stream(
    cfg: StreamConfig,
    ladder: Ladder | None = None,
    *,
    stop: threading.Event | None = None,
    on_status: StatusFn | None = None,
    status_every_s: float = 1.0,
    face: FaceConfig | None = None,
) -> LiveStats:
    """Run one live stream until its input ends, ``stop`` is set or the receiver goes away.

    ``ladder``: the rungs the budget controller may use (default: built from ``cfg`` or ``face``
    and closed here; a given one is not closed). ``on_status`` gets the status line every
    ``status_every_s``. Returns the run's statistics (``ended`` says why it ended, ``failed``
    that the input was lost for good); raises :class:`~vsr.errors.VsrError` subclasses for inputs
    and outputs that cannot be opened.
    """
    stop = stop or threading.Event()
    own = ladder is None
    ladder = ladder or stream_ladder(cfg, face)
    try:
        with LiveSource(cfg, stop) as source:
            frames = StreamFrames(source)
            sink = StreamSink(cfg, source, frames)
            policy = Live(cfg.latency_budget_ms, queue_frames=4)
            try:
                stats = run(
                    frames,
                    ladder,
                    sink,
                    policy,
                    stop=stop,
                    on_status=on_status,
                    status_every_s=status_every_s,
                )
            except NoVideoFrame:
                raise InputError(
                    f"no video frame arrived from {cfg.input} ({source.ended or 'stopped'})"
                ) from None
    finally:
        if own:
            ladder.close()
    assert isinstance(stats, LiveStats)
    stats.reconnects = source.reconnects
    stats.skipped_at_join += source.skipped_at_join
    if source.ended and stats.ended in ("the input ended", "stopped", ""):
        stats.ended = source.ended
    stats.failed = bool(getattr(source, "gave_up", False))
    return stats
