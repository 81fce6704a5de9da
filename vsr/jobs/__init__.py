"""File jobs: segments cut at keyframes, a manifest that survives any crash, resume, batches.

A file job (``vsr upscale IN -o OUT``) is a list of segments; each finished segment is recorded in a
manifest in a hidden work folder beside the output, so running the same command again after an
interruption resumes at the first unfinished segment. Stitching the segments is a remux.
"""

from __future__ import annotations
