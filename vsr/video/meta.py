"""What the output must inherit from the input video: size, timing, colour tags and orientation.

The colour tags are FFmpeg's own enum values (``AVColorRange``, ``AVColorPrimaries``,
``AVColorTransferCharacteristic``, ``AVColorSpace``), copied verbatim to the output stream; the
matrix and range also drive the RGB <-> YUV conversions so colours survive the round trip.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from fractions import Fraction

import av

from .hdr import HdrMeta

__all__ = ["ColourTags", "SourceTags", "VideoInfo", "display_matrix"]

# AVColorSpace -> the swscale SWS_CS_* constant that PyAV's reformat() takes; unlisted
# (unspecified, RGB, YCgCo...) -> None, i.e. swscale's default BT.601.
_SWS_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}
_UNSPECIFIED = 2  # AVCOL_PRI/TRC/SPC_UNSPECIFIED
_RANGE_UNSPECIFIED = 0


@dataclass(frozen=True)
class ColourTags:
    """The colour description of a video stream, as FFmpeg enum integers (2 / 0 = unspecified)."""

    color_range: int = _RANGE_UNSPECIFIED
    color_primaries: int = _UNSPECIFIED
    color_trc: int = _UNSPECIFIED
    colorspace: int = _UNSPECIFIED

    @classmethod
    def of(cls, frame: av.VideoFrame) -> ColourTags:
        """The tags a decoded frame carries."""
        return cls(
            int(frame.color_range), int(frame.color_primaries), int(frame.color_trc), int(frame.colorspace)
        )

    @property
    def sws_matrix(self) -> int | None:
        """The YUV matrix for PyAV's ``reformat(dst_colorspace=)``; ``None`` = BT.601 default."""
        return _SWS_MATRIX.get(self.colorspace)

    @property
    def sws_range(self) -> int | None:
        """The range for ``reformat(dst_color_range=)``; ``None`` = limited (the default)."""
        return self.color_range or None

    def apply(self, target: av.VideoFrame | av.video.codeccontext.VideoCodecContext) -> None:
        """Tag an encoder context or a frame with these values (unspecified values are left alone)."""
        if self.color_range != _RANGE_UNSPECIFIED:
            target.color_range = self.color_range
        for attr in ("color_primaries", "color_trc", "colorspace"):
            value = getattr(self, attr)
            if value != _UNSPECIFIED:
                setattr(target, attr, value)


def display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    """The frame's display matrix (9 int32 in FFmpeg's layout), or ``None`` when it has none.

    Decoders attach the container's rotation / flip to every frame; carrying the raw matrix keeps
    flips as well as rotations.
    """
    for sd in frame.side_data:
        if getattr(sd.type, "name", "") == "DISPLAYMATRIX":
            raw = bytes(sd)
            if len(raw) == 36:
                return struct.unpack("<9i", raw)
    return None


@dataclass(frozen=True)
class VideoInfo:
    """The facts about an input video stream that the pipeline and the writer need.

    ``time_base``: the stream's; every frame pts is in it. ``rate``: average frame rate (a hint
    for encoders and the progress bar only, never used for timing). ``frames``: the expected frame
    count (0 when unknown). ``matrix``: the display matrix (rotation/flip) or ``None``. ``hdr``:
    the mastering display / content light level metadata of the first frame, or ``None``.
    """

    width: int
    height: int
    time_base: Fraction
    rate: Fraction | None
    frames: int
    duration_s: float | None
    pix_fmt: str
    colour: ColourTags
    matrix: tuple[int, ...] | None
    sample_aspect_ratio: Fraction | None = None
    hdr: HdrMeta | None = None

    @property
    def rotation(self) -> int:
        """Counter-clockwise rotation in degrees implied by ``matrix`` (0 when none)."""
        if not self.matrix:
            return 0
        a, b = self.matrix[0] / 65536, self.matrix[1] / 65536
        return round(-math.degrees(math.atan2(b, a))) % 360


# Tags that describe the old file rather than the video (brands, muxer, per-track statistics)
_STALE_TAGS = {
    "major_brand",
    "minor_version",
    "compatible_brands",
    "encoder",
    "handler_name",
    "vendor_id",
    "duration",
    "bps",
    "number_of_frames",
    "number_of_bytes",
    "alpha_mode",  # describes the old encoding: the muxer sets it when the output has alpha
}


def _fresh(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k.lower() not in _STALE_TAGS and not k.startswith("_STATISTICS")}


@dataclass(frozen=True)
class SourceTags:
    """Descriptive metadata carried to the output: container tags (title, creation time...), the
    video stream's tags (language, title) and chapters (PyAV chapter dicts), minus stale entries.
    """

    container: dict[str, str]
    video: dict[str, str]
    chapters: tuple[dict, ...] = ()

    @classmethod
    def of(cls, container: av.container.InputContainer, stream: av.stream.Stream) -> SourceTags:
        return cls(
            _fresh(dict(container.metadata)), _fresh(dict(stream.metadata)), tuple(container.chapters())
        )
