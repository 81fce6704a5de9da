"""The parity gate: does a candidate network runner agree with a reference one on probe frames?

Used before an FP16 TensorRT engine is first trusted (candidate) against the FP32 engine of the same
ONNX (reference); any two :data:`~vsr.backends.base.NetFn` runners work, so the tests drive it with
ONNX Runtime sessions. It measures max / mean absolute error, and catches what FP16 overflow and
broken kernels produce: NaN / Inf, an all-black output, a flat (constant) output. numpy only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["ParityThresholds", "ParityVerdict", "ProbeResult", "check_parity", "compare", "probe_frames"]

log = logging.getLogger(__name__)

# float32 NCHW (N, C, h, w) in [0, 1] -> float32 (N, C', s*h, s*w); see vsr.backends.base.NetFn
Runner = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ParityThresholds:
    """Limits on the 0..1 output scale. The defaults allow FP16 rounding (~1e-3) with margin.

    ``max_abs`` 0.04 is ~10 of 255 levels at the worst pixel; ``mean_abs`` 0.004 is ~1 level on
    average. ``black``: an output whose largest magnitude is below it is black; ``flat``: one whose
    standard deviation is below it is constant. Both only count when the reference is not.
    """

    max_abs: float = 0.04
    mean_abs: float = 0.004
    black: float = 1.0 / 255.0
    flat: float = 1e-4


@dataclass(frozen=True)
class ProbeResult:
    """How the candidate did on one probe frame (errors over its finite values)."""

    name: str
    max_abs: float
    mean_abs: float
    nonfinite: int
    black: bool
    flat: bool
    failure: str  # "" when this probe passed


@dataclass(frozen=True)
class ParityVerdict:
    """The gate's answer: ``passed`` and, when not, the first ``reason``; per-probe details."""

    passed: bool
    reason: str
    probes: tuple[ProbeResult, ...]
    reference_ok: bool = True  # False: the reference itself gave NaN/Inf, so nothing was judged

    @property
    def max_abs(self) -> float:
        return max((p.max_abs for p in self.probes), default=0.0)

    def summary(self) -> str:
        """One line for the log: verdict, worst error, and the failing probe's reason."""
        worst = f"max abs error {self.max_abs * 255:.2f}/255 over {len(self.probes)} probes"
        return f"parity passed ({worst})" if self.passed else f"parity FAILED: {self.reason} ({worst})"


def _scene(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A real-looking (H, W) plane: sky gradient, a bright disc, textured ground, hard edges."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 0.55 + 0.35 * (1.0 - yy / max(h - 1, 1))
    disc = (yy - 0.3 * h) ** 2 + (xx - 0.7 * w) ** 2 < (0.12 * min(h, w)) ** 2
    img[disc] = 0.97
    ground = yy > 0.6 * h
    texture = 0.25 + 0.1 * np.sin(xx * 0.9) * np.cos(yy * 0.7) + 0.05 * rng.standard_normal((h, w))
    img[ground] = texture[ground]
    img[(np.abs(xx - 0.3 * w) < max(w // 40, 1)) & ~ground] = 0.08  # a dark pole
    return np.clip(img, 0.0, 1.0)


def probe_frames(
    channels: int, height: int, width: int, batch: int = 1, seed: int = 0
) -> dict[str, np.ndarray]:
    """Named probe batches, each float32 (batch, channels, height, width) in [0, 1], new arrays.

    ``noise`` (uniform), ``gradient`` (ramps in x and y), ``edges`` (checkerboard and thin lines),
    ``scene`` (a synthetic photo-like frame); channels differ slightly so colour bugs show.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = {
        "noise": lambda c: rng.random((height, width), dtype=np.float32),
        "gradient": lambda c: (xx / max(width - 1, 1) * 0.7 + yy / max(height - 1, 1) * 0.3 + 0.1 * c) % 1.0,
        "edges": lambda c: ((((xx // 8) + (yy // 8)) % 2) * 0.9 + (xx % 13 == c) * 0.1).astype(np.float32),
        "scene": lambda c: _scene(height, width, rng) * (1.0 - 0.05 * c),
    }
    return {
        name: np.stack([np.stack([make(c) for c in range(channels)]) for _ in range(batch)]).astype(
            np.float32
        )
        for name, make in planes.items()
    }


def compare(name: str, out: np.ndarray, ref: np.ndarray, limits: ParityThresholds) -> ProbeResult:
    """Compare one candidate output with its reference (same shape, 0..1 scale)."""
    if out.shape != ref.shape:
        return ProbeResult(name, np.inf, np.inf, 0, False, False, f"shape {out.shape} != {ref.shape}")
    finite = np.isfinite(out)
    nonfinite = int(out.size - finite.sum())
    diff = np.abs(out.astype(np.float64) - ref)[finite]
    max_abs = float(diff.max()) if diff.size else np.inf
    mean_abs = float(diff.mean()) if diff.size else np.inf
    black = bool(np.nanmax(np.abs(out), initial=0.0) < limits.black <= np.abs(ref).max())
    flat = bool(finite.all() and out.std() < limits.flat <= ref.std())
    if nonfinite:
        failure = f"{nonfinite} NaN/Inf values on the {name!r} probe"
    elif black:
        failure = f"all-black output on the {name!r} probe"
    elif flat:
        failure = f"constant output on the {name!r} probe"
    elif max_abs > limits.max_abs:
        failure = f"max abs error {max_abs * 255:.1f}/255 > {limits.max_abs * 255:.1f} on {name!r}"
    elif mean_abs > limits.mean_abs:
        failure = f"mean abs error {mean_abs * 255:.2f}/255 > {limits.mean_abs * 255:.2f} on {name!r}"
    else:
        failure = ""
    return ProbeResult(name, max_abs, mean_abs, nonfinite, black, flat, failure)


def check_parity(
    candidate: Runner,
    reference: Runner,
    probes: Mapping[str, np.ndarray],
    limits: ParityThresholds | None = None,
) -> ParityVerdict:
    """Run both runners on every probe batch and judge the candidate against the reference.

    The reference must itself be finite; a reference that yields NaN/Inf fails the gate (nothing
    can be concluded about the candidate). Inputs are passed as copies, so runners may write them.
    """
    limits = limits or ParityThresholds()
    results: list[ProbeResult] = []
    for name, x in probes.items():
        ref = np.asarray(reference(x.copy()), dtype=np.float32)
        if not np.isfinite(ref).all():
            reason = f"the reference produced NaN/Inf on {name!r}"
            return ParityVerdict(False, reason, tuple(results), reference_ok=False)
        out = np.asarray(candidate(x.copy()), dtype=np.float32)
        results.append(compare(name, out, ref, limits))
    failed = [r for r in results if r.failure]
    verdict = ParityVerdict(not failed, failed[0].failure if failed else "", tuple(results))
    log.debug("%s", verdict.summary())
    return verdict
