"""PyTorch model files (``.pth``, ``.pt``, ``.ckpt``, ``.safetensors``) through spandrel, safely.

Nothing in a model file is executed. vsr loads the tensors itself, ``torch.load(weights_only=True)``
for pickles (torch's restricted unpickler: tensors, dicts, lists and numbers only; a pickle that
names any other global, e.g. ``os.system`` in a ``__reduce__``, is refused before anything runs)
and ``safetensors`` for ``.safetensors``, then hands the state dict to spandrel's
``ModelLoader().load_from_state_dict``, which recognises the architecture from the tensor names and
shapes. spandrel's own ``load_from_file`` (read in spandrel 0.4.2, ``__helpers/loader.py``) does
not pass ``weights_only``: for ``.pth``/``.ckpt`` it hands ``torch.load`` its own
``RestrictedUnpickler`` (an allowlist: OrderedDict, the tensor rebuild function, storage types),
which is as careful, but for ``.pt`` it tries ``torch.jit.load`` first, i.e. runs TorchScript: vsr
never calls it, and refuses TorchScript archives. This module imports torch;
:mod:`vsr.models.external` imports it lazily.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ModelError
from .external_info import ExternalInfo
from .integrity import file_sha256

__all__ = ["SpandrelNet", "inspect_torch", "load_module", "load_state_dict"]

INSTALL_HINT = "pip install 'vsr[models]' (spandrel, with the torchvision release that matches your torch)"


def _one_line(exc: BaseException, limit: int = 160) -> str:
    """The first non-empty line of ``exc``'s message, shortened: errors reach the user as one line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _refused_pickle(path: Path, exc: BaseException) -> ModelError:
    """The one line for a pickle torch's weights-only unpickler refused: one that names a global
    (a function or class: code would run), or one with opcodes no tensor file has (random bytes,
    another pickle protocol)."""
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    if found:
        return ModelError(
            f"model file {path}: refused: its pickle would run code (GLOBAL {found.group(1)}); vsr "
            "loads only weights (tensors), never code from a model file; use a plain state dict "
            "or .safetensors"
        )
    opcode = re.search(r"Unsupported operand \d+", str(exc))
    return ModelError(
        f"model file {path} cannot be read as a PyTorch checkpoint (truncated, not a model file, or a "
        f"pickle of more than tensors): {opcode.group(0) if opcode else _one_line(exc)}"
    )


def _load_pickle(path: Path) -> Any:
    import pickle

    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4...": the error below says it
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Weights only" in str(exc):
            raise _refused_pickle(path, exc) from exc
        raise ModelError(f"model file {path} is not a PyTorch checkpoint: {_one_line(exc)}") from exc
    except Exception as exc:  # torch raises RuntimeError, EOFError, ValueError... for bad files
        if "TorchScript" in str(exc):
            raise ModelError(
                f"model file {path} is a TorchScript archive (a program, not weights); vsr does not "
                "run TorchScript: use the model's state dict (.pth) or .safetensors"
            ) from exc
        raise ModelError(
            f"model file {path} cannot be read as a PyTorch checkpoint (truncated, or not a model "
            f"file?): {_one_line(exc)}"
        ) from exc


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises SafetensorError, OSError...
        raise ModelError(
            f"model file {path} cannot be read as safetensors (truncated, or not a model file?): "
            f"{_one_line(exc)}"
        ) from exc


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a model file, loaded without executing anything, unwrapped the way spandrel
    does (``params_ema``, ``state_dict``, ``module.`` prefixes...). Raises :class:`ModelError`."""
    raw = _load_safetensors(path) if path.suffix.lower() == ".safetensors" else _load_pickle(path)
    if not isinstance(raw, dict):
        raise ModelError(
            f"model file {path} holds a {type(raw).__name__}, not a state dict; vsr runs files "
            "that hold a model's weights (a dict of tensors)"
        )
    state = _unwrap(raw)
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ModelError(f"model file {path} holds no tensors; it is not a model's weights")
    return tensors


def _unwrap(state: dict[str, Any]) -> dict[str, Any]:
    """spandrel's canonical form when spandrel imports; else its first, most common, step."""
    try:
        from spandrel import canonicalize_state_dict
    except Exception:  # spandrel missing: _spandrel() says how to install it, later
        for key in ("params_ema", "params", "state_dict", "model", "net"):
            if isinstance(state.get(key), dict):
                return state[key]
        return state
    return canonicalize_state_dict(state)


def _spandrel() -> Any:
    """The spandrel package, or :class:`ModelError` saying how to install it."""
    try:
        import spandrel
    except Exception as exc:  # ImportError, or torchvision's RuntimeError (operator nms ...)
        raise ModelError(
            f"PyTorch model files need spandrel, which cannot be imported ({_one_line(exc, 100)}): "
            f"{INSTALL_HINT}"
        ) from exc
    return spandrel


def _descriptor(path: Path) -> Any:
    """spandrel's ImageModelDescriptor for the file (CPU, float32, eval), or :class:`ModelError`."""
    state = load_state_dict(path)  # first: a file that is no model is refused even without spandrel
    spandrel = _spandrel()
    try:
        with warnings.catch_warnings():  # architectures' own deprecation notes are not the user's
            warnings.simplefilter("ignore", UserWarning)
            desc = spandrel.ModelLoader(device="cpu").load_from_state_dict(state)
    except spandrel.UnsupportedModelError as exc:
        sample = ", ".join(list(state)[:3])
        raise ModelError(
            f"model file {path}: spandrel does not recognise its architecture ({len(state)} tensors: "
            f"{sample}, ...); vsr runs the image-to-image architectures spandrel knows "
            "(ESRGAN, Real-ESRGAN Compact, SPAN, SwinIR, ...)"
        ) from exc
    except Exception as exc:  # an architecture matched but its detection or loading failed
        raise ModelError(f"model file {path}: spandrel could not load it: {_one_line(exc)}") from exc
    _check_supported(path, desc, spandrel)
    return desc.eval().float()


def _check_supported(path: Path, desc: Any, spandrel: Any) -> None:
    """Refuse what the frame path cannot run: masked (inpainting) models, channel layouts other
    than RGB -> RGB or gray -> gray, and models that need square inputs."""
    name = desc.architecture.name
    if not isinstance(desc, spandrel.ImageModelDescriptor):
        raise ModelError(
            f"model file {path} is a {name} {desc.purpose} model (image + mask in); vsr runs "
            "image-to-image models (super-resolution, restoration)"
        )
    channels = (desc.input_channels, desc.output_channels)
    if channels not in ((3, 3), (1, 1)):
        raise ModelError(
            f"model file {path}: {name} takes {channels[0]} channels and gives {channels[1]}; vsr runs "
            "RGB (3 -> 3) and gray (1 -> 1) models"
        )
    if desc.size_requirements.square:
        raise ModelError(f"model file {path}: {name} needs square inputs, which vsr does not support")


class SpandrelNet(nn.Module):
    """A spandrel model as vsr's backends call networks: (N, C, H, W) in [0, 1] -> (N, C, sH, sW).

    Calls the model the way spandrel does (some architectures take the first of several outputs)
    but without spandrel's padding or clamping: the frame adapters pad and clamp themselves.
    """

    def __init__(self, model: nn.Module, call: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None):
        super().__init__()
        self.net = model
        self._call = call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._call(self.net, x) if self._call is not None else self.net(x)


def load_module(path: Path) -> nn.Module:
    """The network in the model file ``path``: eval mode, float32, CPU. See :class:`SpandrelNet`."""
    desc = _descriptor(Path(path))
    return SpandrelNet(desc.model, getattr(desc, "_call_fn", None)).eval().float()


def inspect_torch(path: Path) -> ExternalInfo:
    """The :class:`~vsr.models.external_info.ExternalInfo` of a PyTorch model file."""
    desc = _descriptor(path)
    req = desc.size_requirements
    return ExternalInfo(
        path=path,
        format="torch",
        arch=desc.architecture.name,
        scale=int(desc.scale),
        in_channels=int(desc.input_channels),
        out_channels=int(desc.output_channels),
        size_multiple=int(req.multiple_of),
        min_size=int(req.minimum),
        fp16=bool(desc.supports_half),
        bf16=bool(desc.supports_bfloat16),
        params=sum(p.numel() for p in desc.model.parameters()),
        sha256=file_sha256(path),
    )
