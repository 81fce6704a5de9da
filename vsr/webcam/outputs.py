"""Where ``vsr webcam`` sends enhanced frames: a file, a ``vsr stream`` output, a virtual camera,
a preview window.

Each output is a context manager with ``write(rgb, t)``: ``rgb`` (H, W, 3) uint8 RGB, borrowed for
the call; ``t`` the frame's time in seconds since capture started (increasing); and ``mux(packet)``
for an input audio packet (files and streams write it; a virtual camera or a window ignore it).
:func:`open_outputs` opens the ones a :class:`~vsr.webcam.config.WebcamConfig` asks for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from ..config import container_for
from ..errors import ConfigError, OutputError
from ..stream.config import StreamConfig
from ..stream.sink import LiveSink
from ..video.convert import RgbToYuv
from ..video.meta import ColourTags
from ..video.remux import Remuxer
from ..video.writer import check_output_path
from .config import WebcamConfig, output_kind

__all__ = [
    "FileOutput",
    "PreviewOutput",
    "StreamOutput",
    "VirtualCamera",
    "open_outputs",
    "preview_unavailable",
]

log = logging.getLogger(__name__)

_MS = Fraction(1, 1000)


class FileOutput:
    """A video file (libx264, or VP9 for .webm), timestamps in ms from the capture clock."""

    def __init__(
        self, path: str, width: int, height: int, fps: float, cfg: WebcamConfig, audio: Sequence = ()
    ) -> None:
        check_output_path(path, cfg.overwrite)
        self.path, self.width, self.height, self.fps, self.cfg = path, width, height, fps, cfg
        self.audio = list(audio)
        self._container: av.container.OutputContainer | None = None
        self._convert = RgbToYuv(width, height, "yuv420p", ColourTags())
        self._last = -1
        self.frames = 0

    def __enter__(self) -> FileOutput:
        try:
            fmt = container_for(self.path, None)
            # matroska/webm hold negative audio timestamps (AAC priming) as they are: no shift
            options = {"avoid_negative_ts": "disabled"} if fmt in ("matroska", "webm") else {}
            self._container = av.open(self.path, "w", format=fmt, options=options)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"cannot write {self.path}: {getattr(exc, 'strerror', None) or exc}") from exc
        webm = Path(self.path).suffix.lower() == ".webm"
        stream = self._container.add_stream("libvpx-vp9" if webm else "libx264", rate=round(self.fps))
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
        stream.time_base = stream.codec_context.time_base = _MS
        if not webm:
            stream.codec_context.options = {"preset": self.cfg.preset, "crf": str(self.cfg.crf)}
        self.stream = stream
        self.remuxer = Remuxer(self._container, container_for(self.path, None), self.audio)
        return self

    def mux(self, packet: av.Packet) -> None:
        """Write one audio packet of the input (copied, or re-encoded where the container refuses it)."""
        if self._container is not None:
            self.remuxer.write(packet)

    def write(self, rgb: np.ndarray, t: float) -> None:
        """Encode one frame at ``t`` s (frames in the same millisecond as the last are skipped)."""
        pts = round(t * 1000)
        if pts <= self._last or self._container is None:
            return
        frame = self._convert(rgb)
        frame.pts, frame.time_base = pts, _MS
        for packet in self.stream.encode(frame):
            self._container.mux(packet)
        self._last = pts
        self.frames += 1

    def __exit__(self, *exc: object) -> None:
        container, self._container = self._container, None
        if container is None:
            return
        try:
            for packet in self.stream.encode(None):
                container.mux(packet)
            self.remuxer.flush()
        finally:
            container.close()


class StreamOutput:
    """A ``vsr stream`` output (``-``, tcp/udp/srt/rtmp URL, HLS directory) through its LiveSink."""

    def __init__(
        self, target: str, width: int, height: int, fps: float, cfg: WebcamConfig, audio: Sequence = ()
    ) -> None:
        stream_cfg = StreamConfig("webcam", target, preset=cfg.preset, crf=cfg.crf)
        rate = Fraction(fps).limit_denominator(1001)
        self._sink = LiveSink(stream_cfg, width, height, _MS, rate, list(audio))

    def __enter__(self) -> StreamOutput:
        self._sink.__enter__()
        return self

    def write(self, rgb: np.ndarray, t: float) -> None:
        self._sink.write(rgb, round(t * 1000))

    def mux(self, packet: av.Packet) -> None:
        """Write one audio packet of the input."""
        self._sink.mux(packet)

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self._sink.close(flush=exc_type is None)


class VirtualCamera:
    """A virtual camera (pyvirtualcam: v4l2loopback, OBS Virtual Camera, ...) video-call apps can
    pick. Needs the optional ``pyvirtualcam`` package (``pip install vsr[vcam]``)."""

    def __init__(self, width: int, height: int, fps: float) -> None:
        try:
            import pyvirtualcam
        except ImportError as exc:
            raise ConfigError(
                "the virtual camera output needs pyvirtualcam: pip install 'vsr[vcam]'"
            ) from exc
        self._module, self.size, self.fps = pyvirtualcam, (width, height), fps
        self._cam = None

    def __enter__(self) -> VirtualCamera:
        try:
            self._cam = self._module.Camera(width=self.size[0], height=self.size[1], fps=self.fps)
        except RuntimeError as exc:  # no v4l2loopback / OBS camera installed
            raise OutputError(f"cannot start the virtual camera: {exc}") from exc
        log.info("virtual camera: %s", self._cam.device)
        return self

    def write(self, rgb: np.ndarray, t: float) -> None:
        self._cam.send(np.ascontiguousarray(rgb))

    def mux(self, packet: av.Packet) -> None:
        """A camera device carries no audio."""

    def __exit__(self, *exc: object) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            cam.close()


def preview_unavailable() -> str | None:
    """Why no preview window can open here, or None when one can."""
    gui = [line for line in cv2.getBuildInformation().splitlines() if line.strip().startswith("GUI:")]
    if gui and gui[0].split(":", 1)[1].strip().upper() == "NONE":
        return (
            "this OpenCV build has no GUI (opencv-python-headless): pip install opencv-python for "
            "--preview, or write a file / stream / vcam output instead"
        )
    on_x = sys.platform.startswith("linux") or "bsd" in sys.platform
    if on_x and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display here (DISPLAY is not set): --preview needs a desktop session"
    return None


class PreviewOutput:
    """A window (cv2.imshow) showing the enhanced frames; ``q`` or Esc sets ``closed``."""

    def __init__(self, title: str = "vsr webcam") -> None:
        reason = preview_unavailable()
        if reason is not None:
            raise ConfigError(f"cannot open a preview window: {reason}")
        self.title, self.closed = title, False

    def __enter__(self) -> PreviewOutput:
        cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        return self

    def write(self, rgb: np.ndarray, t: float) -> None:
        cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.closed = True

    def mux(self, packet: av.Packet) -> None:
        """A window plays no audio."""

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)


def open_outputs(
    cfg: WebcamConfig,
    stack: contextlib.ExitStack,
    width: int,
    height: int,
    fps: float,
    audio: Sequence[av.stream.Stream] = (),
) -> list[FileOutput | StreamOutput | VirtualCamera | PreviewOutput]:
    """Open every output ``cfg`` asks for on ``stack`` (which closes them), for frames of
    ``width`` x ``height`` at about ``fps``; files and streams also carry the ``audio`` streams'
    packets. The preview is checked first: it fails fastest."""
    outs: list[FileOutput | StreamOutput | VirtualCamera | PreviewOutput] = []
    if cfg.preview:
        outs.append(stack.enter_context(PreviewOutput()))
    for target in cfg.outputs:
        kind = output_kind(target)
        if kind == "file":
            outs.append(stack.enter_context(FileOutput(target, width, height, fps, cfg, audio)))
        elif kind == "stream":
            outs.append(stack.enter_context(StreamOutput(target, width, height, fps, cfg, audio)))
        else:
            outs.append(stack.enter_context(VirtualCamera(width, height, fps)))
    return outs
