"""Configuration of ``vsr webcam``: one frozen dataclass, validated when built.

Only :mod:`vsr.cli` knows about argparse. Every check names the parameter, quotes the value and
raises :class:`~vsr.errors.ConfigError`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config import CONTAINER_EXTENSIONS, FaceConfig, ModelConfig
from ..engine.policy import check_budget
from ..errors import ConfigError
from ..models.catalogue import LIVE_MODEL
from ..stream.config import sink_kind

__all__ = ["VCAM", "OutputKind", "WebcamConfig", "default_camera", "output_kind", "parse_size"]

VCAM = "vcam"
"""The ``--output`` value that means the virtual camera (pyvirtualcam)."""

OutputKind = Literal["file", "stream", "vcam"]


def parse_size(text: str) -> tuple[int, int]:
    """``"320x180"`` -> ``(320, 180)``; both even and at least 16."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise ConfigError(f"size must look like WxH (e.g. 320x180), got {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if w < 16 or h < 16 or w % 2 or h % 2 or w > 4096 or h > 4096:
        raise ConfigError(f"size must be even numbers in 16..4096, got {text!r}")
    return w, h


def output_kind(target: str) -> OutputKind:
    """What an ``--output`` is: ``vcam``, a video file (known extension), or a ``vsr stream`` output
    (``-``, a tcp/udp/srt/rtmp URL, or an HLS directory)."""
    if target == VCAM:
        return "vcam"
    if "://" not in target and Path(target).suffix.lower() in CONTAINER_EXTENSIONS:
        return "file"
    sink_kind(target)  # raises ConfigError for what a stream cannot be
    return "stream"


def default_camera(platform: str | None = None) -> tuple[str, str]:
    """(PyAV input format, device) of the platform's first camera."""
    platform = platform or sys.platform
    if platform.startswith("linux"):
        return "v4l2", "/dev/video0"
    if platform == "darwin":
        return "avfoundation", "0"
    if platform.startswith("win"):
        return "dshow", "video=Integrated Camera"
    raise ConfigError(f"no known camera interface on {platform!r}; use --input FILE_OR_URL")


@dataclass(frozen=True)
class WebcamConfig:
    """One live webcam session: where frames come from, how they are enhanced, where they go.

    ``device``: a PyAV camera device (``/dev/video0``, ``0`` on macOS, ``video=NAME`` on Windows)
    or an OpenCV index (``cv:0``); ``input``: a file or URL instead, played at real-time pace.
    ``size``: capture size (a camera is asked for it; file frames are resized to it).
    ``fps``: capture rate (a camera is asked for it; file frames are sampled down to it).
    ``outputs``: files (by extension), ``vsr stream`` outputs, or :data:`VCAM`.
    ``face``: face-region mode settings (None: the whole frame gets ``model``).
    ``latency_budget_ms``: added latency allowed before frames degrade to cheaper tiers.
    ``duration_s``: stop after this long (None: until the input ends or Ctrl-C).
    """

    device: str | None = None
    input: str | None = None
    size: tuple[int, int] | None = None
    fps: float | None = None
    model: str = LIVE_MODEL
    backend: str = "auto"
    threads: int | None = None
    face: FaceConfig | None = None
    outputs: tuple[str, ...] = field(default_factory=tuple)
    preview: bool = False
    side_by_side: bool = False
    latency_budget_ms: float = 150.0
    duration_s: float | None = None
    overwrite: bool = False
    preset: str = "veryfast"
    crf: int = 23

    def __post_init__(self) -> None:
        if self.device is not None and self.input is not None:
            raise ConfigError("give either --device or --input, not both")
        if self.input == "":
            raise ConfigError("webcam --input is empty")
        _ = self.models  # validates the model, the backend and the threads
        if self.fps is not None and not 0.5 <= self.fps <= 240:
            raise ConfigError(f"fps must be in 0.5..240, got {self.fps}")
        check_budget(self.latency_budget_ms)
        if self.duration_s is not None and self.duration_s <= 0:
            raise ConfigError(f"duration must be > 0 s, got {self.duration_s}")
        if not self.outputs and not self.preview:
            raise ConfigError("nowhere to send frames: give --output (file, stream URL, vcam) or --preview")
        for target in self.outputs:
            output_kind(target)
        if sum(output_kind(t) == "vcam" for t in self.outputs) > 1:
            raise ConfigError("only one virtual camera output is possible")

    @property
    def opencv_index(self) -> int | None:
        """The OpenCV camera index when ``device`` is ``cv:N`` (or a bare number off macOS)."""
        dev = self.device
        if dev is None:
            return None
        if dev.startswith("cv:") and dev[3:].isdigit():
            return int(dev[3:])
        if dev.isdigit() and sys.platform != "darwin":
            return int(dev)
        return None

    @property
    def models(self) -> ModelConfig:
        """The model and how it runs, as every command states it (validated when this is built)."""
        return ModelConfig(self.model, self.backend, threads=self.threads)
