"""vsr.alloc: frame buffers stay on the heap, so a frame costs no page faults for its buffers."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")

_CHILD = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    if sys.argv[1] == "tuned":
        from vsr.alloc import keep_freed_buffers
        assert keep_freed_buffers() and keep_freed_buffers()  # idempotent
    from vsr.backends import create_backend
    backend = create_backend("torch", "fast", device="cpu", threads=2)
    frame = np.random.default_rng(0).integers(0, 256, (1, 360, 640, 3), dtype=np.uint8)
    for _ in range(5):
        backend.infer(frame)
    faults = []
    for _ in range(9):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        backend.infer(frame)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(sorted(faults)[4])  # the median frame: one frame that grows an arena does not decide
    """
)


def _faults_per_frame(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return float(out.stdout.split()[-1])


def _thp_always() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled", encoding="ascii") as f:
            return "[always]" in f.read()
    except OSError:
        return False


def _glibc() -> bool:
    import platform

    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not _glibc(), reason="mallopt thresholds are glibc (Linux) only")
@pytest.mark.skipif(
    _thp_always(), reason="transparent huge pages 'always': page faults no longer count 4 KiB pages"
)
def test_frames_stop_page_faulting_their_buffers() -> None:
    # 640x360 fast: a 44 MB first activation, above glibc's largest dynamic mmap threshold (32 MiB),
    # so its defaults mmap / munmap it every frame (3,600-33,000 faults of 4 KiB measured for the
    # median frame); raised thresholds keep it on the heap (0 measured).
    default, tuned = _faults_per_frame("default"), _faults_per_frame("tuned")
    assert default > 1000, f"glibc's defaults faulted only {default:.0f} pages per frame: nothing to fix?"
    assert tuned < default / 10, (default, tuned)
