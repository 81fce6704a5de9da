"""A file job: plan segments, upscale the unfinished ones through the engine, stitch, clean up.

::

    plan_segments -> Manifest (.OUT.vsr-job/job.json)
    JobSource (seek to the first unfinished segment) --engine (Lossless)--> SegmentSink (seg_NNNNN files)
    all done -> stitch (remux: segments' video + the input's audio/subtitles/tags) -> OUT; work folder removed

Running the same command again after any interruption (Ctrl-C, SIGTERM, SIGHUP, SIGKILL, power
loss) resumes at the first unfinished segment; a changed input or setting refuses to resume with
one line; ``resume=False`` starts over.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..build_ladder import build_ladder
from ..config import DecodeConfig, EncodeConfig, FaceConfig, ModelConfig, PipelineConfig
from ..engine import run
from ..errors import ConfigError
from ..ladder import Ladder
from ..models.catalogue import get_spec
from ..stats import RunStats
from ..version import __version__
from ..video.ports import open_writer
from ..video.reader import VideoReader
from ..video.writer import VideoWriter
from .manifest import Manifest, input_identity, work_dir_for
from .plan import Span, plan_segments
from .segments import JobSource, SegmentSink
from .stitch import stitch

__all__ = ["clean_on_failure", "finish_job", "job_manifest", "job_settings", "run_job"]

log = logging.getLogger(__name__)


def job_settings(
    dec: DecodeConfig, enc: EncodeConfig, model: ModelConfig, face: FaceConfig | None
) -> dict[str, Any]:
    """Everything that shapes the output (not the output path, threads or batch size). The model's
    weights are named by their sha256 too: a model file or user model replaced under the same name
    between two runs must not resume into one output."""
    encode = {k: v for k, v in dataclasses.asdict(enc).items() if k not in ("path", "overwrite")}
    return {
        "vsr": __version__,
        "input_format": dec.format,
        "encode": encode,
        "model": {k: v for k, v in dataclasses.asdict(model).items() if k != "threads"},
        "weights_sha256": get_spec(model.model).sha256,
        "face": dataclasses.asdict(face) if face is not None else None,
    }


def run_job(
    dec: DecodeConfig,
    enc: EncodeConfig,
    model: ModelConfig,
    cfg: PipelineConfig,
    *,
    resume: bool = True,
    stop: threading.Event | None = None,
    face: FaceConfig | None = None,
    ladder: Ladder | None = None,
    on_status: Callable[[str], None] | None = None,
) -> RunStats:
    """Upscale file ``dec`` into file ``enc`` as a segmented, resumable job (see the module doc).

    Returns the run's statistics (``extra["job"]``: segments, where it resumed, how many are
    done); when ``stop`` interrupted it, ``interrupted`` is set and the work folder is kept for
    the next run. Raises :class:`~vsr.errors.ConfigError` when an interrupted job cannot resume.
    """
    with VideoReader(dec) as reader:
        scale = ladder.scale if ladder is not None else model.scale(face)
        checked = open_writer(enc, reader, scale)  # validates the output before anything is built
        own = ladder is None
        ladder = ladder or build_ladder(model, face=face, fallbacks=False)  # a model error leaves nothing
        try:
            manifest = job_manifest(dec, enc, model, face, reader, resume, cfg.segment_s)
            todo = [s.span for s in manifest.segments if not s.done]
            done_frames = sum(s.frames for s in manifest.segments if s.done)
            stats = _upscale_or_clean(reader, manifest, todo, enc, cfg, scale, ladder, stop, on_status)
        finally:
            if own:
                ladder.close()
    finish_job(stats, manifest, todo, dec, enc, checked, done_frames)
    stats.truncated = stats.truncated or reader.truncated
    top = ladder.top
    stats.extra.update(model=top.info.name, backend=top.name)
    if face is not None:
        stats.extra.update({k: v for k, v in ladder.report().items() if k != "tiers"})
    return stats


def finish_job(
    stats: RunStats,
    manifest: Manifest,
    todo: list[Span],
    dec: DecodeConfig,
    enc: EncodeConfig,
    checked: VideoWriter,
    done_frames: int,
) -> RunStats:
    """Stitch the segments into ``enc.path`` and remove the work folder when every segment is
    done and ``stats`` says the run was not interrupted; add the job's figures to ``stats``
    (``done_frames``: the frames of segments an earlier run finished)."""
    if not stats.interrupted and manifest.complete:
        stitch([manifest.work_dir / s.file for s in manifest.segments if s.file], dec.path, enc)
        manifest.remove()
    stats.frames_out += done_frames
    stats.extra.update(codec=checked.codec, output=enc.path)
    stats.extra.update(size=list(checked.size.target), resize=checked.size.report())
    stats.extra.update(pix_fmt=checked.cfg.pix_fmt, precision=checked.precision)
    stats.extra["job"] = _job_summary(manifest, todo)
    return stats


def job_manifest(
    dec: DecodeConfig,
    enc: EncodeConfig,
    model: ModelConfig,
    face: FaceConfig | None,
    reader: VideoReader,
    resume: bool,
    segment_s: float,
    *,
    keep_gaps: bool = False,
) -> Manifest:
    """The job's manifest: the interrupted one (checked against this run) or a new plan.

    A resumed job keeps its done segments up to the first unfinished one (a single process redoes
    the rest in one pass); ``keep_gaps`` keeps every done segment (workers run any segment)."""
    work, identity, settings = (
        work_dir_for(enc.path),
        input_identity(dec.path),
        job_settings(dec, enc, model, face),
    )
    old = Manifest.load(work) if resume else None
    if old is not None:
        why = old.mismatch(identity, settings)
        if why is not None:
            raise ConfigError(f"cannot resume {enc.path}: {why}; run with --no-resume to start over")
        return _resumed(old, enc.path, keep_gaps)
    if work.exists():
        shutil.rmtree(work)
    spans = plan_segments(dec.path, reader.stream.index, segment_s)
    log.debug("%s: %d segments", dec.path, len(spans))
    return Manifest.new(work, identity, settings, spans)


def _resumed(old: Manifest, output: str, keep_gaps: bool) -> Manifest:
    """``old`` with its intact done segments kept (see :func:`job_manifest`) and stray files removed."""
    done = old.verified_done()
    first = next((s.index for s in old.segments if not s.done), len(old.segments))
    if not keep_gaps:  # everything after the first gap is redone in one pass
        for seg in old.segments[first:]:
            seg.done, seg.file, seg.frames, seg.bytes = False, None, 0, 0
        done = [s for s in done if s.index < first]
    _remove_strays(old)
    old.save()
    log.info(
        "resuming %s: %d of %d segments were done; continuing at segment %d",
        output,
        len(done),
        len(old.segments),
        first,
    )
    return old


def _remove_strays(manifest: Manifest) -> None:
    """Files in the work folder no done segment owns (a segment cut short by a crash)."""
    keep = {"job.json"} | {s.file for s in manifest.segments if s.done and s.file}
    for path in manifest.work_dir.iterdir():
        if path.name not in keep:
            path.unlink(missing_ok=True)


def _upscale_or_clean(*args: Any) -> RunStats:
    """:func:`_upscale`; a failure before any segment was done leaves no work folder behind."""
    with clean_on_failure(args[1]):
        return _upscale(*args)


@contextlib.contextmanager
def clean_on_failure(manifest: Manifest) -> Iterator[None]:
    """A failure inside, before any segment was done, leaves no work folder behind."""
    try:
        yield
    except BaseException:
        if not any(s.done for s in manifest.segments):
            manifest.remove()
        raise


def _upscale(
    reader: VideoReader,
    manifest: Manifest,
    todo: list[Span],
    enc: EncodeConfig,
    cfg: PipelineConfig,
    scale: int,
    ladder: Ladder,
    stop: threading.Event | None,
    on_status: Callable[[str], None] | None,
) -> RunStats:
    """The engine over the unfinished segments: one pass from the first of them to the end."""
    if not todo:
        return RunStats()
    left = reader.info.frames - sum(s.frames for s in manifest.segments if s.done)
    stats = run(
        JobSource(reader, todo),
        ladder,
        SegmentSink(manifest, lambda e: open_writer(e, reader, scale, whole=False), enc, todo[0].index),
        cfg.policy,
        stop=stop,
        on_status=on_status,
        status_every_s=0.25,
        expected_frames=max(0, left),
    )
    assert isinstance(stats, RunStats)
    return stats


def _job_summary(manifest: Manifest, todo: list[Span]) -> dict[str, Any]:
    segments = len(manifest.segments)
    return {
        "segments": segments,
        "resumed_at": todo[0].index if todo and todo[0].index > 0 else None,
        "segments_done": sum(s.done for s in manifest.segments),
        "work_dir": None if manifest.complete else str(Path(manifest.work_dir)),
    }
