"""The live input: PyAV opened for low delay, stall detection, reconnect with exponential backoff.

:class:`LiveSource` yields decoded video frames and audio packets as they arrive, each with its
arrival time (``time.perf_counter()`` seconds). A stall (no data for ``stall_timeout_s``), an error
or the end of the input either ends the stream (with a log line saying why) or, with
``reconnect``, reopens the input with backoff 0.5, 1, 2, ... s for up to ``reconnect_for_s``. After
a reconnect timestamps are shifted so the output timeline continues (never goes back).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av

from ..errors import InputError
from ..video.reader import close_quietly
from .config import StreamConfig

__all__ = ["Arrival", "LiveSource", "low_delay_options"]

log = logging.getLogger(__name__)

Arrival = tuple[float, "av.VideoFrame | av.Packet"]
"""(arrival: perf_counter seconds when its packet came off the demuxer, before decoding; a decoded
video frame or an audio packet)."""

_STALL_ERRORS = (av.error.FFmpegError, OSError, EOFError)


def low_delay_options(url: str) -> dict[str, str]:
    """Demuxer/protocol options for a live ``url``: no input buffering, a short probe.

    With ``fflags=nobuffer`` the packets read while probing are not kept: the stream joins at the
    live edge (the frames skipped are counted, see :attr:`LiveSource.skipped_at_join`).
    """
    opts = {"fflags": "nobuffer", "probesize": "262144", "analyzeduration": "500000", "fpsprobesize": "3"}
    if url.startswith("udp://"):
        opts |= {"overrun_nonfatal": "1", "fifo_size": "100000"}
    if url.startswith("rtsp://"):
        opts |= {"rtsp_transport": "tcp"}
    return opts


@dataclass(frozen=True)
class SourceInfo:
    """The first connection's video: size, time base and a frame-rate guess (None if unknown)."""

    width: int
    height: int
    time_base: Fraction
    rate: Fraction | None


class LiveSource:
    """A live input. Open with ``with``; iterate :meth:`items` (one thread); ``stop`` ends it."""

    def __init__(self, cfg: StreamConfig, stop: threading.Event) -> None:
        self.cfg, self.stop = cfg, stop
        self.reconnects = 0
        self.ended = ""
        self._container: av.container.InputContainer | None = None
        self._offset_s = 0.0  # added to every timestamp of the current connection
        self._last_end_s: float | None = None  # end of the last video frame yielded (output timeline)
        self._need_offset = False
        self._first_frame = True
        self.skipped_at_join = 0  # frames the probe read and (fflags=nobuffer) discarded

    def __enter__(self) -> LiveSource:
        self._container = self._open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the input. Idempotent."""
        container, self._container = self._container, None
        close_quietly(container)

    @property
    def url(self) -> str:
        return "pipe:0" if self.cfg.input == "-" else self.cfg.input

    def _open(self, open_timeout_s: float | None = None) -> av.container.InputContainer:
        try:
            container = av.open(
                self.url,
                format=self.cfg.input_format,
                options=low_delay_options(self.cfg.input),
                timeout=(open_timeout_s or self.cfg.open_timeout_s, self.cfg.stall_timeout_s),
            )
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            if isinstance(exc, av.error.ProtocolNotFoundError):
                reason += " (the FFmpeg inside PyAV was built without it; srt:// and rist:// are missing)"
            raise InputError(f"cannot open live input {self.cfg.input}: {reason}") from exc
        if not container.streams.video:
            container.close()
            raise InputError(f"live input {self.cfg.input} has no video stream")
        return container

    @property
    def video(self) -> av.video.stream.VideoStream:
        assert self._container is not None
        return self._container.streams.video[0]

    @property
    def audio(self) -> list[av.stream.Stream]:
        """The current connection's audio streams (passed through untouched)."""
        assert self._container is not None
        return list(self._container.streams.audio)

    def info(self) -> SourceInfo:
        """Size, time base and rate of the video stream (width/height from the codec parameters)."""
        v = self.video
        rate = v.average_rate or v.guessed_rate or v.base_rate
        return SourceInfo(v.codec_context.width, v.codec_context.height, v.time_base, rate)

    def items(self) -> Iterator[Arrival]:
        """Frames and audio packets as they arrive, across reconnects, until the end or ``stop``."""
        while not self.stop.is_set():
            yield from self._connection()
            if self.stop.is_set():
                self.ended = self.ended or "stopped"
                return
            if not self.cfg.reconnect or self.cfg.input == "-":
                return
            if not self._reconnect():
                return

    def _connection(self) -> Iterator[Arrival]:
        """Everything the current connection delivers; sets ``ended`` to why it stopped."""
        assert self._container is not None
        video = self.video
        streams = [video, *self.audio]
        packets = self._container.demux(*streams)
        while not self.stop.is_set():
            try:
                packet = next(packets)
            except StopIteration:
                self.ended = "the input ended"
                return
            except _STALL_ERRORS as exc:
                self.ended = f"the input stalled or disconnected ({exc})"
                return
            arrival = time.perf_counter()
            if packet.stream is video:
                yield from self._decode(video, packet, arrival)
            elif packet.dts is not None and not self._need_offset:
                self._shift_packet(packet)
                yield arrival, packet

    def _decode(
        self, video: av.video.stream.VideoStream, packet: av.Packet, arrival: float
    ) -> Iterator[Arrival]:
        """The frames ``packet`` completes, stamped with the packet's ``arrival`` (before decoding)."""
        try:
            frames = video.decode(packet if packet.size else None)
        except av.error.EOFError:
            return
        except av.error.FFmpegError as exc:
            log.debug("skipping a video packet that does not decode (%s)", exc)
            return
        for frame in frames:
            if frame.pts is None:
                continue
            if self._first_frame:
                self._count_join_skip(video, frame)
            self._shift_frame(frame)
            yield arrival, frame

    def _count_join_skip(self, video: av.video.stream.VideoStream, frame: av.VideoFrame) -> None:
        """Count the frames before this connection's first one (read while probing, not kept)."""
        self._first_frame = False
        rate = video.average_rate or video.guessed_rate
        if video.start_time is None or not rate or frame.pts <= video.start_time:
            return
        skipped = round(float((frame.pts - video.start_time) * frame.time_base * rate))
        self.skipped_at_join += skipped
        if skipped:
            log.info("joined the live stream %d frames after its start (probed, not kept)", skipped)

    def _shift_frame(self, frame: av.VideoFrame) -> None:
        tb = frame.time_base
        if self._need_offset:
            start = float(frame.pts * tb)
            self._offset_s = (self._last_end_s or 0.0) - start
            self._need_offset = False
        frame.pts += round(self._offset_s / tb)
        end = float((frame.pts + max(frame.duration or 0, 1)) * tb)
        self._last_end_s = end if self._last_end_s is None else max(self._last_end_s, end)

    def _shift_packet(self, packet: av.Packet) -> None:
        if self._offset_s:
            shift = round(self._offset_s / packet.time_base)
            packet.pts = None if packet.pts is None else packet.pts + shift
            packet.dts = packet.dts + shift

    def _reconnect(self) -> bool:
        """Reopen with exponential backoff; False (and ``ended`` says why) when time runs out."""
        log.warning("%s; reconnecting for up to %.0f s", self.ended, self.cfg.reconnect_for_s)
        self.close()
        deadline = time.monotonic() + self.cfg.reconnect_for_s
        delay = self.cfg.backoff_s
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                self._container = self._open(
                    min(self.cfg.open_timeout_s, max(0.1, deadline - time.monotonic()))
                )
            except InputError as exc:
                log.info("reconnect failed (%s); next try in %.1f s", exc, delay)
                self.stop.wait(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2.0, self.cfg.backoff_max_s)
                continue
            self.reconnects += 1
            self._first_frame = True
            self._need_offset = self._last_end_s is not None
            log.warning("reconnected to %s (reconnect %d)", self.cfg.input, self.reconnects)
            return True
        if not self.stop.is_set():
            self.ended = f"{self.ended}; gave up reconnecting after {self.cfg.reconnect_for_s:.0f} s"
        return False
