"""PyTorch backend: CPU (channels_last, float32) or CUDA (FP16, channels_last)."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import BackendError
from ..models.catalogue import ModelSpec, build_model
from .base import FrameAdapter, ModelInfo

__all__ = ["TorchBackend"]

log = logging.getLogger(__name__)


class TorchBackend:
    """Runs a catalogue model with torch.

    ``device``: "cpu", "cuda" or "auto" (cuda when available). On CUDA the model runs in FP16
    when the catalogue says it is FP16-safe and ``fp16`` is not False. ``net`` overrides the
    catalogue weights with a ready module (tests, training).
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        device: str = "auto",
        fp16: bool | None = None,
        tile: int = 0,
        threads: int | None = None,
        net: object | None = None,
    ) -> None:
        import torch

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError("torch backend: CUDA was asked for but torch sees no CUDA device")
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.device = torch.device(device)
        self.half = bool(self.device.type == "cuda" and spec.fp16_safe and fp16 is not False)
        model = net if net is not None else build_model(spec)
        model = model.eval().to(self.device, memory_format=torch.channels_last)  # type: ignore[attr-defined]
        if self.half:
            model = model.half()
        self.model = model
        self.info = ModelInfo(spec.name, spec.scale, spec.size_multiple, spec.fp16_safe)
        precision = "fp16" if self.half else "fp32"
        self.name = f"torch ({self.device.type}, {precision}, channels_last)"
        self._adapter = FrameAdapter(spec, self._net, tile=tile)

    def _net(self, x: np.ndarray) -> np.ndarray:
        torch = self._torch
        # Trained nets produce denormal activations; on CPU they cost the fast net ~25% of its time.
        # Flush them to zero for this call only (the flag is per thread; restored to the default).
        ftz = self.device.type == "cpu" and torch.set_flush_denormal(True)
        try:
            with torch.inference_mode():
                t = torch.from_numpy(x).to(self.device, non_blocking=True)
                t = t.contiguous(memory_format=torch.channels_last)
                if self.half:
                    t = t.half()
                y = self.model(t)
                return y.float().cpu().numpy()
        finally:
            if ftz:
                torch.set_flush_denormal(False)

    def prepare(self, height: int, width: int, batch: int) -> None:
        """Warm up once on a frame of this size (first-call allocations, kernel selection)."""
        self.infer(np.zeros((batch, height, width, 3), dtype=np.uint8))

    def infer(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, 4H, 4W, 3) uint8 RGB, a new array."""
        return self._adapter(frames)

    def close(self) -> None:
        self.model = None
