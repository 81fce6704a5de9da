"""The engine: one frame loop behind every command.

``run(source, ladder, sink, policy)`` moves frames Source -> decode -> upscale -> encode -> Sink,
with pass-through packets (audio, subtitles) in input order and every frame's pts unchanged.
``vsr upscale`` is a file source + :class:`Lossless` + a file sink; ``vsr stream`` a URL source +
:class:`Live` + a URL/HLS/file sink; ``vsr webcam`` a camera + :class:`Live` + files, streams, a
virtual camera or a window; ``vsr webrtc`` a peer's track + :class:`Live` + a track.
Needs numpy and the standard library; never imports torch or the model catalogue.
"""

from __future__ import annotations

import threading

from ..stats import RunStats
from .budget import DROP, BudgetController
from .frame import END, Frame
from .live import LiveRun, NoVideoFrame
from .live_stats import LiveStats
from .lossless import LosslessRun
from .policy import Live, Lossless, Policy, check_budget
from .ports import Sink, Source
from .run import StatusFn

__all__ = [
    "DROP",
    "END",
    "BudgetController",
    "Frame",
    "Live",
    "LiveStats",
    "Lossless",
    "NoVideoFrame",
    "Policy",
    "Sink",
    "Source",
    "check_budget",
    "run",
]


def run(
    source: Source,
    ladder,  # vsr.ladder.Ladder (not imported: the engine stays free of the catalogue)
    sink: Sink,
    policy: Policy,
    *,
    stop: threading.Event | None = None,
    on_status: StatusFn | None = None,
    status_every_s: float = 1.0,
    expected_frames: int = 0,
) -> RunStats | LiveStats:
    """Run ``source`` through ``ladder`` into ``sink`` under ``policy`` until the input ends,
    ``stop`` is set (the frames in flight are finished) or the receiver goes away.

    Returns :class:`~vsr.stats.RunStats` (lossless) or :class:`LiveStats` (live). Raises what a
    stage raised, after closing the sink. ``on_status`` gets a progress/status line every
    ``status_every_s``; ``expected_frames`` (lossless) gives the progress line an ETA.
    """
    stop = stop or threading.Event()
    if isinstance(policy, Lossless):
        return LosslessRun(
            source, ladder, sink, policy, stop, on_status, status_every_s, expected_frames
        ).run()
    return LiveRun(source, ladder, sink, policy, stop, on_status, status_every_s).run()
