"""Configuration of ``vsr webrtc``: one frozen dataclass, validated when built (no aiortc needed).

The server binds the loopback address unless told otherwise *twice*: another ``host`` plus
``allow_remote``, so a camera stream is never exposed to a network by a typo.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..config import FaceConfig, ModelConfig
from ..engine.policy import check_budget
from ..errors import ConfigError
from ..models.catalogue import LIVE_MODEL

__all__ = ["WebrtcConfig", "is_loopback"]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class WebrtcConfig:
    """The WebRTC server: where it listens and how it enhances each incoming video track.

    ``host`` / ``port``: the HTTP address (port 0 picks a free one); anything but loopback needs
    ``allow_remote``. ``model`` / ``backend`` / ``threads`` / ``face``: the upscaler, as in
    ``vsr webcam``; ``latency_budget_ms``: added latency allowed before frames degrade to bicubic;
    ``max_bitrate_kbps``: the ceiling of the returned video's encoder (aiortc's own, 1.5 Mbit/s for
    VP8, blurs a 4x upscale more than the upscale sharpens it); ``max_peers``: open peer
    connections at once (each holds sockets, an encoder and a decoder); more offers get HTTP 503.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    allow_remote: bool = False
    model: str = LIVE_MODEL
    backend: str = "auto"
    threads: int | None = None
    face: FaceConfig | None = None
    latency_budget_ms: float = 150.0
    max_bitrate_kbps: int = 6000
    max_peers: int = 4

    def __post_init__(self) -> None:
        if not 300 <= self.max_bitrate_kbps <= 100_000:
            raise ConfigError(f"max bitrate must be in 300..100000 kbit/s, got {self.max_bitrate_kbps}")
        if not 1 <= self.max_peers <= 100:
            raise ConfigError(f"max peers must be in 1..100, got {self.max_peers}")
        if not self.host:
            raise ConfigError("webrtc host is empty")
        if not is_loopback(self.host) and not self.allow_remote:
            raise ConfigError(
                f"refusing to bind {self.host!r}: it is not loopback; add --allow-remote to serve "
                "camera video to other machines"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {self.port}")
        _ = self.models  # validates the model, the backend and the threads
        check_budget(self.latency_budget_ms)

    @property
    def models(self) -> ModelConfig:
        """The model and how it runs, as every command states it (validated when this is built)."""
        return ModelConfig(self.model, self.backend, threads=self.threads)
