"""The Ray runtime a job's segment workers run on: started here, joined, or the one already up.

``ClusterConfig(workers=N)`` starts a local runtime on 127.0.0.1 (no dashboard) sized for N
workers and shuts it down afterwards; ``ClusterConfig(address="HOST:PORT")`` joins a cluster
started elsewhere with ``ray start --head`` and leaves it running; a runtime this process already
has (``ray.is_initialized()``, e.g. a test's or a notebook's) is used as it is and left running.

Ray is an optional dependency (``pip install 'vsr[cluster]'``): it is imported here, lazily, and its
absence is one line saying how to install it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from ..config import ClusterConfig, ModelConfig
from ..errors import ClusterError, ConfigError

__all__ = ["INSTALL_HINT", "actor_resources", "ray_runtime", "require_ray", "worker_count"]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'vsr[cluster]'"

LOOPBACK = "127.0.0.1"


def require_ray(flag: str = "--workers") -> ModuleType:
    """The ``ray`` module; :class:`ConfigError` naming ``flag`` and the install command without it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"{flag} needs Ray: {INSTALL_HINT}") from exc
    return ray


def _flag(cfg: ClusterConfig) -> str:
    return "--cluster" if cfg.address is not None else "--workers"


@contextlib.contextmanager
def ray_runtime(cfg: ClusterConfig, cpus: int) -> Iterator[ModuleType]:
    """Yield ``ray`` connected as ``cfg`` says; a local runtime gets ``cpus`` logical CPUs.

    Raises :class:`ClusterError` when the runtime cannot be started or the cluster joined.
    """
    ray = require_ray(_flag(cfg))
    if ray.is_initialized():
        yield ray
        return
    with _signals_kept():
        _init(ray, cfg, cpus)
    try:
        yield ray
    finally:
        ray.shutdown()


def _init(ray: ModuleType, cfg: ClusterConfig, cpus: int) -> None:
    quiet = not log.isEnabledFor(logging.DEBUG)
    common: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": not quiet,  # worker logs reach the driver with -v only
        "logging_level": logging.ERROR if quiet else logging.INFO,
    }
    try:
        if cfg.address is None:
            ray.init(address="local", num_cpus=cpus, _node_ip_address=LOOPBACK, **common)
            log.info("started a local Ray runtime on %s (%d CPUs)", LOOPBACK, cpus)
            return
        _check_reachable(cfg.address)
        if cfg.address.split(":")[0] in (LOOPBACK, "localhost"):
            common["_node_ip_address"] = LOOPBACK
        common.pop("include_dashboard")
        ray.init(address=cfg.address, **common)
        log.info("joined the Ray cluster at %s", cfg.address)
    except ClusterError:
        raise
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
        ray.shutdown()
        where = (
            "start a local Ray runtime" if cfg.address is None else f"join the Ray cluster at {cfg.address}"
        )
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterError(f"cannot {where}: {reason}") from exc


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Something answers at ``address`` (``HOST:PORT``; ``auto`` is Ray's to find): Ray itself
    would retry a wrong address for ever."""
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(
            f"cluster address {address!r} is not HOST:PORT (the head's `ray start --head --port`)"
        )
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ClusterError(
            f"cannot join the Ray cluster at {address}: nothing answers there ({exc.strerror or exc}); "
            "start its head with `ray start --head`"
        ) from exc


@contextlib.contextmanager
def _signals_kept() -> Iterator[None]:
    """``ray.init`` replaces the SIGTERM handler (with ``sys.exit``); keep the caller's
    (:func:`vsr.signals.stop_on_signals`: finish the segments in flight)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in kept.items():
            if handler is not None:
                signal.signal(sig, handler)


def wants_gpu(model: ModelConfig, gpus: float) -> bool:
    """Whether each worker asks Ray for a GPU: CUDA or TensorRT models do, CPU ones and bicubic
    do not, ``auto`` does when the cluster has GPUs. Raises :class:`ClusterError` for a CUDA
    model on a cluster without GPUs."""
    if model.model == "bicubic" or model.device == "cpu":
        return False
    needs = model.backend == "tensorrt" or model.device == "cuda"
    if needs and gpus < 1:
        raise ClusterError(
            f"--device {model.device} --backend {model.backend} runs on CUDA, but the Ray cluster has no GPU"
        )
    return needs or gpus >= 1


def actor_resources(model: ModelConfig, gpus: float) -> dict[str, float]:
    """What one worker asks Ray for: a GPU (and a CPU for decode/encode) on CUDA, else its
    inference threads (``--threads``, default 1) as CPUs."""
    if wants_gpu(model, gpus):
        return {"num_gpus": 1, "num_cpus": 1}
    return {"num_cpus": float(model.threads or 1)}


def worker_count(cfg: ClusterConfig, per_worker: dict[str, float], free: dict[str, float]) -> int:
    """How many workers to start: ``cfg.workers``, or as many as the cluster's ``free`` resources
    hold; never more than they hold in all (an actor that cannot be placed would wait for ever)."""
    fits = min(int(free.get(_key(k), 0.0) // v) for k, v in per_worker.items() if v > 0)
    if fits < 1:
        asked = ", ".join(f"{v:g} {_key(k)}" for k, v in per_worker.items())
        have = ", ".join(f"{free.get(_key(k), 0.0):g} {_key(k)}" for k in per_worker)
        raise ClusterError(f"the Ray cluster cannot place one worker: it needs {asked}, free: {have}")
    if cfg.workers is not None and cfg.workers > fits:
        log.warning(
            "the Ray cluster holds %d workers of this model, not %d; starting %d", fits, cfg.workers, fits
        )
    return min(cfg.workers or fits, fits)


def _key(option: str) -> str:
    return {"num_cpus": "CPU", "num_gpus": "GPU"}[option]
