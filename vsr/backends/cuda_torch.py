"""GPU frame I/O with torch: uint8 NHWC frames in, network tensors, uint8 NHWC frames out.

The pre- and post-processing of the TensorRT backend, written as torch ops so it runs on the GPU in
the compute stream (and, for the tests, on the CPU with the same code): uint8 -> float16/32, NHWC ->
NCHW, BT.601 luma for ``y`` models, edge padding to the engine's run shape, and back: crop, scale,
round, and for ``y`` models the residual added to a bicubic upscale. :class:`FramePipeline` moves
frames through pinned host buffers with separate upload / download streams, so the copies of one
batch overlap the compute of its neighbours. Importing this module imports torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..trt.profiles import split_batches

__all__ = ["FramePipeline", "from_network_output", "luma_output", "to_network_input"]

_RGB2Y = torch.tensor([65.481, 128.553, 24.966]) / (255.0 * 255.0)  # RGB 0..255 -> Y/255 (+16/255)
_Y_TO_RGB_GAIN = 255.0 * 255.0 / 219.0  # luma residual (Y/255 units) -> equal R, G, B change
TensorFn = Callable[[torch.Tensor], torch.Tensor]


def to_network_input(
    frames: torch.Tensor, shape: tuple[int, int], *, luma: bool, dtype: torch.dtype, pad: str = "edge"
) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, C, H', W') ``dtype`` in [0, 1], padded to ``shape`` (H', W').

    C is 1 (BT.601 luma/255, as :class:`~vsr.backends.base.FrameAdapter`) when ``luma``, else 3.
    ``pad``: ``edge``, or ``reflect`` (then edge where the frame is too small to mirror), as
    :func:`~vsr.backends.base.pad_frames`. Math in float32, cast at the end. A new contiguous
    tensor on ``frames``' device.
    """
    x = frames.permute(0, 3, 1, 2).float()
    if luma:
        x = (x * _RGB2Y.to(x.device).view(1, 3, 1, 1)).sum(1, keepdim=True) + 16.0 / 255.0
    else:
        x = x * (1.0 / 255.0)
    ph, pw = shape[0] - x.shape[2], shape[1] - x.shape[3]
    if ph < 0 or pw < 0:
        raise ValueError(f"cannot pad {tuple(x.shape[2:])} frames down to {shape}")
    if pad == "reflect" and (ph or pw):
        rh, rw = min(ph, x.shape[2] - 1), min(pw, x.shape[3] - 1)
        x = F.pad(x, (0, rw, 0, rh), mode="reflect")
        ph, pw = ph - rh, pw - rw
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x.to(dtype).contiguous()


def from_network_output(y: torch.Tensor, height: int, width: int, scale: int) -> torch.Tensor:
    """(N, 3, H'', W'') network output in [0, 1] -> (N, scale*height, scale*width, 3) uint8, cropped.

    Rounds half up and saturates, as :class:`~vsr.backends.base.FrameAdapter`. New, contiguous.
    """
    y = y[:, :, : height * scale, : width * scale].float()
    out = (y * 255.0 + 0.5).clamp_(0.0, 255.0).to(torch.uint8)
    return out.permute(0, 2, 3, 1).contiguous()


def luma_output(frames: torch.Tensor, residual: torch.Tensor, scale: int) -> torch.Tensor:
    """A ``y`` model's result: (N, H, W, 3) uint8 frames + (N, 1, H'', W'') residual -> (N, sH, sW, 3) uint8.

    The bicubic (a = -0.75, as cv2.INTER_CUBIC) upscale of the frame, rounded to uint8, plus the
    luma residual as an equal change of R, G and B, rounded and saturated. New, contiguous.
    """
    _n, h, w, _ = frames.shape
    bic = F.interpolate(frames.permute(0, 3, 1, 2).float(), scale_factor=scale, mode="bicubic")
    bic = bic.round_().clamp_(0.0, 255.0)
    delta = residual[:, :, : h * scale, : w * scale].float() * _Y_TO_RGB_GAIN
    out = (bic + delta).round_().clamp_(0.0, 255.0).to(torch.uint8)
    return out.permute(0, 2, 3, 1).contiguous()


@dataclass
class _Slot:
    """One of two in-flight batches: its host and device buffers and its completion event."""

    host_in: torch.Tensor | None = None
    dev_in: torch.Tensor | None = None
    host_out: torch.Tensor | None = None
    done: torch.cuda.Event | None = None
    rows: slice | None = None
    keep: list[torch.Tensor] = field(default_factory=list)


class FramePipeline:
    """Runs ``net`` over uint8 frames on ``device`` in batches of at most ``max_batch``.

    Per batch: host frames -> pinned buffer -> device (upload stream) -> pre-process, ``net``,
    post-process (compute stream) -> pinned buffer (download stream) -> result. Two slots alternate,
    so batch i+1 uploads and batch i-1 downloads while batch i computes. ``net`` takes and returns
    device tensors and must enqueue its work on the current stream. On a CPU device the same code
    runs without streams (tests).
    """

    def __init__(
        self, device: torch.device, *, scale: int, luma: bool, dtype: torch.dtype, pad: str = "edge"
    ) -> None:
        self.device, self.scale, self.luma, self.dtype, self.pad = device, scale, luma, dtype, pad
        cuda = device.type == "cuda"
        self._up = torch.cuda.Stream(device) if cuda else None
        self._compute = torch.cuda.Stream(device) if cuda else None
        self._down = torch.cuda.Stream(device) if cuda else None
        self._slots = (_Slot(), _Slot())

    def _stream(self, stream: torch.cuda.Stream | None) -> contextlib.AbstractContextManager:
        return torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()

    def _buffer(self, old: torch.Tensor | None, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """``old`` when it holds ``shape`` (batch dim at least as large), else a new uint8 buffer."""
        if old is not None and old.shape[1:] == shape[1:] and old.shape[0] >= shape[0]:
            return old
        pin = device.type == "cpu" and self.device.type == "cuda"
        return torch.empty(shape, dtype=torch.uint8, device=device, pin_memory=pin)

    def _retire(self, slot: _Slot, out: np.ndarray) -> None:
        """Wait for a slot's download and copy its rows into ``out`` (host)."""
        if slot.rows is None:
            return
        if slot.done is not None:
            slot.done.synchronize()
        assert slot.host_out is not None
        m = slot.rows.stop - slot.rows.start
        out[slot.rows] = slot.host_out[:m].numpy()
        slot.rows, slot.keep = None, []

    def _submit(
        self, slot: _Slot, frames: np.ndarray, rows: slice, net: TensorFn, run_hw: tuple[int, int]
    ) -> None:
        m, h, w = rows.stop - rows.start, frames.shape[1], frames.shape[2]
        slot.host_in = self._buffer(slot.host_in, (m, h, w, 3), torch.device("cpu"))
        slot.dev_in = self._buffer(slot.dev_in, (m, h, w, 3), self.device)
        slot.host_in[:m].numpy()[...] = frames[rows]
        with self._stream(self._up):
            slot.dev_in[:m].copy_(slot.host_in[:m], non_blocking=True)
            uploaded = torch.cuda.Event() if self._up is not None else None
            if uploaded is not None:
                uploaded.record()
        with self._stream(self._compute):
            if uploaded is not None:
                torch.cuda.current_stream().wait_event(uploaded)
            frames_dev = slot.dev_in[:m]
            y = net(to_network_input(frames_dev, run_hw, luma=self.luma, dtype=self.dtype, pad=self.pad))
            res = (
                luma_output(frames_dev, y, self.scale)
                if self.luma
                else from_network_output(y, h, w, self.scale)
            )
            computed = torch.cuda.Event() if self._compute is not None else None
            if computed is not None:
                computed.record()
        slot.host_out = self._buffer(slot.host_out, tuple(res.shape), torch.device("cpu"))
        with self._stream(self._down):
            if computed is not None:
                torch.cuda.current_stream().wait_event(computed)
                res.record_stream(torch.cuda.current_stream())
            slot.host_out[:m].copy_(res, non_blocking=True)
            slot.done = torch.cuda.Event() if self._down is not None else None
            if slot.done is not None:
                slot.done.record()
        slot.rows, slot.keep = rows, [res]

    def __call__(
        self, frames: np.ndarray, net: TensorFn, run_hw: tuple[int, int], max_batch: int
    ) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, scale*H, scale*W, 3) uint8 RGB, a new array the caller owns.

        ``run_hw``: the (H', W') >= (H, W) each frame is padded to (as ``pad`` says) before ``net``.
        """
        n, h, w, _ = frames.shape
        out = np.empty((n, h * self.scale, w * self.scale, 3), dtype=np.uint8)
        for i, rows in enumerate(split_batches(n, max_batch)):
            slot = self._slots[i % 2]
            self._retire(slot, out)
            self._submit(slot, frames, rows, net, run_hw)
        for slot in self._slots:
            self._retire(slot, out)
        return out
