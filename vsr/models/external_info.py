"""What vsr found in a model file outside the package: :class:`ExternalInfo`, and the suffixes taken.

A module of its own so that the readers of each format (:mod:`vsr.models.torch_file`,
:mod:`vsr.models.onnx_file`) and :mod:`vsr.models.external`, which dispatches to them, share it
without an import circle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["SUFFIXES", "ExternalInfo"]

SUFFIXES: tuple[str, ...] = (".pth", ".pt", ".ckpt", ".safetensors", ".onnx")
"""The model file suffixes vsr takes (PyTorch through spandrel, and ONNX)."""


@dataclass(frozen=True)
class ExternalInfo:
    """What vsr found in a model file.

    ``format``: ``torch`` (loaded through spandrel) or ``onnx``. ``arch``: spandrel's architecture
    name (``RealESRGAN Compact``, ``ESRGAN``, ``SPAN``...) or ``onnx``. ``scale``: output / input
    size. ``in_channels``/``out_channels``: 3 (RGB) or 1 (gray). ``size_multiple``/``min_size``:
    what input sides must be (vsr pads, reflecting, and crops back). ``fp16``/``bf16``: the model
    may run in half / bfloat16 precision. ``params``: parameter count (0 when unknown).
    ``sha256``: of the file.
    """

    path: Path
    format: Literal["torch", "onnx"]
    arch: str
    scale: int
    in_channels: int
    out_channels: int
    size_multiple: int
    min_size: int
    fp16: bool
    bf16: bool
    params: int
    sha256: str
