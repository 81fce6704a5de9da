"""TensorRT backend: cached FP16 engines with a parity gate, run with the TensorRT 10 tensor API.

Engines come from :mod:`vsr.trt` (built on first use, with progress logged at INFO). Device memory
is torch CUDA tensors: the engine reads and writes them through ``set_tensor_address`` and
``execute_async_v3`` on the compute stream of a :class:`~vsr.backends.cuda_torch.FramePipeline`,
which also converts uint8 NHWC frames to fp16 NCHW on the GPU and overlaps the copies.

Before an FP16 engine is first used it is compared with the FP32 engine of the same ONNX on probe
frames (:mod:`vsr.parity`); when it fails, the backend logs why and runs the FP32 engine instead.
When no engine can run, it raises :class:`BackendError` so the caller can pick another backend.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import BackendError, ConfigError
from ..models.catalogue import ModelSpec
from ..parity import check_parity, probe_frames
from ..trt.builder import current_device, ensure_engine, import_tensorrt
from ..trt.cache import EngineCache, Precision
from ..trt.commands import engine_spec, precision_for
from ..trt.profiles import PadMode, Profile, load_profiles, run_shape, select_profile, split_batches
from .base import ClosingBackend, FrameAdapter, ModelInfo
from .cuda_torch import FramePipeline

__all__ = ["TensorRTBackend", "TrtRunner"]

log = logging.getLogger(__name__)


class TrtRunner:
    """One deserialized engine and its execution context; a callable on device tensors.

    ``runner(x)``: x (N, C, H, W) contiguous CUDA tensor of :attr:`input_dtype` inside the engine's
    profile -> (N, C', sH, sW) tensor of :attr:`output_dtype`, enqueued on the current torch stream.
    The output buffer is reused by the next call: consume it on the same stream first.
    """

    def __init__(self, trt: Any, engine: bytes) -> None:
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self._runtime.deserialize_cuda_engine(engine)
        if self.engine is None:
            raise BackendError("TensorRT could not deserialize the engine (corrupt or from another version)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        modes = {n: self.engine.get_tensor_mode(n) for n in names}
        self.input = next(n for n in names if modes[n] == trt.TensorIOMode.INPUT)
        self.output = next(n for n in names if modes[n] == trt.TensorIOMode.OUTPUT)
        half = trt.DataType.HALF
        self.input_dtype = (
            torch.float16 if self.engine.get_tensor_dtype(self.input) == half else torch.float32
        )
        self.output_dtype = (
            torch.float16 if self.engine.get_tensor_dtype(self.output) == half else torch.float32
        )
        self._out: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.context.set_input_shape(self.input, tuple(x.shape)):
            raise BackendError(f"TensorRT engine refuses input shape {tuple(x.shape)}")
        shape = tuple(self.context.get_tensor_shape(self.output))
        if self._out is None or tuple(self._out.shape) != shape:
            self._out = torch.empty(shape, dtype=self.output_dtype, device=x.device)
        self.context.set_tensor_address(self.input, x.data_ptr())
        self.context.set_tensor_address(self.output, self._out.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream(x.device).cuda_stream):
            raise BackendError("TensorRT execute_async_v3 failed")
        return self._out

    def numpy_fn(self, device: torch.device) -> Any:
        """A NetFn view: float32 NCHW numpy in [0, 1] -> float32 numpy (synchronous; parity, tiling)."""

        def run(x: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(np.ascontiguousarray(x)).to(device).to(self.input_dtype)
            return self(t).float().cpu().numpy()

        return run


@dataclass
class _Session:
    profile: Profile
    runner: TrtRunner
    precision: Precision


class TensorRTBackend(ClosingBackend):
    """Serves a catalogue model from TensorRT engines, one per shape profile, built on first use.

    ``profile``: a profile name from ``engines/profiles.toml`` (default: picked per frame size).
    ``fp16``: build FP16 engines (FP32 when False or the model is not FP16-safe). ``parity``: gate
    FP16 engines against FP32 before use. ``pad``: ``multiple`` (default: run the frame's own size rounded
    up to the size multiple; any shape inside the profile's min..max runs without a rebuild) or ``opt``
    (pad to the profile's opt shape: fixed shapes, but up to 1.8x the work; see
    :func:`vsr.trt.profiles.run_shape`). ``tile`` > 0 runs tiles through the engine with CPU
    pre/post-processing. ``onnx_path`` / ``net`` replace the catalogue weights (tests).
    ``device``: where buffers live; the engines run on the current CUDA device ("cpu" only serves
    tests that stand in for the engines).
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        tile: int = 0,
        profile: str | None = None,
        fp16: bool = True,
        parity: bool = True,
        pad: PadMode = "multiple",
        onnx_path: Path | None = None,
        net: object | None = None,
        cache_dir: Path | None = None,
        profiles_path: Path | None = None,
        device: str = "cuda",
    ) -> None:
        self._trt = import_tensorrt()
        self._gpu = current_device(self._trt)
        from ..export import onnx_for

        self.spec, self._pad, self._parity = spec, pad, parity
        self._onnx = Path(onnx_path) if onnx_path else onnx_for(spec, net=net)  # type: ignore[arg-type]
        self._profiles = load_profiles(profiles_path)
        if profile is not None and profile not in self._profiles:
            raise ConfigError(
                f"unknown TensorRT profile {profile!r}; choose one of: {', '.join(self._profiles)}"
            )
        self._fixed = profile
        self._precision = precision_for(spec, fp16)
        self._cache = EngineCache(cache_dir)
        self._device = torch.device(device)
        self._sessions: dict[str, _Session] = {}
        self._pipelines: dict[torch.dtype, FramePipeline] = {}
        self.info = ModelInfo.of(spec)
        self.name = f"tensorrt ({self._precision}, {self._gpu.gpu_name})"
        self._adapter = FrameAdapter(spec, self._tile_net, tile=tile) if tile else None

    def _runner(self, profile: Profile, precision: Precision) -> TrtRunner:
        """Load (building if needed) one engine; an engine TensorRT cannot load is rebuilt once."""
        espec = engine_spec(self.spec, profile, precision, self._onnx, self._gpu)
        for attempt in (1, 2):
            path = ensure_engine(self._trt, espec, self._onnx, self._cache)
            try:
                return TrtRunner(self._trt, path.read_bytes())
            except BackendError as exc:
                if attempt == 2:
                    raise
                log.warning("%s: %s; rebuilding it", path.name, exc)
                self._cache.remove(espec)
        raise AssertionError("unreachable")

    def _gated(self, profile: Profile) -> _Session:
        """The session for ``profile``: FP16 when it passes the parity gate, else FP32 (said so)."""
        if self._precision == "fp32":
            return _Session(profile, self._runner(profile, "fp32"), "fp32")
        fp16 = self._runner(profile, "fp16")
        if not self._parity:
            return _Session(profile, fp16, "fp16")
        fp32 = self._runner(profile, "fp32")
        channels = 1 if self.spec.colour == "y" else 3
        probes = probe_frames(channels, *profile.opt, batch=1)
        verdict = check_parity(fp16.numpy_fn(self._device), fp32.numpy_fn(self._device), probes)
        if verdict.passed:
            log.info("TensorRT FP16 engine %s/%s: %s", self.spec.name, profile.name, verdict.summary())
            return _Session(profile, fp16, "fp16")
        if not verdict.reference_ok:
            raise BackendError(f"TensorRT FP32 engine for {self.spec.name} is broken: {verdict.reason}")
        log.warning(
            "TensorRT FP16 engine for %s/%s failed the parity gate (%s); using the FP32 engine instead",
            self.spec.name,
            profile.name,
            verdict.reason,
        )
        return _Session(profile, fp32, "fp32")

    def _session(self, height: int, width: int) -> _Session:
        profile = self._profiles[self._fixed] if self._fixed else None
        if profile is None:
            profile = select_profile(self._profiles, height, width, self.spec.size_multiple)
        if profile.name not in self._sessions:
            self._sessions[profile.name] = self._gated(profile)
            self.name = f"tensorrt ({self._sessions[profile.name].precision}, {self._gpu.gpu_name})"
        return self._sessions[profile.name]

    def _pipeline(self, dtype: torch.dtype) -> FramePipeline:
        if dtype not in self._pipelines:
            luma = self.spec.colour == "y"
            self._pipelines[dtype] = FramePipeline(
                self._device, scale=self.spec.scale, luma=luma, dtype=dtype
            )
        return self._pipelines[dtype]

    def _tile_net(self, x: np.ndarray) -> np.ndarray:
        """NetFn for tiles: float32 NCHW numpy -> float32 numpy, padded to the run shape and cropped."""
        n, _c, h, w = x.shape
        s = self._session(h, w)
        hw = run_shape(s.profile, h, w, self.spec.size_multiple, self._pad)
        t = torch.from_numpy(x).to(self._device)
        t = F.pad(t, (0, hw[1] - w, 0, hw[0] - h), mode="replicate").to(s.runner.input_dtype)
        parts = [
            s.runner(t[rows].contiguous()).float().cpu() for rows in split_batches(n, s.profile.max_batch)
        ]
        scale = self.spec.scale
        return torch.cat(parts)[:, :, : h * scale, : w * scale].numpy()

    def prepare(self, height: int, width: int, batch: int) -> None:
        """Build or load the engine for this frame size, run the parity gate, and warm up."""
        self.infer(np.zeros((batch, height, width, 3), dtype=np.uint8))

    def infer(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, 4H, 4W, 3) uint8 RGB, a new array the caller owns."""
        if self._adapter is not None:
            return self._adapter(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ConfigError(f"frames must be (N, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        _n, h, w, _ = frames.shape
        s = self._session(h, w)
        hw = run_shape(s.profile, h, w, self.spec.size_multiple, self._pad)
        pipeline = self._pipeline(s.runner.input_dtype)
        with torch.inference_mode():
            return pipeline(frames, s.runner, hw, s.profile.max_batch)

    def close(self) -> None:
        """Free the engines and buffers. Idempotent."""
        if self._sessions and self._device.type == "cuda":
            torch.cuda.synchronize(self._device)
        self._sessions.clear()
        self._pipelines.clear()
