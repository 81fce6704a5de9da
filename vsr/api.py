"""One-call library entry points over the pipeline (what ``vsr upscale`` does, minus the CLI)."""

from __future__ import annotations

import threading

from .backends import create_backend
from .config import DecodeConfig, EncodeConfig, ModelConfig, PipelineConfig
from .models.catalogue import get_spec
from .pipeline import run_pipeline
from .stats import RunStats
from .video.reader import VideoReader
from .video.writer import VideoWriter

__all__ = ["upscale_file"]


def upscale_file(
    dec: DecodeConfig,
    enc: EncodeConfig,
    model: ModelConfig | None = None,
    pipe: PipelineConfig | None = None,
    stop: threading.Event | None = None,
) -> RunStats:
    """Decode ``dec``, upscale every frame with ``model``, encode to ``enc``; returns the run's stats.

    The output is finished (playable) even when a stage fails or ``stop`` is set; failures raise
    :class:`~vsr.errors.VsrError` subclasses. ``stats.extra`` names the model, backend and codec.
    """
    model = model or ModelConfig()
    pipe = pipe or PipelineConfig()
    spec = get_spec(model.model)
    with VideoReader(dec) as reader:
        writer = VideoWriter(
            enc, reader.info, scale=spec.scale, passthrough=reader.passthrough, input_path=dec.path
        )
        backend = create_backend(
            model.backend, spec, device=model.device, tile=model.tile, threads=model.threads
        )
        try:
            with writer:
                stats = run_pipeline(reader, backend, writer, pipe, stop)
            stats.extra.update(model=spec.name, backend=backend.name, codec=writer.codec, output=enc.path)
        finally:
            backend.close()
    return stats
