"""PyTorch backend: CPU (channels_last, float32) or CUDA (FP16, channels_last, CUDA graphs).

On the CPU, frames go through the numpy :class:`~vsr.backends.base.FrameAdapter`. On CUDA they go
through :class:`~vsr.backends.cuda_torch.FramePipeline` (pinned buffers, upload / compute / download
streams, uint8 -> fp16 and luma handling on the GPU), and the network itself is replayed from a
CUDA graph captured once per input shape (:class:`GraphedNet`), which removes the per-layer launch
cost that dominates small networks at high frame rates.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from ..errors import BackendError, ConfigError
from ..models.catalogue import ModelSpec, build_model
from .base import ClosingBackend, FrameAdapter, ModelInfo
from .precision import network_dtype

__all__ = ["GraphCache", "GraphedNet", "TorchBackend", "graph_key", "network_dtype", "run_shape"]

log = logging.getLogger(__name__)

V = TypeVar("V")


def run_shape(height: int, width: int, multiple: int) -> tuple[int, int]:
    """The (height, width) the network runs for a frame: each side rounded up to ``multiple``."""
    return (-(-height // multiple) * multiple, -(-width // multiple) * multiple)


def graph_key(x: Any) -> tuple[tuple[int, ...], Any, Any]:
    """What a captured graph is specific to: the input's shape (batch, C, H, W), dtype and device."""
    return (tuple(x.shape), x.dtype, x.device)


class GraphCache(Generic[V]):
    """A small LRU map from :func:`graph_key` to captured graphs (each holds GPU memory)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ConfigError(f"graph cache capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[Hashable, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> V | None:
        """The value for ``key`` (now the most recently used), or None."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def make_room(self) -> list[V]:
        """Remove and return the least recently used values so that one more fits."""
        evicted = []
        while len(self._items) >= self.capacity:
            evicted.append(self._items.popitem(last=False)[1])
        return evicted

    def put(self, key: Hashable, value: V) -> None:
        """Store ``value`` as the most recently used (call :meth:`make_room` first: this never evicts)."""
        self._items[key] = value
        self._items.move_to_end(key)

    def clear(self) -> list[V]:
        """Remove and return every value."""
        values = list(self._items.values())
        self._items.clear()
        return values


def _end_pool_routing(torch: Any, device: Any, pool: Any) -> None:
    """Undo what a failed ``capture_end`` leaves behind: the allocator still routing into the pool.

    When ending a capture raises (e.g. the capture was invalidated), torch never tells the caching
    allocator that the capture is over, and while it believes one is underway it defers freeing
    every block used on several streams: memory would grow with each frame. There is no public
    call for this; the private one is looked up and called best effort (a no-op where the capture
    did end).
    """
    end = getattr(torch._C, "_cuda_endAllocateToPool", None)
    if end is None:
        end = getattr(torch._C, "_cuda_endAllocateCurrentStreamToPool", None)  # older torch
    if end is None:
        return
    index = device.index if device.index is not None else torch.cuda.current_device()
    with contextlib.suppress(Exception):  # "not currently recording": the capture did end
        end(index, pool)


@dataclass
class _Captured:
    """One captured graph and its static input and output tensors (the graph reads and writes them)."""

    graph: Any  # torch.cuda.CUDAGraph
    static_in: Any  # torch.Tensor
    static_out: Any  # torch.Tensor


class GraphedNet:
    """Calls ``model`` through CUDA graphs, one captured per input shape, eagerly when that fails.

    ``net(x)``: x (N, C, H, W) CUDA tensor -> the model's output, enqueued on the *current* stream
    (``CUDAGraph.replay`` launches on the current stream, whatever stream captured it). The first
    call with a shape warms up on a side stream (cuDNN autotuning, lazy allocations), then captures
    the model on that side stream into a private memory pool. Later calls copy ``x`` into the static
    input and replay. The returned tensor is the graph's static output: the next call with the same
    shape overwrites it, so consume it on the same stream before then (work queued on one stream
    runs in order). If a capture raises, one warning is logged and every later call runs eagerly.
    At most ``capacity`` graphs are kept (least recently used dropped).
    """

    def __init__(
        self, model: Callable[[Any], Any], device: Any, *, capacity: int = 8, warmup: int = 3
    ) -> None:
        import torch

        self._torch = torch
        self.model, self.device, self.warmup = model, device, warmup
        self.enabled = True
        self.captures = 0
        self._cache: GraphCache[_Captured] = GraphCache(capacity)
        self._side: Any = None

    def __len__(self) -> int:
        return len(self._cache)

    def eager(self, x: Any) -> Any:
        """The model without a graph, on the current stream."""
        return self.model(x.contiguous(memory_format=self._torch.channels_last))

    def __call__(self, x: Any) -> Any:
        torch = self._torch
        with torch.inference_mode():
            if not self.enabled:
                return self.eager(x)
            key = graph_key(x)
            entry = self._cache.get(key)
            if entry is None:
                self._release(self._cache.make_room())
                cuda = self.device.type == "cuda"
                current = torch.cuda.current_stream(self.device) if cuda else None
                try:
                    entry = self._capture(x)
                except Exception as exc:  # capture can fail in many ways (torch, cuDNN, driver)
                    self._disable(exc, current)
                    return self.eager(x)
                self._cache.put(key, entry)
                self.captures += 1
            entry.static_in.copy_(x)
            entry.graph.replay()
            return entry.static_out

    def _capture(self, x: Any) -> _Captured:
        """Warm up on a side stream, then capture ``model(static_in)`` there (the documented pattern)."""
        torch = self._torch
        current = torch.cuda.current_stream(self.device)
        if self._side is None:
            self._side = torch.cuda.Stream(self.device)
        static_in = torch.empty_like(x, memory_format=torch.channels_last)
        static_in.copy_(x)
        self._side.wait_stream(current)
        with torch.cuda.stream(self._side):
            for _ in range(self.warmup):
                self.model(static_in)
        current.wait_stream(self._side)
        graph, pool = torch.cuda.CUDAGraph(), torch.cuda.graph_pool_handle()
        try:
            # thread_local: CUDA calls of other threads (decode, encode, another model) cannot
            # break this capture; this thread only runs the model while capturing.
            with torch.cuda.graph(graph, pool=pool, stream=self._side, capture_error_mode="thread_local"):
                static_out = self.model(static_in)
        except Exception:
            _end_pool_routing(torch, self.device, pool)
            raise
        return _Captured(graph, static_in, static_out)

    def _release(self, entries: list[_Captured]) -> None:
        """Drop captured graphs once no replay of theirs can still be running."""
        if entries and self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)
        entries.clear()

    def _disable(self, exc: BaseException, stream: Any) -> None:
        """After a failed capture: warn once, drop the graphs, run eagerly on ``stream`` from now on."""
        log.warning(
            "CUDA graph capture failed (%s: %s); running the network eagerly", type(exc).__name__, exc
        )
        self.enabled = False
        if stream is not None:
            # torch.cuda.graph does not restore the current stream when ending the capture raises
            self._torch.cuda.set_stream(stream)
            try:  # let replays of earlier graphs finish before their memory is freed
                self._torch.cuda.synchronize(self.device)
            except Exception as sync_exc:  # keep the capture failure as the story
                log.debug("synchronize after the failed capture: %s", sync_exc)
        self._cache.clear()

    def clear(self) -> None:
        """Free every captured graph."""
        self._release(self._cache.clear())


class TorchBackend(ClosingBackend):
    """Runs a catalogue model with torch.

    ``device``: "cpu", "cuda" or "auto" (cuda when available). On CUDA the model runs in FP16
    when the catalogue says it is FP16-safe and ``fp16`` is not False (model files: bf16 or FP32
    unless ``fp16`` is True, see :func:`~vsr.backends.precision.network_dtype`), frames are converted on the
    GPU and the network is replayed from CUDA graphs unless ``cuda_graphs`` is False. ``max_batch``
    caps the frames per network call on CUDA (a larger ``infer`` call is split and double-buffered).
    ``net`` overrides the catalogue weights with a ready module (tests, training). ``compile``
    (CUDA only) runs the network through ``torch.compile`` (Inductor, max-autotune).
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        device: str = "auto",
        fp16: bool | None = None,
        tile: int = 0,
        threads: int | None = None,
        net: object | None = None,
        cuda_graphs: bool = True,
        max_batch: int = 8,
        compile: bool = False,
    ) -> None:
        import torch

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError("torch backend: CUDA was asked for but torch sees no CUDA device")
        if max_batch < 1:
            raise ConfigError(f"max_batch must be >= 1, got {max_batch}")
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.spec = spec
        self.device = torch.device(device)
        self.dtype = network_dtype(torch, self.device, spec, fp16)
        self.half = self.dtype == torch.float16
        self.max_batch = max_batch
        model = net if net is not None else build_model(spec)
        model = model.eval().to(self.device, memory_format=torch.channels_last)  # type: ignore[attr-defined]
        if self.dtype != torch.float32:
            model = model.to(self.dtype)
        self.compiled = bool(compile and self.device.type == "cuda")
        if self.compiled:
            # Inductor with autotuned Triton conv kernels and fused activations: ~2x cuDNN for these
            # 64-feature stacks on an H100 (docs/results/gpu_h100.md). Compiles on the first call per
            # shape (seconds to a minute); CUDA graphs still remove the launches (own graphs, so
            # not Inductor's cudagraph mode). On the CPU the flag is ignored: no gain measured there.
            model = torch.compile(model, mode="max-autotune-no-cudagraphs", dynamic=False, fullgraph=True)
        elif compile:
            log.info("--compile applies to CUDA only; running eagerly on %s", self.device.type)
        self.model = model
        self.info = ModelInfo.of(spec)
        # Tiles (tile > 0) keep the numpy FrameAdapter on CUDA too: tiling serves frames too large
        # for the GPU, where fitting at all matters more than the per-tile transfers.
        self._adapter = FrameAdapter(spec, self._net, tile=tile)
        self._pipeline: Any = None
        self._graphed: GraphedNet | None = None
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # few distinct shapes: autotune each conv once
            if not tile and spec.channels == 3:  # gray model files take the FrameAdapter path
                from .cuda_torch import FramePipeline

                luma = spec.colour == "y"
                self._pipeline = FramePipeline(
                    self.device, scale=spec.scale, luma=luma, dtype=self.dtype, pad=spec.pad
                )
                if cuda_graphs:
                    self._graphed = GraphedNet(self.model, self.device)

    @property
    def name(self) -> str:
        """What runs, e.g. ``torch (cuda, fp16, channels_last, cuda graphs)``."""
        precision = {"torch.float16": "fp16", "torch.bfloat16": "bf16"}.get(str(self.dtype), "fp32")
        graphs = ", cuda graphs" if self._graphed is not None and self._graphed.enabled else ""
        compiled = ", compiled" if self.compiled else ""
        return f"torch ({self.device.type}, {precision}, channels_last{compiled}{graphs})"

    def _net(self, x: np.ndarray) -> np.ndarray:
        torch = self._torch
        # Trained nets produce denormal activations; on CPU they cost the fast net ~25% of its time.
        # Flush them to zero for this call only (the flag is per thread; restored to the default).
        ftz = self.device.type == "cpu" and torch.set_flush_denormal(True)
        try:
            with torch.inference_mode():
                t = torch.from_numpy(x).to(self.device, non_blocking=True)
                t = t.contiguous(memory_format=torch.channels_last)
                if self.dtype != torch.float32:
                    t = t.to(self.dtype)
                y = self.model(t)
                return y.float().cpu().numpy()
        finally:
            if ftz:
                torch.set_flush_denormal(False)

    def _device_net(self) -> Callable[[Any], Any]:
        """The network call on device tensors: the graphed one when CUDA graphs are on."""
        if self._graphed is not None:
            return self._graphed
        model, channels_last = self.model, self._torch.channels_last

        def eager(x: Any) -> Any:
            return model(x.contiguous(memory_format=channels_last))

        return eager

    def prepare(self, height: int, width: int, batch: int) -> None:
        """Warm up once on frames of this size (allocations, cuDNN autotuning, graph capture).

        ``batch`` frames per call are what the caller will send: ``max_batch`` grows to it.
        """
        self.max_batch = max(self.max_batch, batch)
        self.infer(np.zeros((batch, height, width, 3), dtype=np.uint8))

    def infer(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, sH, sW, 3) uint8 RGB, a new array (s: the model's scale)."""
        if self._pipeline is None:
            return self._adapter(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ConfigError(f"frames must be (N, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        hw = self._run_hw(frames.shape[1], frames.shape[2])
        with self._torch.inference_mode():
            return self._pipeline(frames, self._device_net(), hw, self.max_batch)

    def _run_hw(self, height: int, width: int) -> tuple[int, int]:
        """The network's input size for frames of this size: the spec's minimum, then its multiple."""
        m = self.spec.min_size
        return run_shape(max(height, m), max(width, m), self.spec.size_multiple)

    def time_network(self, height: int, width: int, batch: int = 1, iters: int = 50) -> float | None:
        """Milliseconds per frame of the network alone on (batch, C, h, w) input already on the GPU.

        ``h``, ``w``: the frame size rounded up to the size multiple; the input dtype is the
        backend's (FP16 on CUDA for FP16-safe models). Runs the call ``infer`` uses (the CUDA graph
        when on; untiled), warms up first, then times ``iters`` calls with CUDA events. None on the
        CPU, where ``infer`` already times the network on the device its input lives on.
        """
        if self.device.type != "cuda" or self.model is None:
            return None
        torch = self._torch
        c = 1 if self.spec.colour == "y" or self.spec.channels == 1 else 3
        hw = self._run_hw(height, width)
        net, iters = self._device_net(), max(iters, 1)
        with torch.inference_mode():
            x = torch.rand((batch, c, *hw), device=self.device).to(self.dtype)
            for _ in range(3):
                net(x)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                net(x)
            end.record()
            end.synchronize()
        return start.elapsed_time(end) / (iters * batch)

    def close(self) -> None:
        """Free the model, captured graphs and buffers. Idempotent."""
        if self.model is not None and self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)
        if self._graphed is not None:
            self._graphed.clear()
            self._graphed.model = None  # type: ignore[assignment]
        self._pipeline = None
        self.model = None
