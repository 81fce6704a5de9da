"""In-memory codec round trips: what a low-bandwidth stream does to frames before they arrive.

libx264 (or libx265) through PyAV, yuv420p, ``veryfast`` + ``zerolatency`` (no B-frames, no
look-ahead: a live encoder), either constant quality (``crf``) or an average bitrate (``bitrate``,
bit/s).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

__all__ = ["decode_frames", "encode_h264", "h264_roundtrip", "hevc_roundtrip"]


def encode_h264(
    frames: Sequence[np.ndarray],
    *,
    crf: int | None = None,
    bitrate: int | None = None,
    fps: float = 25.0,
    preset: str = "veryfast",
    codec: str = "libx264",
    intra: bool = False,
) -> bytes:
    """(h, w, 3) uint8 RGB frames -> an MP4 file's bytes (libx264, or ``codec="libx265"``; yuv420p).

    Give ``crf`` (constant quality) or ``bitrate`` (bit/s at ``fps`` frames/s). ``intra``: every
    frame a key frame (unrelated images coded in one encoder run). Odd sizes are edge-padded to
    even for the encoder; :func:`decode_frames` does not crop them back.
    """
    import av

    if not frames:
        raise ValueError("encode_h264: no frames")
    h, w = frames[0].shape[:2]
    ph, pw = h % 2, w % 2
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        st = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        st.width, st.height, st.pix_fmt = w + pw, h + ph, "yuv420p"
        st.options = {"preset": preset, "tune": "zerolatency"}
        if codec == "libx265":
            st.options["x265-params"] = "log-level=none" + (":keyint=1" if intra else "")
        elif intra:
            st.options["x264-params"] = "keyint=1"
        if crf is not None:
            st.options["crf"] = str(crf)
        if bitrate is not None:
            st.bit_rate = int(bitrate)
        for f in frames:
            f = np.pad(f, ((0, ph), (0, pw), (0, 0)), mode="edge") if (ph or pw) else f
            out.mux(st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
        out.mux(st.encode(None))
    return buf.getvalue()


def decode_frames(data: bytes) -> list[np.ndarray]:
    """The video frames of an in-memory file as new (H, W, 3) uint8 RGB arrays."""
    import av

    with av.open(io.BytesIO(data), "r") as inp:
        return [fr.to_ndarray(format="rgb24") for fr in inp.decode(video=0)]


def h264_roundtrip(
    frames: Sequence[np.ndarray],
    *,
    crf: int | None = None,
    bitrate: int | None = None,
    fps: float = 25.0,
    intra: bool = False,
) -> list[np.ndarray]:
    """Encode (h, w, 3) uint8 RGB frames with libx264 (yuv420p) in memory and decode them back.

    Give ``crf`` (constant quality) or ``bitrate`` (bit/s at ``fps`` frames/s). Odd sizes are
    edge-padded to even for the encoder and cropped back. Returns new uint8 RGB frames of the input size.
    """
    h, w = frames[0].shape[:2]
    decoded = decode_frames(encode_h264(frames, crf=crf, bitrate=bitrate, fps=fps, intra=intra))
    return [np.ascontiguousarray(d[:h, :w]) for d in decoded]


def hevc_roundtrip(
    frames: Sequence[np.ndarray], *, crf: int, fps: float = 25.0, intra: bool = False
) -> list[np.ndarray]:
    """:func:`h264_roundtrip` through libx265 (HEVC) at constant quality ``crf``."""
    h, w = frames[0].shape[:2]
    decoded = decode_frames(encode_h264(frames, crf=crf, fps=fps, codec="libx265", intra=intra))
    return [np.ascontiguousarray(d[:h, :w]) for d in decoded]
