"""The live policy's input queue: tiny, bounded, and it never blocks the reader.

A live reader must not wait: while it waits, the socket's backlog grows. So when the queue is full,
:meth:`FrameQueue.put` drops the *oldest video frame* waiting (audio packets are never dropped)
and counts it. The budget controller normally keeps the queue short; this is the hard stop.
"""

from __future__ import annotations

import threading
from collections import deque

from .frame import Frame

__all__ = ["CLOSED", "FrameQueue"]


class _Closed:
    def __repr__(self) -> str:
        return "CLOSED"


CLOSED = _Closed()
"""What :meth:`FrameQueue.get` returns once the queue is closed and empty."""


class FrameQueue:
    """A bounded FIFO of frames and pass-through packets; one producer, one consumer."""

    def __init__(self, max_frames: int) -> None:
        self.max_frames = max_frames
        self.dropped = 0
        self._items: deque[object] = deque()
        self._frames = 0
        self._closed = False
        self._cond = threading.Condition()

    @property
    def frames(self) -> int:
        """Video frames waiting now."""
        return self._frames

    def put(self, item: object) -> None:
        """Append; when this makes too many frames wait, drop the oldest frame (counted)."""
        with self._cond:
            self._items.append(item)
            if isinstance(item, Frame):
                self._frames += 1
                if self._frames > self.max_frames:
                    self._drop_oldest_frame()
            self._cond.notify()

    def _drop_oldest_frame(self) -> None:
        for i, old in enumerate(self._items):
            if isinstance(old, Frame):
                del self._items[i]
                self._frames -= 1
                self.dropped += 1
                return

    def close(self) -> None:
        """No more items: :meth:`get` returns :data:`CLOSED` once the queue is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def get(self, timeout: float = 0.1) -> object | None:
        """The next item, :data:`CLOSED` at the end, or None if nothing came within ``timeout``."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if self._items:
                item = self._items.popleft()
                if isinstance(item, Frame):
                    self._frames -= 1
                return item
            return CLOSED if self._closed else None
