"""Errors raised by vsr.

Every error a user can cause is a :class:`VsrError`; the CLI prints its message as one line and
exits non-zero. Subclasses also inherit the matching builtin (as PyAV does), so library callers
can catch ``ValueError`` / ``FileNotFoundError`` / ``RuntimeError`` as they are used to.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ClusterError",
    "ConfigError",
    "InputError",
    "ModelError",
    "OutputError",
    "ReceiverGone",
    "VsrError",
]


class VsrError(Exception):
    """Base class of every error vsr raises on purpose. ``exit_code`` is what the CLI returns."""

    exit_code = 1


class ConfigError(VsrError, ValueError):
    """A parameter has a value vsr cannot use (unknown model, codec, bad size...)."""

    exit_code = 2


class InputError(VsrError, ValueError):
    """The input cannot be read as video (missing, empty, not a video, no video stream)."""

    exit_code = 3


class OutputError(VsrError, OSError):
    """The output cannot be written (exists, unwritable, container cannot hold the codec)."""

    exit_code = 4


class ReceiverGone(OutputError):
    """The receiver went away (closed the connection, the pipe or the preview window): a live run
    ends cleanly, saying why."""


class ModelError(VsrError, RuntimeError):
    """A model cannot be built or its weights cannot be loaded."""

    exit_code = 5


class BackendError(VsrError, RuntimeError):
    """An inference backend is missing or failed."""

    exit_code = 6


class ClusterError(VsrError, RuntimeError):
    """The Ray runtime cannot be started or joined, or its workers cannot finish a job."""

    exit_code = 7
