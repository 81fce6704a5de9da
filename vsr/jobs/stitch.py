"""Stitching: the finished segments' video packets and the input's audio/subtitle packets, remuxed
into the output once. Nothing is re-encoded, so the joins are the segments' own frames.

Video packets keep their timestamps (each segment was written at the input's pts); pass-through
packets are copied from the input as a whole-file run copies them; both are merged by decode time
so the muxer's interleaving queue stays short. The output is written under a temporary name and
renamed when complete: the final name never holds a partial file.
"""

from __future__ import annotations

import contextlib
import heapq
import os
from collections.abc import Iterator
from pathlib import Path

import av

from ..config import EncodeConfig
from ..errors import OutputError
from ..video.meta import SourceTags
from ..video.reader import PASSTHROUGH_TYPES
from ..video.remux import Remuxer
from ..video.writer import partial_path

__all__ = ["stitch"]


def _when(packet: av.Packet) -> float:
    t = packet.dts if packet.dts is not None else packet.pts
    return float(t * packet.time_base) if t is not None else 0.0


def _video_packets(files: list[Path], out: av.stream.Stream) -> Iterator[tuple[float, int, av.Packet]]:
    for path in files:
        with av.open(str(path)) as seg:
            stream = seg.streams.video[0]
            packets = [p for p in seg.demux(stream) if p.size]
            _restore_last_duration(packets, stream)
            for packet in packets:
                yield _when(packet), 0, packet


def _restore_last_duration(packets: list[av.Packet], stream: av.stream.Stream) -> None:
    """MP4 stores durations as decode-time steps, so the frame shown last reads back with the
    step of the packet after it; its true end is the segment's end (start + duration)."""
    if not packets or stream.start_time is None or not stream.duration:
        return
    last = max(packets, key=lambda p: p.pts if p.pts is not None else -(2**62))
    end = stream.start_time + stream.duration
    if last.pts is not None and end > last.pts:
        last.duration = end - last.pts


def _passthrough_packets(source: av.container.InputContainer) -> Iterator[tuple[float, int, av.Packet]]:
    streams = [s for s in source.streams if s.type in PASSTHROUGH_TYPES]
    if not streams:
        return
    for packet in source.demux(*streams):
        if packet.size and packet.dts is not None:
            yield _when(packet), 1, packet


def stitch(files: list[Path], input_path: str, enc: EncodeConfig) -> None:
    """Write ``enc.path`` from the segment ``files`` (in order) and ``input_path``'s audio,
    subtitles, metadata and chapters. Raises :class:`OutputError` when the output cannot be made."""
    target, fmt = partial_path(enc.path), enc.container
    options = {"avoid_negative_ts": "disabled"} if fmt in ("matroska", "webm") else {}
    try:
        with av.open(str(files[0])) as first, av.open(input_path) as source:
            out = av.open(str(target), "w", format=fmt, options=options)
            try:
                _remux(out, first, source, files, fmt)
            except BaseException:
                with contextlib.suppress(av.error.FFmpegError, OSError, ValueError):
                    out.close()
                target.unlink(missing_ok=True)
                raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise OutputError(f"cannot stitch the segments into {enc.path}: {exc}") from exc
    os.replace(target, enc.path)


def _remux(
    out: av.container.OutputContainer,
    first: av.container.InputContainer,
    source: av.container.InputContainer,
    files: list[Path],
    fmt: str,
) -> None:
    template = first.streams.video[0]
    video = out.add_stream_from_template(template)
    video.time_base = template.time_base
    remuxer = Remuxer(out, fmt, [s for s in source.streams if s.type in PASSTHROUGH_TYPES])
    tags = SourceTags.of(source, source.streams.video[0])
    out.metadata.update(tags.container)
    video.metadata.update(tags.video)
    if "alpha_mode" in template.metadata:  # the segments carry alpha: say so as they do
        video.metadata["alpha_mode"] = template.metadata["alpha_mode"]
    if tags.chapters:
        with contextlib.suppress(av.error.FFmpegError, ValueError, TypeError):
            out.set_chapters(list(tags.chapters))
    out.start_encoding()
    merged = heapq.merge(
        _video_packets(files, video), _passthrough_packets(source), key=lambda t: (t[0], t[1])
    )
    for _, kind, packet in merged:
        if kind == 0:
            packet.stream = video
            out.mux(packet)
        else:
            remuxer.write(packet)
    remuxer.flush()
    out.close()
