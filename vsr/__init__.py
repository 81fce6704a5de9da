"""vsr: real-time 4x video super-resolution.

``import vsr`` needs only numpy, av and opencv; torch and onnxruntime load inside their backends.
"""

from __future__ import annotations

from .backends import Backend, ModelInfo, create_backend
from .config import DecodeConfig, EncodeConfig, FaceConfig, ModelConfig, PipelineConfig
from .errors import BackendError, ConfigError, InputError, ModelError, OutputError, VsrError
from .models import CATALOGUE, ModelSpec, get_spec, model_names
from .pipeline import upscale_file

__version__ = "0.1.0"

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
