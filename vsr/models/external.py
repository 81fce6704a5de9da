"""Community SR model files run through vsr: ``.pth``/``.pt``/``.ckpt``/``.safetensors`` and ``.onnx``.

``vsr upscale --model 4x-Something.pth`` reads the file once (:func:`inspect_model_file`: what it
is, its scale, channels, size needs, precisions, parameters, sha256) and describes it as a
:class:`~vsr.models.spec.ModelSpec` (:func:`external_spec`) that every backend and the live ladder
take like a catalogue entry. PyTorch files are recognised by **spandrel** (the loader chaiNNer and
ComfyUI use; ``pip install 'vsr[models]'``), after vsr itself loaded their tensors without
executing anything (``torch.load(weights_only=True)`` / safetensors), see
:mod:`vsr.models.torch_file`. ONNX files are read by ONNX Runtime and run as they are, with their
own input and output names, see :mod:`vsr.models.onnx_file`.

Importing this module needs neither torch, spandrel nor onnxruntime.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelError
from .entries import bicubic_of_scale
from .external_info import SUFFIXES, ExternalInfo
from .integrity import file_key, file_sha256
from .spec import ModelSpec

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = [
    "SUFFIXES",
    "ExternalInfo",
    "check_unchanged",
    "external_spec",
    "file_backends",
    "inspect_model_file",
    "load_external_module",
    "spec_for_path",
]

# A model file falls back to the catalogue's bicubic entry of its scale (every fallback chain must end
# in bicubic of the model's own scale: vsr.models.catalogue.check_fallbacks). A scale with no bicubic
# entry (1x, 3x, 8x) has no fallback: its ladder is that one rung, and a live run that falls behind
# drops frames instead of degrading (the engine's last resort anyway). Adding bicubic-x1/-x3/-x8
# entries would list three more "models" in `vsr models` that nobody asks for.

TILE_OVERLAP = 16
"""Input pixels of context each tile carries for a model file (``--tile``), as its receptive radius.
A file does not say its receptive field, so this is a guess: Real-ESRGAN's compact net reaches
about 18 px, ESRGAN's RRDB and transformers much further, so tiled frames may differ slightly from
untiled ones at tile borders (where the far context weighs little). Tiles are for frames too large
to fit in memory, not for speed."""


def inspect_model_file(path: str | os.PathLike[str]) -> ExternalInfo:
    """Read the model file ``path`` and say what it is; nothing in it is executed.

    Raises :class:`~vsr.errors.ModelError` with one line saying what was found and what vsr
    supports: a missing file, an unsupported suffix, a file that is not a model (random bytes,
    truncated, a classifier checkpoint), an architecture spandrel does not know, a model that is
    not image-to-image, a pickle that would need code to run, spandrel or onnxruntime missing.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise ModelError(
            f"model file {p}: suffix {p.suffix or '(none)'!r} is not supported; "
            f"vsr runs {', '.join(SUFFIXES)} files"
        )
    if not p.is_file():
        raise ModelError(f"model file {p} does not exist")
    if suffix == ".onnx":
        from .onnx_file import inspect_onnx

        return inspect_onnx(p)
    from .torch_file import inspect_torch

    return inspect_torch(p)


def external_spec(info: ExternalInfo, name: str | None = None) -> ModelSpec:
    """The :class:`ModelSpec` of an inspected model file, called ``name`` (default: the path).

    ``get_spec(spec.name)`` must find the spec again (the ladder looks rungs up by name), so the
    default name is the path as given. The tier is ``quality`` (what a user's own model is run
    for); the fallback is the bicubic entry of the same scale where the catalogue has one (see
    ``bicubic_of_scale``).
    """
    onnx = info.format == "onnx"
    return ModelSpec(
        name=name if name is not None else str(info.path),
        arch="onnx-file" if onnx else "spandrel",
        description=f"{info.arch} {info.scale}x model file {info.path.name}",
        scale=info.scale,
        colour="rgb",
        size_multiple=info.size_multiple,
        fp16_safe=info.fp16,
        params=info.params,
        sha256=info.sha256,
        tier="quality",
        cpu_backend="onnx" if onnx else "torch",
        fallback=bicubic_of_scale(info.scale),
        receptive_radius=TILE_OVERLAP,
        path=info.path,
        channels=1 if info.in_channels == 1 else 3,
        min_size=info.min_size,
        bf16_safe=info.bf16,
        pad="reflect",
    )


def file_backends(spec: ModelSpec) -> str | None:
    """The one line that says which backends a model file runs on (for refusing others, TensorRT
    among them), or None when ``spec`` is no model file. TensorRT knows neither gray model files,
    reflect padding nor minimum sizes yet, so no model file runs on it."""
    if spec.arch == "onnx-file":
        return f"model {spec.name!r} is an ONNX file: it runs on --backend onnx (or auto)"
    if spec.arch == "spandrel":
        return f"model {spec.name!r} is a PyTorch model file: use --backend torch or onnx"
    return None


def load_external_module(spec: ModelSpec) -> nn.Module:
    """The network of a ``spandrel`` spec as a torch module: eval mode, float32, on the CPU.

    ``module(x)``: (N, C, H, W) float in [0, 1], sides meeting the spec's size needs ->
    (N, C, scale*H, scale*W), the same dtype. Raises :class:`ModelError` as
    :func:`inspect_model_file` does, and for an ONNX spec (ONNX files run in ONNX Runtime only).
    """
    if spec.arch != "spandrel" or spec.path is None:
        raise ModelError(f"model {spec.name!r} is not a PyTorch model file; it cannot run in torch")
    check_unchanged(spec)
    from .torch_file import load_module

    return load_module(spec.path)


def check_unchanged(spec: ModelSpec) -> None:
    """Raise :class:`ModelError` unless the spec's model file is still the one inspected (its
    sha256; cached by path, size and mtime, so this costs a ``stat`` when nothing changed)."""
    if spec.path is None or spec.sha256 is None:
        return
    try:
        digest = file_sha256(spec.path)
    except OSError as exc:
        raise ModelError(f"model file {spec.path} cannot be read: {exc.strerror or exc}") from exc
    if digest != spec.sha256:
        raise ModelError(
            f"model file {spec.path} changed since vsr inspected it (sha256 {digest[:12]}, "
            f"expected {spec.sha256[:12]}); run again, or re-add it to your catalogue"
        )


_cache: dict[tuple[str, int, int], ExternalInfo] = {}
_cache_lock = threading.Lock()


def spec_for_path(name: str) -> ModelSpec:
    """:func:`external_spec` of the file ``name``, inspected once per (path, size, mtime).
    Raises :class:`ModelError` as :func:`inspect_model_file` does (also for a missing file)."""
    try:
        key = file_key(name)
    except OSError:
        return external_spec(inspect_model_file(name), name)  # raises: does not exist / unreadable
    with _cache_lock:
        info = _cache.get(key)
    if info is None:
        info = inspect_model_file(name)
        with _cache_lock:
            _cache[key] = info
    return external_spec(info, name)
