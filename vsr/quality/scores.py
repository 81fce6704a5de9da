"""Frame-by-frame scoring of one output sequence against its reference.

:class:`RefFrame` holds what every method's score of a frame shares (the reference's luma, grey
frame and flow from the previous frame), computed once per frame; :class:`SequenceScore` adds up
Y-PSNR and Y-SSIM (the SR protocol of :mod:`vsr.metrics`: BT.601 Y, ``border`` px cropped, means
over frames), tOF (:mod:`vsr.quality.flow`) and, when given a path, writes the frames to a .y4m
file for VMAF.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..metrics import luma, psnr, ssim
from .flow import TofMeter, farneback, grey
from .vmaf import Y4mWriter

__all__ = ["RefFrame", "SequenceScore"]


@dataclass(frozen=True)
class RefFrame:
    """One reference frame: ``rgb`` (H, W, 3) uint8, ``y`` its float64 luma, ``grey`` uint8 and
    ``flow`` (H, W, 2) float32 from the previous reference frame (None for the first)."""

    rgb: np.ndarray
    y: np.ndarray
    grey: np.ndarray
    flow: np.ndarray | None

    @classmethod
    def next(cls, rgb: np.ndarray, prev: RefFrame | None) -> RefFrame:
        """The reference frame after ``prev`` (None: the first)."""
        g = grey(rgb)
        return cls(rgb, luma(rgb), g, None if prev is None else farneback(prev.grey, g))


class SequenceScore:
    """Scores of one method's frames, added in order with :meth:`add`; :meth:`result` at the end.

    ``y4m``: also write the frames there (for :func:`vsr.quality.vmaf.run_vmaf`); ``border``: px
    cropped off each side for PSNR and SSIM (the protocol's 4).
    """

    def __init__(self, y4m: Path | None = None, fps: float = 25.0, border: int = 4) -> None:
        self.y4m_path = y4m
        self._fps, self._border = fps, border
        self._writer: Y4mWriter | None = None
        self._psnr: list[float] = []
        self._ssim: list[float] = []
        self._tof = TofMeter()

    def add(self, out: np.ndarray, ref: RefFrame) -> None:
        """Score (H, W, 3) uint8 RGB ``out`` against ``ref`` (same size); the frame is not kept."""
        if out.shape != ref.rgb.shape:
            raise ValueError(f"output frame {out.shape} does not match the reference {ref.rgb.shape}")
        y = luma(out)
        self._psnr.append(psnr(ref.y, y, self._border))
        self._ssim.append(ssim(ref.y, y, self._border))
        self._tof.add(grey(out), ref.flow)
        if self.y4m_path is not None:
            if self._writer is None:
                h, w = out.shape[:2]
                self._writer = Y4mWriter(self.y4m_path, w, h, self._fps)
            self._writer.write(out, y)

    def close(self) -> None:
        """Finish the .y4m file (idempotent)."""
        if self._writer is not None:
            self._writer.close()

    @property
    def frames(self) -> int:
        return len(self._psnr)

    def result(self) -> dict[str, float]:
        """``{"psnr_y", "ssim_y", "tof"}``: means over frames (tOF over frame pairs). Identical
        frames have infinite PSNR; the mean is then ``inf``."""
        return {
            "psnr_y": float(np.mean(self._psnr)) if self._psnr else float("nan"),
            "ssim_y": float(np.mean(self._ssim)) if self._ssim else float("nan"),
            "tof": self._tof.value,
        }
