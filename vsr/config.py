"""Configuration objects: one frozen dataclass per concern, validated when built.

Only :mod:`vsr.cli` knows about argparse; library callers build these directly. Every check names
the parameter and quotes the value, and raises :class:`~vsr.errors.ConfigError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import av

from .backends import BACKEND_NAMES
from .backends.base import min_tile
from .engine.policy import Lossless
from .errors import ConfigError
from .models.catalogue import get_spec

if TYPE_CHECKING:  # pragma: no cover
    from .video.size import OutputSize

__all__ = [
    "CONTAINER_EXTENSIONS",
    "DETECTOR_NAMES",
    "STDIO",
    "ClusterConfig",
    "DecodeConfig",
    "EncodeConfig",
    "FaceConfig",
    "ModelConfig",
    "PipelineConfig",
    "container_for",
]

STDIO = "-"
"""The path that means stdin (input) or stdout (output)."""

CONTAINER_EXTENSIONS: dict[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mkv": "matroska",
    ".mov": "mov",
    ".webm": "webm",
    ".nut": "nut",
    ".ts": "mpegts",
    ".avi": "avi",
}
"""Output file extension -> FFmpeg muxer name."""

STDOUT_DEFAULT_FORMAT = "matroska"


def container_for(path: str, fmt: str | None) -> str:
    """The FFmpeg muxer name for output ``path``: ``fmt`` when given, else from the extension.

    Writing to stdout (``-``) without ``fmt`` gives matroska, which streams and holds any codec.
    """
    if fmt:
        _check_muxer(fmt)
        return fmt
    if path == STDIO:
        return STDOUT_DEFAULT_FORMAT
    ext = Path(path).suffix.lower()
    if ext not in CONTAINER_EXTENSIONS:
        known = ", ".join(sorted(CONTAINER_EXTENSIONS))
        raise ConfigError(f"cannot tell the container from output {path!r}; use one of {known} or --format")
    return CONTAINER_EXTENSIONS[ext]


def _check_muxer(fmt: str) -> None:
    """Raise :class:`ConfigError` unless FFmpeg has an output format (muxer) called ``fmt``."""
    try:
        av.format.ContainerFormat(fmt, "w")
    except ValueError:
        known = ", ".join(sorted(set(CONTAINER_EXTENSIONS.values())))
        raise ConfigError(
            f"unknown output format {fmt!r}; use one of {known} (or any muxer `ffmpeg -muxers` lists)"
        ) from None


@dataclass(frozen=True)
class DecodeConfig:
    """Where frames come from. ``path`` ``-`` is stdin; ``format`` forces the demuxer (e.g. nut);
    ``deinterlace``: an interlaced input goes through bwdif first (see :mod:`vsr.video.deinterlace`).
    """

    path: str
    format: str | None = None
    deinterlace: bool = True

    def __post_init__(self) -> None:
        if not self.path:
            raise ConfigError("input path is empty")

    @property
    def is_pipe(self) -> bool:
        return self.path == STDIO


@dataclass(frozen=True)
class EncodeConfig:
    """Where frames go and how they are encoded.

    ``codec`` ``None`` picks the container's usual choice (libx264, or libvpx-vp9 for webm);
    ``crf`` / ``preset`` ``None`` take the codec's defaults (see :mod:`vsr.video.codecs`).
    ``path`` ``-`` is stdout (a streamable ``format``, matroska by default).
    ``pix_fmt`` ``None``: yuv420p, or the input's bit depth for a deeper input (see
    :mod:`vsr.video.depth`).
    ``size``: the output size asked for (:class:`~vsr.video.size.OutputSize`, validated when
    built); ``None``: the model's scale.
    """

    path: str
    format: str | None = None
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    overwrite: bool = False
    size: OutputSize | None = None

    def __post_init__(self) -> None:
        if not self.path:
            raise ConfigError("output path is empty (use -o FILE, or -o - for stdout)")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise ConfigError(f"crf must be in 0..63, got {self.crf}")
        container_for(self.path, self.format)  # raises early on an unknown extension

    @property
    def is_pipe(self) -> bool:
        return self.path == STDIO

    @property
    def container(self) -> str:
        """The FFmpeg muxer name."""
        return container_for(self.path, self.format)


@dataclass(frozen=True)
class ModelConfig:
    """Which model runs and on what: catalogue ``model``, ``backend`` (auto, torch, onnx, tensorrt),
    ``device`` (auto, cpu, cuda), ``tile`` (0 = whole frame), ``threads`` (None = backend default),
    ``compile``: torch on CUDA runs the network through ``torch.compile`` (slower start, ~2x faster).
    The default model is ``fast-stream``: the CPU tier trained for compressed, camera-made video,
    which is what people upscale (on 9 real clips at 150 kbit/s it beat the clean-trained ``fast``
    on every one: VMAF-NEG 61.7 vs 58.3, Y-PSNR 39.19 vs 38.42, less flicker; docs/quality_video.md).
    """

    model: str = "fast-stream"
    backend: str = "auto"
    device: str = "auto"
    tile: int = 0
    threads: int | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        spec = get_spec(self.model)  # raises ConfigError naming the choices
        if self.backend not in BACKEND_NAMES:
            raise ConfigError(f"unknown backend {self.backend!r}; choose one of: {', '.join(BACKEND_NAMES)}")
        if self.tile < 0:
            raise ConfigError(f"tile must be >= 0 (0 = no tiling), got {self.tile}")
        if 0 < self.tile < min_tile(spec):
            raise ConfigError(
                f"tile {self.tile} is too small for model {self.model}: use 0 (whole frame) or at least "
                f"{min_tile(spec)} px (max(16, 4 x its receptive radius of {spec.receptive_radius} px); "
                "smaller tiles spend most of their time on the overlap)"
            )
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")

    def scale(self, face: FaceConfig | None = None) -> int:
        """The output scale of this model (face mode: of its face model, when one is named)."""
        name = face.face_model if face is not None and face.face_model is not None else self.model
        return get_spec(name).scale


@dataclass(frozen=True)
class PipelineConfig:
    """How the threaded pipeline runs: ``batch`` frames per inference call, ``queue_frames``
    decoded frames at most waiting for inference (backpressure; upscaled frames, 16x larger, wait
    at most two batches), ``progress`` shows progress on stderr (a bar on a terminal, elsewhere a
    line every few seconds: :class:`vsr.stats.Progress`), ``segment_s``: a file job's segments
    last at least this long (they end at the next keyframe).
    """

    batch: int = 1
    queue_frames: int = 8
    progress: bool = False
    segment_s: float = 4.0

    @property
    def policy(self) -> Lossless:
        """The engine's lossless policy for these settings."""
        return Lossless(self.batch, self.queue_frames)

    def __post_init__(self) -> None:
        self.policy  # noqa: B018  (validates batch and queue_frames: the engine's own rule)
        if not 0.0 < self.segment_s <= 3600.0:
            raise ConfigError(f"segment length must be in (0, 3600] s, got {self.segment_s}")


@dataclass(frozen=True)
class ClusterConfig:
    """A file job's segments run on Ray workers (:mod:`vsr.cluster`, ``pip install 'vsr[cluster]'``).

    ``address`` None starts a local Ray runtime on 127.0.0.1 with ``workers`` workers (required);
    ``HOST:PORT`` (or ``auto``) joins the Ray cluster there, with ``workers`` workers or, when None,
    one per GPU of the cluster (one per ``--threads`` CPUs without GPUs). ``retries``: how often a
    segment runs again after its worker died before the job fails.
    """

    workers: int | None = None
    address: str | None = None
    retries: int = 3

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.address is not None and not self.address.strip():
            raise ConfigError("cluster address is empty (use HOST:PORT of the Ray head, or auto)")
        if self.address is None and self.workers is None:
            raise ConfigError("a local Ray runtime needs a number of workers (--workers N)")
        if self.retries < 0:
            raise ConfigError(f"retries must be >= 0, got {self.retries}")


DetectorName = Literal["blazeface", "blazeface-full", "haar", "haar-frontal"]
DETECTOR_NAMES: tuple[str, ...] = ("blazeface", "blazeface-full", "haar", "haar-frontal")
"""The face detectors :func:`vsr.face.create_detector` builds (kept here, not in :mod:`vsr.face`, so
that validating a :class:`FaceConfig` does not import the face package, which imports this module)."""


@dataclass(frozen=True)
class FaceConfig:
    """Face-region mode: ``face_model`` on tracked faces (None: the best model that fits), the
    ``background_model`` on the rest; ``detector`` runs every ``detect_every`` frames; crops get
    ``margin`` x the face size on each side.
    """

    face_model: str | None = None
    background_model: str = "bicubic"
    detector: str = "blazeface"
    detect_every: int = 3
    margin: float = 0.3

    def __post_init__(self) -> None:
        if self.face_model is not None:
            get_spec(self.face_model)
        get_spec(self.background_model)
        if self.detector not in DETECTOR_NAMES:
            raise ConfigError(
                f"unknown face detector {self.detector!r}; choose one of: {', '.join(DETECTOR_NAMES)}"
            )
        if self.detect_every < 1:
            raise ConfigError(f"face detection interval must be >= 1 frame, got {self.detect_every}")
        if not 0 <= self.margin <= 2:
            raise ConfigError(f"face margin must be in 0..2 (x the face size), got {self.margin}")
