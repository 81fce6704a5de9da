"""Let torch's OpenMP threads sleep, not spin, while they wait for work (``vsr upscale``).

PyTorch's CPU wheels run their kernels on GNU OpenMP, whose idle threads spin for a while
(``GOMP_SPINCOUNT``, 300,000 turns when ``OMP_WAIT_POLICY`` is unset) before they sleep. In a
file run the network shares two cores with the decoder, the x264 encoder's threads and OpenCV;
between one network call and the next (face crops: several short calls per frame) the spinning
threads take the cores those need. Measured on the 2-core EPYC, ``vsr upscale
samples/face_320x180.mp4 --face --face-model fast-plus`` alternated with and without
``OMP_WAIT_POLICY=PASSIVE`` in fresh processes (medians of 6 and 4 pairs): 32.6 / 27.8 and 34.8 /
29.0 frames/s, 6.98 / 9.21 CPU-seconds per run; whole-frame ``fast`` end to end 25.7 / 25.4 (no
change); ``vsr bench --no-e2e`` model-only ~6-10 % slower (so ``bench`` keeps the default).

libgomp reads the variable once, when torch loads it: this must run before ``import torch``.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["passive_omp_wait"]

log = logging.getLogger(__name__)


def passive_omp_wait() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` for this process unless the user set it or torch is loaded.

    Returns True when the policy in force is the user's or PASSIVE; False when torch was imported
    first (too late: libgomp has read its settings). Never raises.
    """
    if "OMP_WAIT_POLICY" in os.environ:
        return True
    if "torch" in sys.modules:
        log.debug("torch is already loaded: OpenMP keeps its wait policy")
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True
