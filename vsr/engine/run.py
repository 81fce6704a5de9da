"""The frame loop: Source -> read thread -> q_in -> infer thread -> q_out -> this thread -> Sink.

::

    source.items --read--> q_in --infer (ladder rung)--> q_out --write (caller's thread)--> sink
       frames and pass-through packets travel the same queues, in input order, ending in END

One skeleton for every command; the policy decides what happens between the queues (see
:mod:`vsr.engine.lossless` and :mod:`vsr.engine.live`). The sink is written on the calling thread
(a preview window must live on the main thread). An exception in a stage stops the others and is
raised here after the sink is closed, so what was written stays playable; a ``KeyboardInterrupt``
here (a second Ctrl-C) aborts the stages and closes the sink with the frames written so far.
Never imports torch or the model catalogue: the ladder's backends take and return uint8 frames.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import ReceiverGone
from .frame import END, Frame
from .ports import Sink, Source

if TYPE_CHECKING:  # pragma: no cover
    from ..ladder import Ladder

__all__ = ["Aborted", "EngineRun", "StatusFn"]

log = logging.getLogger(__name__)

StatusFn = Callable[[str], None]


class Aborted(Exception):
    """Raised inside a stage when the run was aborted; ends the stage quietly."""


class EngineRun:
    """One run of the engine. Subclasses (one per policy) give the queues and the stage bodies:
    :meth:`_feed` (read thread, per item), :meth:`_infer` (infer thread), :meth:`_deliver`
    (caller's thread, per item), :meth:`_warm_up`, :meth:`_status_line` and :meth:`_finish`."""

    stats: Any
    q_in: Any
    q_out: queue.Queue

    def __init__(
        self,
        source: Source,
        ladder: Ladder,
        sink: Sink,
        stop: threading.Event,
        on_status: StatusFn | None,
        status_every_s: float,
    ) -> None:
        self.source, self.ladder, self.sink, self.stop = source, ladder, sink, stop
        self.on_status, self.status_every_s = on_status, status_every_s
        self.abort = threading.Event()
        self.errors: list[BaseException] = []
        self._stop_seen: float | None = None

    # --- the skeleton -------------------------------------------------------------------------
    def run(self) -> Any:
        """Run to the end of the input (or stop / abort / a failed stage) and return the stats."""
        items = iter(self.source.items(self.stop))
        lead, first = self._lead(items)
        if first is None:
            return self._no_frame(lead)
        height, width = first.image.shape[:2]
        self._warm_up(height, width)
        # stopped while warming up (a signal): no frame starts; the run ends at once, interrupted
        start = lead if self.stop.is_set() else [*lead, first]
        self.sink.open(width * self.ladder.scale, height * self.ladder.scale)
        self.started = time.perf_counter()
        threads = [
            threading.Thread(target=self._guard, args=(body,), name=f"vsr-{name}", daemon=True)
            for body, name in ((lambda: self._read(start, items), "read"), (self._infer, "infer"))
        ]
        for t in threads:
            t.start()
        try:
            self._write_loop()
        except KeyboardInterrupt:
            log.warning("aborting: closing the output with the frames written so far")
            self.abort.set()
        except BaseException as exc:  # the sink failed: close it as failed, then raise this
            self.errors.insert(0, exc)
        finally:
            self.aborted = self.abort.is_set()  # before the stages are told to stop
            self.abort.set()
            self._close_input()
            for t in threads:
                t.join(timeout=5.0)
            self.sink.close(failed=bool(self.errors))
        self.stats.seconds = time.perf_counter() - self.started
        self._finish()
        if self.errors:
            raise self.errors[0]
        return self.stats

    def _lead(self, items: Iterator[Frame | object]) -> tuple[list[object], Frame | None]:
        """The packets before the first frame, and the first frame (None if the input had none)."""
        lead: list[object] = []
        for item in items:
            if isinstance(item, Frame):
                return lead, item
            lead.append(item)
        return lead, None

    def _guard(self, body: Callable[[], None]) -> None:
        try:
            body()
        except Aborted:
            pass
        except BaseException as exc:  # carried to the caller's thread
            self.errors.append(exc)
            self.abort.set()
            self.stop.set()

    def _read(self, lead: list[object], items: Iterator[Frame | object]) -> None:
        """Read thread: every item onto q_in (the policy's :meth:`_feed`), then END."""
        try:
            for item in lead:
                self._feed(item)
            t0 = time.perf_counter()
            for item in items:
                if self.abort.is_set():
                    raise Aborted
                self._feed(item, time.perf_counter() - t0)
                t0 = time.perf_counter()
        finally:
            self._end_input()

    def _write_loop(self) -> None:
        """Caller's thread: deliver q_out's items to the sink until END; draw the status line."""
        next_status = time.perf_counter() + self.status_every_s
        while True:
            try:
                item = self.q_out.get(timeout=0.1)
            except queue.Empty:
                item = None
            if item is END:
                break
            if item is not None:
                try:
                    self._deliver(item)
                except ReceiverGone as exc:
                    self.stats.ended = str(exc)
                    self.stop.set()
                    return
            now = time.perf_counter()
            if self.on_status is not None and now >= next_status:
                self.on_status(self._status_line())
                next_status = now + self.status_every_s
            self._watch_stop(now)
            if self.abort.is_set() and self.q_out.empty():
                return

    def _watch_stop(self, now: float) -> None:
        """After ``stop``, a reader blocked in a read gets a grace period, then the input closes."""
        if not self.stop.is_set():
            return
        if self._stop_seen is None:
            self._stop_seen = now
        if now - self._stop_seen > self._grace_s():
            self._close_input()

    def _put_out(self, item: object) -> None:
        while True:
            if self.abort.is_set():
                raise Aborted
            try:
                self.q_out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    # --- what each policy gives ---------------------------------------------------------------
    def _no_frame(self, lead: list[object]) -> Any:
        raise NotImplementedError

    def _warm_up(self, height: int, width: int) -> None:
        raise NotImplementedError

    def _feed(self, item: object, seconds: float = 0.0) -> None:
        raise NotImplementedError

    def _end_input(self) -> None:
        raise NotImplementedError

    def _close_input(self) -> None:
        """Unblock the infer thread's wait on q_in (the run is ending)."""

    def _grace_s(self) -> float:
        return 1.5

    def _infer(self) -> None:
        raise NotImplementedError

    def _deliver(self, item: object) -> None:
        raise NotImplementedError

    def _status_line(self) -> str:
        raise NotImplementedError

    def _finish(self) -> None:
        """Fill the last counters into ``stats``."""
