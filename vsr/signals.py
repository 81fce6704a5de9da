"""Ctrl-C, SIGTERM and SIGHUP for long runs: the first asks the run to finish cleanly, the second aborts."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["StopFlag", "stop_on_signals"]

log = logging.getLogger(__name__)


class StopFlag(threading.Event):
    """An event that also remembers which signal (if any) set it."""

    signum: int | None = None


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """SIGINT / SIGTERM / SIGHUP (the terminal closed) set the yielded flag (finish the frames in
    flight); a second one aborts.

    Outside the main thread signals cannot be caught; the flag is then only set by the caller.
    """
    stop = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.signum = signum
        stop.set()
        log.warning(
            "%s received: finishing the frames in flight (again to abort)", signal.Signals(signum).name
        )

    catch = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    old = {sig: signal.signal(sig, handler) for sig in catch}
    try:
        yield stop
    finally:
        for sig, prev in old.items():
            signal.signal(sig, prev)
