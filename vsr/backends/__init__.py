"""Inference backends and :func:`create_backend`, which picks and builds one.

Heavy packages (torch, onnxruntime, tensorrt) are imported only when their backend is built.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Literal

from ..errors import BackendError, ConfigError
from ..models.catalogue import ModelSpec, get_spec
from ..models.external import file_backends
from .base import Backend, FrameAdapter, ModelInfo

__all__ = ["BACKEND_NAMES", "Backend", "FrameAdapter", "ModelInfo", "create_backend", "resolve_backend"]

log = logging.getLogger(__name__)

BackendName = Literal["auto", "torch", "onnx", "tensorrt"]
BACKEND_NAMES: tuple[str, ...] = ("auto", "torch", "onnx", "tensorrt")


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _cuda() -> bool:
    if not _has("torch"):
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_backend(name: str, spec: ModelSpec) -> tuple[str, str]:
    """Which concrete backend ``name`` means for ``spec``, and why (for the user to read).

    ``auto`` takes TensorRT when it is installed and a GPU is present, then torch on CUDA, then on
    CPU the backend measured fastest for that architecture (catalogue ``cpu_backend``; with trained
    weights and denormals flushed, torch channels_last ran every catalogue net fastest here),
    else whatever is installed. Model files: an ONNX file runs on onnx only, a PyTorch file on
    torch (``auto``) or onnx (its export), never TensorRT (not yet).
    """
    if name not in BACKEND_NAMES:
        raise ConfigError(f"unknown backend {name!r}; choose one of: {', '.join(BACKEND_NAMES)}")
    if spec.arch == "bicubic":
        return "bicubic", "the bicubic model needs no network"
    if spec.arch == "onnx-file":
        if name not in ("auto", "onnx"):
            raise ConfigError(file_backends(spec))
        return "onnx", "an ONNX model file runs in ONNX Runtime"
    if spec.arch == "spandrel" and name == "tensorrt":
        raise ConfigError(file_backends(spec))  # TensorRT runs no model file (yet)
    if name != "auto":
        return name, "asked for"
    if spec.arch == "spandrel":
        where = "a CUDA GPU is present" if _cuda() else "no GPU"
        return "torch", f"{where}; PyTorch model files run in torch (spandrel's architectures)"
    if _cuda():
        if _has("tensorrt"):
            return "tensorrt", "TensorRT and a CUDA GPU are present"
        return "torch", "a CUDA GPU is present (TensorRT is not installed)"
    preferred = spec.cpu_backend
    if preferred == "onnx" and _has("onnxruntime"):
        return "onnx", f"no GPU; ONNX Runtime is the fastest CPU backend measured for {spec.arch!r}"
    if preferred == "torch":
        return "torch", f"no GPU; torch channels_last is the fastest CPU backend measured for {spec.arch!r}"
    return "torch", "no GPU and onnxruntime is not installed"


def create_backend(
    name: str,
    model: str | ModelSpec,
    *,
    device: str = "auto",
    tile: int = 0,
    threads: int | None = None,
    net: object | None = None,
    fp16: bool | None = None,
    profile: str | None = None,
    compile: bool = False,
) -> Backend:
    """Build the backend ``name`` (auto, torch, onnx, tensorrt) serving catalogue ``model``.

    ``net`` replaces the shipped weights with a ready torch module (tests, training). ``fp16``:
    None = the backend's default (FP16 on CUDA for FP16-safe catalogue models; bf16 or FP32 for
    model files, whose community weights may overflow FP16), True = FP16 where the model allows it
    (model files too), False = FP32; ``profile``: a TensorRT shape
    profile from ``engines/profiles.toml`` (default: picked per frame size). When ``auto`` chose
    TensorRT and it cannot start (engine build or parity failure), it falls back to torch on CUDA
    and says so. ``compile``: torch on CUDA runs the network through ``torch.compile``. Raises
    :class:`ConfigError` for unknown names and :class:`BackendError` when the backend cannot run.
    The chosen backend's ``name`` attribute says what runs; ``auto`` logs why it chose it.
    """
    spec = get_spec(model) if isinstance(model, str) else model
    concrete, why = resolve_backend(name, spec)
    backend = _build(
        concrete,
        name,
        spec,
        device=device,
        tile=tile,
        threads=threads,
        net=net,
        fp16=fp16,
        profile=profile,
        compile=compile,
    )
    if name == "auto":
        log.info("backend auto -> %s (%s)", backend.name, why)
    return backend


def _build(
    concrete: str,
    name: str,
    spec: ModelSpec,
    *,
    device: str,
    tile: int,
    threads: int | None,
    net: object | None,
    fp16: bool | None,
    profile: str | None,
    compile: bool = False,
) -> Backend:
    if concrete == "bicubic":
        from .bicubic import BicubicBackend

        return BicubicBackend(spec.scale)
    if concrete == "torch":
        if not _has("torch"):
            raise BackendError("torch backend needs PyTorch: pip install torch")
        from .torch_backend import TorchBackend

        return TorchBackend(
            spec, device=device, tile=tile, threads=threads, net=net, fp16=fp16, compile=compile
        )
    if concrete == "onnx":
        from .onnx_backend import OnnxBackend

        return OnnxBackend(spec, device=device, tile=tile, threads=threads, net=net)
    if not _has("tensorrt"):
        raise BackendError(
            "tensorrt backend needs NVIDIA TensorRT 10+ and a CUDA GPU (pip install 'vsr[trt]'); "
            "use --backend torch or onnx"
        )
    from .tensorrt_backend import TensorRTBackend

    try:
        return TensorRTBackend(spec, tile=tile, net=net, fp16=fp16 is not False, profile=profile)
    except BackendError as exc:
        if name != "auto":
            raise
        log.warning("TensorRT could not start (%s); falling back to torch on CUDA", exc)
        from .torch_backend import TorchBackend

        return TorchBackend(
            spec, device="cuda", tile=tile, threads=threads, net=net, fp16=fp16, compile=compile
        )
