"""What ``vsr engine build`` and ``vsr engine list`` call: build one engine, list the cached ones.

The CLI only parses arguments and prints what these return; they log through ``logging``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..models.catalogue import ModelSpec, get_spec
from ..models.external import file_backends
from .builder import Report, current_device, ensure_engine, import_tensorrt
from .cache import BuilderOptions, DeviceInfo, EngineCache, EngineSpec, Precision, sha256_file
from .profiles import Profile, load_profiles

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["build_engine", "engine_spec", "format_engine_list", "list_engines", "precision_for"]

log = logging.getLogger(__name__)


def precision_for(spec: ModelSpec, fp16: bool) -> Precision:
    """``fp16`` when asked for and the catalogue says the model is FP16-safe, else ``fp32`` (logged)."""
    if fp16 and not spec.fp16_safe:
        log.warning("model %s is not FP16-safe (catalogue); building an FP32 engine", spec.name)
    return "fp16" if fp16 and spec.fp16_safe else "fp32"


def engine_spec(
    spec: ModelSpec,
    profile: Profile,
    precision: Precision,
    onnx_path: Path,
    device: DeviceInfo,
    options: BuilderOptions | None = None,
) -> EngineSpec:
    """The :class:`EngineSpec` (hence cache key) of ``spec`` exported at ``onnx_path``."""
    if spec.arch == "bicubic":
        raise ConfigError("model 'bicubic' has no network to build an engine for")
    return EngineSpec(
        model=spec.name,
        profile=profile,
        precision=precision,
        onnx_sha256=sha256_file(Path(onnx_path)),
        channels=1 if spec.colour == "y" else 3,
        device=device,
        options=options or BuilderOptions(),
    )


def _profile(name: str, profiles_path: Path | None) -> Profile:
    profiles = load_profiles(profiles_path)
    if name not in profiles:
        raise ConfigError(f"unknown TensorRT profile {name!r}; choose one of: {', '.join(profiles)}")
    return profiles[name]


def build_engine(
    model: str,
    profile: str,
    fp16: bool = True,
    *,
    onnx_path: Path | None = None,
    net: nn.Module | None = None,
    cache_dir: Path | None = None,
    profiles_path: Path | None = None,
    report: Report | None = None,
) -> Path:
    """Build (or find in the cache) the TensorRT engine of catalogue ``model`` for shape ``profile``.

    ``fp16=False`` builds FP32. ``onnx_path`` / ``net`` replace the catalogue weights (tests,
    training). ``report`` receives progress lines (default: logged at INFO). Returns the engine's
    path under the engine cache. Raises :class:`ConfigError` for unknown names and model files
    (``.pth``/``.onnx``, user models: TensorRT runs none of them yet),
    :class:`~vsr.errors.ModelError` when the model has no weights and
    :class:`~vsr.errors.BackendError` when TensorRT or a GPU is missing or the build fails.
    """
    spec = get_spec(model)
    refusal = file_backends(spec)
    if refusal is not None:  # as `--backend tensorrt` is refused for a model file
        raise ConfigError(refusal)
    prof = _profile(profile, profiles_path)
    trt = import_tensorrt()
    device = current_device(trt)
    if onnx_path is None:
        from ..export import onnx_for

        onnx_path = onnx_for(spec, net=net)
    espec = engine_spec(spec, prof, precision_for(spec, fp16), Path(onnx_path), device)
    return ensure_engine(trt, espec, Path(onnx_path), EngineCache(cache_dir), report)


def list_engines(cache_dir: Path | None = None) -> list[dict[str, Any]]:
    """One dict per cached engine file (see :meth:`EngineCache.entries`), sorted by file name."""
    return EngineCache(cache_dir).entries()


def _engine_lines(rows: list[dict[str, Any]]) -> list[str]:
    head = ("model", "profile", "prec", "GPU", "sm", "TensorRT", "MB", "status", "file")
    table = [head]
    for r in rows:
        cc = r.get("compute_capability") or []
        table.append(
            (
                str(r.get("model") or "?"),
                str(r.get("profile") or "?"),
                str(r.get("precision") or "?"),
                str(r.get("gpu_name") or "?"),
                "".join(map(str, cc)) or "?",
                str(r.get("trt_version") or "?"),
                f"{r['bytes'] / 1e6:.1f}",
                str(r["status"]),
                Path(r["path"]).name,
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table]


def format_engine_list(
    rows: list[dict[str, Any]] | None = None,
    *,
    cache_dir: Path | None = None,
    profiles_path: Path | None = None,
) -> str:
    """The text ``vsr engine list`` prints: cached engines as a table, then the available profiles."""
    cache = EngineCache(cache_dir)
    rows = cache.entries() if rows is None else rows
    if rows:
        lines = [f"TensorRT engines in {cache.root}:", *_engine_lines(rows)]
    else:
        lines = [f"no TensorRT engines in {cache.root} yet; vsr engine build --model NAME --profile NAME"]
    lines.append("profiles (input HxW up to max; batch max):")
    for p in load_profiles(profiles_path).values():
        lines.append(f"  {p.name:<16} {p.max[0]}x{p.max[1]:<6} batch {p.max_batch}  {p.description}")
    return "\n".join(lines)
