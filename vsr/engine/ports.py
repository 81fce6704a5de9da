"""The two ends the engine connects: a :class:`Source` of frames and a :class:`Sink` for them.

Adding an input or an output to vsr means writing one of these (see docs/ARCHITECTURE.md); the
engine, the policies and the ladder stay as they are.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol

from .frame import Frame

__all__ = ["Sink", "Source"]


class Source(Protocol):
    """Frames in: a file or pipe, a network URL, a camera, the frames a WebRTC peer pushes."""

    def items(self, stop: threading.Event) -> Iterator[Frame | object]:
        """:class:`Frame` objects (RGB, pts in the sink's time base) and the packets to pass
        through untouched (audio, subtitles), in input order, until the input ends or ``stop`` is
        set. Runs on the engine's read thread; may block on input."""
        ...


class Sink(Protocol):
    """Frames out: a file or pipe, a network URL, an HLS directory, a virtual camera, a preview
    window, a WebRTC track. All methods run on the thread that called :func:`vsr.engine.run`."""

    def open(self, width: int, height: int) -> None:
        """Called once, before the first write, with the output frame size."""
        ...

    def write(self, frame: Frame) -> bool:
        """Encode/show ``frame.image`` at ``frame.pts``. False: not written (a pts that did not
        increase). Raises :class:`~vsr.errors.ReceiverGone` when the receiver went away."""
        ...

    def mux(self, packet: object) -> None:
        """Pass one packet through untouched (audio, subtitles)."""
        ...

    def close(self, failed: bool) -> None:
        """Finish the output (``failed``: a stage raised; keep what was written playable)."""
        ...
