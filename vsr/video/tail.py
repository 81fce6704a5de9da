"""The frames a frame-threaded decoder loses at the end of a damaged stream, decoded again.

With frame threads, FFmpeg reports a damaged packet's error on a later receive, and PyAV's
``decode`` stops receiving at that error: at the final flush the frames queued behind it are
never given out (a truncated MP4 lost its last 2 of 43 frames, which ``ffmpeg`` itself decodes).
:class:`TailGuard` keeps the packets since the last keyframe (bounded) and, when fewer frames came
out than packets went in, decodes them again single-threaded and returns the frames after the last
one already given out. A clean stream costs one list of packet references.
"""

from __future__ import annotations

import logging

import av

__all__ = ["TailGuard"]

log = logging.getLogger(__name__)

MAX_GOP_PACKETS = 600
"""Packets kept at most: a longer GOP is not kept (no recovery for its tail)."""


class TailGuard:
    """Watches one video decoder (``decoder``: a stream's codec context, or one opened for it):
    :meth:`sent` each packet, :meth:`got` each frame, then :meth:`recover` once after its final
    flush."""

    def __init__(self, decoder: av.CodecContext) -> None:
        self.decoder = decoder
        self._gop: list[av.Packet] | None = []
        self._sent = 0
        self._got = 0
        self._last_pts: int | None = None

    def sent(self, packet: av.Packet) -> None:
        """A packet (with data) went into the decoder."""
        self._sent += 1
        if packet.is_keyframe:
            self._gop = []
        if self._gop is not None:
            self._gop.append(packet)
            if len(self._gop) > MAX_GOP_PACKETS:
                self._gop = None

    def got(self, frame: av.VideoFrame) -> None:
        """A frame came out of the decoder."""
        self._got += 1
        if frame.pts is not None and (self._last_pts is None or frame.pts > self._last_pts):
            self._last_pts = frame.pts

    def recover(self) -> list[av.VideoFrame]:
        """The frames after the last one given out that a single-threaded decode of the last GOP
        finds, in order; empty when nothing was lost (or nothing can be recovered)."""
        threaded = av.codec.context.ThreadType.FRAME in self.decoder.thread_type
        if not threaded or self._got >= self._sent or not self._gop or self._last_pts is None:
            return []
        found = [f for f in self._decode_again() if f.pts is not None and f.pts > self._last_pts]
        if found:
            log.info("recovered the last %d frame(s) that the threaded decoder dropped", len(found))
        return sorted(found, key=lambda f: f.pts)

    def _decode_again(self) -> list[av.VideoFrame]:
        ctx = av.CodecContext.create(self.decoder.name, "r")
        ctx.extradata = self.decoder.extradata
        ctx.thread_type = "NONE"
        frames: list[av.VideoFrame] = []
        for packet in [*(self._gop or []), None]:
            try:
                frames.extend(ctx.decode(packet))
            except av.error.EOFError:
                break
            except av.error.FFmpegError:
                continue  # the damaged packet: what follows still decodes
        return frames
