"""The live output: libx264 tuned for zero latency, muxed as MPEG-TS, FLV (rtmp), HLS or a file.

``-`` writes MPEG-TS to stdout; ``tcp://`` / ``udp://`` / ``srt://`` URLs get MPEG-TS (udp in
1316-byte datagrams, seven TS packets); ``rtmp://`` gets FLV; a directory becomes an HLS stream
(``index.m3u8`` + ``seg_NNNNN.ts``, old segments deleted, each segment starting on a keyframe), and
so does a ``.m3u8`` path (``NAME_NNNNN.ts`` beside it); a ``.ts`` / ``.mp4`` / ``.mkv`` (...) path
becomes that file, playable even when the process is killed (see :func:`~vsr.stream.config.sink_kind`).
Audio packets are copied untouched (or re-encoded where the container refuses them, see
:class:`~vsr.video.remux.Remuxer`). A receiver that goes away raises :class:`ReceiverGone`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import OutputError, ReceiverGone
from ..video.convert import RgbToYuv
from ..video.meta import ColourTags
from ..video.remux import Remuxer
from .config import StreamConfig

__all__ = ["HLS_PLAYLIST", "LiveSink", "ReceiverGone"]

log = logging.getLogger(__name__)

HLS_PLAYLIST = "index.m3u8"
_GONE_ERRNOS = {errno.EPIPE, errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.ENOTCONN}


def _is_gone(exc: BaseException) -> bool:
    return isinstance(exc, BrokenPipeError | ConnectionError) or getattr(exc, "errno", None) in _GONE_ERRNOS


class LiveSink:
    """Encoder + muxer for one live output. Use as a context manager; one thread writes.

    ``width`` / ``height``: the output size (even); ``time_base``: the input video's (frame pts are
    in it); ``rate``: a frame-rate hint for the encoder's rate control and GOP length;
    ``audio``: input audio streams to carry; ``colour``: the input's colour tags (range,
    primaries, transfer, matrix), written on the output and used for its RGB -> YUV matrix.
    """

    def __init__(
        self,
        cfg: StreamConfig,
        width: int,
        height: int,
        time_base: Fraction,
        rate: Fraction | None,
        audio: list[av.stream.Stream],
        colour: ColourTags | None = None,
    ) -> None:
        self.cfg, self.kind = cfg, cfg.sink
        self.colour = colour or ColourTags()
        self.width, self.height = width - width % 2, height - height % 2
        self.time_base, self.rate = time_base, rate or Fraction(30)
        self.audio = audio
        self.frames_written = 0
        self.last_pts: int | None = None
        self._container: av.container.OutputContainer | None = None
        self._convert = RgbToYuv(self.width, self.height, "yuv420p", self.colour)

    def _target(self) -> tuple[str, str, dict[str, str]]:
        """(url or path, muxer, options) for this output."""
        low_delay = {"flush_packets": "1", "max_interleave_delta": "100000"}
        if self.kind == "pipe":
            return "pipe:1", "mpegts", low_delay
        if self.kind == "flv":
            return self.cfg.output, "flv", {**low_delay, "flvflags": "no_duration_filesize"}
        if self.kind == "mpegts":
            url = self.cfg.output
            if url.lower().startswith("udp://") and "pkt_size" not in url:
                url += ("&" if "?" in url else "?") + "pkt_size=1316"  # 7 TS packets per datagram
            return url, "mpegts", low_delay
        if self.kind == "hls":
            return self._hls_target()
        return self._file_target(low_delay)

    def _file_target(self, low_delay: dict[str, str]) -> tuple[str, str, dict[str, str]]:
        """A video file that plays even when cut short (the process killed): MPEG-TS, MP4/MOV
        fragmented at every keyframe, or Matroska with a cluster at least every second."""
        path = Path(self.cfg.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.kind == "ts-file":
            return str(path), "mpegts", low_delay
        if self.kind == "mkv-file":
            return str(path), "matroska", {**low_delay, "cluster_time_limit": "1000"}
        # no empty_moov: AAC copied from MPEG-TS (ADTS) has no AudioSpecificConfig before its first
        # packet, and an empty moov written at open would need it (the muxer refuses the audio)
        muxer = "mov" if path.suffix.lower() == ".mov" else "mp4"
        return str(path), muxer, {**low_delay, "movflags": "frag_keyframe+default_base_moof"}

    def _hls_target(self) -> tuple[str, str, dict[str, str]]:
        """A directory gets ``index.m3u8`` + ``seg_NNNNN.ts``; a ``.m3u8`` path is the playlist
        itself, with ``<name>_NNNNN.ts`` segments beside it."""
        out = Path(self.cfg.output)
        if out.suffix.lower() == ".m3u8" and not out.is_dir():
            playlist, segments = out, out.with_name(f"{out.stem}_%05d.ts")
        else:
            playlist, segments = out / HLS_PLAYLIST, out / "seg_%05d.ts"
        playlist.parent.mkdir(parents=True, exist_ok=True)
        return (
            str(playlist),
            "hls",
            {
                "hls_time": f"{self.cfg.hls_time:g}",
                "hls_list_size": str(self.cfg.hls_list_size),
                "hls_flags": "delete_segments+independent_segments",
                "hls_segment_filename": str(segments),
                "max_interleave_delta": "100000",
            },
        )

    def __enter__(self) -> LiveSink:
        url, fmt, options = self._target()
        try:
            self._container = av.open(url, "w", format=fmt, options=options)
        except (av.error.FFmpegError, OSError) as exc:
            raise self._open_error(exc) from exc
        try:
            self.stream = self._add_video(self._container)
            # HLS segments are MPEG-TS; probing the hls muxer itself would write files in the cwd
            self.remuxer = Remuxer(self._container, "mpegts" if fmt == "hls" else fmt, self.audio)
            self._container.start_encoding()  # connects (tcp, rtmp) and writes the header
        except (av.error.FFmpegError, OSError) as exc:
            self._drop()
            raise self._open_error(exc) from exc
        except BaseException:
            self._drop()
            raise
        return self

    def _open_error(self, exc: BaseException) -> OutputError:
        reason = getattr(exc, "strerror", None) or str(exc)
        if isinstance(exc, av.error.ProtocolNotFoundError):
            reason += " (the FFmpeg inside PyAV was built without it; srt:// and rist:// are missing)"
        return OutputError(f"cannot open {self.cfg.output}: {reason}")

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(flush=exc_type is None)

    def _add_video(self, container: av.container.OutputContainer) -> av.video.stream.VideoStream:
        stream = container.add_stream("libx264", rate=self.rate)
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
        stream.time_base = self.time_base
        ctx = stream.codec_context
        ctx.time_base = self.time_base
        ctx.gop_size = max(1, round(float(self.rate) * self.cfg.gop_s))
        ctx.max_b_frames = 0
        self.colour.apply(ctx)
        ctx.options = {
            "preset": self.cfg.preset,
            "tune": "zerolatency",
            "crf": str(self.cfg.crf),
            "x264-params": f"scenecut=0:min-keyint={ctx.gop_size}:repeat-headers=1",
        }
        return stream

    def write(self, rgb: np.ndarray, pts: int) -> bool:
        """Encode one (H, W, 3) uint8 RGB frame at ``pts`` (input time base); borrows ``rgb``.

        Returns False (and writes nothing) when ``pts`` does not increase. Raises
        :class:`ReceiverGone` when the receiver went away, :class:`OutputError` on other failures.
        """
        if self.last_pts is not None and pts <= self.last_pts:
            return False
        frame = self._convert(rgb)
        frame.pts, frame.time_base = pts, self.time_base
        self._mux(self.stream.encode(frame))
        self.last_pts = pts
        self.frames_written += 1
        return True

    def mux(self, packet: av.Packet) -> None:
        """Write one input audio packet (copied, or re-encoded where the container refuses it)."""
        try:
            self.remuxer.write(packet)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self._failed(exc)

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            for packet in packets:
                self._container.mux_one(packet)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        where = "stdout" if self.kind == "pipe" else self.cfg.output
        if _is_gone(exc):
            raise ReceiverGone(
                f"the receiver at {where} went away after {self.frames_written} frames"
            ) from exc
        raise OutputError(f"cannot write to {where}: {getattr(exc, 'strerror', None) or exc}") from exc

    def close(self, flush: bool = True) -> None:
        """Flush the encoder (when ``flush``) and close the output; idempotent, never raises
        for a receiver that is already gone."""
        if self._container is None:
            return
        if flush:
            with contextlib.suppress(ReceiverGone, OutputError):
                self._mux(self.stream.encode(None))
                self.remuxer.flush()
        self._drop()

    def _drop(self) -> None:
        container, self._container = self._container, None
        if container is None:
            return
        try:
            container.close()
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            log.debug("closing %s: %s", self.cfg.output, exc)
