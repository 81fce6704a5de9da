"""Checkpoints that resume exactly: every module and optimiser state plus all RNG states.

A checkpoint is a ``torch.save`` dict written to a temporary file and renamed (a crash never leaves
a half-written one). It holds the step, the stage, the state dicts of the generator, its EMA, the
optimisers, schedulers, AMP scalers, the discriminator (stage 2), the data sampler and the RNG
states of ``random``, ``numpy`` (global) and ``torch`` (CPU and CUDA).
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "latest_checkpoint",
    "load_checkpoint",
    "prune_checkpoints",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

_NAME = re.compile(r"^step_(\d+)\.pt$")


def rng_state() -> dict[str, Any]:
    """The RNG states of python, numpy's global generator and torch (CPU, and CUDA when present)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus the current RNG states) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({**payload, "rng": rng_state()}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (on CPU; RNG states are not applied)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    # our own files; they hold numpy RNG tuples, so the safe weights-only unpickler is not enough
    return torch.load(path, map_location="cpu", weights_only=False)


def _numbered(run_dir: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(1)), p) for p in Path(run_dir).glob("step_*.pt") if (m := _NAME.match(p.name))]
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The highest-step ``step_NNNNNNN.pt`` in ``run_dir``, or None when there is none."""
    found = _numbered(run_dir)
    return found[-1][1] if found else None


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest numbered checkpoints (``best.pt`` is never touched)."""
    for _, p in _numbered(run_dir)[:-keep] if keep > 0 else []:
        p.unlink(missing_ok=True)
