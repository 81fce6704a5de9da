"""Encode upscaled frames with PyAV and mux them with the pass-through streams.

:class:`VideoWriter` validates everything it can before touching the disk (output path, codec,
options, container), writes to a hidden temporary file ``.NAME.partial-PID.EXT`` beside the output,
and on close finishes the container and renames it to the final name. So a run that stops early
(an error, Ctrl-C) leaves a finished, playable file of the frames done so far, and a run that is
killed outright leaves only the temporary file: never a broken file under the final name.
Writing to stdout (``-``) streams instead (fragmented MP4/MOV when those are asked for).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..config import EncodeConfig
from ..errors import ConfigError, OutputError
from .codecs import check_encoder, default_codec, encoder_options
from .convert import RgbToYuv
from .depth import alpha_note, output_pix_fmt, precision_note
from .hdr import hdr_loss, hdr_options
from .meta import SourceTags, VideoInfo
from .remux import Remuxer, container_refuses
from .size import OutputSize, SizePlan
from .timing import Timeline

__all__ = ["VideoWriter", "check_output_path", "partial_path"]

log = logging.getLogger(__name__)

_PIPE_MOVFLAGS = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}


def mov_track_timescale(time_base: Fraction) -> int:
    """The timescale FFmpeg's MP4/MOV muxer gives a video track of ``time_base`` (its denominator,
    doubled until it reaches 10000)."""
    scale = Fraction(time_base).denominator
    while scale < 10000:
        scale *= 2
    return scale


def partial_path(path: str) -> Path:
    """The temporary file a run writes before renaming it to ``path``: ``.NAME.partial-PID.EXT``
    beside it (the process id keeps two runs aimed at one output from sharing it).
    """
    p = Path(path)
    return p.with_name(f".{p.stem}.partial-{os.getpid()}{p.suffix}")


def check_output_path(path: str, overwrite: bool, input_path: str | None = None) -> None:
    """Raise :class:`OutputError` when ``path`` cannot or must not be written. Touches nothing."""
    p = Path(path)
    parent = p.resolve().parent
    if p.is_dir():
        raise OutputError(f"output {path} is a directory; name a file")
    if input_path and input_path != "-" and p.exists() and p.resolve() == Path(input_path).resolve():
        raise OutputError(f"output {path} is the input file; choose another name")
    if p.exists() and not overwrite:
        raise OutputError(f"output {path} exists; pass --overwrite to replace it")
    if not parent.exists():
        raise OutputError(f"cannot write {path}: folder {parent} does not exist")
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {path}: permission denied in {parent}")


class VideoWriter:
    """Encoder + muxer for one output. Construct (validates), then use as a context manager.

    ``info``: the input video's facts (time base, colour tags, display matrix). ``size``: the
    size of the frames written (``size.source``) and the size encoded (``size.target``), resized
    in the RGB -> YUV conversion when they differ; ``None``: the plan of ``cfg.size`` for frames
    ``scale`` x the input (``cfg.size`` ``None``: that size itself).
    ``passthrough``: input audio/subtitle streams to carry over; ``tags``: metadata and chapters
    to carry over.
    """

    def __init__(
        self,
        cfg: EncodeConfig,
        info: VideoInfo,
        *,
        scale: int = 4,
        size: SizePlan | None = None,
        passthrough: Sequence[av.stream.Stream] = (),
        input_path: str | None = None,
        tags: SourceTags | None = None,
    ) -> None:
        self.cfg, self.info, self.passthrough, self.tags = cfg, info, list(passthrough), tags
        self.format = cfg.container
        self.codec = cfg.codec or default_codec(self.format)
        check_encoder(self.codec)
        self.cfg = cfg = replace(cfg, pix_fmt=output_pix_fmt(cfg.pix_fmt, info.pix_fmt, self.codec))
        self.precision = precision_note(info.pix_fmt, cfg.pix_fmt)
        if tags is not None:  # once per output: a job's segment writers carry no tags
            for note in self._losses():
                log.warning("%s", note)
        self.options = hdr_options(encoder_options(self.codec, cfg.crf, cfg.preset), self.codec, info.hdr)
        self._check_pix_fmt()
        self.size = size or (cfg.size or OutputSize()).plan(info, scale, cfg.pix_fmt)
        self.width, self.height = self.size.target
        for note in self.size.notes if tags is not None else ():  # once per output, as above
            log.warning("%s", note)
        if not cfg.is_pipe:
            check_output_path(cfg.path, cfg.overwrite, input_path)
        self._check_container()
        self.frames_written = 0
        self.committed = False
        self._container: av.container.OutputContainer | None = None
        self._convert = RgbToYuv(self.width, self.height, cfg.pix_fmt, info.colour, self.size.interpolation)
        self._timeline = Timeline(info.time_base, info.rate, sums_decode_order=self.format in ("mp4", "mov"))
        self._warned_size = False

    @property
    def target(self) -> str:
        """Where the container is written now: the temporary file, or ``pipe:1``."""
        return "pipe:1" if self.cfg.is_pipe else str(partial_path(self.cfg.path))

    def _losses(self) -> list[str]:
        """What the output cannot keep of the input (bit depth, HDR metadata, alpha), a line each."""
        source = self.info.pix_fmt
        notes = [self.precision, hdr_loss(self.codec, self.info.hdr)]
        return [n for n in [*notes, alpha_note(source, self.cfg.pix_fmt, self.codec)] if n]

    def _check_pix_fmt(self) -> None:
        formats = av.codec.Codec(self.codec, "w").video_formats or []
        names = [f.name for f in formats]
        if names and self.cfg.pix_fmt not in names:
            raise ConfigError(
                f"codec {self.codec} cannot encode pix_fmt {self.cfg.pix_fmt!r}; it takes: {', '.join(names)}"
            )

    def _check_container(self) -> None:
        """Open the encoder alone, then in the chosen container (in memory), to fail before writing."""
        if self.codec == "libsvtav1":
            os.environ.setdefault("SVT_LOG", "1")  # errors only: SVT-AV1 prints to stderr itself
        ctx = av.CodecContext.create(self.codec, "w")
        ctx.width, ctx.height, ctx.pix_fmt = self.width, self.height, self.cfg.pix_fmt
        ctx.time_base = self.info.time_base
        ctx.framerate = self.info.rate or Fraction(25)
        ctx.options = dict(self.options)
        try:
            ctx.open()  # freed with the object (PyAV has no close for codec contexts)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            hint = "; NVENC needs an NVIDIA GPU and driver" if "nvenc" in self.codec else ""
            raise ConfigError(f"encoder {self.codec} cannot start on this machine ({reason}){hint}") from exc
        reason = container_refuses(self.format, self._add_video)
        if reason is not None:
            raise OutputError(
                f"the {self.format} container cannot hold {self.codec} video ({reason}); "
                "choose another --codec or output extension"
            )

    def _add_video(self, container: av.container.OutputContainer) -> av.video.stream.VideoStream:
        info = self.info
        stream = container.add_stream(self.codec, rate=info.rate)
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, self.cfg.pix_fmt
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        stream.codec_context.options = dict(self.options)
        # PyAV defaults encoders to slice threads; frame threads keep more cores busy (as ffmpeg does)
        stream.codec_context.thread_type = "FRAME"
        stream.codec_context.thread_count = 0
        if self.size.sar:
            stream.codec_context.sample_aspect_ratio = self.size.sar
        info.colour.apply(stream.codec_context)
        if info.matrix:
            stream.set_display_matrix(list(info.matrix))
        return stream

    def __enter__(self) -> VideoWriter:
        options = _PIPE_MOVFLAGS if self.cfg.is_pipe and self.format in ("mp4", "mov") else {}
        if self.format in ("mp4", "mov"):
            # edit lists in the track's own timescale: a start that is not 0 (a job's segment) stays exact
            options = {**options, "movie_timescale": str(mov_track_timescale(self.info.time_base))}
        if self.format in ("matroska", "webm"):
            # these hold negative timestamps (AAC priming, B-frame delay): no shift, pts stay exact
            options = {**options, "avoid_negative_ts": "disabled"}
        try:
            self._container = av.open(self.target, "w", format=self.format, options=options)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(
                f"cannot write {self.cfg.path}: {getattr(exc, 'strerror', None) or exc}"
            ) from exc
        try:
            self.stream = self._add_video(self._container)
            self.remuxer = Remuxer(self._container, self.format, self.passthrough)
            self._copy_tags()
            self._container.start_encoding()
        except BaseException:
            self._abandon()
            raise
        return self

    def _copy_tags(self) -> None:
        """Title, creation time, language and chapters of the input (see :class:`SourceTags`)."""
        if self.tags is None:
            return
        self._container.metadata.update(self.tags.container)
        self.stream.metadata.update(self.tags.video)
        if self.tags.chapters:
            try:
                self._container.set_chapters(list(self.tags.chapters))
            except (av.error.FFmpegError, ValueError, TypeError) as exc:
                log.warning("could not copy the chapters (%s); writing without them", exc)

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.finish(failed=exc_type is not None)

    def write(
        self, rgb: np.ndarray, pts: int | None, duration: int = 0, alpha: np.ndarray | None = None
    ) -> None:
        """Encode one (H, W, 3) uint8 RGB frame at ``pts`` (input stream time base), with its
        (h, w) uint8 ``alpha`` plane when the output keeps one. Borrows both arrays."""
        pts = self._timeline.frame(pts, duration)
        frame = self._convert(self._fit(rgb), alpha)
        frame.pts, frame.time_base = pts, self.info.time_base
        if duration > 0:
            frame.duration = duration
        self._container.mux(self._timeline.packets(self.stream.encode(frame)))
        self.frames_written += 1

    def _fit(self, rgb: np.ndarray) -> np.ndarray:
        """Crop the odd pixels a subsampled format cannot hold (frames the plan resizes pass as
        they are: the conversion resizes them); warn once if the size changed mid-stream."""
        h, w = rgb.shape[:2]
        if (h, w) == (self.height, self.width):
            return rgb
        if (w, h) == self.size.source and self.size.filter:
            return rgb
        if 0 <= h - self.height < 4 and 0 <= w - self.width < 4:
            return rgb[: self.height, : self.width]
        if not self._warned_size:
            log.warning(
                "frame size changed mid-stream to %dx%d; scaling to %dx%d", w, h, self.width, self.height
            )
            self._warned_size = True
        return rgb

    def mux(self, packet: av.Packet) -> None:
        """Write one packet of an input audio/subtitle stream (see :class:`Remuxer`)."""
        self.remuxer.write(packet)

    def finish(self, failed: bool = False) -> None:
        """Flush, close and rename to the final name (or remove when nothing was written). Idempotent.

        When ``failed`` (an exception is already on its way) a second error while closing is only
        logged, so the first one reaches the user.
        """
        if self._container is None:
            return
        try:
            self._container.mux(self._timeline.packets(self.stream.encode(None), final=True))
            self.remuxer.flush()
            self._container.close()
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self._abandon()
            if not failed:
                raise OutputError(f"cannot finish {self.cfg.path}: {exc}") from exc
            if not self.cfg.is_pipe:
                log.warning("could not finish %s (%s); removed it", self.cfg.path, exc)
            return
        self._container = None
        self._commit()
        if failed and self.committed:
            log.warning(
                "stopped early: %s holds the %d frames encoded so far", self.cfg.path, self.frames_written
            )

    def _commit(self) -> None:
        if self.cfg.is_pipe:
            return
        if self.frames_written == 0:
            Path(self.target).unlink(missing_ok=True)
            return
        os.replace(self.target, self.cfg.path)
        self.committed = True

    def discard(self) -> None:
        """Close without finishing and delete what was written (a job's cut-short segment)."""
        self._abandon()

    def _abandon(self) -> None:
        """Close without finishing and delete the temporary file."""
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(av.error.FFmpegError, OSError, ValueError):
                container.close()
        if not self.cfg.is_pipe:
            Path(self.target).unlink(missing_ok=True)
