"""The output's pixel format when none is asked for, and what a high-bit-depth input loses.

Frames travel through the engine as 8-bit RGB (every backend takes and returns uint8), so a 10- or
12-bit input is upscaled at 8-bit precision. What vsr keeps is the container format: without
``--pix-fmt`` the output is written at the input's bit depth (``yuv420p10le`` for a 10-bit input,
when the codec takes it), so 10-bit deliveries and HDR transfer curves stay 10-bit streams, and the
loss is said in one warning line and in the run's statistics. An 8-bit input is written as
``yuv420p``, as always.
"""

from __future__ import annotations

import av

__all__ = ["DEFAULT_PIX_FMT", "bit_depth", "output_pix_fmt", "precision_note"]

DEFAULT_PIX_FMT = "yuv420p"


def _format(pix_fmt: str) -> av.VideoFormat | None:
    try:
        return av.VideoFormat(pix_fmt)
    except ValueError:
        return None


def bit_depth(pix_fmt: str) -> int:
    """Bits per component of ``pix_fmt`` (its deepest component); 8 for an unknown name."""
    fmt = _format(pix_fmt)
    return max((c.bits for c in fmt.components), default=8) if fmt is not None else 8


def output_pix_fmt(asked: str | None, source: str, codec: str) -> str:
    """The pixel format to encode: ``asked`` when given; else, for an input deeper than 8 bits,
    the input's own format, then 4:2:0 at its depth, then ``yuv420p10le`` (the first that encoder
    ``codec`` takes); else :data:`DEFAULT_PIX_FMT`."""
    if asked:
        return asked
    depth = bit_depth(source)
    if depth <= 8:
        return DEFAULT_PIX_FMT
    takes = {f.name for f in av.codec.Codec(codec, "w").video_formats or []}
    for candidate in (source, f"yuv420p{depth}le", "yuv420p10le"):
        if not takes or candidate in takes:
            return candidate
    return DEFAULT_PIX_FMT


def precision_note(source: str, output: str) -> str | None:
    """One line saying what a deeper-than-8-bit input loses (``None`` for an 8-bit input), e.g.
    ``10-bit input: upscaled at 8-bit precision, written as yuv420p10le``."""
    depth = bit_depth(source)
    if depth <= 8:
        return None
    return f"{depth}-bit input: upscaled at 8-bit precision, written as {output}"
