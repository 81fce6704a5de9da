"""The TensorRT engine cache: keys, file names, atomic writes and validation of what is on disk.

An engine is only valid for the exact inputs that built it, so its key is a sha256 over a canonical
JSON of all of them: the ONNX file's sha256, the precision, the optimisation-profile shapes, the
TensorRT version, the GPU's name and compute capability, and the builder options. Each engine
``NAME.engine`` has a sidecar ``NAME.json`` holding that key and the engine's own sha256 and size;
both are written to temporary files and renamed, the sidecar last, so a reader never trusts a half
written, truncated, corrupt or mismatched engine: it is deleted and rebuilt. The sidecar sits beside
the engine and can be rewritten with it, so each engine's sha256 is also recorded in vsr's ledger of
derived files (:mod:`vsr.derived`, outside the cache, keyed by the ONNX file's sha256) and checked
there before the engine is used; an engine the ledger never saw (or built before the ledger existed)
is rebuilt once. Pure Python; no TensorRT.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..derived import Verdict, forget, record, verify
from ..models.catalogue import file_sha256 as sha256_file
from .profiles import Profile

__all__ = [
    "FORMAT_VERSION",
    "BuilderOptions",
    "DeviceInfo",
    "EngineCache",
    "EngineSpec",
    "atomic_write",
    "default_cache_dir",
    "sha256_bytes",
    "sha256_file",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when vsr changes how it builds engines (I/O layout, normalisation...)
Precision = Literal["fp16", "fp32"]


@dataclass(frozen=True)
class DeviceInfo:
    """What an engine is tied to besides its inputs: the GPU and the TensorRT build."""

    gpu_name: str
    compute_capability: tuple[int, int]
    trt_version: str

    @property
    def slug(self) -> str:
        gpu = re.sub(r"[^A-Za-z0-9]+", "-", self.gpu_name).strip("-").lower() or "gpu"
        cc = "".join(map(str, self.compute_capability))
        return f"{gpu}-sm{cc}-trt{self.trt_version}"


@dataclass(frozen=True)
class BuilderOptions:
    """Builder settings that change the engine (all of them go into the cache key).

    ``io_half``: FP16 engines take and return float16 tensors (half the I/O bandwidth; the GPU
    pre-processing writes fp16 directly). ``tf32``: allow TF32 math in FP32 engines (off, so the
    FP32 engine is an exact reference for the FP16 parity gate). ``optimization_level``: TensorRT's
    builder_optimization_level 0..5 (3 is TensorRT's default). ``workspace_mib``: workspace pool.
    """

    workspace_mib: int = 2048
    optimization_level: int = 3
    tf32: bool = False
    io_half: bool = True


@dataclass(frozen=True)
class EngineSpec:
    """Everything one engine is built from. ``model`` and ``profile.name`` only label the file."""

    model: str
    profile: Profile
    precision: Precision
    onnx_sha256: str
    channels: int
    device: DeviceInfo
    options: BuilderOptions = field(default_factory=BuilderOptions)
    input_name: str = "input"
    output_name: str = "output"

    def key_fields(self) -> dict[str, Any]:
        """The engine-affecting inputs as plain JSON data (labels left out)."""
        shapes = self.profile.input_shapes(self.channels)
        options = asdict(self.options)
        if self.precision == "fp32":
            options["io_half"] = False  # FP32 engines always take float32
        return {
            "format": FORMAT_VERSION,
            "onnx_sha256": self.onnx_sha256,
            "precision": self.precision,
            "io": [self.input_name, self.output_name],
            "shapes": {"min": shapes[0], "opt": shapes[1], "max": shapes[2]},
            "trt_version": self.device.trt_version,
            "gpu_name": self.device.gpu_name,
            "compute_capability": list(self.device.compute_capability),
            "options": options,
        }

    @property
    def key(self) -> str:
        """sha256 hex of the canonical JSON of :meth:`key_fields`."""
        canonical = json.dumps(self.key_fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def file_stem(self) -> str:
        return f"{self.model}-{self.profile.name}-{self.precision}-{self.key[:16]}"

    @property
    def io_half(self) -> bool:
        return self.precision == "fp16" and self.options.io_half


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def default_cache_dir() -> Path:
    """``$VSR_ENGINE_CACHE``, else ``engines/cache`` in a source checkout, else the vsr cache dir."""
    env = os.environ.get("VSR_ENGINE_CACHE")
    if env:
        return Path(env)
    repo_engines = Path(__file__).resolve().parents[2] / "engines"
    if (repo_engines / "profiles.toml").is_file():
        return repo_engines / "cache"
    from ..export import cache_dir

    return cache_dir() / "engines"


class EngineCache:
    """Engines and their sidecars under ``root``; the timing caches live there too."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else default_cache_dir()

    def engine_path(self, spec: EngineSpec) -> Path:
        return self.root / f"{spec.file_stem}.engine"

    def timing_cache_path(self, device: DeviceInfo) -> Path:
        return self.root / f"timing-{device.slug}.cache"

    def check(self, spec: EngineSpec) -> str | None:
        """Why the cached engine for ``spec`` cannot be trusted, or None when it is valid."""
        path = self.engine_path(spec)
        if not path.is_file():
            return "not built yet"
        try:
            meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return f"its sidecar is missing or unreadable ({exc.__class__.__name__})"
        if not isinstance(meta, dict) or meta.get("key") != spec.key:
            return "it was built from other inputs (cache key mismatch)"
        if path.stat().st_size != meta.get("engine_bytes"):
            return "its size differs from the recorded size (truncated or overwritten)"
        if sha256_file(path) != meta.get("engine_sha256"):
            return "its checksum differs from the recorded one (corrupt)"
        return _ledger_reason(_ledger_verdict(spec.onnx_sha256, path))

    def load(self, spec: EngineSpec) -> bytes | None:
        """The serialized engine for ``spec`` when the cached copy is valid; else None after removing it."""
        reason = self.check(spec)
        if reason is None:
            return self.engine_path(spec).read_bytes()
        if reason != "not built yet":
            log.warning("cached engine %s is not used: %s; rebuilding", self.engine_path(spec).name, reason)
            self.remove(spec)
        return None

    def store(self, spec: EngineSpec, engine: bytes, build_seconds: float = 0.0) -> Path:
        """Write ``engine`` and its sidecar atomically (engine first); returns the engine's path."""
        path = atomic_write(self.engine_path(spec), engine)
        meta = {
            "key": spec.key,
            "model": spec.model,
            "profile": spec.profile.name,
            "precision": spec.precision,
            "engine_sha256": sha256_bytes(engine),
            "engine_bytes": len(engine),
            "build_seconds": round(build_seconds, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "inputs": spec.key_fields(),
        }
        atomic_write(path.with_suffix(".json"), json.dumps(meta, indent=2, sort_keys=True).encode())
        record(spec.onnx_sha256, path, "engine")
        return path

    def remove(self, spec: EngineSpec) -> None:
        path = self.engine_path(spec)
        path.with_suffix(".json").unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        forget(spec.onnx_sha256, path)

    def entries(self) -> list[dict[str, Any]]:
        """One dict per ``*.engine`` file: its sidecar's facts plus ``path``, ``bytes`` and ``status``.

        ``status`` is ``ok`` when the file matches its sidecar, else why it will be rebuilt.
        """
        rows = []
        for path in sorted(self.root.glob("*.engine")) if self.root.is_dir() else []:
            row: dict[str, Any] = {"path": str(path), "bytes": path.stat().st_size, "status": "ok"}
            try:
                meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                rows.append({**row, "status": "no readable sidecar; will be rebuilt"})
                continue
            inputs = meta.get("inputs", {})
            row.update(
                {k: meta.get(k) for k in ("model", "profile", "precision", "created", "build_seconds")}
            )
            row.update({k: inputs.get(k) for k in ("trt_version", "gpu_name", "compute_capability")})
            if row["bytes"] != meta.get("engine_bytes") or sha256_file(path) != meta.get("engine_sha256"):
                row["status"] = "corrupt or truncated; will be rebuilt"
            elif reason := _ledger_reason(_ledger_verdict(inputs.get("onnx_sha256"), path)):
                row["status"] = f"{reason}; will be rebuilt"
            rows.append(row)
        return rows


def _ledger_verdict(onnx_sha256: object, path: Path) -> Verdict:
    """The ledger's verdict on an engine whose sidecar names ``onnx_sha256`` (unknown when unusable)."""
    try:
        return verify(str(onnx_sha256), path)
    except ValueError:  # the sidecar's onnx_sha256 is not a sha256
        return "unknown"


def _ledger_reason(verdict: Verdict) -> str | None:
    """Why vsr's ledger of derived files refuses an engine, or None when it vouches for it."""
    if verdict == "mismatch":
        return "it does not match what vsr built (sha256 differs from vsr's ledger)"
    if verdict == "unknown":
        return "vsr's ledger has no record of building it"
    return None
