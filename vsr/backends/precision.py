"""The dtype a torch network runs in: :func:`network_dtype`.

A module of its own so that the rule can be read (and tested) without the torch backend around it.
"""

from __future__ import annotations

from typing import Any

from ..models.spec import ModelSpec

__all__ = ["network_dtype"]


def network_dtype(torch: Any, device: Any, spec: ModelSpec, fp16: bool | None) -> Any:
    """The dtype the network of ``spec`` runs in on ``device``.

    On the CPU, and whenever ``fp16`` is False: float32.

    On CUDA, a **catalogue model** (``spec.path`` None) runs in FP16 when the catalogue says it is
    FP16-safe (vsr checked its own weights), else in bfloat16 when it is bf16-safe and the GPU has
    bf16, else float32.

    A **model file** (``.pth``/``.safetensors``, a user model: ``spec.path`` set) runs in bfloat16
    where the file is bf16-safe and the GPU has bf16, else float32, even when spandrel says the
    architecture supports half: an architecture that may run in FP16 says nothing of these
    weights, and ESRGAN-family community weights overflow FP16's range (65504) in their
    activations, giving NaN, i.e. black frames, without any error. bfloat16 has float32's range.
    Only an explicit ``fp16=True`` (an API caller's request; the CLI never passes it) runs a
    FP16-safe model file in FP16.
    """
    if device.type != "cuda" or fp16 is False:
        return torch.float32
    if spec.fp16_safe and (spec.path is None or fp16 is True):
        return torch.float16
    if spec.bf16_safe and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32
