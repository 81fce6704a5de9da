"""ONNX model files: what one takes and gives, found with ONNX Runtime on small probe inputs.

An ONNX file names its own input and output (``input``/``output`` in vsr's exports, ``image``,
``x``, ``input.1``... elsewhere) and says the channel count and element type in its input shape;
its scale and size needs are found by running it: zero square probes of 48, 64, 72, 96, 128...
px (multiples of 2, 3, 8, 12, 16, 24, 32, 64 among them, and larger sides for a model with a
minimum size) until one runs give the scale, then inputs 1, 2, 3, 4, 6, 8, 12... pixels taller
and twice that wider find the multiple its sides must be. The model runs on the CPU provider here; the backend
(:class:`~vsr.backends.onnx_backend.OnnxBackend`) runs it with its own names and element type.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .external_info import ExternalInfo
from .integrity import file_sha256

__all__ = ["OnnxIo", "inspect_onnx", "onnx_io"]

_PROBE_SIDES = (48, 64, 72, 96, 128, 144, 192, 256)
"""Square probe sides, smallest first: each common size multiple (2^k up to 64, 3, 12, 24, 48)
divides one of the first five, and the larger ones find a model with a minimum size."""
_MULTIPLES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


@dataclass(frozen=True)
class OnnxIo:
    """The input and output a session is called with: names, channels, input element type."""

    input: str
    output: str
    channels: int
    dtype: Any  # np.float32 or np.float16


def _session(path: Path) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelError(f"ONNX model files need onnxruntime: pip install 'vsr[onnx]' ({path})") from exc
    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # probes of unsuitable sizes are expected to fail: no log noise
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own InvalidProtobuf / Fail types
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"model file {path} cannot be read as ONNX (truncated, or not a model?): {first}"
        ) from exc


def onnx_io(session: Any, path: Path) -> OnnxIo:
    """The one image input (N, C, H, W) and first output of ``session``; :class:`ModelError` when
    the file takes something else (several inputs, another rank, integer input, fixed H and W)."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or not outputs:
        names = ", ".join(i.name for i in inputs)
        raise ModelError(
            f"model file {path} takes {len(inputs)} inputs ({names}); vsr runs ONNX models with one "
            "image input (N, C, H, W)"
        )
    first = inputs[0]
    if len(first.shape) != 4 or first.type not in _TYPES:
        raise ModelError(
            f"model file {path}: input {first.name!r} is {first.type} {first.shape}; vsr runs ONNX models "
            "with one float or float16 image input (N, C, H, W)"
        )
    c, h, w = first.shape[1:]
    if isinstance(h, int) and isinstance(w, int):
        raise ModelError(
            f"model file {path}: input {first.name!r} has a fixed size {h}x{w}; vsr runs ONNX models "
            "exported with dynamic height and width"
        )
    channels = c if isinstance(c, int) else 3
    return OnnxIo(first.name, outputs[0].name, channels, _TYPES[first.type])


def _probe(session: Any, io: OnnxIo, h: int, w: int) -> tuple[int, ...] | None:
    """The output shape for a zero (1, C, h, w) input, or None when the model refuses that size."""
    x = np.zeros((1, io.channels, h, w), dtype=io.dtype)
    try:
        return tuple(session.run([io.output], {io.input: x})[0].shape)
    except Exception:  # a size the model cannot take: onnxruntime raises its own Fail type
        return None


def _scale_of(path: Path, session: Any, io: OnnxIo) -> tuple[int, int, int]:
    """(scale, out channels, the smallest probe side that worked)."""
    for side in _PROBE_SIDES:
        shape = _probe(session, io, side, side)
        if shape is None:
            continue
        if len(shape) != 4 or shape[2] % side or shape[2] != shape[3]:
            raise ModelError(
                f"model file {path}: a 1x{io.channels}x{side}x{side} input gives {shape}; vsr runs "
                "image-to-image models whose output is an integer multiple of the input size"
            )
        return shape[2] // side, shape[1], side
    raise ModelError(
        f"model file {path}: vsr could not find the model's input-size rule: it ran on none of the "
        f"square inputs tried ({', '.join(map(str, _PROBE_SIDES))} px)"
    )


def _multiple_of(session: Any, io: OnnxIo, side: int, scale: int) -> int:
    """The smallest multiple in ``_MULTIPLES`` whose non-square probe (side+m) x (side+2m) runs and
    scales right; the side itself when none does."""
    for m in _MULTIPLES:
        h, w = side + m, side + 2 * m
        shape = _probe(session, io, h, w)
        if shape is not None and shape[2:] == (h * scale, w * scale):
            return m
    return side


def _min_size(side: int, multiple: int) -> int:
    """The minimum side a model needs: ``side`` (the first probe that ran) when a smaller probe
    side that is a multiple of ``multiple`` did not run, else 0 (none found)."""
    smaller = [s for s in _PROBE_SIDES if s < side and s % multiple == 0]
    return side if smaller else 0


def _params(path: Path) -> int:
    """Parameters in the file's initializers (0 when the onnx package is not installed)."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # onnx missing or cannot parse what onnxruntime could: the count is cosmetic
        return 0
    return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer))


def inspect_onnx(path: Path) -> ExternalInfo:
    """The :class:`~vsr.models.external_info.ExternalInfo` of an ONNX model file (probed on CPU)."""
    session = _session(path)
    io = onnx_io(session, path)
    scale, out_channels, side = _scale_of(path, session, io)
    if (io.channels, out_channels) not in ((3, 3), (1, 1)):
        raise ModelError(
            f"model file {path} takes {io.channels} channels and gives {out_channels}; vsr runs RGB "
            "(3 -> 3) and gray (1 -> 1) models"
        )
    multiple = _multiple_of(session, io, side, scale)
    return ExternalInfo(
        path=path,
        format="onnx",
        arch="onnx",
        scale=scale,
        in_channels=io.channels,
        out_channels=out_channels,
        size_multiple=multiple,
        min_size=_min_size(side, multiple),
        fp16=io.dtype == np.float16,
        bf16=False,
        params=_params(path),
        sha256=file_sha256(path),
    )
