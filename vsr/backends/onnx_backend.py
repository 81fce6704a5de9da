"""ONNX Runtime backend (CPU provider; CUDA provider when onnxruntime-gpu is installed)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import BackendError, ModelError
from ..models.catalogue import ModelSpec
from .base import ClosingBackend, FrameAdapter, ModelInfo

__all__ = ["OnnxBackend"]

log = logging.getLogger(__name__)


class OnnxBackend(ClosingBackend):
    """Runs the ONNX export of a catalogue model (or an ``.onnx`` model file as it is) in ONNX Runtime.

    ``onnx_path`` runs that file instead of the cached export of the catalogue weights.
    ``net`` exports that torch module instead (tests, training).
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        device: str = "auto",
        tile: int = 0,
        threads: int | None = None,
        onnx_path: Path | None = None,
        net: object | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError("onnx backend needs onnxruntime: pip install 'vsr[onnx]'") from exc
        from ..export import onnx_for

        if onnx_path:
            path = Path(onnx_path)
        elif spec.arch == "onnx-file" and net is None:
            from ..models.external import check_unchanged

            check_unchanged(spec)
            path = spec.path  # an ONNX model file runs as it is
        else:
            path = onnx_for(spec, net=net)  # type: ignore[arg-type]
        available = ort.get_available_providers()
        if device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        elif device == "cuda":
            raise BackendError("onnx backend: CUDA asked for but onnxruntime has no CUDAExecutionProvider")
        else:
            providers = ["CPUExecutionProvider"]
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph types
            raise BackendError(f"onnx backend: cannot load {path}: {exc}") from exc
        from ..models.onnx_file import onnx_io

        try:
            self._io = onnx_io(self.session, path)
        except ModelError as exc:
            raise BackendError(f"onnx backend: {exc}") from exc
        self.info = ModelInfo.of(spec)
        self.name = f"onnx ({self.session.get_providers()[0]})"
        self._adapter = FrameAdapter(spec, self._net, tile=tile)
        if spec.arch == "spandrel" and not onnx_path:
            self._check_dynamic(spec, ort)

    def _check_dynamic(self, spec: ModelSpec, ort: object) -> None:
        """Refuse the export of a model file that runs only at the size it was traced at.

        Some architectures (SwinIR's windows, for one) bake the traced size into reshapes; their
        export loads but fails on any other frame size. One zero probe of another, non-square
        size (quiet: the failure is expected) finds them before the first frame does.
        """
        m = spec.size_multiple
        side = max(32, spec.min_size) + (-max(32, spec.min_size)) % m  # the traced size (export_onnx)
        h, w = side + 3 * m, side + 5 * m  # odd multiples: no window or stride divides them evenly
        quiet = ort.RunOptions()  # type: ignore[attr-defined]
        quiet.log_severity_level = 4
        x = np.zeros((1, spec.channels, h, w), dtype=self._io.dtype)
        try:
            shape = self.session.run([self._io.output], {self._io.input: x}, quiet)[0].shape
        except Exception:  # onnxruntime's Fail / RuntimeException: the graph cannot take this size
            shape = None
        if shape is None or tuple(shape[2:]) != (h * spec.scale, w * spec.scale):
            raise BackendError(
                f"onnx backend: the ONNX export of {spec.name} runs only at the size it was traced at "
                f"({side}x{side}); run this model with --backend torch"
            )

    def _net(self, x: np.ndarray) -> np.ndarray:
        """float32 NCHW in [0, 1] -> float32 output, through the file's own input/output names
        (``input``/``output`` in vsr's exports) and element type (float16 inputs are cast)."""
        io = self._io
        y = self.session.run([io.output], {io.input: x if io.dtype == np.float32 else x.astype(io.dtype)})[0]
        return y if y.dtype == np.float32 else y.astype(np.float32)

    def prepare(self, height: int, width: int, batch: int) -> None:
        """Warm up once on a frame of this size."""
        self.infer(np.zeros((batch, height, width, 3), dtype=np.uint8))

    def infer(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, sH, sW, 3) uint8 RGB, a new array (s: the model's scale)."""
        return self._adapter(frames)

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
