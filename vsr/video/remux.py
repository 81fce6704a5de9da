"""Audio and subtitle streams: copied packet for packet, or (when the container refuses) a fallback.

For each input stream :func:`plan_route` decides, by asking FFmpeg whether the output container
takes that exact stream: ``copy`` (no re-encode, bytes unchanged), ``transcode`` (audio the
container cannot hold is re-encoded to the container's usual audio codec, e.g. Opus for webm), or
``drop`` (a subtitle the container cannot hold). Each fallback is logged as one warning.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import av

__all__ = ["Remuxer", "RoutePlan", "container_refuses", "copy_packet", "plan_route"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoutePlan:
    """What happens to one input stream: ``kind`` and, for ``transcode``, the target ``codec``."""

    kind: Literal["copy", "transcode", "drop"]
    codec: str | None = None
    reason: str = ""


_SEGMENT_FORMATS = {"hls": "mpegts", "segment": "mpegts", "dash": "mp4"}


def container_refuses(fmt: str, add: Callable[[av.container.OutputContainer], object]) -> str | None:
    """Why a fresh ``fmt`` container refuses the stream(s) ``add`` creates, or None when it takes them.

    Writes the header into memory, so the encoder opens too (an encoder that cannot run here fails).
    Segmenting muxers write files of their own, so they are probed through their segment format.
    """
    container = av.open(io.BytesIO(), "w", format=_SEGMENT_FORMATS.get(fmt, fmt))
    try:
        add(container)
        container.start_encoding()
        return None
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        return str(exc)
    finally:
        with contextlib.suppress(av.error.FFmpegError, OSError, ValueError):
            container.close()


def copy_packet(packet: av.Packet) -> av.Packet:
    """A new packet with ``packet``'s bytes, timestamps, flags and stream: muxing consumes a
    packet's data, so each of several outputs needs its own."""
    out = av.Packet(bytes(packet))
    out.pts, out.dts, out.duration = packet.pts, packet.dts, packet.duration
    out.time_base, out.stream = packet.time_base, packet.stream
    out.is_keyframe = packet.is_keyframe
    return out


def _stream_name(stream: av.stream.Stream) -> str:
    return f"{stream.type} stream #{stream.index} ({stream.codec_context.name})"


def plan_route(fmt: str, stream: av.stream.Stream) -> RoutePlan:
    """Decide how input ``stream`` (audio or subtitle) reaches a ``fmt`` container."""
    reason = container_refuses(fmt, lambda c: c.add_stream_from_template(stream))
    if reason is None:
        return RoutePlan("copy")
    if stream.type != "audio":
        return RoutePlan("drop", reason=f"{fmt} cannot hold {_stream_name(stream)}; dropped it ({reason})")
    probe = av.open(io.BytesIO(), "w", format=_SEGMENT_FORMATS.get(fmt, fmt))
    target = probe.default_audio_codec
    probe.close()
    if target in (None, "none") or container_refuses(fmt, lambda c: c.add_stream(target)) is not None:
        return RoutePlan(
            "drop",
            reason=f"{fmt} cannot hold {_stream_name(stream)} and has no audio codec to convert it to; dropped it",
        )
    return RoutePlan(
        "transcode",
        codec=target,
        reason=f"{fmt} cannot hold {_stream_name(stream)}; re-encoding it to {target}",
    )


class _Route:
    """One live route: the input stream, its output stream, and (transcoding) the decoder."""

    def __init__(self, plan: RoutePlan, source: av.stream.Stream, out: av.stream.Stream) -> None:
        self.plan = plan
        self.source = source
        self.out = out


class Remuxer:
    """Adds the pass-through streams to an output container and writes their packets.

    ``streams``: the input audio/subtitle streams. Build it before the container writes its
    header; call :meth:`write` for each packet and :meth:`flush` before the container closes.
    """

    def __init__(self, container: av.container.OutputContainer, fmt: str, streams: list[av.stream.Stream]):
        self.container = container
        self.routes: dict[int, _Route] = {}
        for stream in streams:
            plan = plan_route(fmt, stream)
            if plan.kind != "copy":
                log.warning("%s", plan.reason)
            if plan.kind == "drop":
                continue
            out = self._add(plan, stream)
            out.metadata.update(stream.metadata)
            self.routes[stream.index] = _Route(plan, stream, out)

    def _add(self, plan: RoutePlan, stream: av.stream.Stream) -> av.stream.Stream:
        if plan.kind == "copy":
            return self.container.add_stream_from_template(stream)
        rate = stream.codec_context.sample_rate
        rates = av.codec.Codec(plan.codec, "w").audio_rates
        if rates and rate not in rates:
            rate = 48000 if 48000 in rates else rates[0]
        return self.container.add_stream(plan.codec, rate=rate, layout=stream.codec_context.layout.name)

    def write(self, packet: av.Packet) -> None:
        """Write one input packet of a pass-through stream (copied as is, or re-encoded)."""
        route = self.routes.get(packet.stream.index)
        if route is None:
            return
        if route.plan.kind == "copy":
            packet.stream = route.out
            self.container.mux(packet)
            return
        for frame in route.source.codec_context.decode(packet):
            self.container.mux(route.out.encode(frame))

    def flush(self) -> None:
        """Drain the audio encoders of transcoded streams."""
        for route in self.routes.values():
            if route.plan.kind == "transcode":
                self.container.mux(route.out.encode(None))
