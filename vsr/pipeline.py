"""``vsr upscale`` as a composition: file source + lossless policy + file sink, over one ladder.

::

    VideoReader -> FileSource --engine (Lossless: every frame, batches, backpressure)--> FileSink -> VideoWriter
      audio/subtitle packets travel the same queues, in order, and are muxed untouched

Every frame keeps its input pts (output pts = input pts), so variable frame rate stays exact. A
failed stage leaves the frames done so far in a playable file and its exception is raised here;
``stop`` (see :func:`vsr.signals.stop_on_signals`) ends decoding early but finishes the frames in
flight. This module never imports torch.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .build_ladder import build_ladder
from .config import ClusterConfig, DecodeConfig, EncodeConfig, FaceConfig, ModelConfig, PipelineConfig
from .engine import END, run
from .ladder import Ladder
from .signals import StopFlag, stop_on_signals
from .stats import RunStats
from .video.ports import FileSink, FileSource, open_writer
from .video.reader import VideoReader

if TYPE_CHECKING:  # pragma: no cover
    from .cluster.pool import WorkerPool

__all__ = ["END", "StopFlag", "stop_on_signals", "upscale_file"]


def upscale_file(
    dec: DecodeConfig,
    enc: EncodeConfig,
    model: ModelConfig,
    cfg: PipelineConfig | None = None,
    *,
    stop: threading.Event | None = None,
    face: FaceConfig | None = None,
    ladder: Ladder | None = None,
    on_status=None,  # Callable[[str], None]: the progress line, every 0.25 s
    resume: bool | None = None,
    cluster: ClusterConfig | None = None,
    pool: WorkerPool | None = None,
) -> RunStats:
    """Upscale the video ``dec`` names into ``enc``: open, validate, build the model, run, close.

    Everything is checked (input, output path, codec, container) before a model is built or a
    byte is written. ``face``: face-region mode (``model`` then says how backends run);
    ``ladder`` replaces the one ``model`` describes (its top rung runs; the caller closes it).
    ``resume``: None runs in one pass (an interruption leaves a playable file of the frames done);
    True/False runs a file-to-file job in segments (:func:`vsr.jobs.job.run_job`): resumable
    after any interruption by the same call (False: start over). Pipes always run in one pass.
    ``cluster`` / ``pool``: the job's segments run on Ray workers
    (:func:`vsr.cluster.driver.upscale_on_workers`; ``pool`` is the caller's, left open).
    Raises :class:`~vsr.errors.VsrError` subclasses for what a user can fix.
    """
    cfg = cfg or PipelineConfig()
    if cluster is not None or pool is not None:
        from .cluster.driver import upscale_on_workers

        return upscale_on_workers(
            dec,
            enc,
            model,
            cfg,
            cluster=cluster,
            pool=pool,
            resume=resume is not False,
            stop=stop,
            face=face,
            on_status=on_status,
        )
    if resume is not None and not dec.is_pipe and not enc.is_pipe:
        from .jobs.job import run_job

        return run_job(
            dec, enc, model, cfg, resume=resume, stop=stop, face=face, ladder=ladder, on_status=on_status
        )
    with VideoReader(dec) as reader:
        own = ladder is None
        scale = ladder.scale if ladder is not None else model.scale(face)
        writer = open_writer(enc, reader, scale)
        if ladder is None:
            ladder = build_ladder(model, face=face, fallbacks=False)
        try:
            with writer:
                stats = run(
                    FileSource(reader),
                    ladder,
                    FileSink(writer),
                    cfg.policy,
                    stop=stop,
                    on_status=on_status,
                    status_every_s=0.25,
                    expected_frames=reader.info.frames,
                )
        finally:
            if own:
                ladder.close()
    assert isinstance(stats, RunStats)
    stats.truncated = reader.truncated
    top = ladder.top
    stats.extra.update(model=top.info.name, backend=top.name, codec=writer.codec, output=enc.path)
    stats.extra.update(pix_fmt=writer.cfg.pix_fmt, precision=writer.precision)
    stats.extra.update(size=list(writer.size.target), resize=writer.size.report())
    if face is not None:
        stats.extra.update({k: v for k, v in ladder.report().items() if k != "tiers"})
    return stats
