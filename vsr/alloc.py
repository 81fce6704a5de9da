"""Keep freed frame-sized buffers in the process instead of handing them back to the OS every frame.

Each frame allocates and frees the same few multi-megabyte tensors (a 320x180 ``fast`` pass: 48 x
180 x 320 float32 = 11 MB activations, a 1280x720x3 output). glibc serves blocks above its mmap
threshold (128 KiB, adapting up to 32 MiB) with a fresh ``mmap`` and returns them with ``munmap``
on free, so every frame page-faults its buffers back in (a 4 KiB zero-filled page at a time).
Raising the mmap and trim thresholds keeps those blocks on the heap, where the next frame reuses
them: the usual advice for PyTorch on CPU (jemalloc / tcmalloc do the same), done here with
glibc's own ``mallopt`` so nothing is preloaded. Measured on the 2-core EPYC (``fast``, 320x180,
``infer`` median over 45 calls, three alternating process pairs): 38.0 / 31.6 / 41.3 ms with
glibc's defaults, 33.2 / 30.6 / 35.0 ms with raised thresholds. The price: up to 256 MiB of freed
memory may stay with the process (a one-model `vsr bench --model fast`: peak RSS 333 MB, 337
before; with 1 GiB thresholds it had been 413).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

__all__ = ["keep_freed_buffers"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 64 << 20  # blocks up to 64 MiB (a 1080p float32 RGB frame is 25 MiB) stay on the heap
_TRIM_THRESHOLD = 256 << 20  # at most 256 MiB of freed memory is kept at the top of a heap
_done = False


def keep_freed_buffers() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (Linux/glibc only; idempotent).

    Returns True when the thresholds are set (now or by an earlier call), False where the C
    library is not glibc or refused them; it never raises.
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl has no mallopt; no libc found
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # some glibc builds cap the mmap threshold at HEAP_MAX_SIZE / 2 (32 MiB on 64-bit): fall back
    # to that cap (frame buffers up to 32 MiB still stay on the heap).
    ok = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) or bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20))
    ok = ok and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    if ok:
        _done = True
        log.debug("glibc mmap / trim thresholds raised: freed frame buffers stay in the heap")
    return ok
