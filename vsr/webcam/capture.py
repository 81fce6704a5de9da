"""Capture sources for ``vsr webcam``: a camera (PyAV or OpenCV) or a file/URL played in real time.

Every source is a context manager whose :meth:`frames` yields :class:`Captured` frames as they
become available, with the time they arrived (``time.perf_counter()``) and their time on the
source's clock. A file is *paced*: frame ``t`` is released ``t`` seconds after the first one,
so the whole live path can be tested without a camera. Cameras pace themselves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np

from ..errors import InputError
from ..stream.pacing import Pacer
from ..stream.source import low_delay_options
from ..video.reader import close_quietly
from .config import WebcamConfig, default_camera

__all__ = ["Captured", "FileSource", "OpenCVCamera", "PyAVCamera", "RatePicker", "open_source"]

log = logging.getLogger(__name__)


@dataclass
class Captured:
    """One captured frame: ``arrival`` (perf_counter s), ``t`` (s on the source clock, from 0),
    ``image`` ((H, W, 3) uint8 RGB, owned by this object)."""

    arrival: float
    t: float
    image: np.ndarray


class RatePicker:
    """Keeps frames at most ``fps`` per second of source time (None: keeps all)."""

    def __init__(self, fps: float | None) -> None:
        self.step = None if fps is None else 1.0 / fps
        self._next: float | None = None

    def keep(self, t: float) -> bool:
        if self.step is None:
            return True
        if self._next is not None and t < self._next - 1e-3:
            return False
        self._next = max(t, self._next or t) + self.step
        return True


def _fit(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``image`` resized to ``size`` (W, H) with area averaging, or as it is."""
    if size is None or (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class _AVSource:
    """A PyAV input yielding RGB frames; subclasses say how to open it and how to pace it."""

    label = "input"

    def __init__(self, cfg: WebcamConfig) -> None:
        self.cfg = cfg
        self.rate = RatePicker(cfg.fps)
        self._container: av.container.InputContainer | None = None

    def _open(self) -> av.container.InputContainer:
        raise NotImplementedError

    @property
    def audio(self) -> list[av.stream.Stream]:
        """Streams whose packets pass through (a camera has none)."""
        return []

    def frames(self, stop: threading.Event) -> Iterator[Captured]:
        raise NotImplementedError

    def items(self, stop: threading.Event) -> Iterator[Captured | av.Packet]:
        """What the engine reads: the frames (and, for a file, its audio packets)."""
        yield from self.frames(stop)

    def __enter__(self) -> _AVSource:
        self._container = self._open()
        if not self._container.streams.video:
            self.close()
            raise InputError(f"{self.label} has no video stream")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the input. Idempotent."""
        container, self._container = self._container, None
        close_quietly(container)

    def _decoded(self, stop: threading.Event) -> Iterator[av.VideoFrame]:
        assert self._container is not None
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in self._container.decode(stream):
                if stop.is_set():
                    return
                if frame.pts is not None:
                    yield frame
        except (av.error.FFmpegError, OSError) as exc:
            log.warning("%s ended: %s", self.label, exc)


class FileSource(_AVSource):
    """A video file or URL played at real-time pace (frame ``t`` leaves ``t`` s after the first)."""

    def __init__(self, cfg: WebcamConfig) -> None:
        super().__init__(cfg)
        assert cfg.input is not None
        self.label = cfg.input

    def _open(self) -> av.container.InputContainer:
        url = self.cfg.input or ""
        options = low_delay_options(url) if "://" in url else {}
        try:
            return av.open(url, options=options, timeout=(10.0, 5.0))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"cannot open {url}: {getattr(exc, 'strerror', None) or exc}") from exc

    @property
    def audio(self) -> list[av.stream.Stream]:
        """The file's audio streams (their packets pass through to file and stream outputs)."""
        assert self._container is not None
        return list(self._container.streams.audio)

    def frames(self, stop: threading.Event) -> Iterator[Captured]:
        """Frames at real-time pace until the input ends or ``stop`` is set (no audio)."""
        for item in self.items(stop, audio=False):
            if isinstance(item, Captured):
                yield item

    def items(  # type: ignore[override]
        self, stop: threading.Event, *, audio: bool = True
    ) -> Iterator[Captured | av.Packet]:
        """Frames (paced, resized, sampled to ``fps``) and audio packets, in file order, on the
        file's clock: frame ``t`` and packet pts count from the video's start, so they stay in sync."""
        assert self._container is not None
        video = self._container.streams.video[0]
        video.thread_type = "AUTO"
        start = float(video.start_time * video.time_base) if video.start_time is not None else 0.0
        pacer = Pacer(stop)
        try:
            for packet in self._container.demux(video, *(self.audio if audio else [])):
                if stop.is_set():
                    return
                if packet.stream is video:
                    for frame in video.decode(packet if packet.size else None):
                        cap = self._paced(frame, video.time_base, start, pacer)
                        if cap is not None and not stop.is_set():
                            yield cap
                elif packet.pts is not None and packet.dts is not None:
                    pacer.wait(float(packet.pts * packet.time_base) - start, video=False)
                    yield _shifted(packet, start)
        except (av.error.FFmpegError, OSError) as exc:
            log.warning("%s ended: %s", self.label, exc)

    def _paced(self, frame: av.VideoFrame, tb: Fraction, start: float, pacer: Pacer) -> Captured | None:
        if frame.pts is None:
            return None
        t = float(frame.pts * tb) - start
        if not self.rate.keep(t):
            return None
        arrival = pacer.wait(t, video=True)
        return Captured(arrival, t, _fit(frame.to_ndarray(format="rgb24"), self.cfg.size))


def _shifted(packet: av.Packet, start_s: float) -> av.Packet:
    """``packet`` with its timestamps moved ``start_s`` seconds earlier (the video starts at 0)."""
    shift = round(Fraction(start_s) / packet.time_base) if start_s else 0
    if shift:
        packet.pts -= shift
        packet.dts -= shift
    return packet


class PyAVCamera(_AVSource):
    """The platform's camera through FFmpeg (v4l2, avfoundation or dshow)."""

    def __init__(self, cfg: WebcamConfig, platform: str | None = None) -> None:
        super().__init__(cfg)
        self.format, default = default_camera(platform)
        self.device = cfg.device or default
        self.label = f"camera {self.device} ({self.format})"

    def _open(self) -> av.container.InputContainer:
        options: dict[str, str] = {}
        if self.cfg.size is not None:
            options["video_size"] = "{}x{}".format(*self.cfg.size)
        if self.cfg.fps is not None:
            options["framerate"] = f"{self.cfg.fps:g}"
        try:
            return av.open(self.device, format=self.format, options=options, timeout=(10.0, 5.0))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise InputError(f"cannot open {self.label}: {reason} (or use --input FILE_OR_URL)") from exc

    def frames(self, stop: threading.Event) -> Iterator[Captured]:
        """Frames as the camera delivers them; ``t`` is the time since the first one."""
        start: float | None = None
        for frame in self._decoded(stop):
            now = time.perf_counter()
            start = now if start is None else start
            if self.rate.keep(now - start):
                yield Captured(now, now - start, _fit(frame.to_ndarray(format="rgb24"), self.cfg.size))


class OpenCVCamera:
    """A camera by OpenCV index (``cv2.VideoCapture(N)``), for devices FFmpeg cannot open."""

    def __init__(self, cfg: WebcamConfig, index: int) -> None:
        self.cfg, self.index = cfg, index
        self.label = f"OpenCV camera {index}"
        self.rate = RatePicker(cfg.fps)
        self._cap: cv2.VideoCapture | None = None

    def __enter__(self) -> OpenCVCamera:
        cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            cap.release()
            raise InputError(f"cannot open {self.label} (or use --input FILE_OR_URL)")
        if self.cfg.size is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.cfg.size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.cfg.size[1])
        if self.cfg.fps is not None:
            cap.set(cv2.CAP_PROP_FPS, self.cfg.fps)
        self._cap = cap
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def audio(self) -> list[av.stream.Stream]:
        """A camera brings no packets to pass through."""
        return []

    def items(self, stop: threading.Event) -> Iterator[Captured]:
        """What the engine reads: the frames."""
        yield from self.frames(stop)

    def close(self) -> None:
        """Release the camera. Idempotent."""
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def frames(self, stop: threading.Event) -> Iterator[Captured]:
        """Frames as the camera delivers them, converted BGR -> RGB."""
        assert self._cap is not None
        start: float | None = None
        while not stop.is_set():
            ok, bgr = self._cap.read()
            if not ok:
                log.warning("%s stopped delivering frames", self.label)
                return
            now = time.perf_counter()
            start = now if start is None else start
            if self.rate.keep(now - start):
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                yield Captured(now, now - start, _fit(rgb, self.cfg.size))


def open_source(cfg: WebcamConfig) -> FileSource | PyAVCamera | OpenCVCamera:
    """The source ``cfg`` asks for (not yet opened: use it with ``with``)."""
    if cfg.input is not None:
        return FileSource(cfg)
    index = cfg.opencv_index
    if index is not None:
        return OpenCVCamera(cfg, index)
    return PyAVCamera(cfg)
