"""Decode the input with PyAV: video frames out, audio and subtitle packets passed through untouched.

:class:`VideoReader` opens anything FFmpeg reads (a file, or stdin as ``-``), refuses what is not a
video with one clear :class:`~vsr.errors.InputError`, and yields decoded video frames and the
packets of every audio/subtitle stream in file order. A truncated or corrupt tail ends the stream
with a warning instead of an error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np

from ..config import DecodeConfig
from ..errors import InputError
from .alpha import alpha_decoder
from .deinterlace import Deinterlacer
from .hdr import HdrMeta
from .meta import ColourTags, SourceTags, VideoInfo, display_matrix
from .tail import TailGuard

__all__ = ["PASSTHROUGH_TYPES", "Item", "VideoReader", "close_quietly", "frame_to_rgb"]

log = logging.getLogger(__name__)

PASSTHROUGH_TYPES = ("audio", "subtitle")
Item = av.VideoFrame | av.Packet
_TEXT_DEMUXERS = ("tty",)


def close_quietly(container: av.container.Container | None) -> None:
    """Close a PyAV container, ignoring the errors of one whose peer or file is already gone."""
    if container is not None:
        with contextlib.suppress(av.error.FFmpegError, OSError):
            container.close()


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a decoded frame, converted with the frame's own matrix and range.

    Returns a new array the caller owns.
    """
    return frame.to_ndarray(format="rgb24")


def _open_container(cfg: DecodeConfig) -> av.container.InputContainer:
    """Open the input or raise one clear :class:`InputError`."""
    path = cfg.path
    if not cfg.is_pipe:
        if not os.path.exists(path):
            raise InputError(f"input file not found: {path}")
        if os.path.isdir(path):
            raise InputError(f"input is a directory, not a video file: {path}")
        if os.path.getsize(path) == 0:
            raise InputError(f"input file is empty (0 bytes): {path}")
    try:
        return av.open("pipe:0" if cfg.is_pipe else path, format=cfg.format)
    except PermissionError as exc:
        raise InputError(f"cannot read {path}: permission denied") from exc
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(f"cannot read {path} as video: {reason}") from exc


def _video_stream(container: av.container.InputContainer, path: str) -> av.video.stream.VideoStream:
    if container.format.name in _TEXT_DEMUXERS:  # FFmpeg renders text files as "video"
        raise InputError(f"cannot read {path} as video: it is a text file")
    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if len(videos) > 1:
        log.warning(
            "upscaling video stream %s; dropping the other video stream(s): %s",
            _describe(videos[0]),
            ", ".join(_describe(s) for s in videos[1:]),
        )
    if videos:
        return videos[0]
    kinds = ", ".join(f"{s.type} ({s.codec_context.name})" for s in container.streams) or "nothing"
    raise InputError(f"{path} has no video stream (it holds: {kinds})")


def _describe(stream: av.video.stream.VideoStream) -> str:
    """``#1 (h264 1920x1080)``: a video stream as a user finds it in ffprobe's listing."""
    ctx = stream.codec_context
    return f"#{stream.index} ({ctx.name} {ctx.width}x{ctx.height})"


def _video_duration(stream: av.video.stream.VideoStream) -> float | None:
    """The video stream's own duration in seconds (not the container's, which audio may extend):
    from the stream header, else matroska's per-track ``DURATION`` tag, else ``None``.
    """
    if stream.duration:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    try:
        h, m, sec = (tag or "").split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None


class VideoReader:
    """An open input. Use as a context manager; ``info`` is valid once entered.

    Opening decodes the first video frame (held back for :meth:`items`) so that ``info`` carries
    the real size, colour tags and display matrix; ``tags`` holds the metadata and chapters to carry
    over. ``passthrough`` lists the audio and subtitle streams whose packets :meth:`items` yields.
    """

    def __init__(self, cfg: DecodeConfig) -> None:
        self.cfg = cfg
        self.frames_decoded = 0
        self.truncated = False
        self._container: av.container.InputContainer | None = None
        self._held: list[Item] = []
        self._end = 0.0  # end time (s) of the latest decoded frame
        self._seeked = False

    def __enter__(self) -> VideoReader:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the input. Idempotent."""
        if self._container is not None:
            self._container.close()
            self._container = None

    def seek(self, pts: int) -> None:
        """Continue from the keyframe at or before ``pts`` (video stream time base): the next
        :meth:`items` start there, and the caller drops the frames before ``pts``."""
        self._held.clear()
        self._seeked = True  # the frames before pts are not decoded: no completeness check
        self._container.seek(pts, stream=self.stream, backward=True, any_frame=False)
        self._decoder.flush_buffers()  # the decoder that runs (libvpx for alpha, else the stream's)
        self._tail = TailGuard(self._decoder)
        self._deint.reset()
        self._packets = self._demux()

    def _open(self) -> None:
        self._container = _open_container(self.cfg)
        self.stream = _video_stream(self._container, self.cfg.path)
        self.stream.thread_type = "AUTO"
        self._decoder = alpha_decoder(self.stream) or self.stream.codec_context
        self._tail = TailGuard(self._decoder)
        self._deint = Deinterlacer(self.stream, self.cfg.deinterlace)
        self.passthrough = [s for s in self._container.streams if s.type in PASSTHROUGH_TYPES]
        self._packets = self._demux()
        first = self._first_frame()
        self.info = self._make_info(first)
        self.tags = SourceTags.of(self._container, self.stream)

    def _first_frame(self) -> av.VideoFrame:
        for item in self._decoded():
            self._held.append(item)
            if isinstance(item, av.VideoFrame):
                return item
        raise InputError(f"{self.cfg.path}: no video frame could be decoded")

    def _make_info(self, frame: av.VideoFrame) -> VideoInfo:
        s = self.stream
        rate = s.average_rate or s.guessed_rate
        duration = float(s.duration * s.time_base) if s.duration else None
        if duration is None and self._container.duration:
            duration = self._container.duration / av.time_base
        frames = s.frames or (round(duration * rate) if duration and rate else 0)
        sar = s.sample_aspect_ratio
        return VideoInfo(
            width=frame.width,
            height=frame.height,
            time_base=Fraction(s.time_base),
            rate=Fraction(rate) if rate else None,
            frames=int(frames),
            duration_s=duration,
            pix_fmt=frame.format.name,
            colour=ColourTags.of(frame),
            matrix=display_matrix(frame),
            sample_aspect_ratio=Fraction(sar) if sar else None,
            hdr=HdrMeta.of(frame),
        )

    def items(self, stop: threading.Event | None = None) -> Iterator[Item]:
        """Decoded video frames and pass-through packets, in file order, until the end or ``stop``.

        Frames are PyAV frames in the stream time base (the caller converts them, e.g. with
        :func:`frame_to_rgb`). Packets belong to a stream in ``passthrough``.
        """
        while self._held:
            yield self._held.pop(0)
        for item in self._decoded():
            if stop is not None and stop.is_set():
                return
            yield item
        self._check_complete()

    def _demux(self) -> Iterator[av.Packet]:
        """Packets of the video and pass-through streams; a read error ends them with a warning."""
        packets = self._container.demux(self.stream, *self.passthrough)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.error.FFmpegError, OSError) as exc:
                self.truncated = True
                log.warning(
                    "input is truncated or corrupt (%s); finishing with the frames decoded so far", exc
                )
                return
            yield packet

    def _decoded(self) -> Iterator[Item]:
        for packet in self._packets:
            if not packet.size:
                continue  # demux ends each stream with an empty packet; the decoder is flushed below
            if packet.stream is not self.stream:
                if packet.dts is not None:
                    yield packet
                continue
            yield from self._decode(packet)
        yield from self._decode(None)
        for frame in self._tail.recover():
            yield from self._deint.push(self._count(frame))
        yield from self._deint.flush()

    def _decode(self, packet: av.Packet | None) -> Iterator[av.VideoFrame]:
        if packet is not None:
            self._tail.sent(packet)
        try:
            frames = self._decoder.decode(packet)
        except av.error.EOFError:
            return
        except av.error.FFmpegError as exc:
            self.truncated = True
            log.warning("skipping a video packet that does not decode (%s)", exc)
            return
        for frame in frames:
            self._tail.got(frame)
            yield from self._deint.push(self._count(frame))

    def _count(self, frame: av.VideoFrame) -> av.VideoFrame:
        self.frames_decoded += 1
        if frame.pts is not None:
            self._end = max(self._end, float((frame.pts + frame.duration) * self.stream.time_base))
        return frame

    def _check_complete(self) -> None:
        """Warn when the stream ended before its index (frame count) or header (duration) said."""
        if self.truncated or self._seeked:
            return
        expected = self.stream.frames
        if expected and self.frames_decoded < expected:
            self.truncated = True
            log.warning(
                "input ended after %d of its %d frames (truncated file?); finishing with those",
                self.frames_decoded,
                expected,
            )
            return
        start = float(self.stream.start_time * self.stream.time_base) if self.stream.start_time else 0.0
        duration = _video_duration(self.stream)
        if not expected and duration and self._end - start < duration - max(0.25, 0.05 * duration):
            self.truncated = True
            log.warning(
                "input ended at %.2f s of its %.2f s (truncated file?); finishing with what was decoded",
                self._end - start,
                duration,
            )
