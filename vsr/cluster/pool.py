"""The segment workers of a job (or a whole batch): Ray actors, each with the model loaded once.

:meth:`WorkerPool.open` connects the runtime (:mod:`vsr.cluster.runtime`), asks Ray for one
actor per worker with the resources its backend needs (a GPU each for CUDA/TensorRT models, else
its CPU threads), and waits until every worker has built its model. A worker that dies is replaced
by a fresh actor in its slot (:meth:`replace`); the segment it was running is the dispatcher's to
run again. Closing the pool ends every actor it started (and the runtime, when it started that).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..config import ClusterConfig, ModelConfig
from ..errors import ClusterError
from .identity import for_workers
from .runtime import actor_resources, ray_runtime, worker_count
from .worker import SegmentTask, SegmentWorker

__all__ = ["WorkerPool", "unwrap"]

log = logging.getLogger(__name__)

START_TIMEOUT_S = 600.0
"""How long the workers may take to start and build their model (a TensorRT build is minutes)."""


@dataclass
class Slot:
    """One worker place in the pool: its current actor, who it is, how often it was replaced."""

    actor: Any
    info: dict[str, Any]
    replaced: int = 0
    pending_info: Any = None  # a replacement's info() call, until it answers


class WorkerPool:
    """``size`` segment workers on the connected Ray runtime (build it with :meth:`open`)."""

    def __init__(self, ray: ModuleType, model: ModelConfig, cfg: ClusterConfig, resources: dict[str, float]):
        self.ray, self.model, self.cfg, self.resources = ray, model, cfg, resources
        self.setup = for_workers(model)  # absolute model-file path and the weights' sha256
        self._cls = ray.remote(SegmentWorker).options(max_concurrency=2, max_restarts=0, **resources)
        self.slots: list[Slot] = []
        self.start_s = 0.0

    @classmethod
    @contextlib.contextmanager
    def open(cls, cfg: ClusterConfig, model: ModelConfig) -> Iterator[WorkerPool]:
        """Connect (see :func:`~vsr.cluster.runtime.ray_runtime`), start the workers, yield the
        pool; every worker it started is ended on exit. Raises :class:`ClusterError`, or the
        model's own error when a worker cannot build it."""
        started = time.perf_counter()
        local_cpus = (cfg.workers or 1) * (model.threads or 1)
        with ray_runtime(cfg, local_cpus) as ray:
            total = {k: float(v) for k, v in ray.cluster_resources().items()}
            resources = actor_resources(model, total.get("GPU", 0.0))
            pool = cls(ray, model, cfg, resources)
            try:
                pool._start(worker_count(cfg, resources, total))
                pool.start_s = time.perf_counter() - started
                log.info("%s ready in %.1f s", pool.describe(), pool.start_s)
                yield pool
            finally:
                pool.close()

    def _start(self, n: int) -> None:
        actors = [self._cls.remote(self.setup.model, self.setup.sha256) for _ in range(n)]
        self.slots = [Slot(a, {}) for a in actors]
        infos = self._get([a.info.remote() for a in actors], START_TIMEOUT_S, "start")
        for slot, info in zip(self.slots, infos, strict=True):
            slot.info = info

    def _get(self, refs: list[Any], timeout: float, what: str) -> list[Any]:
        try:
            return list(self.ray.get(refs, timeout=timeout))
        except self.ray.exceptions.GetTimeoutError as exc:
            raise ClusterError(f"the Ray workers did not {what} within {timeout:.0f} s") from exc
        except self.ray.exceptions.RayTaskError as exc:
            raise unwrap(exc) from None

    @property
    def size(self) -> int:
        return len(self.slots)

    @property
    def scale(self) -> int:
        return int(self.slots[0].info["scale"])

    def describe(self) -> str:
        """``2 workers (1 CPU each) on 1 node: fast on torch``."""
        nodes = len({s.info.get("node") for s in self.slots})
        each = ", ".join(f"{v:g} {'GPU' if k == 'num_gpus' else 'CPU'}" for k, v in self.resources.items())
        top = self.slots[0].info
        return (
            f"{self.size} worker{'s' if self.size != 1 else ''} ({each} each) on {nodes} "
            f"node{'s' if nodes != 1 else ''}: {top['model']} on {top['backend']}"
        )

    def submit(self, slot: int, task: SegmentTask) -> Any:
        """Start ``task`` on the worker in ``slot``; returns the result's object ref."""
        return self.slots[slot].actor.run.remote(task)

    def replace(self, slot: int) -> None:
        """A fresh worker in ``slot`` (its actor died). It starts in the background: calls on it
        wait until its model is built."""
        old = self.slots[slot]
        with contextlib.suppress(Exception):
            self.ray.kill(old.actor, no_restart=True)
        actor = self._cls.remote(self.setup.model, self.setup.sha256)
        self.slots[slot] = Slot(actor, {**old.info, "pid": None}, old.replaced + 1, actor.info.remote())

    def refresh(self, slot: int) -> None:
        """Learn a replaced worker's pid and node once it has started (non-blocking)."""
        ref = self.slots[slot].pending_info
        if ref is None:
            return
        ready, _ = self.ray.wait([ref], timeout=0)
        if ready:
            with contextlib.suppress(Exception):
                self.slots[slot].info = self.ray.get(ref)
            self.slots[slot].pending_info = None

    def pids(self) -> list[int | None]:
        """Each slot's worker process id (None: a replacement still starting)."""
        for i in range(self.size):
            self.refresh(i)
        return [s.info.get("pid") for s in self.slots]

    def progress(self, slots: list[int], timeout: float = 0.2) -> dict[int, int]:
        """Frames each of ``slots`` has written of its current segment (those that answer in time)."""
        refs = {self.slots[i].actor.progress.remote(): i for i in slots}
        ready, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
        found: dict[int, int] = {}
        for ref in ready:
            with contextlib.suppress(Exception):  # a worker that just died answers nothing
                found[refs[ref]] = int(self.ray.get(ref))
        return found

    def stop(self, slots: list[int]) -> None:
        """Ask the workers in ``slots`` to end their segment now (it is not kept)."""
        for i in slots:
            with contextlib.suppress(Exception):
                self.slots[i].actor.stop.remote()

    def close(self) -> None:
        """End every worker (their scratch folders removed where they still answer)."""
        closing = []
        for slot in self.slots:
            with contextlib.suppress(Exception):
                closing.append(slot.actor.close.remote())
        with contextlib.suppress(Exception):
            self.ray.wait(closing, num_returns=len(closing), timeout=5.0)
        for slot in self.slots:
            with contextlib.suppress(Exception):
                self.ray.kill(slot.actor, no_restart=True)
        self.slots = []


def unwrap(exc: BaseException) -> BaseException:
    """The exception a worker raised (a :class:`~vsr.errors.VsrError` keeps its one line), not
    Ray's wrapper with the remote traceback."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else ClusterError(str(exc).splitlines()[-1])
