"""The live input: PyAV opened for low delay, stall detection, reconnect with exponential backoff.

:class:`LiveSource` yields decoded video frames and audio packets as they arrive, each with its
arrival time (``time.perf_counter()`` seconds). Each connection joins at its first keyframe
(:class:`~vsr.stream.join.KeyframeGate`). A stall (no data for ``stall_timeout_s``), an error
or the end of the input either ends the stream (with a log line saying why) or, with
``reconnect``, reopens the input with backoff 0.5, 1, 2, ... s for up to ``reconnect_for_s``. After
a reconnect timestamps are shifted so the output timeline continues (never goes back). A regular
file is played at its own frame rate (:class:`~vsr.stream.pacing.Pacer`), every frame of it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av

from ..errors import InputError
from ..video.reader import close_quietly
from .config import StreamConfig
from .join import KeyframeGate
from .pacing import Pacer

__all__ = ["Arrival", "LiveSource", "SourceInfo", "is_regular_file", "low_delay_options"]

log = logging.getLogger(__name__)

Arrival = tuple[float, "av.VideoFrame | av.Packet"]
"""(arrival: perf_counter seconds when its packet came off the demuxer, before decoding; a decoded
video frame or an audio packet)."""

_STALL_ERRORS = (av.error.FFmpegError, OSError, EOFError)


def low_delay_options(url: str) -> dict[str, str]:
    """Demuxer/protocol options for a live ``url``: a short probe, so the stream starts quickly.

    The packets read while probing are kept and delivered first (no ``fflags=nobuffer``: it
    throws them away, and with them the first keyframe, so a long-GOP stream showed nothing until
    its next keyframe). Nothing else is buffered on the way in.
    """
    opts = {"probesize": "262144", "analyzeduration": "500000", "fpsprobesize": "3"}
    if url.startswith("udp://"):
        opts |= {"overrun_nonfatal": "1", "fifo_size": "100000"}
    if url.startswith("rtsp://"):
        opts |= {"rtsp_transport": "tcp"}
    return opts


def is_regular_file(name: str) -> bool:
    """Whether the input ``name`` is a regular file (not ``-``, a URL, a pipe or a device)."""
    return name != "-" and "://" not in name and os.path.isfile(name)


@dataclass(frozen=True)
class SourceInfo:
    """The first connection's video: size, time base and a frame-rate guess (None if unknown)."""

    width: int
    height: int
    time_base: Fraction
    rate: Fraction | None


class LiveSource:
    """A live input. Open with ``with``; iterate :meth:`items` (one thread); ``stop`` ends it.

    ``is_file``: the input is a regular file, played at its own frame rate from its first frame,
    every frame delivered (it is never reconnected). ``ended``: why the input ended; ``gave_up``:
    True when reconnecting ran out of time (an error end). ``reconnects``: successful reopens.
    ``skipped_packets``: video packets dropped while waiting for a keyframe, all connections.
    """

    def __init__(self, cfg: StreamConfig, stop: threading.Event) -> None:
        self.cfg, self.stop = cfg, stop
        self.is_file = is_regular_file(cfg.input)
        self.reconnects = 0
        self.ended = ""
        self.gave_up = False
        self._container: av.container.InputContainer | None = None
        self._offset_s = 0.0  # added to every timestamp of the current connection
        self._last_end_s: float | None = None  # end of the last video frame yielded (output timeline)
        self._need_offset = False
        self._gate = KeyframeGate(self._where)
        self._skipped_before = 0  # skipped_packets of the earlier connections
        self._pacer = Pacer(stop) if self.is_file else None

    @property
    def skipped_packets(self) -> int:
        """Video packets dropped before a connection's first keyframe (all connections)."""
        return self._skipped_before + self._gate.skipped

    @property
    def skipped_at_join(self) -> int:
        """Video frames not delivered at join: the packets before the first keyframe (the frames
        read while probing are kept, so this is :attr:`skipped_packets`)."""
        return self.skipped_packets

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
    def _where(self) -> str:
        return "stdin" if self.cfg.input == "-" else self.cfg.input

    @property
    def url(self) -> str:
        return "pipe:0" if self.cfg.input == "-" else self.cfg.input

    def _open(self, open_timeout_s: float | None = None) -> av.container.InputContainer:
        try:
            container = av.open(
                self.url,
                format=self.cfg.input_format,
                options={} if self.is_file else low_delay_options(self.cfg.input),
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
        """Frames and audio packets as they arrive, across reconnects, until the end or ``stop``.

        A file's items come at its own pace, each stamped with the time it was released."""
        while not self.stop.is_set():
            for arrival, item in self._connection():
                yield (arrival if self._pacer is None else self._pace(item)), item
            if self.stop.is_set():
                self.ended = self.ended or "stopped"
                return
            if not self.cfg.reconnect or self.cfg.input == "-" or self.is_file:
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
            if not self._gate.admit(packet, packet.stream is video):
                continue
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
            frame.time_base = video.time_base  # None on frames from this PyAV's decoder flush
            self._shift_frame(frame)
            yield arrival, frame

    def _pace(self, item: av.VideoFrame | av.Packet) -> float:
        """Wait until a file's ``item`` is due; the release time."""
        assert self._pacer is not None
        if isinstance(item, av.VideoFrame):
            return self._pacer.wait(float(item.pts * item.time_base), video=True)
        ts = item.pts if item.pts is not None else item.dts
        return self._pacer.wait(float(ts * item.time_base), video=False)

    def _shift_frame(self, frame: av.VideoFrame) -> None:
        tb = frame.time_base  # the stream's (set in _decode)
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
            self._skipped_before += self._gate.skipped
            self._gate = KeyframeGate(self._where)
            self._need_offset = self._last_end_s is not None
            log.warning("reconnected to %s (reconnect %d)", self.cfg.input, self.reconnects)
            return True
        if not self.stop.is_set():
            self.gave_up = True
            self.ended = f"{self.ended}; gave up reconnecting after {self.cfg.reconnect_for_s:.0f} s"
        return False
