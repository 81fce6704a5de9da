"""The ``vsr`` command: argparse -> config objects -> library calls. No logic of its own.

Sub-commands: ``upscale`` (a video, a file or a pipe), ``models`` (both catalogues; ``add``,
``remove``, ``show`` your own models), ``eval``
(Y-PSNR/SSIM on an image set), ``bench`` (frames/s), ``engine build|list`` (TensorRT engines),
``stream`` (a live stream in, an HD stream out), ``webcam`` (a camera or a clip played live) and
``webrtc`` (the browser plugin's server). Every failure is one line ``vsr: error: ...`` on stderr and a
non-zero exit (the :class:`~vsr.errors.VsrError` subclass's ``exit_code``; 130/143 after
SIGINT/SIGTERM). Logs and the progress bar go to stderr, so stdout can carry video (``-o -``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import av

from ..alloc import keep_freed_buffers
from ..errors import OutputError, VsrError
from ..omp_wait import passive_omp_wait
from .parser import build_parser

__all__ = ["build_parser", "main"]

log = logging.getLogger("vsr")


class _Formatter(logging.Formatter):
    """``vsr: warning: message`` (lower-case level names, like the error line)."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)
        record.levelname = record.levelname.lower()
        return super().format(record)


def _setup_logging(verbose: bool, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter("vsr: %(levelname)s: %(message)s"))
    root = logging.getLogger("vsr")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``vsr`` command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose, getattr(args, "quiet", False))
    keep_freed_buffers()  # frame-sized buffers stay on the heap: no page faults per frame (vsr.alloc)
    if args.command == "upscale":
        passive_omp_wait()  # idle OpenMP threads sleep: face runs +17 % (vsr.omp_wait)
    try:
        return _dispatch(args)
    finally:  # an in-process caller (tests, embedding) keeps no handler on a stream it may close
        logging.getLogger("vsr").handlers[:] = []


def _dispatch(args: argparse.Namespace) -> int:
    try:
        _check_stats_path(getattr(args, "json_stats", None))
        return args.func(args)
    except VsrError as exc:
        return _fail(str(exc), exc.exit_code)
    except BrokenPipeError:  # PyAV's own BrokenPipeError is one of these too
        return _fail("the output pipe was closed before the video was finished", 1)
    except av.error.FFmpegError as exc:
        return _fail(f"FFmpeg: {exc}", 1)
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:  # one line for the user; the traceback with -v
        log.debug("unexpected error", exc_info=True)
        return _fail(f"unexpected {type(exc).__name__}: {exc}", 1)


def _check_stats_path(path: str | None) -> None:
    """Refuse a ``--json-stats`` file that cannot be written before the run starts, not after it."""
    if not path:
        return
    p = Path(path)
    parent = p.resolve().parent
    if p.is_dir():
        raise OutputError(f"cannot write stats to {path}: it is a directory")
    if not parent.is_dir():
        raise OutputError(f"cannot write stats to {path}: folder {parent} does not exist")
    if not os.access(p if p.exists() else parent, os.W_OK):
        raise OutputError(f"cannot write stats to {path}: permission denied")


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"vsr: error: {message}\n")
    return code
