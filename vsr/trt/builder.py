"""Building TensorRT engines from ONNX: the thin layer of TensorRT 10 calls, and the cache around it.

How precision is set: an FP16 engine is a *weakly typed* network (``create_network(0)``; explicit
batch is the only mode in TensorRT 10) built with ``config.set_flag(trt.BuilderFlag.FP16)``, which
lets TensorRT pick FP16 kernels wherever they are faster, layer by layer; its input and output
tensors are also declared float16 (``io_half``) so the GPU pre-processing writes fp16 directly. An
FP32 engine sets no precision flag and clears ``BuilderFlag.TF32``, so it is a true FP32 reference.
(The alternative, a strongly typed network — ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` with an
ONNX file exported in fp16 — pins every tensor's type from the graph instead; TensorRT 11 drops the
weakly typed FP16 flag in its favour. vsr exports float32 ONNX, so it uses the flag.)

Shapes: one optimisation profile per engine, min/opt/max NCHW from ``engines/profiles.toml``.
The timing cache (per GPU and TensorRT version) is loaded before and saved after each build, so
later builds of other models and profiles skip kernel timing they have already done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import BackendError
from .cache import DeviceInfo, EngineCache, EngineSpec, atomic_write

__all__ = ["Report", "build_serialized", "current_device", "ensure_engine", "import_tensorrt"]

log = logging.getLogger(__name__)

Report = Callable[[str], None]  # receives one human-readable progress line


def import_tensorrt() -> ModuleType:
    """The ``tensorrt`` module, 10 or newer; :class:`BackendError` saying what to install otherwise."""
    try:
        import tensorrt as trt
    except ImportError as exc:  # the bindings wheel without libnvinfer raises ImportError too
        raise BackendError(
            f"TensorRT is not available ({exc}); install NVIDIA TensorRT 10+ (pip install 'vsr[trt]') "
            "on a machine with a CUDA GPU, or use --backend torch / onnx"
        ) from exc
    major = int(str(getattr(trt, "__version__", "0")).split(".")[0] or 0)
    if major < 10:
        raise BackendError(f"vsr needs TensorRT 10 or newer, found {trt.__version__}")
    return trt


def current_device(trt: ModuleType, index: int = 0) -> DeviceInfo:
    """The GPU an engine will be built for, read through torch.cuda (no pycuda needed)."""
    import torch

    if not torch.cuda.is_available():
        raise BackendError("the tensorrt backend needs a CUDA GPU, and torch sees none")
    name = torch.cuda.get_device_name(index)
    major, minor = torch.cuda.get_device_capability(index)
    return DeviceInfo(name, (int(major), int(minor)), str(trt.__version__))


def _progress_monitor(trt: ModuleType, report: Report) -> Any:
    """A trt.IProgressMonitor that reports top-level phases and, at most every 2 s, step counts."""

    class Monitor(trt.IProgressMonitor):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._steps: dict[str, int] = {}
            self._last = 0.0

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self._steps[phase_name] = num_steps
            if parent_phase is None:
                report(f"{phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name: str, step: int) -> bool:
            now = time.monotonic()
            if now - self._last >= 2.0:
                self._last = now
                report(f"{phase_name}: step {step + 1}/{self._steps.get(phase_name, '?')}")
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            self._steps.pop(phase_name, None)

    return Monitor()


def _parse_onnx(trt: ModuleType, builder: Any, logger: Any, onnx_path: Path) -> tuple[Any, Any]:
    network = builder.create_network(0)  # TensorRT 10: explicit batch is implied
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT cannot parse {onnx_path}: {errors or 'no error recorded'}")
    return network, parser  # the parser must outlive the build (it owns the weights)


def _configure(trt: ModuleType, builder: Any, network: Any, spec: EngineSpec) -> Any:
    """The builder config for ``spec``: precision flags, I/O types, workspace, level, profile."""
    config = builder.create_builder_config()
    opts = spec.options
    if spec.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif not opts.tf32:
        config.clear_flag(trt.BuilderFlag.TF32)
    if spec.io_half:
        try:
            for tensor in (network.get_input(0), network.get_output(0)):
                tensor.dtype = trt.DataType.HALF  # reformat-free fp16 I/O (settable in TensorRT 10)
        except (AttributeError, TypeError, RuntimeError) as exc:  # immutable in TensorRT 11+
            log.warning("cannot declare fp16 I/O (%s); the engine keeps float32 I/O", exc)
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mib << 20)
    config.builder_optimization_level = opts.optimization_level
    profile = builder.create_optimization_profile()
    lo, opt, hi = spec.profile.input_shapes(spec.channels)
    profile.set_shape(spec.input_name, lo, opt, hi)
    config.add_optimization_profile(profile)
    return config


def build_serialized(
    trt: ModuleType, spec: EngineSpec, onnx_path: Path, timing_cache: bytes, report: Report
) -> tuple[bytes, bytes]:
    """Build the engine ``spec`` describes; returns (serialized engine, updated timing cache)."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse_onnx(trt, builder, logger, onnx_path)
    names = (network.get_input(0).name, network.get_output(0).name)
    if names != (spec.input_name, spec.output_name):
        raise BackendError(f"{onnx_path}: expected tensors input/output, found {names[0]}/{names[1]}")
    config = _configure(trt, builder, network, spec)
    cache = config.create_timing_cache(timing_cache)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        log.warning("the timing cache does not match this GPU / TensorRT; starting a fresh one")
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    monitor = _progress_monitor(trt, report)
    config.progress_monitor = monitor
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"TensorRT failed to build an engine for {spec.model} / {spec.profile.name}")
    return bytes(serialized), bytes(config.get_timing_cache().serialize())


def ensure_engine(
    trt: ModuleType, spec: EngineSpec, onnx_path: Path, cache: EngineCache, report: Report | None = None
) -> Path:
    """The path of a valid engine for ``spec``: the cached one, else a fresh build (then cached).

    A cached engine whose sidecar is missing, whose checksum or size differs, whose key does not
    match, or that vsr's ledger of derived files (:mod:`vsr.derived`) does not vouch for is removed
    and rebuilt. ``report`` gets progress lines (default: log at INFO).
    """
    if cache.load(spec) is not None:
        log.info("using cached TensorRT engine %s", cache.engine_path(spec))
        return cache.engine_path(spec)
    say = report or (lambda line: log.info("engine build: %s", line))
    what = f"{spec.precision} engine for {spec.model}, profile {spec.profile.name}"
    say(f"building TensorRT {what} (once per GPU and TensorRT version; this can take minutes)")
    tc_path = cache.timing_cache_path(spec.device)
    timing = tc_path.read_bytes() if tc_path.is_file() else b""
    start = time.monotonic()
    engine, timing = build_serialized(trt, spec, onnx_path, timing, say)
    seconds = time.monotonic() - start
    atomic_write(tc_path, timing)
    path = cache.store(spec, engine, seconds)
    say(f"built {path.name} in {seconds:.0f} s ({len(engine) / 1e6:.1f} MB)")
    return path
