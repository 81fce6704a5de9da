"""The engine's ends for a segmented file job.

:class:`JobSource` reads the input once, from the first unfinished segment on (seeking there when
resuming), and after the last frame of each segment yields a :class:`SegmentEnd` marker, which the
engine passes to the sink in order, like any pass-through item. :class:`SegmentSink` writes each
segment to its own file in the work folder (through :class:`~vsr.video.writer.VideoWriter`, so a
segment is encoded exactly as a whole-file run encodes it) and records it in the manifest when its
marker arrives. An interrupted segment is discarded; audio and subtitles are muxed once, when the
segments are stitched.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..config import EncodeConfig
from ..engine.frame import Frame
from ..errors import InputError
from ..video.ports import FileSource
from ..video.reader import VideoReader
from ..video.writer import VideoWriter
from .plan import Span

__all__ = ["JobSource", "SegmentEnd", "SegmentLog", "SegmentSink"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentEnd:
    """Marks the end of segment ``index``'s frames in the item stream."""

    index: int


class JobSource:
    """Frames of ``todo``: consecutive spans up to the end of the file (the first unfinished
    segment and every one after it), each followed by its :class:`SegmentEnd`."""

    def __init__(self, reader: VideoReader, todo: list[Span]) -> None:
        self.reader, self.todo = reader, todo

    def items(self, stop: threading.Event) -> Iterator[Frame | object]:
        if not self.todo:
            return
        first = self.todo[0]
        if first.start is not None:
            self.reader.seek(first.start)
            log.debug("seeking to segment %d (pts %d)", first.index, first.start)
        spans = iter(self.todo)
        span = next(spans)
        landed = first.start is None
        for item in FileSource(self.reader).items(stop):
            if not isinstance(item, Frame) or item.pts is None:
                continue  # audio and subtitles are muxed at stitching; untimed frames cannot be placed
            if not landed and item.pts >= first.start:  # type: ignore[operator]
                if item.pts != first.start:
                    raise InputError(
                        f"cannot resume exactly: seeking to segment {first.index} of {self.reader.cfg.path} "
                        "missed its first frame; run again with --no-resume"
                    )
                landed = True
            while span.end is not None and item.pts >= span.end:
                yield SegmentEnd(span.index)
                span = next(spans, None)
                if span is None:
                    return
            if span.start is not None and item.pts < span.start:
                continue  # decoded from the keyframe before the seek point: a finished segment's
            yield item
        if not stop.is_set():  # the input ended: the open span and any left (empty) are complete
            yield from (SegmentEnd(s.index) for s in [span, *spans])


class SegmentLog(Protocol):
    """Where segment files go and who records them: the job's :class:`~vsr.jobs.manifest.Manifest`,
    or a worker's own record of the one segment it writes (:mod:`vsr.cluster.worker`)."""

    @property
    def work_dir(self) -> Path: ...

    def mark_done(self, index: int, file: str | None, frames: int) -> None: ...


class SegmentSink:
    """Writes each segment's frames to ``seg_NNNNN<ext>`` in the work folder; on its
    :class:`SegmentEnd`, finishes the file and marks the segment done in the manifest."""

    def __init__(
        self,
        manifest: SegmentLog,
        make_writer: Callable[[EncodeConfig], VideoWriter],
        enc: EncodeConfig,
        first: int,
        on_done: Callable[[int], None] | None = None,
    ) -> None:
        self.manifest, self.make_writer, self.enc = manifest, make_writer, enc
        self.index, self.on_done = first, on_done
        self.writer: VideoWriter | None = None
        self.ext = Path(enc.path).suffix or ".mkv"

    def _name(self, index: int) -> str:
        return f"seg_{index:05d}{self.ext}"

    def open(self, width: int, height: int) -> None:
        """Segment writers open at their first frame."""

    def write(self, frame: Frame) -> bool:
        if self.writer is None:
            path = self.manifest.work_dir / self._name(self.index)
            seg_enc = dataclasses.replace(self.enc, path=str(path), overwrite=True, format=self.enc.container)
            self.writer = self.make_writer(seg_enc).__enter__()
        self.writer.write(frame.image, frame.pts, frame.duration, frame.alpha)
        return True

    def mux(self, item: object) -> None:
        if not isinstance(item, SegmentEnd):
            return
        frames, name = 0, None
        if self.writer is not None:
            self.writer.finish()
            frames, name = self.writer.frames_written, self._name(item.index)
            self.writer = None
        self.manifest.mark_done(item.index, name, frames)
        if self.on_done is not None:
            self.on_done(item.index)
        self.index = item.index + 1

    def close(self, failed: bool) -> None:
        """An unfinished segment is not kept: a resumed run redoes it."""
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.discard()
