"""The engine's ends for files and pipes: :class:`FileSource` over a :class:`VideoReader` and
:class:`FileSink` over a :class:`VideoWriter`.

Frames are converted to RGB on the read thread (swscale); pts and duration stay in the input
stream's time base, which is the writer's too. Audio and subtitle packets pass untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ..config import EncodeConfig
from ..engine.frame import Frame
from .depth import has_alpha
from .reader import VideoReader
from .writer import VideoWriter

__all__ = ["FileSink", "FileSource", "open_writer"]


class FileSource:
    """The frames (RGB) and pass-through packets of an open reader, in file order."""

    def __init__(self, reader: VideoReader) -> None:
        self.reader = reader

    def items(self, stop: threading.Event) -> Iterator[Frame | object]:
        sws = VideoReformatter()
        for item in self.reader.items(stop):
            if isinstance(item, av.VideoFrame):
                yield _frame(sws, item)
            else:
                yield item


def _frame(sws: VideoReformatter, item: av.VideoFrame) -> Frame:
    """A decoded frame as the engine's RGB Frame, with its alpha plane when it has one."""
    if not has_alpha(item.format.name):
        return Frame(sws.reformat(item, format="rgb24").to_ndarray(), item.pts, item.duration)
    rgba = sws.reformat(item, format="rgba").to_ndarray()
    return Frame(np.ascontiguousarray(rgba[..., :3]), item.pts, item.duration, alpha=rgba[..., 3].copy())


class FileSink:
    """Writes frames at their own pts into an entered writer and finishes it at the end."""

    def __init__(self, writer: VideoWriter) -> None:
        self.writer = writer

    def open(self, width: int, height: int) -> None:
        """The writer knows its size already (input size x scale)."""

    def write(self, frame: Frame) -> bool:
        self.writer.write(frame.image, frame.pts, frame.duration, frame.alpha)
        return True

    def mux(self, packet: object) -> None:
        self.writer.mux(packet)  # type: ignore[arg-type]

    def close(self, failed: bool) -> None:
        self.writer.finish(failed=failed)


def open_writer(enc: EncodeConfig, reader: VideoReader, scale: int, *, whole: bool = True) -> VideoWriter:
    """The writer of ``enc`` for ``reader``'s video at ``scale`` (validated, not yet entered).
    ``whole``: the output carries the input's audio, subtitles and tags (a job's segment does not:
    they are muxed once, when the segments are stitched)."""
    return VideoWriter(
        enc,
        reader.info,
        scale=scale,
        passthrough=reader.passthrough if whole else (),
        input_path=reader.cfg.path,
        tags=reader.tags if whole else None,
    )
