"""The engine's ends for files and pipes: :class:`FileSource` over a :class:`VideoReader` and
:class:`FileSink` over a :class:`VideoWriter`.

Frames are converted to RGB on the read thread (swscale); pts and duration stay in the input
stream's time base, which is the writer's too. Audio and subtitle packets pass untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import av
from av.video.reformatter import VideoReformatter

from ..engine.frame import Frame
from .reader import VideoReader
from .writer import VideoWriter

__all__ = ["FileSink", "FileSource"]


class FileSource:
    """The frames (RGB) and pass-through packets of an open reader, in file order."""

    def __init__(self, reader: VideoReader) -> None:
        self.reader = reader

    def items(self, stop: threading.Event) -> Iterator[Frame | object]:
        sws = VideoReformatter()
        for item in self.reader.items(stop):
            if isinstance(item, av.VideoFrame):
                image = sws.reformat(item, format="rgb24").to_ndarray()
                yield Frame(image, item.pts, item.duration)
            else:
                yield item


class FileSink:
    """Writes frames at their own pts into an entered writer and finishes it at the end."""

    def __init__(self, writer: VideoWriter) -> None:
        self.writer = writer

    def open(self, width: int, height: int) -> None:
        """The writer knows its size already (input size x scale)."""

    def write(self, frame: Frame) -> bool:
        self.writer.write(frame.image, frame.pts, frame.duration)
        return True

    def mux(self, packet: object) -> None:
        self.writer.mux(packet)  # type: ignore[arg-type]

    def close(self, failed: bool) -> None:
        self.writer.finish(failed=failed)
