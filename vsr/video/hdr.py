"""HDR10 static metadata: read from the input's decoded frames, handed to the output's encoder.

The transfer curve (PQ, HLG), BT.2020 primaries and matrix are colour tags and travel with
:class:`~vsr.video.meta.ColourTags`. The mastering display colour volume and the content light
level are side data that decoders attach to frames; PyAV can read them but not attach them to a
frame or a stream, so they are given to the encoders that write them into the bitstream as SEI /
metadata OBUs: libx265 and libx264 (``master-display`` / ``mastering-display``, ``max-cll`` /
``cll``) and libsvtav1 (``mastering-display``, ``content-light``). Other encoders (libvpx-vp9,
NVENC...) cannot take them: the output then has the tags but not this metadata, and says so.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import av

__all__ = ["HdrMeta", "hdr_loss", "hdr_options"]

Xy = tuple[float, float]


@dataclass(frozen=True)
class HdrMeta:
    """Mastering display (CIE 1931 xy of the R, G, B primaries and the white point; luminance
    (min, max) in cd/m2) and content light level (MaxCLL, MaxFALL in cd/m2); ``None``: absent."""

    primaries: tuple[Xy, Xy, Xy] | None = None
    white: Xy | None = None
    luminance: tuple[float, float] | None = None
    light: tuple[int, int] | None = None

    @classmethod
    def of(cls, frame: av.VideoFrame) -> HdrMeta | None:
        """The metadata a decoded frame carries, or ``None`` when it carries none."""
        found: dict[str, object] = {}
        for sd in frame.side_data:
            kind, raw = getattr(sd.type, "name", ""), bytes(sd)
            if kind == "MASTERING_DISPLAY_METADATA" and len(raw) == 88:
                found.update(_mastering(struct.unpack("<22i", raw)))
            elif kind == "CONTENT_LIGHT_LEVEL" and len(raw) == 8:
                light = struct.unpack("<2I", raw)
                found["light"] = (int(light[0]), int(light[1]))
        return cls(**found) if found else None  # type: ignore[arg-type]

    def display(self, xy_unit: float, lum_unit: float, fmt: str) -> str | None:
        """The mastering display as ``G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)``: chromaticity in
        ``xy_unit`` and luminance in ``lum_unit`` cd/m2, each written with format spec ``fmt``;
        ``None`` when the primaries or the luminance are missing."""
        if self.primaries is None or self.white is None or self.luminance is None:
            return None
        r, g, b = self.primaries

        def xy(p: Xy) -> str:
            return f"({p[0] / xy_unit:{fmt}},{p[1] / xy_unit:{fmt}})"

        lo, hi = (f"{v / lum_unit:{fmt}}" for v in self.luminance)
        return f"G{xy(g)}B{xy(b)}R{xy(r)}WP{xy(self.white)}L({hi},{lo})"


def _mastering(v: tuple[int, ...]) -> dict[str, object]:
    """AVMasteringDisplayMetadata (10 rationals: R, G, B, white xy, min and max luminance; then
    has_primaries, has_luminance) -> HdrMeta fields."""
    q = [v[i] / v[i + 1] if v[i + 1] else 0.0 for i in range(0, 20, 2)]
    out: dict[str, object] = {}
    if v[20]:
        out["primaries"] = ((q[0], q[1]), (q[2], q[3]), (q[4], q[5]))
        out["white"] = (q[6], q[7])
    if v[21]:
        out["luminance"] = (q[8], q[9])
    return out


def _x26x(hdr: HdrMeta, display: str, cll: str) -> list[str]:
    """x265 / x264 parameters: chromaticity in 0.00002 units, luminance in 0.0001 cd/m2."""
    md = hdr.display(0.00002, 0.0001, ".0f")
    light = f"{cll}={hdr.light[0]},{hdr.light[1]}" if hdr.light else None
    return [p for p in (md and f"{display}={md}", light) if p]


def _svt(hdr: HdrMeta) -> list[str]:
    """SVT-AV1 parameters: chromaticity and luminance as decimals."""
    md = hdr.display(1.0, 1.0, ".4f")
    light = f"content-light={hdr.light[0]},{hdr.light[1]}" if hdr.light else None
    return [p for p in (md and f"mastering-display={md}", light) if p]


_WRITERS = {
    "libx265": ("x265-params", lambda h: _x26x(h, "master-display", "max-cll")),
    "libx264": ("x264-params", lambda h: _x26x(h, "mastering-display", "cll")),
    "libsvtav1": ("svtav1-params", _svt),
}


def hdr_options(options: dict[str, str], codec: str, hdr: HdrMeta | None) -> dict[str, str]:
    """``options`` with ``hdr`` added to encoder ``codec``'s parameter string (kept as is when
    there is no metadata or the encoder cannot write it; see :func:`hdr_loss`)."""
    if hdr is None or codec not in _WRITERS:
        return options
    key, params = _WRITERS[codec]
    joined = ":".join([*filter(None, [options.get(key)]), *params(hdr)])
    return {**options, key: joined} if joined else options


def hdr_loss(codec: str, hdr: HdrMeta | None) -> str | None:
    """One line when the input has HDR metadata that encoder ``codec`` cannot write, else ``None``."""
    if hdr is None or codec in _WRITERS:
        return None
    return (
        f"{codec} cannot write the input's HDR mastering display / light level metadata; "
        f"the output keeps its colour tags only (use --codec {' or '.join(_WRITERS)} to keep it)"
    )
