"""Backends: the contract, torch/ONNX parity, tiling equality, padding, luma handling, auto choice."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsr.backends import create_backend, resolve_backend  # noqa: E402
from vsr.backends.base import Backend, FrameAdapter  # noqa: E402
from vsr.colour import bicubic_up  # noqa: E402
from vsr.errors import BackendError, ConfigError  # noqa: E402
from vsr.models.arch import fold_batchnorm  # noqa: E402
from vsr.models.catalogue import get_spec, new_network  # noqa: E402

RNG = np.random.default_rng(7)


@pytest.fixture(autouse=True)
def _private_onnx_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VSR_CACHE", str(tmp_path_factory.getbasetemp() / "vsr-cache"))


def _net(arch: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return fold_batchnorm(new_network(arch).eval())


def _frames(n: int = 2, h: int = 36, w: int = 52) -> np.ndarray:
    return RNG.integers(0, 256, (n, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("model", ["fast", "compact", "srresnet"])
def test_torch_and_onnx_agree_on_random_frames(model):
    pytest.importorskip("onnxruntime")
    net = _net(get_spec(model).arch)
    tb = create_backend("torch", model, device="cpu", net=net)
    ob = create_backend("onnx", model, net=net)
    c = 1 if get_spec(model).colour == "y" else 3
    x = RNG.random((2, c, 24, 40), dtype=np.float32)
    diff = np.abs(tb._net(x) - ob._net(x)).max() * 255.0
    assert diff < 1e-3, f"{model}: torch vs onnx max abs error {diff:.2e} on 0..255"
    frames = _frames()
    a, b = tb.infer(frames), ob.infer(frames)
    assert a.shape == b.shape == (2, 144, 208, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b).max() <= 1  # at most one rounding step apart


@pytest.mark.parametrize(("model", "tile"), [("fast", 16), ("compact", 24)])
def test_tiled_output_equals_untiled(model, tile):
    net = _net(get_spec(model).arch)
    whole = create_backend("torch", model, device="cpu", net=net)
    tiled = create_backend("torch", model, device="cpu", net=net, tile=tile)
    c = 1 if get_spec(model).colour == "y" else 3
    x = RNG.random((1, c, 50, 70), dtype=np.float32)
    ref = whole._adapter._run(x)
    out = tiled._adapter._run(x)
    assert np.abs(out - ref).max() * 255 < 1e-3, "tiles must join without seams"
    frames = _frames(1, 50, 70)
    assert np.abs(whole.infer(frames).astype(int) - tiled.infer(frames)).max() <= 1


def test_tiles_without_enough_overlap_do_show_seams():
    """The equality above is not vacuous: with no overlap the tile borders differ."""
    net = _net("compact")
    spec = get_spec("compact")
    fn = create_backend("torch", "compact", device="cpu", net=net)._net
    x = RNG.random((1, 3, 48, 48), dtype=np.float32)
    ref = FrameAdapter(spec, fn)._run(x)
    seams = FrameAdapter(spec, fn, tile=16, tile_overlap=0)._run(x)
    assert np.abs(seams - ref).max() * 255 > 0.5


def test_backend_satisfies_the_protocol_and_close_is_idempotent():
    b = create_backend("torch", "fast", net=_net("fast"))
    assert isinstance(b, Backend)
    b.prepare(20, 30, 1)
    assert b.info.scale == 4 and b.info.name == "fast"
    b.close()
    b.close()


def test_frames_are_padded_to_the_size_multiple_and_cropped_back():
    spec = replace(get_spec("compact"), size_multiple=8)
    seen: list[tuple[int, ...]] = []

    def nearest(x: np.ndarray) -> np.ndarray:
        seen.append(x.shape)
        return x.repeat(4, axis=2).repeat(4, axis=3)

    frames = _frames(1, 21, 30)
    out = FrameAdapter(spec, nearest)(frames)
    assert seen == [(1, 3, 24, 32)]
    assert out.shape == (1, 84, 120, 3)
    np.testing.assert_array_equal(out[0, ::4, ::4], frames[0])


def test_luma_model_with_zero_residual_is_bicubic():
    spec = get_spec("fast")
    adapter = FrameAdapter(
        spec, lambda x: np.zeros((x.shape[0], 1, x.shape[2] * 4, x.shape[3] * 4), np.float32)
    )
    frames = _frames(1, 30, 40)
    out = adapter(frames)
    ref = bicubic_up(frames[0], 4)
    # YCbCr round trip and float bicubic vs uint8 bicubic: within 2 levels, same on average
    diff = out[0].astype(int) - ref
    assert np.abs(diff).max() <= 2 and abs(diff.mean()) < 0.05


def test_luma_residual_changes_only_luma():
    spec = get_spec("fast")
    plus = FrameAdapter(
        spec, lambda x: np.full((x.shape[0], 1, x.shape[2] * 4, x.shape[3] * 4), 10 / 255, np.float32)
    )
    zero = FrameAdapter(spec, lambda x: np.zeros((x.shape[0], 1, x.shape[2] * 4, x.shape[3] * 4), np.float32))
    frames = np.full((1, 8, 8, 3), 100, np.uint8)
    d = plus(frames)[0].astype(float) - zero(frames)[0]
    # +10 in Y (studio range) is +10*255/219 in each of R, G, B: grey stays grey
    np.testing.assert_allclose(d, 10 * 255 / 219, atol=1.0)


def test_bicubic_backend_matches_cv2():
    b = create_backend("auto", "bicubic")
    frames = _frames(2, 18, 32)
    out = b.infer(frames)
    np.testing.assert_array_equal(out[1], bicubic_up(frames[1], 4))


def test_bad_names_and_missing_backends_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown backend 'cuda9'"):
        create_backend("cuda9", "fast")
    with pytest.raises(ConfigError, match="unknown model"):
        create_backend("torch", "nope")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match="TensorRT"):
            create_backend("tensorrt", "compact", net=_net("compact"))
    with pytest.raises(ConfigError, match="uint8"):
        create_backend("torch", "fast", net=_net("fast")).infer(np.zeros((1, 8, 8, 3), np.float32))


def test_auto_picks_the_measured_fastest_cpu_backend_per_model():
    if torch.cuda.is_available():
        pytest.skip("auto prefers the GPU here; this checks the CPU choice")
    pytest.importorskip("onnxruntime")
    for name in ("fast", "compact", "srgan"):
        spec = get_spec(name)
        assert resolve_backend("auto", spec)[0] == spec.cpu_backend
        other = "onnx" if spec.cpu_backend == "torch" else "torch"
        assert resolve_backend("auto", replace(spec, cpu_backend=other))[0] == other
    assert resolve_backend("onnx", get_spec("bicubic"))[0] == "bicubic"


# --- the CUDA path's pieces, run on the CPU (tests/test_cuda_path.py runs them on a GPU) ----------


def test_time_network_is_none_on_cpu_and_the_name_says_what_runs():
    b = create_backend("torch", "fast", device="cpu", net=_net("fast"))
    assert b.time_network(20, 30, 2) is None
    assert b.name == "torch (cpu, fp32, channels_last)"
    assert b._pipeline is None and b._graphed is None, "the CPU path stays the numpy FrameAdapter"


def test_run_shape_rounds_each_side_up_to_the_size_multiple():
    from vsr.backends.torch_backend import run_shape

    assert run_shape(21, 30, 8) == (24, 32)
    assert run_shape(24, 32, 8) == (24, 32)
    assert run_shape(7, 9, 1) == (7, 9)


def test_graph_cache_keys_on_shape_dtype_device_and_drops_the_least_recent():
    from vsr.backends.torch_backend import GraphCache, graph_key

    a = torch.zeros(2, 3, 8, 8)
    assert graph_key(a) == graph_key(torch.ones(2, 3, 8, 8))
    assert graph_key(a) != graph_key(torch.zeros(1, 3, 8, 8))
    assert graph_key(a) != graph_key(a.half())
    cache: GraphCache[str] = GraphCache(2)
    assert cache.make_room() == []
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # now "b" is the least recently used
    assert cache.make_room() == ["B"] and len(cache) == 1
    cache.put("c", "C")
    assert cache.get("b") is None and cache.get("c") == "C"
    assert sorted(cache.clear()) == ["A", "C"] and len(cache) == 0
    with pytest.raises(ConfigError, match="capacity"):
        GraphCache(0)


class _FakeGraph:
    """Plays a CUDAGraph on the CPU: replay recomputes the captured call into the static output."""

    def __init__(self, model, static_in, static_out):
        self.model, self.static_in, self.static_out = model, static_in, static_out

    def replay(self):
        self.static_out.copy_(self.model(self.static_in))


def _fake_capture(self, x):
    from vsr.backends.torch_backend import _Captured

    static_in = torch.empty_like(x, memory_format=torch.channels_last)
    static_in.copy_(x)
    static_out = self.model(static_in).clone()
    return _Captured(_FakeGraph(self.model, static_in, static_out), static_in, static_out)


def test_graphed_net_captures_once_per_shape_replays_and_evicts(monkeypatch):
    from vsr.backends.torch_backend import GraphedNet

    monkeypatch.setattr(GraphedNet, "_capture", _fake_capture)
    model = _net("compact")
    g = GraphedNet(model, torch.device("cpu"), capacity=2)
    x1, x2 = torch.rand(1, 3, 12, 16), torch.rand(1, 3, 12, 16)
    with torch.inference_mode():
        ref1, ref2 = model(x1), model(x2)
    assert torch.allclose(g(x1), ref1, atol=1e-6) and g.captures == 1
    assert torch.allclose(g(x2), ref2, atol=1e-6) and g.captures == 1, "same shape: replay, no capture"
    g(torch.rand(2, 3, 12, 16))
    g(torch.rand(1, 3, 8, 8))
    assert g.captures == 3 and len(g) == 2, "at most capacity graphs are kept"
    g(x1)
    assert g.captures == 4, "the evicted shape is captured again"
    g.clear()
    assert len(g) == 0


def test_graphed_net_runs_eagerly_after_a_failed_capture_and_warns_once(monkeypatch, caplog):
    from vsr.backends.torch_backend import GraphedNet

    def broken(self, x):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(GraphedNet, "_capture", broken)
    model = _net("fast")
    g = GraphedNet(model, torch.device("cpu"))
    x = torch.rand(1, 1, 10, 12)
    with torch.inference_mode():
        ref = model(x)
    with caplog.at_level("WARNING"):
        out1, out2 = g(x), g(torch.rand(2, 1, 10, 12))
    assert torch.allclose(out1, ref, atol=1e-6) and out2.shape == (2, 1, 40, 48)
    assert not g.enabled and g.captures == 0 and len(g) == 0
    warnings = [r for r in caplog.records if "CUDA graph capture failed" in r.getMessage()]
    assert len(warnings) == 1 and "running the network eagerly" in warnings[0].getMessage()


@pytest.mark.parametrize("model", ["fast", "compact"])
def test_the_cuda_frame_path_run_on_the_cpu_matches_the_frame_adapter(model, monkeypatch):
    """TorchBackend.infer through FramePipeline + GraphedNet (as on CUDA), with CPU stand-ins."""
    from vsr.backends.cuda_torch import FramePipeline
    from vsr.backends.torch_backend import GraphedNet, TorchBackend

    monkeypatch.setattr(GraphedNet, "_capture", _fake_capture)
    spec = replace(get_spec(model), size_multiple=8)
    ref_backend = TorchBackend(spec, device="cpu", net=_net(spec.arch))
    b = TorchBackend(spec, device="cpu", net=_net(spec.arch), max_batch=2)
    b._pipeline = FramePipeline(torch.device("cpu"), scale=4, luma=spec.colour == "y", dtype=torch.float32)
    b._graphed = GraphedNet(b.model, torch.device("cpu"))
    frames = _frames(3, 21, 30)  # padded to 24x32; batches of 2 and 1
    out = b.infer(frames)
    ref = ref_backend.infer(frames)
    assert out.shape == ref.shape == (3, 84, 120, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - ref).max() <= 1
    assert b._graphed.captures == 2 and "cuda graphs" in b.name
    assert np.array_equal(b.infer(frames), out) and b._graphed.captures == 2, "replayed, not recaptured"
    with pytest.raises(ConfigError, match="uint8"):
        b.infer(frames.astype(np.float32))
    b.close()
    b.close()


class _FakeCuda:
    """Stands in for torch.cuda's streams and graphs on the CPU and logs what GraphedNet asks of them."""

    def __init__(self, monkeypatch, *, fail_capture_end: bool = False):
        self.log: list[tuple] = []
        self.current = "compute"
        self.fail_capture_end = fail_capture_end
        fake = self

        class Stream:
            def __init__(self, device=None):
                self.name = "side"

            def wait_stream(self, other):
                fake.log.append(("wait", self.name, getattr(other, "name", other)))

        class Named:
            def __init__(self, name):
                self.name = name

            def wait_stream(self, other):
                fake.log.append(("wait", self.name, getattr(other, "name", other)))

        class StreamCtx:
            def __init__(self, stream):
                self.stream, self.saved = stream, None

            def __enter__(self):
                self.saved, fake.current = fake.current, self.stream.name

            def __exit__(self, *exc):
                fake.current = self.saved

        class CUDAGraph:
            def replay(self):
                fake.log.append(("replay", fake.current))

        class GraphCtx:
            def __init__(self, graph, pool=None, stream=None, capture_error_mode="global"):
                self.pool, self.stream, self.mode = pool, stream, capture_error_mode

            def __enter__(self):
                fake.log.append(("capture_begin", self.stream.name, self.pool, self.mode))
                self.saved, fake.current = fake.current, self.stream.name

            def __exit__(self, *exc):
                fake.log.append(("capture_end",))
                if fake.fail_capture_end:
                    raise RuntimeError("operation failed due to a previous error during capture")
                fake.current = self.saved  # like torch: only restored when capture_end succeeds

        cuda = torch.cuda
        monkeypatch.setattr(cuda, "current_stream", lambda device=None: Named(fake.current))
        monkeypatch.setattr(cuda, "Stream", Stream)
        monkeypatch.setattr(cuda, "stream", StreamCtx)
        monkeypatch.setattr(cuda, "CUDAGraph", CUDAGraph)
        monkeypatch.setattr(cuda, "graph", GraphCtx)
        monkeypatch.setattr(cuda, "graph_pool_handle", lambda: (0, 7))
        monkeypatch.setattr(cuda, "synchronize", lambda device=None: fake.log.append(("sync",)))
        monkeypatch.setattr(cuda, "set_stream", lambda s: setattr(fake, "current", s.name))
        monkeypatch.setattr(cuda, "current_device", lambda: 0)
        monkeypatch.setattr(
            torch._C,
            "_cuda_endAllocateToPool",
            lambda index, pool: fake.log.append(("end_pool", index, pool)),
        )


class _LoggingNet(torch.nn.Module):
    def __init__(self, fake: _FakeCuda):
        super().__init__()
        self.fake, self.net = fake, _net("fast")

    def forward(self, x):
        self.fake.log.append(("model", self.fake.current))
        return self.net(x)


def test_graphed_net_follows_the_documented_capture_pattern(monkeypatch):
    """Warm-up and capture on a side stream that waited for the caller's, replay on the caller's."""
    from types import SimpleNamespace

    from vsr.backends.torch_backend import GraphedNet

    fake = _FakeCuda(monkeypatch)
    g = GraphedNet(_LoggingNet(fake), SimpleNamespace(type="cuda", index=None), warmup=2)
    x = torch.rand(1, 1, 8, 10)
    out = g(x)
    assert out.shape == (1, 1, 32, 40)
    assert fake.log == [
        ("wait", "side", "compute"),
        ("model", "side"),
        ("model", "side"),
        ("wait", "compute", "side"),
        ("capture_begin", "side", (0, 7), "thread_local"),
        ("model", "side"),
        ("capture_end",),
        ("replay", "compute"),
    ]
    fake.log.clear()
    g(torch.rand(1, 1, 8, 10))
    assert fake.log == [("replay", "compute")], "same shape: copy in and replay, nothing else"


def test_a_failed_capture_end_restores_the_stream_and_the_allocator(monkeypatch, caplog):
    from types import SimpleNamespace

    from vsr.backends.torch_backend import GraphedNet

    fake = _FakeCuda(monkeypatch, fail_capture_end=True)
    g = GraphedNet(_LoggingNet(fake), SimpleNamespace(type="cuda", index=None), warmup=1)
    with caplog.at_level("WARNING"):
        out = g(torch.rand(2, 1, 8, 10))
    assert out.shape == (2, 1, 32, 40) and not g.enabled
    assert ("end_pool", 0, (0, 7)) in fake.log, "the allocator is told the capture is over"
    assert fake.log[-1] == ("model", "compute"), "the eager run goes to the caller's stream"
    assert fake.current == "compute"
    assert sum("CUDA graph capture failed" in r.getMessage() for r in caplog.records) == 1


def test_compile_is_a_cuda_option_and_ignored_on_cpu() -> None:
    from vsr.backends.torch_backend import TorchBackend
    from vsr.models.catalogue import get_spec

    b = TorchBackend(get_spec("fast"), device="cpu", compile=True)
    try:
        assert not b.compiled and "compiled" not in b.name
        frames = np.random.default_rng(1).integers(0, 256, (1, 20, 24, 3), dtype=np.uint8)
        ref = TorchBackend(get_spec("fast"), device="cpu")
        assert np.array_equal(b.infer(frames), ref.infer(frames))
    finally:
        b.close()


def test_backends_are_context_managers() -> None:
    """``with create_backend(...)`` closes the backend at the block's end (issue 12)."""
    from vsr.backends import create_backend

    closed = []
    with create_backend("auto", "bicubic") as b:
        b.close = lambda: closed.append(True)  # type: ignore[method-assign]
        assert b.infer(np.zeros((1, 4, 4, 3), np.uint8)).shape == (1, 16, 16, 3)
    assert closed == [True]
