"""Which model a job's workers run: the driver's, named so every node finds it, checked by sha256.

Each worker resolves the model name on its own node, where ``mine`` may be another user model and
``./4x.pth`` another file (or the same relative path in another working folder). So the driver
sends :func:`for_workers`: the model with a model-file path made absolute, and the sha256 of the
weights it resolved (``get_spec(name).sha256``); a worker whose own resolution gives another
sha256 refuses to start (:func:`check_worker_model`), and the job fails with that one line
instead of silently running another model.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import ModelConfig
from ..errors import ModelError
from ..models.catalogue import get_spec
from ..models.external_info import SUFFIXES

__all__ = ["WorkerModel", "check_worker_model", "for_workers"]


@dataclass(frozen=True)
class WorkerModel:
    """What the driver gives each worker: ``model`` to build, ``sha256`` its weights must have
    (None: a model without weights, such as bicubic)."""

    model: ModelConfig
    sha256: str | None


def for_workers(model: ModelConfig) -> WorkerModel:
    """The driver's ``model`` as workers get it: a model-file path (``./4x.pth``) made absolute
    (a user model's name stays a name), with the sha256 of the weights it names here."""
    spec = get_spec(model.model)
    if spec.path is not None and model.model.lower().endswith(SUFFIXES):  # a path, not a user model
        model = replace(model, model=str(Path(model.model).resolve()))
    return WorkerModel(model, spec.sha256)


def check_worker_model(model: ModelConfig, sha256: str | None) -> None:
    """On a worker: :class:`ModelError` (one line) unless model ``model.model`` resolves here to
    weights of ``sha256``, the driver's."""
    if sha256 is None:
        return
    found = get_spec(model.model).sha256
    if found != sha256:
        raise ModelError(
            f"model {model.model!r} on worker node {socket.gethostname()} is not the driver's: its "
            f"weights' sha256 is {(found or 'none')[:12]}, the driver's {sha256[:12]}; give every "
            "node the same model file (or user model)"
        )
