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
    for _ in range(3):
        backend.infer(frame)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(8):
        backend.infer(frame)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 8)
    """
)


def _faults_per_frame(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return float(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt thresholds are glibc (Linux) only")
def test_frames_stop_page_faulting_their_buffers() -> None:
    # 640x360 fast: a 44 MB first activation, above glibc's largest dynamic mmap threshold (32 MiB),
    # so its defaults mmap / munmap it every frame (~10,800 faults of 4 KiB); raised thresholds reuse it.
    default, tuned = _faults_per_frame("default"), _faults_per_frame("tuned")
    assert default > 5000, f"glibc's defaults faulted only {default:.0f} pages per frame: nothing to fix?"
    assert tuned < default / 5, (default, tuned)
