"""Live streams (``vsr stream``): a low-resolution stream in, a 4x stream out, in real time.

The live path has its own rules: the source sets the pace, added latency stays within a budget (a
controller degrades frame by frame to cheaper model tiers, then bicubic, and drops the oldest frame
only as a last resort), the input may stall and reconnect, the receiver may leave.
``import vsr.stream`` needs only numpy, av and opencv.
"""

from __future__ import annotations

from ..engine import DROP, BudgetController, LiveStats
from .config import StreamConfig, sink_kind
from .live import run_stream, stream_ladder
from .sink import HLS_PLAYLIST, ReceiverGone

__all__ = [
    "DROP",
    "HLS_PLAYLIST",
    "BudgetController",
    "LiveStats",
    "ReceiverGone",
    "StreamConfig",
    "run_stream",
    "sink_kind",
    "stream_ladder",
]
