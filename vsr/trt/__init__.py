"""TensorRT engines: shape profiles, the engine cache, building, and the CLI-facing commands.

Importing this package imports neither torch nor tensorrt; they load when an engine is built.
The runtime (device buffers, ``execute_async_v3``) is :mod:`vsr.backends.tensorrt_backend`.
"""

from __future__ import annotations

from .cache import BuilderOptions, DeviceInfo, EngineCache, EngineSpec
from .commands import build_engine, format_engine_list, list_engines
from .profiles import Profile, load_profiles, select_profile

__all__ = [
    "BuilderOptions",
    "DeviceInfo",
    "EngineCache",
    "EngineSpec",
    "Profile",
    "build_engine",
    "format_engine_list",
    "list_engines",
    "load_profiles",
    "select_profile",
]
