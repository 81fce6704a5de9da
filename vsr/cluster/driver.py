"""A file job whose segments run on Ray workers; the driver keeps the manifest and stitches.

::

    validate (input, output, codec) -> WorkerPool (model loaded once per worker)
    job_manifest (.OUT.vsr-job/job.json; a resumed job keeps every done segment)
    Dispatcher: unfinished segments -> workers -> bytes back -> seg_NNNNN file, marked done (any order)
    all done -> stitch (remux: video of the segments + the input's audio/subtitles/tags, once) -> OUT

Exactly the single-process job's plan, segment files and stitch (:mod:`vsr.jobs.job`), so the
output is the same (a lossless codec: every frame identical; pts and audio always). The manifest
stays the truth: a killed driver resumes with the same command, with or without workers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

from ..config import ClusterConfig, DecodeConfig, EncodeConfig, FaceConfig, ModelConfig, PipelineConfig
from ..errors import ConfigError
from ..jobs.job import clean_on_failure, finish_job, job_manifest
from ..jobs.manifest import Manifest
from ..stats import RunStats
from ..video.ports import open_writer
from ..video.reader import VideoReader
from .dispatch import Dispatcher, Tally
from .pool import WorkerPool
from .worker import SegmentResult, SegmentTask

__all__ = ["upscale_on_workers"]

log = logging.getLogger(__name__)


def upscale_on_workers(
    dec: DecodeConfig,
    enc: EncodeConfig,
    model: ModelConfig,
    cfg: PipelineConfig | None = None,
    *,
    cluster: ClusterConfig | None = None,
    pool: WorkerPool | None = None,
    resume: bool = True,
    stop: threading.Event | None = None,
    face: FaceConfig | None = None,
    on_status: Callable[[str], None] | None = None,
) -> RunStats:
    """Upscale file ``dec`` into file ``enc`` as a resumable job on Ray workers: ``pool`` (the
    caller's, e.g. a batch's, left open) or a pool for ``cluster`` opened and closed here.

    Returns the run's statistics: as :func:`vsr.jobs.job.run_job`'s, plus ``extra["workers"]``
    (per worker: segments, frames, busy seconds, fps, lost segments) and ``extra["cluster"]``.
    Raises :class:`~vsr.errors.ConfigError` for pipes or face mode,
    :class:`~vsr.errors.ClusterError` when Ray cannot run the job, and what a segment raised.
    """
    cfg = cfg or PipelineConfig()
    _check(dec, enc, face, cluster, pool)
    with VideoReader(dec) as reader:
        checked = open_writer(enc, reader, model.scale())  # validates before any worker starts
        with _pool(cluster, pool, model) as workers:
            manifest = job_manifest(dec, enc, model, None, reader, resume, cfg.segment_s, keep_gaps=True)
            todo = [s.span for s in manifest.segments if not s.done]
            before = sum(s.frames for s in manifest.segments if s.done)
            done = len(manifest.segments) - len(todo)
            tally = Tally(workers.size, reader.info.frames, before, len(manifest.segments), done)
            tasks = [SegmentTask(dec, enc, span, cfg.batch, cfg.queue_frames) for span in todo]
            with clean_on_failure(manifest):
                stats = _run(workers, manifest, tasks, tally, stop, on_status)
    return finish_job(stats, manifest, todo, dec, enc, checked, before)


def _check(
    dec: DecodeConfig,
    enc: EncodeConfig,
    face: FaceConfig | None,
    cluster: ClusterConfig | None,
    pool: WorkerPool | None,
) -> None:
    if cluster is None and pool is None:
        raise ConfigError("workers need a ClusterConfig or an open WorkerPool")
    if dec.is_pipe or enc.is_pipe:
        raise ConfigError(
            "--workers and --cluster run file jobs: the input and output must be files, not pipes"
        )
    if face is not None:
        raise ConfigError("--face does not run on --workers or --cluster yet; run it in one process")


@contextlib.contextmanager
def _pool(cluster: ClusterConfig | None, pool: WorkerPool | None, model: ModelConfig) -> Iterator[WorkerPool]:
    if pool is not None:
        yield pool
        return
    assert cluster is not None
    with WorkerPool.open(cluster, model) as opened:
        yield opened


def _run(
    pool: WorkerPool,
    manifest: Manifest,
    tasks: list[SegmentTask],
    tally: Tally,
    stop: threading.Event | None,
    on_status: Callable[[str], None] | None,
) -> RunStats:
    """Dispatch the unfinished segments and keep each result as it arrives."""
    stats = RunStats()

    def keep(result: SegmentResult) -> None:
        _write_segment(manifest, result)
        _count(stats, result)

    dispatcher = Dispatcher(
        pool, tally, keep, retries=pool.cfg.retries, stop=stop or threading.Event(), on_status=on_status
    )
    started = time.perf_counter()
    stats.interrupted = dispatcher.run(tasks)
    stats.seconds = time.perf_counter() - started
    top = pool.slots[0].info
    stats.extra.update(model=top["model"], backend=top["backend"], workers=tally.figures(pool))
    stats.extra["cluster"] = {
        "workers": pool.size,
        "address": pool.cfg.address or "local",
        "resources_per_worker": pool.resources,
        "start_s": round(pool.start_s, 3),
        "lost_segments": sum(dispatcher.lost.values()),
    }
    return stats


def _write_segment(manifest: Manifest, result: SegmentResult) -> None:
    """Write a returned segment into the work folder (temporary name, fsync, rename), then mark
    it done: the manifest never names a file that is not whole."""
    if result.file is not None:
        final = manifest.work_dir / result.file
        part = final.with_name(final.name + ".part")
        with open(part, "wb") as f:
            f.write(result.data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, final)
    manifest.mark_done(result.index, result.file, result.frames)
    log.debug("segment %d done: %d frames in %.2f s", result.index, result.frames, result.seconds)


def _count(stats: RunStats, result: SegmentResult) -> None:
    stats.frames_in += result.frames_in
    stats.frames_out += result.frames
    stats.truncated = stats.truncated or result.truncated
    for name, (frames, busy_s) in result.stages.items():
        if name in stats.stages:
            stats.stages[name].add(busy_s, frames)
