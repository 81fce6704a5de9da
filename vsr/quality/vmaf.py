"""VMAF and VMAF NEG through libvmaf in an FFmpeg binary, from .y4m files this module writes.

The FFmpeg comes from the ``imageio-ffmpeg`` wheel (``pip install 'vsr[eval]'``: a static FFmpeg
built with libvmaf, models built in, runs offline) or, failing that, any ``ffmpeg`` on PATH that
has the ``libvmaf`` filter. Both models run in one pass: ``vmaf_v0.6.1`` and ``vmaf_v0.6.1neg``
(the "no enhancement gain" variant, which does not reward sharpening). Scores are pooled means.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np

from ..colour import rgb_to_ycbcr
from ..metrics import luma

__all__ = ["VMAF_MODELS", "Y4mWriter", "find_vmaf_ffmpeg", "run_vmaf"]

log = logging.getLogger(__name__)

VMAF_MODELS: dict[str, str] = {"vmaf": "vmaf_v0.6.1", "vmaf_neg": "vmaf_v0.6.1neg"}
"""Result key -> libvmaf built-in model version."""


def _has_libvmaf(exe: str) -> bool:
    try:
        out = subprocess.run(
            [exe, "-hide_banner", "-filters"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.split()[1:2] == ["libvmaf"] for line in out.stdout.splitlines())


@functools.lru_cache(maxsize=1)
def find_vmaf_ffmpeg() -> tuple[str | None, str]:
    """(path of an FFmpeg with libvmaf, where it came from), or (None, why there is none)."""
    candidates: list[tuple[str, str]] = []
    try:
        import imageio_ffmpeg

        candidates.append(("imageio-ffmpeg", imageio_ffmpeg.get_ffmpeg_exe()))
    except (ImportError, RuntimeError):
        pass
    on_path = shutil.which("ffmpeg")
    if on_path:
        candidates.append(("PATH", on_path))
    for source, exe in candidates:
        if _has_libvmaf(exe):
            return exe, f"libvmaf in {Path(exe).name} ({source})"
    tried = ", ".join(exe for _, exe in candidates) or "no ffmpeg found"
    return None, f"no FFmpeg with libvmaf ({tried}); pip install 'vsr[eval]' (imageio-ffmpeg) for VMAF"


class Y4mWriter:
    """Writes (H, W, 3) uint8 RGB frames to a yuv420p .y4m file: Y = BT.601 studio luma rounded
    (the metrics' formula, :func:`vsr.metrics.luma`), Cb/Cr of the 2x2 area-averaged RGB.
    Even sizes only. ``with Y4mWriter(path, w, h, fps) as w: w.write(frame)``."""

    def __init__(self, path: Path, width: int, height: int, fps: float = 25.0) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"Y4mWriter: size must be even, got {width}x{height}")
        self.path, self.width, self.height = Path(path), width, height
        num, den = (round(fps * 1000), 1000) if fps > 0 else (25, 1)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._file.write(f"YUV4MPEG2 W{width} H{height} F{num}:{den} Ip A1:1 C420mpeg2\n".encode())
        self.frames = 0

    def write(self, rgb: np.ndarray, y: np.ndarray | None = None) -> None:
        """Append one frame; ``y``: its :func:`~vsr.metrics.luma` if already computed."""
        h, w = rgb.shape[:2]
        if (w, h) != (self.width, self.height):
            raise ValueError(f"Y4mWriter: frame is {w}x{h}, the file {self.width}x{self.height}")
        y = luma(rgb) if y is None else y
        small = cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        cbcr = rgb_to_ycbcr(small)[..., 1:]
        self._file.write(b"FRAME\n")
        self._file.write(np.clip(y + 0.5, 0, 255).astype(np.uint8).tobytes())
        for c in (0, 1):
            self._file.write(np.clip(cbcr[..., c] + 0.5, 0, 255).astype(np.uint8).tobytes())
        self.frames += 1

    def close(self) -> None:
        """Close the file. Idempotent."""
        self._file.close()

    def __enter__(self) -> Y4mWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_vmaf(
    ffmpeg: str, distorted: Path, reference: Path, *, threads: int | None = None
) -> dict[str, float]:
    """Pooled mean VMAF of ``distorted`` against ``reference`` (same-size .y4m files, frame for
    frame) for each of :data:`VMAF_MODELS`: ``{"vmaf": 0..100, "vmaf_neg": 0..100}``.

    Raises RuntimeError with FFmpeg's last line when it fails.
    """
    threads = threads or min(4, os.cpu_count() or 1)
    models = "|".join(f"version={v}\\\\:name={k}" for k, v in VMAF_MODELS.items())
    log_path = Path(distorted).with_suffix(".vmaf.json")
    graph = f"[0:v][1:v]libvmaf=model={models}:log_fmt=json:log_path={log_path.name}:n_threads={threads}"
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin"]
    cmd += ["-i", str(Path(distorted).resolve()), "-i", str(Path(reference).resolve())]
    cmd += ["-lavfi", graph, "-f", "null", "-"]
    done = subprocess.run(cmd, cwd=log_path.parent, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not log_path.exists():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"libvmaf failed on {distorted}: {last}")
    pooled = json.loads(log_path.read_text())["pooled_metrics"]
    log_path.unlink()
    return {k: float(pooled[k]["mean"]) for k in VMAF_MODELS}
