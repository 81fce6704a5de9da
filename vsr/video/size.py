"""The output size of an upscale: ``--scale`` or ``--width`` / ``--height``, and how frames reach it.

:class:`OutputSize` is the request (validated when built); :func:`target_size` is the arithmetic
(aspect ratio in display pixels, rounded to what the pixel format can hold); :meth:`OutputSize.plan`
turns both into a :class:`SizePlan` for the writer: the size the model delivers, the size encoded,
and the filter between them. The resize happens inside the writer's RGB -> YUV conversion
(swscale, on the planes): ``area`` when shrinking the model's output (measured against ``lanczos``
at 4x -> 2x and 4x -> 3x on 720p clips: +0.3 to +0.4 dB Y-PSNR, higher SSIM, ~30 % faster) and
``lanczos`` when enlarging past the model's own scale. A bicubic resize is never stacked on a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import av

from ..errors import ConfigError
from .meta import VideoInfo

__all__ = ["MAX_SIDE", "SCALES", "OutputSize", "SizePlan", "size_multiple", "target_size"]

SCALES: tuple[int, ...] = (2, 3, 4)
"""The output scales ``--scale`` takes."""

MAX_SIDE = 16384
"""The largest output width or height (libx264's and most encoders' limit)."""

Filter = Literal["area", "lanczos"]


def size_multiple(pix_fmt: str) -> tuple[int, int]:
    """(horizontal, vertical) multiple a frame of ``pix_fmt`` needs: (2, 2) for yuv420p and nv12,
    (2, 1) for yuv422p, (4, 1) for yuv411p, (1, 1) for yuv444p and RGB."""
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.error.FFmpegError) as exc:
        raise ConfigError(f"unknown pixel format {pix_fmt!r}") from exc
    probe = 1 << 12
    return probe // max(fmt.chroma_width(probe), 1), probe // max(fmt.chroma_height(probe), 1)


def _nearest(value: Fraction, multiple: int) -> int:
    """``value`` rounded to the nearest multiple of ``multiple`` (halves up), at least ``multiple``."""
    return max(multiple, int(value / multiple + Fraction(1, 2)) * multiple)


def _check_side(flag: str, value: int, multiple: int, pix_fmt: str) -> None:
    if value % multiple:
        raise ConfigError(
            f"output {flag.lstrip('-')} {value} ({flag}) cannot be encoded as {pix_fmt}, "
            f"which needs a multiple of {multiple}; try {flag} {_nearest(Fraction(value), multiple)}"
        )


def target_size(
    in_w: int,
    in_h: int,
    sar: Fraction | None,
    scale: int | None,
    width: int | None,
    height: int | None,
    pix_fmt: str,
    *,
    flags: tuple[str, str] = ("--width", "--height"),
) -> tuple[int, int]:
    """The (width, height) to encode for an ``in_w`` x ``in_h`` input with sample aspect ``sar``.

    ``scale``: both sides times it, the pixel shape kept (an odd pixel a subsampled format cannot
    hold is cropped). ``width`` or ``height`` alone: that side, the other from the input's display
    aspect ratio (``in_w * sar / in_h``) in square pixels, rounded to the nearest multiple the
    format needs. Both: exactly that size. A given side the format cannot hold raises
    :class:`ConfigError` (naming the flag, suggesting a size), as does a side over :data:`MAX_SIDE`;
    ``flags`` names ``width`` and ``height`` in those messages.
    """
    if scale is not None and (width is not None or height is not None):
        raise ConfigError("--scale cannot be combined with --width/--height; give one or the other")
    mw, mh = size_multiple(pix_fmt)
    if width is None and height is None:
        s = scale or 4
        return max(mw, in_w * s // mw * mw), max(mh, in_h * s // mh * mh)
    if width is not None:
        _check_side(flags[0], width, mw, pix_fmt)
    if height is not None:
        _check_side(flags[1], height, mh, pix_fmt)
    aspect = Fraction(in_w, in_h) * (sar or 1)
    w = width if width is not None else _nearest(height * aspect, mw)  # type: ignore[operator]
    h = height if height is not None else _nearest(width / aspect, mh)  # type: ignore[operator]
    if max(w, h) > MAX_SIDE:
        given = f"{flags[0]} {width}" if width is not None else f"{flags[1]} {height}"
        raise ConfigError(f"{given} makes a {w}x{h} output; sides are limited to {MAX_SIDE} pixels")
    return w, h


def _stretch_note(info: VideoInfo, target: tuple[int, int]) -> str | None:
    """A warning when an exact --width and --height change the picture's display aspect ratio."""
    before = info.width * (info.sample_aspect_ratio or 1) / info.height
    after = Fraction(*target)
    if info.rotation in (90, 270):
        before, after = 1 / before, 1 / after
    if abs(after / before - 1) <= 0.01:
        return None
    return (
        f"--width/--height stretch the picture: display aspect {float(before):.3f} becomes {float(after):.3f}"
    )


@dataclass(frozen=True)
class SizePlan:
    """How frames reach the output size: ``source`` (w, h) is what the model delivers (input x
    its scale), ``target`` (w, h) what is encoded, ``filter`` the swscale resize between them
    (``None``: none, at most an odd pixel cropped), ``sar`` the output's sample aspect ratio
    (``None``: unset, square), ``notes`` warnings for the user (a stretched picture, a size past
    the model's scale), to be said once per output."""

    source: tuple[int, int]
    target: tuple[int, int]
    filter: Filter | None = None
    sar: Fraction | None = None
    notes: tuple[str, ...] = ()

    @property
    def interpolation(self) -> str | None:
        """The filter as PyAV's ``reformat(interpolation=)`` names it."""
        return self.filter.upper() if self.filter else None

    def report(self) -> dict[str, Any] | None:
        """``{"from": [w, h], "to": [w, h], "filter": "area"}``, or ``None`` when nothing was resized."""
        if self.filter is None:
            return None
        return {"from": list(self.source), "to": list(self.target), "filter": self.filter}


@dataclass(frozen=True)
class OutputSize:
    """What the user asked the output size to be: ``scale`` (2, 3 or 4) x the input, or
    ``width`` and/or ``height`` in display pixels (one alone keeps the aspect ratio), or nothing
    (the model's own scale). Carried by :class:`~vsr.config.EncodeConfig` ``size``.
    """

    scale: int | None = None
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        if self.scale is not None and (self.width is not None or self.height is not None):
            raise ConfigError("--scale cannot be combined with --width/--height; give one or the other")
        if self.scale is not None and self.scale not in SCALES:
            raise ConfigError(f"--scale must be one of {', '.join(map(str, SCALES))}, got {self.scale}")
        for flag, value in (("--width", self.width), ("--height", self.height)):
            if value is not None and not 1 <= value <= MAX_SIDE:
                raise ConfigError(f"{flag} must be in 1..{MAX_SIDE} pixels, got {value}")

    def target(self, info: VideoInfo, pix_fmt: str, model_scale: int = 4) -> tuple[int, int]:
        """The coded (width, height) to encode for ``info``. ``--width`` / ``--height`` are display
        sides: a video rotated a quarter turn has them swapped in its coded frames."""
        width, height, flags = self.width, self.height, ("--width", "--height")
        if info.rotation in (90, 270):
            width, height, flags = height, width, ("--height", "--width")
        scale = None if width is not None or height is not None else self.scale or model_scale
        sar = info.sample_aspect_ratio
        return target_size(info.width, info.height, sar, scale, width, height, pix_fmt, flags=flags)

    def plan(self, info: VideoInfo, model_scale: int, pix_fmt: str) -> SizePlan:
        """The :class:`SizePlan` for frames ``model_scale`` x ``info``'s size, encoded as ``pix_fmt``."""
        source = (info.width * model_scale, info.height * model_scale)
        target = self.target(info, pix_fmt, model_scale)
        square = self.width is not None or self.height is not None
        sar = (Fraction(1) if info.sample_aspect_ratio else None) if square else info.sample_aspect_ratio
        notes = [_stretch_note(info, target)] if self.width is not None and self.height is not None else []
        mw, mh = size_multiple(pix_fmt)
        if target == (source[0] // mw * mw, source[1] // mh * mh):
            return SizePlan(source, target, None, sar, tuple(n for n in notes if n))
        enlarges = target[0] > source[0] or target[1] > source[1]
        if enlarges:
            notes.append(
                f"{target[0]}x{target[1]} is more than the model's {model_scale}x: the rest, from "
                f"{source[0]}x{source[1]}, is lanczos interpolation"
            )
        return SizePlan(source, target, "lanczos" if enlarges else "area", sar, tuple(n for n in notes if n))
