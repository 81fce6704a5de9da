"""vsr: real-time 4x video super-resolution.

``import vsr`` needs only numpy and opencv: PyAV loads with the video pipeline (``vsr.upscale_file``),
torch and onnxruntime inside their backends, so training and ``vsr.evaluate`` run without PyAV.
"""

from __future__ import annotations

from .backends import Backend, ModelInfo, create_backend
from .config import DecodeConfig, EncodeConfig, FaceConfig, ModelConfig, PipelineConfig
from .errors import BackendError, ConfigError, InputError, ModelError, OutputError, VsrError
from .models import CATALOGUE, ModelSpec, get_spec, model_names
from .version import __version__

__all__ = [
    "CATALOGUE",
    "Backend",
    "BackendError",
    "ConfigError",
    "DecodeConfig",
    "EncodeConfig",
    "FaceConfig",
    "InputError",
    "ModelConfig",
    "ModelError",
    "ModelInfo",
    "ModelSpec",
    "OutputError",
    "PipelineConfig",
    "VsrError",
    "__version__",
    "create_backend",
    "get_spec",
    "model_names",
    "upscale_file",
]


def __getattr__(name: str) -> object:
    if name == "upscale_file":  # lazily: the pipeline imports PyAV
        from .pipeline import upscale_file

        return upscale_file
    raise AttributeError(f"module 'vsr' has no attribute {name!r}")
