"""Export catalogue networks to ONNX (opset 17, dynamic batch/height/width), cached on disk."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .derived import digest, ledger_path, record, recorded, verify
from .errors import ModelError
from .models.catalogue import ModelSpec, build_model, file_sha256

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["cache_dir", "export_onnx", "onnx_for"]

log = logging.getLogger(__name__)
OPSET = 17


def cache_dir() -> Path:
    """Where vsr caches exported ONNX files: $VSR_CACHE, else $XDG_CACHE_HOME/vsr, else ~/.cache/vsr."""
    env = os.environ.get("VSR_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vsr"
    return base


def _file_stem(spec: ModelSpec) -> str:
    """A file name part for ``spec``: its name, or for a model file (named by its path) the file's
    stem, so that the export lands in the cache, not beside the model file."""
    name = spec.path.stem if spec.path is not None else spec.name
    return re.sub(r"[^\w.+-]", "_", name)


def export_onnx(net: nn.Module, spec: ModelSpec, path: Path, *, opset: int = OPSET) -> Path:
    """Write ``net`` (eval mode, BN folded) to ``path`` as ONNX with dynamic N, H, W.

    Input ``input`` (N, C, H, W) float32, output ``output`` (N, C', sH, sW) float32, C as the
    catalogue's colour (or a model file's channel count) says. The traced input is at least 32 px
    and meets the spec's ``min_size`` and ``size_multiple`` (a model file may need 64 or more).
    Written to a temporary name and renamed, so a reader never sees half.
    """
    import torch

    channels = 1 if spec.colour == "y" or spec.channels == 1 else 3
    side = max(32, spec.min_size)
    side += (-side) % spec.size_multiple
    dummy = torch.rand(1, channels, side, side)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings():
            # the TorchScript exporter is deprecated, but it needs no onnxscript and our graphs are plain
            warnings.simplefilter("ignore", DeprecationWarning)
            # model files trace Python-side shape logic; a trace fixed to one size is caught by
            # OnnxBackend's probe, so the tracer's warnings would only be noise for the user
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                net.eval().float().cpu(),
                (dummy,),
                str(tmp),
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "output": {0: "n", 2: "sh", 3: "sw"}},
                opset_version=opset,
                dynamo=False,
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def onnx_for(spec: ModelSpec, *, net: nn.Module | None = None) -> Path:
    """The ONNX file of a catalogue model, exported on first use and cached by weights checksum.

    ``net`` exports that module instead of the catalogue weights (cached by a hash of its tensors).
    A cached file is used only when vsr's ledger (:mod:`vsr.derived`, kept outside the cache) says
    this is the file vsr wrote for these weights; otherwise it is exported again, with one warning.
    A file the ledger never saw is rebuilt too: an export takes about a second, and neither its name
    nor anything beside it in the cache can say where it came from.
    """
    if net is None:
        path = spec.weights_path
        if path is None or not path.is_file():
            build_model(spec)  # raises the clear "no trained weights" error
            raise ModelError(f"model {spec.name!r} has no weights to export")
        source = file_sha256(path)
        key = source[:16]
    else:
        source = _tensors_sha256(net)
        key = "custom-" + source[:16]
    out = cache_dir() / "onnx" / f"{_file_stem(spec)}-{key}-op{OPSET}.onnx"
    if not out.is_file():
        log.info("exporting %s to ONNX: %s", spec.name, out)
    elif _trusted(source, out):
        return out  # the network is built only when it must be exported
    export_onnx(net if net is not None else build_model(spec), spec, out)
    record(source, out, "onnx")
    return out


def _tensors_sha256(net: nn.Module) -> str:
    """A sha256 over a module's state (names and float32 values): the source of a custom export."""
    h = hashlib.sha256()
    for k, v in net.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def _trusted(source: str, out: Path) -> bool:
    """Whether the cached ``out`` is what vsr exported from ``source``; warns once when not."""
    verdict = verify(source, out)
    if verdict == "mismatch":
        wrote = (recorded(source, out) or {}).get("sha256", "?")
        log.warning(
            "cached ONNX %s does not match what vsr wrote (sha256 %.16s, recorded %.16s); rebuilding",
            out,
            digest(out),
            wrote,
        )
    elif verdict == "unknown":
        log.warning(
            "cached ONNX %s was not written by vsr as far as its ledger %s knows; rebuilding",
            out,
            ledger_path(source),
        )
    return verdict == "ok"
