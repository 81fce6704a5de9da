"""One catalogue entry: :class:`ModelSpec`, the facts vsr knows about a model (no torch needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .integrity import WeightsState, weights_state

__all__ = ["WEIGHTS_DIR", "Arch", "Colour", "ModelSpec"]

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"

Arch = Literal[
    "bicubic",
    "fast",
    "fast-lite",
    "fast-tiny",
    "fast-plus",
    "compact",
    "srresnet",
    "ecb",
    "spandrel",
    "onnx-file",
]
Colour = Literal["rgb", "y"]


@dataclass(frozen=True)
class ModelSpec:
    """Facts about one catalogue model.

    ``colour`` says what the network sees: ``rgb`` (3 channels in, 3 out, [0, 1]) or ``y``
    (BT.601 luma/255 in, luma residual over bicubic out; chroma is upscaled with bicubic).
    ``size_multiple``: input height and width must be multiples of it (the backends pad).
    ``params``: parameters of the inference network (BN folded); ``macs_per_pixel``:
    multiply-accumulates per *input* pixel (both checked by a test).
    ``receptive_radius``: input pixels of context each output pixel depends on (tiling overlap).
    ``cpu_backend``: the backend measured fastest on CPU for this architecture (``auto`` uses it).
    ``weights``: file name under ``vsr/weights`` (``None`` for bicubic); ``sha256`` its checksum,
    ``None`` while no trained weights ship.
    ``fallback``: the next cheaper model a live run degrades to when this one cannot keep its
    latency budget (``None``: the floor). Every chain ends in ``bicubic`` (checked at import).

    Model files outside the package (``arch`` ``spandrel`` or ``onnx-file``, see
    :mod:`vsr.models.external`) also set ``path`` (the file, returned by ``weights_path``),
    ``channels`` (1: the network sees full-range BT.601 luma and its output replaces the luma,
    see :class:`~vsr.backends.base.FrameAdapter`; 3: RGB), ``min_size`` (input sides are padded up
    to it), ``bf16_safe`` (may run in bfloat16 on CUDA) and ``pad`` (``reflect``, as spandrel pads).
    """

    name: str
    arch: Arch
    description: str
    scale: int = 4
    colour: Colour = "rgb"
    size_multiple: int = 1
    fp16_safe: bool = True
    params: int = 0
    macs_per_pixel: int = 0
    weights: str | None = None
    sha256: str | None = None
    tier: Literal["baseline", "cpu", "gpu", "quality"] = "cpu"
    receptive_radius: int = 0
    cpu_backend: Literal["torch", "onnx"] = "torch"
    fallback: str | None = None
    path: Path | None = None
    channels: Literal[1, 3] = 3
    min_size: int = 0
    bf16_safe: bool = False
    pad: Literal["edge", "reflect"] = "edge"

    @property
    def weights_path(self) -> Path | None:
        """The weights file: ``path`` for a model file outside the package, else under WEIGHTS_DIR."""
        if self.path is not None:
            return self.path
        return WEIGHTS_DIR / self.weights if self.weights else None

    @property
    def weights_state(self) -> WeightsState:
        """``ok`` (no weights needed, or the file is whole: its safetensors size and the catalogue
        sha256 match; the hash is cached by path, size and mtime), ``missing`` or ``corrupt``."""
        return "ok" if self.arch == "bicubic" else weights_state(self.weights_path, self.sha256)

    @property
    def has_weights(self) -> bool:
        """True when the model needs no weights or its trained weights file is present and whole."""
        return self.weights_state == "ok"
