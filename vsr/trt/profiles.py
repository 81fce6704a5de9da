"""TensorRT shape profiles: loading the named recipes, picking one for a frame, padding and cropping.

A profile is a range of network-input shapes (min / opt / max height and width, and a batch range)
that one engine serves. A frame is padded to the profile's fixed run shape and the output cropped,
so any resolution up to the profile's ``max`` runs on one engine. Pure numpy; no TensorRT here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import ConfigError

__all__ = [
    "Profile",
    "crop_output",
    "default_profiles_path",
    "load_profiles",
    "pad_frames",
    "parse_profiles",
    "run_shape",
    "select_profile",
    "split_batches",
]

PadMode = Literal["opt", "multiple"]
HW = tuple[int, int]


@dataclass(frozen=True)
class Profile:
    """One shape recipe: network-input sizes in pixels as (height, width); batch as (min, opt, max)."""

    name: str
    min: HW
    opt: HW
    max: HW
    batch: tuple[int, int, int] = (1, 1, 1)
    description: str = ""

    @property
    def orientation(self) -> Literal["landscape", "portrait"]:
        return "portrait" if self.max[0] > self.max[1] else "landscape"

    @property
    def max_batch(self) -> int:
        return self.batch[2]

    def covers(self, height: int, width: int) -> bool:
        """True when a (height, width) input lies inside [min, max]."""
        return self.min[0] <= height <= self.max[0] and self.min[1] <= width <= self.max[1]

    def input_shapes(self, channels: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """The NCHW (min, opt, max) shapes an optimisation profile sets for a ``channels``-channel input."""
        return tuple(  # type: ignore[return-value]
            (b, channels, hw[0], hw[1])
            for b, hw in zip(self.batch, (self.min, self.opt, self.max), strict=True)
        )


def _pair(name: str, key: str, value: object) -> HW:
    ok = isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value)
    if not ok:
        raise ConfigError(f"profile {name!r}: {key} must be [height, width] of positive ints, got {value!r}")
    return (int(value[0]), int(value[1]))  # type: ignore[index]


def _profile(name: str, table: Mapping[str, object]) -> Profile:
    unknown = set(table) - {"min", "opt", "max", "batch", "description"}
    if unknown:
        raise ConfigError(f"profile {name!r}: unknown keys {sorted(unknown)}")
    lo, opt, hi = (_pair(name, k, table.get(k)) for k in ("min", "opt", "max"))
    batch = table.get("batch", [1, 1, 1])
    if not (isinstance(batch, list) and len(batch) == 3 and all(isinstance(b, int) for b in batch)):
        raise ConfigError(f"profile {name!r}: batch must be [min, opt, max] ints, got {batch!r}")
    if not 1 <= batch[0] <= batch[1] <= batch[2]:
        raise ConfigError(f"profile {name!r}: batch must satisfy 1 <= min <= opt <= max, got {batch}")
    for axis in (0, 1):
        if not lo[axis] <= opt[axis] <= hi[axis]:
            raise ConfigError(f"profile {name!r}: need min <= opt <= max, got {lo}, {opt}, {hi}")
    return Profile(name, lo, opt, hi, (batch[0], batch[1], batch[2]), str(table.get("description", "")))


def parse_profiles(text: str) -> dict[str, Profile]:
    """Parse the TOML text of a profiles file into ``{name: Profile}``, validating every table."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError as exc:
            raise ConfigError("reading engines/profiles.toml on Python 3.10 needs tomli") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"profiles file is not valid TOML: {exc}") from exc
    profiles = {}
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"profiles file: {name!r} must be a table ([{name}])")
        profiles[name] = _profile(name, table)
    if not profiles:
        raise ConfigError("profiles file defines no profile")
    return profiles


def default_profiles_path() -> Path:
    """``$VSR_PROFILES`` if set, else ``engines/profiles.toml`` beside the ``vsr`` package."""
    env = os.environ.get("VSR_PROFILES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "engines" / "profiles.toml"


def load_profiles(path: Path | None = None) -> dict[str, Profile]:
    """The named profiles of ``path`` (default :func:`default_profiles_path`), in file order."""
    path = Path(path) if path else default_profiles_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read TensorRT profiles {path}: {exc.strerror or exc}") from exc
    return parse_profiles(text)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def select_profile(profiles: Mapping[str, Profile], height: int, width: int, multiple: int = 1) -> Profile:
    """The smallest profile whose ``max`` covers an input of (height, width), rounded up to ``multiple``.

    Profiles of the frame's orientation (portrait when height > width) are preferred; one of the
    other orientation is taken only when none of the same covers the frame. Ties break by name.
    Raises :class:`ConfigError` naming the largest profile when none covers the frame.
    """
    if height <= 0 or width <= 0:
        raise ConfigError(f"frame size must be positive, got {height}x{width} (HxW)")
    h, w = _round_up(height, multiple), _round_up(width, multiple)
    fits = [p for p in profiles.values() if p.covers(h, w)]
    orient = "portrait" if h > w else "landscape"
    same = [p for p in fits if p.orientation == orient] or fits
    if not same:
        largest = max(profiles.values(), key=lambda p: p.max[0] * p.max[1])
        raise ConfigError(
            f"a {width}x{height} (WxH) input fits no TensorRT profile (largest: {largest.name}, "
            f"{largest.max[1]}x{largest.max[0]}); use --tile or add a profile to engines/profiles.toml"
        )
    return min(same, key=lambda p: (p.max[0] * p.max[1], p.name))


def run_shape(profile: Profile, height: int, width: int, multiple: int = 1, mode: PadMode = "opt") -> HW:
    """The (height, width) the engine runs for a frame of (height, width).

    ``opt``: the profile's ``opt`` shape when the frame fits in it, else ``max`` (fixed shapes, the
    ones the kernels were tuned for). ``multiple``: the frame rounded up to ``multiple`` and to
    ``min`` (least work, shape varies with the input). Raises :class:`ConfigError` outside ``max``.
    """
    h, w = _round_up(height, multiple), _round_up(width, multiple)
    if h > profile.max[0] or w > profile.max[1]:
        raise ConfigError(f"a {w}x{h} (WxH) input exceeds profile {profile.name!r} max {profile.max[::-1]}")
    if mode == "opt":
        return profile.opt if h <= profile.opt[0] and w <= profile.opt[1] else profile.max
    if mode == "multiple":
        return (max(h, profile.min[0]), max(w, profile.min[1]))
    raise ConfigError(f"pad mode must be 'opt' or 'multiple', got {mode!r}")


def pad_frames(frames: np.ndarray, shape: HW) -> np.ndarray:
    """Edge-pad (N, H, W, C) frames on the bottom and right to ``shape`` (H', W'); same dtype.

    Returns ``frames`` itself when no padding is needed, else a new array the caller owns.
    """
    ph, pw = shape[0] - frames.shape[1], shape[1] - frames.shape[2]
    if ph < 0 or pw < 0:
        raise ConfigError(f"cannot pad {frames.shape[1:3]} frames down to {shape}")
    if ph == 0 and pw == 0:
        return frames
    return np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")


def crop_output(out: np.ndarray, height: int, width: int, scale: int) -> np.ndarray:
    """The top-left (scale*height, scale*width) of (N, H', W', C) output: a view, no copy."""
    return out[:, : height * scale, : width * scale]


def split_batches(n: int, max_batch: int) -> Iterator[slice]:
    """Slices of ``range(n)`` of at most ``max_batch`` frames each, in order."""
    if max_batch < 1:
        raise ConfigError(f"max_batch must be >= 1, got {max_batch}")
    for start in range(0, n, max_batch):
        yield slice(start, min(start + max_batch, n))
