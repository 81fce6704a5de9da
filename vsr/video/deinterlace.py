"""Interlaced input, made progressive before the model sees it: FFmpeg's bwdif, one frame per frame.

A model upscaling woven fields magnifies the combing between them. :class:`Deinterlacer` runs
FFmpeg's ``bwdif`` filter through PyAV's filter graph in ``send_frame`` mode, so every input frame
gives one output frame; it takes that frame's pts and duration, so the frame count and the
timing stay the input's. bwdif holds a frame or two back; :meth:`Deinterlacer.flush` gives them out at the end.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator

import av

__all__ = ["Deinterlacer", "field_order"]

log = logging.getLogger(__name__)

# AVFieldOrder: 0 unknown, 1 progressive, 2 tt, 3 bb, 4 tb, 5 bt
_FIELD_ORDERS = {2: "top field first", 3: "bottom field first", 4: "top field first", 5: "bottom field first"}


def field_order(stream: av.video.stream.VideoStream, first: av.VideoFrame) -> str | None:
    """How an interlaced stream orders its fields (from the stream, else the first frame's flag),
    or ``None`` when it is progressive."""
    order = _FIELD_ORDERS.get(int(stream.codec_context.field_order or 0))
    if order is None and first.interlaced_frame:
        order = "interlaced frames"
    return order


class Deinterlacer:
    """Between a stream's decoder and its consumer: :meth:`push` each decoded frame and take the
    frames it yields, then :meth:`flush` at the end. The first frame decides: an interlaced stream
    (see :func:`field_order`) goes through bwdif when ``enabled``, with one log line; anything
    else passes through untouched. The graph is built from the first frame (and rebuilt if the size
    or pixel format changes mid-stream)."""

    def __init__(self, stream: av.video.stream.VideoStream, enabled: bool = True) -> None:
        self.stream, self.enabled = stream, enabled
        self.active: bool | None = None  # None until the first frame decides
        self._graph: av.filter.Graph | None = None
        self._shape: tuple[int, int, str] | None = None
        self._times: deque[tuple[int | None, int]] = deque()  # (pts, duration) of frames pushed

    def _decide(self, frame: av.VideoFrame) -> bool:
        order = field_order(self.stream, frame)
        if order is not None and self.enabled:
            log.info("input is interlaced (%s): deinterlacing with bwdif, one frame per frame", order)
        elif order is not None:
            log.info("input is interlaced (%s); --no-deinterlace: upscaling the fields as they are", order)
        return order is not None and self.enabled

    def _build(self, frame: av.VideoFrame) -> None:
        graph = av.filter.Graph()
        src = graph.add_buffer(
            width=frame.width, height=frame.height, format=frame.format.name, time_base=frame.time_base
        )
        bwdif = graph.add("bwdif", "mode=send_frame:parity=auto:deint=all")
        sink = graph.add("buffersink")
        src.link_to(bwdif)
        bwdif.link_to(sink)
        graph.configure()
        self._graph, self._shape = graph, (frame.width, frame.height, frame.format.name)

    def push(self, frame: av.VideoFrame) -> Iterator[av.VideoFrame]:
        """Feed one decoded frame; yield the frames ready now (deinterlaced ones keep their pts)."""
        if self.active is None:
            self.active = self._decide(frame)
        if not self.active:
            yield frame
            return
        if self._graph is None or (frame.width, frame.height, frame.format.name) != self._shape:
            yield from self.flush()
            self._build(frame)
        assert self._graph is not None
        self._times.append((frame.pts, frame.duration))
        self._graph.vpush(frame)
        yield from self._pull()

    def flush(self) -> Iterator[av.VideoFrame]:
        """The frames still held back (at the end of the input, or before a rebuild)."""
        if self._graph is None:
            return
        self._graph.vpush(None)
        yield from self._pull()
        self._graph = None

    def reset(self) -> None:
        """Forget the frames held back (after a seek): the next frame starts a fresh graph."""
        self._graph, self._times = None, deque()

    def _pull(self) -> Iterator[av.VideoFrame]:
        assert self._graph is not None
        while True:
            try:
                frame = self._graph.vpull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            # bwdif halves the time base; one frame out per frame in, in order: give back the
            # input's own pts, duration and time base, exactly
            frame.pts, frame.duration = self._times.popleft()
            frame.time_base = self.stream.time_base
            yield frame
