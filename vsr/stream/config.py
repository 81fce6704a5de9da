"""Configuration of a live stream (``vsr stream``): one frozen dataclass, validated when built.

Only :mod:`vsr.cli` knows about argparse. Every check names the parameter, quotes the value and
raises :class:`~vsr.errors.ConfigError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from ..config import ModelConfig
from ..engine.policy import check_budget
from ..errors import ConfigError
from ..models.catalogue import LIVE_MODEL

__all__ = ["FILE_EXTENSIONS", "SinkKind", "StreamConfig", "sink_kind"]

SinkKind = Literal["pipe", "mpegts", "flv", "hls", "ts-file", "mp4-file", "mkv-file"]
"""How the output is written: MPEG-TS on stdout, MPEG-TS to a URL, FLV (rtmp), HLS (a directory or
a ``.m3u8`` playlist), or a video file: MPEG-TS, fragmented MP4/MOV, Matroska."""

FILE_EXTENSIONS: dict[str, SinkKind] = {
    ".ts": "ts-file",
    ".m2ts": "ts-file",
    ".mp4": "mp4-file",
    ".mov": "mp4-file",
    ".m4v": "mp4-file",
    ".mkv": "mkv-file",
}
"""Output file extensions and the kind of file each gets."""

_TS_SCHEMES = ("tcp://", "udp://", "srt://", "rist://")
_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")


def sink_kind(output: str, fmt: str | None = None) -> SinkKind:
    """What ``output`` is: ``-`` stdout, a tcp/udp/srt URL, an rtmp URL, a video file or HLS.

    ``fmt`` forces ``hls``, ``flv`` or ``mpegts``. A path with a video-file extension (see
    :data:`FILE_EXTENSIONS`) is that file; a ``.m3u8`` path is an HLS playlist (segments beside it);
    a path without an extension (or an existing directory) is an HLS directory.
    """
    if fmt is not None:
        kinds = {"mpegts": "mpegts", "flv": "flv", "hls": "hls"}
        if fmt not in kinds:
            raise ConfigError(f"stream --format must be mpegts, flv or hls, got {fmt!r}")
        return "pipe" if output == "-" and fmt == "mpegts" else kinds[fmt]  # type: ignore[return-value]
    if output == "-":
        return "pipe"
    low = output.lower()
    if low.startswith(_TS_SCHEMES):
        return "mpegts"
    if low.startswith(("rtmp://", "rtmps://")):
        return "flv"
    if "://" in output:
        raise ConfigError(
            f"cannot stream to {output!r}: use -, tcp://, udp://, srt://, rtmp:// or a directory (HLS)"
        )
    return _path_kind(output)


def _path_kind(output: str) -> SinkKind:
    """A local output: a video file by its extension, a ``.m3u8`` playlist or an HLS directory."""
    is_dir = os.path.isdir(output) or output.endswith(("/", os.sep))
    suffix = os.path.splitext(output.rstrip("/" + os.sep))[1].lower()
    if suffix in FILE_EXTENSIONS:
        if is_dir:
            raise ConfigError(f"output {output!r} is a directory, but a {suffix} output is a file")
        return FILE_EXTENSIONS[suffix]
    if suffix == ".m3u8" or is_dir:
        return "hls"
    if suffix:
        known = ", ".join([*FILE_EXTENSIONS, ".m3u8"])
        raise ConfigError(
            f"cannot stream to {output!r}: a file output must end in one of {known}; "
            "a directory without an extension gets HLS"
        )
    if os.path.exists(output):
        raise ConfigError(f"HLS output {output!r} exists and is not a directory")
    return "hls"


@dataclass(frozen=True)
class StreamConfig:
    """One live stream: where from, where to, which model, and the live rules.

    ``input``: anything FFmpeg reads live (``-``, tcp/udp/srt/rtmp/rtsp/HLS URL), or a regular
    file (played at its own frame rate). ``output``: ``-``, a tcp/udp/srt URL (MPEG-TS), an rtmp
    URL (FLV), a video file (``.ts``, ``.mp4``, ``.mkv``, ...) or HLS (a directory or ``.m3u8``). ``latency_budget_ms``: the
    most latency vsr may add per frame (input arrival -> output write) before it degrades.
    ``reconnect``: reopen the input with exponential backoff (``backoff_s`` doubling up to
    ``backoff_max_s``) for at most ``reconnect_for_s`` after it stalls (no data for
    ``stall_timeout_s``) or ends. ``preset`` / ``crf`` / ``gop_s`` drive libx264 (zero-latency
    tuning, no B-frames; ``ultrafast`` by default: at 720p on 2 busy cores ``veryfast`` alone
    took ~38 ms p95 per frame and pushed the added latency p95 from ~56 to ~146 ms). ``hls_time`` / ``hls_list_size``: segment seconds and playlist length.
    """

    input: str
    output: str
    model: str = LIVE_MODEL
    backend: str = "auto"
    format: str | None = None
    input_format: str | None = None
    latency_budget_ms: float = 150.0
    reconnect: bool = False
    reconnect_for_s: float = 60.0
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    stall_timeout_s: float = 5.0
    open_timeout_s: float = 10.0
    preset: str = "ultrafast"
    crf: int = 23
    gop_s: float = 1.0
    hls_time: float = 1.0
    hls_list_size: int = 6
    threads: int | None = None

    def __post_init__(self) -> None:
        if not self.input:
            raise ConfigError("stream input is empty (use - for stdin or a URL)")
        if not self.output:
            raise ConfigError("stream output is empty (use - for stdout, a URL, a file or a directory)")
        _ = self.models  # validates the model, the backend and the threads
        self._check_numbers()
        if self.preset not in _PRESETS:
            raise ConfigError(f"stream preset must be one of {', '.join(_PRESETS)}, got {self.preset!r}")
        sink_kind(self.output, self.format)

    def _check_numbers(self) -> None:
        check_budget(self.latency_budget_ms)
        for name in ("reconnect_for_s", "backoff_s", "backoff_max_s", "stall_timeout_s", "open_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.crf <= 51:
            raise ConfigError(f"crf must be in 0..51, got {self.crf}")
        if self.gop_s <= 0 or self.hls_time <= 0 or self.hls_list_size < 0:
            raise ConfigError("gop_s and hls_time must be > 0 and hls_list_size >= 0")

    @property
    def sink(self) -> SinkKind:
        """How the output is written (see :func:`sink_kind`)."""
        return sink_kind(self.output, self.format)

    @property
    def models(self) -> ModelConfig:
        """The model and how it runs, as every command states it (validated when this is built)."""
        return ModelConfig(self.model, self.backend, threads=self.threads)
