"""Video input and output with PyAV: decode, encode, pass-through of audio and subtitles.

``import vsr.video`` needs only numpy and av.
"""

from __future__ import annotations

from .meta import ColourTags, SourceTags, VideoInfo
from .reader import VideoReader, frame_to_rgb
from .writer import VideoWriter, check_output_path, partial_path

__all__ = [
    "ColourTags",
    "SourceTags",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "check_output_path",
    "frame_to_rgb",
    "partial_path",
]
