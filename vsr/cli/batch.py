"""``vsr upscale`` with several inputs or a folder: the batch's progress, table and exit code.

The work is :func:`vsr.jobs.batch.upscale_batch`; this module only wires the CLI to it.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import STDIO, ClusterConfig, EncodeConfig, FaceConfig, ModelConfig, PipelineConfig
from ..jobs.batch import BatchResult, FileResult, format_table, upscale_batch
from ..signals import stop_on_signals
from ..stats import Progress

__all__ = ["is_batch", "run_batch"]


def is_batch(inputs: Sequence[str], output: str) -> bool:
    """Several inputs, a folder input, or one file into an existing folder make a batch."""
    if len(inputs) > 1:
        return True
    single = inputs[0]
    return single != STDIO and (Path(single).is_dir() or (output != STDIO and Path(output).is_dir()))


def run_batch(
    args: argparse.Namespace,
    enc: EncodeConfig,
    model: ModelConfig,
    pipe: PipelineConfig,
    face: FaceConfig | None,
    cluster: ClusterConfig | None = None,
) -> tuple[int, BatchResult]:
    """Upscale ``args.input`` into the folder ``args.output`` and print the table.

    Returns the exit code (the first failed file's, 128 + signal when stopped, else 0) and the result.
    """
    progress = Progress(0, enabled=pipe.progress)

    def on_file(n: int, total: int, item: FileResult) -> None:
        progress.close()  # each file's lines start on a fresh line

    with stop_on_signals() as stop:
        try:
            result = upscale_batch(
                args.input,
                args.output,
                enc,
                model,
                pipe,
                face=face,
                stop=stop,
                on_file=on_file,
                on_status=progress.draw,
                resume=not args.no_resume,
                deinterlace=not args.no_deinterlace,
                cluster=cluster,
            )
        finally:
            progress.close()
    if not args.quiet:
        sys.stderr.write(format_table(result) + "\n")
    if result.interrupted:
        return 128 + (stop.signum or signal.SIGINT), result
    return result.exit_code, result
