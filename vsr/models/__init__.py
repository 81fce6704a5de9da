"""Generator architectures and the catalogue of shipped models."""

from __future__ import annotations

from .catalogue import CATALOGUE, ModelSpec, build_model, get_spec, model_names

__all__ = ["CATALOGUE", "ModelSpec", "build_model", "get_spec", "model_names"]
