"""Alpha channels: decoded where FFmpeg's native decoder drops them, upscaled beside the picture.

VP8/VP9 keep alpha in a second bitstream (Matroska BlockAdditional, tagged ``alpha_mode=1``) that
FFmpeg's native decoders ignore; libvpx's decoders read it and give ``yuva420p`` frames. The models
upscale RGB only, so the alpha plane travels with its frame (:attr:`vsr.engine.frame.Frame.alpha`)
and is upscaled bicubically when the frame is written (:func:`with_alpha`).
"""

from __future__ import annotations

import av
import cv2
import numpy as np

__all__ = ["alpha_decoder", "with_alpha"]

_LIBVPX = {"vp8": "libvpx", "vp9": "libvpx-vp9"}


def alpha_decoder(stream: av.video.stream.VideoStream) -> av.CodecContext | None:
    """A libvpx decoder for a VP8/VP9 ``stream`` tagged with alpha, or ``None`` (the stream's own
    decoder keeps what there is)."""
    name = _LIBVPX.get(stream.codec_context.name)
    if name is None or stream.metadata.get("alpha_mode", stream.metadata.get("ALPHA_MODE")) != "1":
        return None
    try:
        ctx = av.CodecContext.create(name, "r")
    except (av.error.FFmpegError, ValueError):  # an FFmpeg built without libvpx
        return None
    ctx.extradata = stream.codec_context.extradata
    ctx.thread_type = "AUTO"
    return ctx


def with_alpha(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """(H, W, 4) uint8 RGBA: ``rgb`` (H, W, 3) with ``alpha`` (h, w) uint8 resized to H x W
    (bicubic); ``None``: opaque. Returns a new array."""
    h, w = rgb.shape[:2]
    if alpha is None:
        alpha = np.full((h, w), 255, np.uint8)
    elif alpha.shape != (h, w):
        alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.dstack([rgb, alpha])
