"""WebRTC plugin (``vsr webrtc``): enhance a browser's camera live, in a real video call.

:class:`~vsr.webrtc.config.WebrtcConfig` needs nothing beyond vsr's own dependencies; the track and
the server need ``aiortc`` and ``aiohttp`` (``pip install 'vsr[webrtc]'``) and are imported on
first use, so ``import vsr.webrtc`` works without them.

>>> from vsr.webrtc import EnhanceTrack   # an aiortc MediaStreamTrack for your own app
>>> from vsr.webrtc import WebrtcConfig, serve
>>> serve(WebrtcConfig(model="fast"))     # http://127.0.0.1:8080/
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import WebrtcConfig, is_loopback

__all__ = [
    "EnhanceServer",
    "EnhanceTrack",
    "WebrtcConfig",
    "is_loopback",
    "ladder_of",
    "running_server",
    "serve",
    "webrtc_ladder",
]

_LAZY = {
    "EnhanceTrack": "track",
    "ladder_of": "track",
    "EnhanceServer": "server",
    "webrtc_ladder": "server",
    "running_server": "server",
    "serve": "server",
}


def __getattr__(name: str) -> Any:
    """Import the aiortc-based parts on first use, with one clear error when aiortc is missing."""
    if name not in _LAZY:
        raise AttributeError(f"module 'vsr.webrtc' has no attribute {name!r}")
    try:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
    except ImportError as exc:
        from ..errors import ConfigError

        raise ConfigError(
            f"the WebRTC plugin needs aiortc and aiohttp ({exc.name} is missing): pip install 'vsr[webrtc]'"
        ) from exc
    return getattr(module, name)
