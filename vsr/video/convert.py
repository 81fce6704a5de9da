"""RGB frames back to the encoder's YUV, with the input's matrix and range.

At 4x output sizes this conversion costs more than anything but the encoder, so the common case
(yuv420p, BT.601 or unspecified matrix, limited range: what swscale assumes by default) goes
through OpenCV's SIMD ``RGB2YUV_I420`` into a buffer the frame borrows without a copy (~4x faster
than swscale here; equal to it within 1 level in Y). Every other matrix, range or pixel format
goes through swscale, told the source's colour description.
"""

from __future__ import annotations

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from .alpha import with_alpha
from .depth import has_alpha
from .meta import ColourTags

__all__ = ["RgbToYuv"]

_BT601 = 5  # SWS_CS_ITU601
_PACKED = {3: "rgb24", 4: "rgba"}


class RgbToYuv:
    """Callable: (H, W, 3) uint8 RGB -> a ``pix_fmt`` VideoFrame of ``width`` x ``height``, tagged.

    A frame of another size is resized on the way, by swscale with ``interpolation`` (a PyAV
    ``Interpolation`` name such as ``"AREA"`` or ``"LANCZOS"``; ``None``: swscale's bilinear).
    Borrows the input array for the conversion only; the returned frame owns (or shares ownership
    of) its planes, so the caller may drop the array at once.
    """

    def __init__(
        self, width: int, height: int, pix_fmt: str, tags: ColourTags, interpolation: str | None = None
    ) -> None:
        self.width, self.height, self.pix_fmt, self.tags = width, height, pix_fmt, tags
        self.interpolation = interpolation
        self._sws = VideoReformatter()
        self.alpha = has_alpha(pix_fmt)
        self.fast = (
            pix_fmt == "yuv420p"
            and tags.sws_matrix in (None, _BT601)
            and tags.color_range != 2  # AVCOL_RANGE_JPEG (full range)
            and width % 2 == 0
            and height % 2 == 0
        )

    def __call__(self, rgb: np.ndarray, alpha: np.ndarray | None = None) -> av.VideoFrame:
        """``alpha``: the frame's (h, w) uint8 alpha plane, upscaled bicubically to ``rgb``'s size
        when ``pix_fmt`` has alpha (``None``: opaque); ignored otherwise."""
        if self.alpha:
            rgb = with_alpha(rgb, alpha)
        if self.fast and rgb.shape[:2] == (self.height, self.width):
            yuv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)
            frame = av.VideoFrame.from_numpy_buffer(yuv, format="yuv420p")
        else:
            frame = self._sws.reformat(
                av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(rgb), format=_PACKED[rgb.shape[2]]),
                width=self.width,
                height=self.height,
                format=self.pix_fmt,
                dst_colorspace=self.tags.sws_matrix,
                dst_color_range=self.tags.sws_range,
                interpolation=self.interpolation,
            )
        self.tags.apply(frame)
        return frame
