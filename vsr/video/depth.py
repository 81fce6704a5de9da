"""The output's pixel format when none is asked for, and what a deep or transparent input loses.

Frames travel through the engine as 8-bit RGB (every backend takes and returns uint8), so a 10- or
12-bit input is upscaled at 8-bit precision. What vsr keeps is the container format: without
``--pix-fmt`` the output is written at the input's bit depth (``yuv420p10le`` for a 10-bit input,
when the codec takes it), so 10-bit deliveries and HDR transfer curves stay 10-bit streams, and the
loss is said in one warning line and in the run's statistics. An 8-bit input is written as
``yuv420p``, as always. An input with an alpha channel is written ``yuva420p`` when the encoder
takes it (libvpx-vp9, the webm default); else opaque, with one warning line.
"""

from __future__ import annotations

import av

__all__ = ["DEFAULT_PIX_FMT", "alpha_note", "bit_depth", "has_alpha", "output_pix_fmt", "precision_note"]

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


def has_alpha(pix_fmt: str) -> bool:
    """Whether ``pix_fmt`` has an alpha component (``yuva420p``, ``rgba``...)."""
    fmt = _format(pix_fmt)
    return fmt is not None and any(c.is_alpha for c in fmt.components)


def output_pix_fmt(asked: str | None, source: str, codec: str) -> str:
    """The pixel format to encode: ``asked`` when given; else, for an input with alpha,
    ``yuva420p``; for an input deeper than 8 bits, the input's own format, then 4:2:0 at its
    depth, then ``yuv420p10le`` (the first that encoder ``codec`` takes); else
    :data:`DEFAULT_PIX_FMT`."""
    if asked:
        return asked
    depth = bit_depth(source)
    takes = {f.name for f in av.codec.Codec(codec, "w").video_formats or []}
    if has_alpha(source) and "yuva420p" in takes:
        return "yuva420p"
    if depth <= 8:
        return DEFAULT_PIX_FMT
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


def alpha_note(source: str, output: str, codec: str) -> str | None:
    """One line when the input's alpha channel is not written (``None`` when it is, or there is none)."""
    if not has_alpha(source) or has_alpha(output):
        return None
    return (
        f"the input has an alpha channel; {codec} as {output} cannot hold one: written opaque "
        "(a .webm output, i.e. libvpx-vp9 as yuva420p, keeps it)"
    )
