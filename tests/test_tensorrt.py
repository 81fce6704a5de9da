"""The TensorRT backend's GPU frame path, run on the CPU with the same torch code, and the tests
that need TensorRT and a CUDA GPU (they skip, saying which is missing)."""

from __future__ import annotations

import importlib.util
import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsr.backends import create_backend  # noqa: E402
from vsr.backends.base import FrameAdapter  # noqa: E402
from vsr.backends.cuda_torch import (  # noqa: E402
    FramePipeline,
    from_network_output,
    luma_output,
    to_network_input,
)
from vsr.errors import BackendError  # noqa: E402
from vsr.models.arch import fold_batchnorm  # noqa: E402
from vsr.models.catalogue import get_spec, new_network  # noqa: E402

RNG = np.random.default_rng(11)
HAS_TRT = importlib.util.find_spec("tensorrt") is not None
HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
needs_trt = pytest.mark.skipif(
    not (HAS_TRT and HAS_CUDA),
    reason=f"needs TensorRT 10+ and a CUDA GPU (tensorrt importable: {HAS_TRT}, CUDA: {HAS_CUDA})",
)


@pytest.fixture(autouse=True)
def _private_caches(tmp_path_factory, monkeypatch):
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("VSR_CACHE", str(base / "vsr-cache"))
    monkeypatch.setenv("VSR_ENGINE_CACHE", str(base / "engines"))


def _net(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return fold_batchnorm(new_network(arch).eval())


def _frames(n: int, h: int, w: int) -> np.ndarray:
    return RNG.integers(0, 256, (n, h, w, 3), dtype=np.uint8)


# --- GPU pre/post-processing, checked on the CPU against the numpy FrameAdapter ---------------------


@pytest.mark.parametrize("model", ["compact", "fast"])
def test_to_network_input_matches_the_frame_adapter(model):
    spec = get_spec(model)
    seen: list[np.ndarray] = []
    c = 1 if spec.colour == "y" else 3
    frames = _frames(1, 9, 13)
    FrameAdapter(spec, lambda x: seen.append(x.copy()) or np.zeros((1, c, 36, 52), np.float32))(frames)
    got = to_network_input(torch.from_numpy(frames), (16, 24), luma=c == 1, dtype=torch.float32)
    assert got.shape == (1, c, 16, 24) and got.dtype == torch.float32 and got.is_contiguous()
    assert np.abs(got[:, :, :9, :13].numpy() - seen[0]).max() < 1e-6
    assert torch.equal(got[:, :, 9:, :13], got[:, :, 8:9, :13].expand(-1, -1, 7, -1))  # edge padding
    half = to_network_input(torch.from_numpy(frames), (9, 13), luma=c == 1, dtype=torch.float16)
    assert half.dtype == torch.float16 and (half.float() - got[:, :, :9, :13]).abs().max() < 1e-3
    with pytest.raises(ValueError, match="cannot pad"):
        to_network_input(torch.from_numpy(frames), (8, 13), luma=False, dtype=torch.float32)


def test_from_network_output_rounds_saturates_and_crops_like_the_frame_adapter():
    y = RNG.uniform(-0.2, 1.2, (2, 3, 40, 56)).astype(np.float32)
    ref = np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)[:, :36, :52]
    got = from_network_output(torch.from_numpy(y), 9, 13, 4)
    assert got.dtype == torch.uint8 and got.shape == (2, 36, 52, 3) and got.is_contiguous()
    assert np.array_equal(got.numpy(), ref)


def test_luma_output_matches_the_frame_adapter_within_one_level():
    spec = get_spec("fast")
    frames = _frames(2, 20, 30)
    residual = RNG.normal(0, 0.02, (2, 1, 80, 120)).astype(np.float32)
    ref = FrameAdapter(spec, lambda x: residual)(frames)
    got = luma_output(torch.from_numpy(frames), torch.from_numpy(residual), 4).numpy()
    assert got.shape == ref.shape and np.abs(got.astype(int) - ref).max() <= 1


@pytest.mark.parametrize(("model", "n", "max_batch"), [("compact", 5, 2), ("fast", 3, 4)])
def test_frame_pipeline_on_cpu_equals_the_torch_backend(model, n, max_batch):
    """Batches split and double-buffered, frames padded to a run shape and cropped back."""
    net = _net(get_spec(model).arch)
    frames = _frames(n, 30, 40)
    ref = create_backend("torch", model, device="cpu", net=net).infer(frames)
    pipe = FramePipeline(
        torch.device("cpu"), scale=4, luma=get_spec(model).colour == "y", dtype=torch.float32
    )
    calls: list[tuple[int, ...]] = []

    def run(x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        with torch.inference_mode():
            return net(x)

    out = pipe(frames, run, (40, 48), max_batch)
    assert out.shape == ref.shape == (n, 120, 160, 3) and out.dtype == np.uint8
    assert [c[0] for c in calls] == [min(max_batch, n - i) for i in range(0, n, max_batch)]
    assert all(c[2:] == (40, 48) for c in calls), "every call runs the padded run shape"
    # the pad region only changes outputs near the right/bottom border
    r = get_spec(model).receptive_radius * 4
    assert np.abs(out.astype(int) - ref)[:, :-r, :-r].max() <= 1
    unpadded = pipe(frames, run, (30, 40), max_batch)
    assert np.abs(unpadded.astype(int) - ref).max() <= 1, "without padding it matches everywhere"


# --- the backend without TensorRT -------------------------------------------------------------------


@pytest.mark.skipif(HAS_TRT, reason="checks the message shown when TensorRT is absent")
def test_create_backend_tensorrt_without_tensorrt_says_what_to_do():
    with pytest.raises(BackendError, match=r"TensorRT 10\+ and a CUDA GPU.*--backend torch or onnx"):
        create_backend("tensorrt", "compact", net=_net("compact"))


# --- the backend's engine handling, with torch runners standing in for TensorRT engines -------------

TINY = """
[tiny]
min = [8, 8]
opt = [32, 48]
max = [64, 80]
batch = [1, 1, 2]
"""


class StandInRunner:
    """Plays a TrtRunner on the CPU: float32 I/O, a torch net, optionally broken."""

    input_dtype = output_dtype = torch.float32

    def __init__(self, net: torch.nn.Module, broken: str = "") -> None:
        self.net, self.broken, self.shapes = net, broken, []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        with torch.inference_mode():
            y = self.net(x)
        return y * float("nan") if self.broken == "nan" else y * 0 if self.broken == "black" else y

    def numpy_fn(self, device):
        return lambda x: self(torch.from_numpy(x)).numpy()


@pytest.fixture
def stand_in(monkeypatch, tmp_path):
    """A TensorRTBackend factory whose engines are StandInRunners; records which were loaded."""
    import vsr.backends.tensorrt_backend as tb
    from vsr.trt.cache import DeviceInfo

    monkeypatch.setattr(tb, "import_tensorrt", lambda: object())
    monkeypatch.setattr(tb, "current_device", lambda trt: DeviceInfo("Stand-in GPU", (8, 9), "10.9.0"))
    (tmp_path / "profiles.toml").write_text(TINY)
    loaded: list[str] = []

    def make(model: str = "compact", fp16_broken: str = "", fp32_broken: str = "", **kw):
        net = _net(get_spec(model).arch)

        def runner(self, profile, precision):
            loaded.append(precision)
            return StandInRunner(net, fp16_broken if precision == "fp16" else fp32_broken)

        monkeypatch.setattr(tb.TensorRTBackend, "_runner", runner)
        kw.setdefault("profiles_path", tmp_path / "profiles.toml")
        b = tb.TensorRTBackend(get_spec(model), net=net, cache_dir=tmp_path, device="cpu", **kw)
        return b, net, loaded

    return make


@pytest.mark.parametrize("model", ["compact", "fast"])
def test_backend_pads_to_the_profile_and_matches_torch(stand_in, model):
    b, net, loaded = stand_in(model, pad="opt")
    frames = _frames(3, 30, 40)
    out = b.infer(frames)
    ref = create_backend("torch", model, device="cpu", net=net).infer(frames)
    r = get_spec(model).receptive_radius * 4
    assert out.shape == ref.shape and np.abs(out.astype(int) - ref)[:, :-r, :-r].max() <= 1
    runner = b._sessions["tiny"].runner
    c = 1 if get_spec(model).colour == "y" else 3
    assert runner.shapes[-2:] == [(2, c, 32, 48), (1, c, 32, 48)], "padded to opt, batches of <= 2"
    assert loaded == ["fp16", "fp32"] and b.name == "tensorrt (fp16, Stand-in GPU)"
    b.infer(_frames(1, 40, 60))  # beyond opt: runs at max, same session
    assert runner.shapes[-1][2:] == (64, 80) and loaded == ["fp16", "fp32"]
    b.close()
    b.close()


def test_backend_runs_the_frame_size_by_default_without_padding_to_opt(stand_in):
    b, net, _ = stand_in("compact")
    frames = _frames(1, 30, 40)
    out = b.infer(frames)
    ref = create_backend("torch", "compact", device="cpu", net=net).infer(frames)
    assert np.abs(out.astype(int) - ref).max() <= 1, "no padding: equal to torch everywhere"
    assert b._sessions["tiny"].runner.shapes[-1] == (1, 3, 30, 40)


@pytest.mark.parametrize("broken", ["nan", "black"])
def test_backend_falls_back_to_fp32_when_fp16_fails_parity_and_says_so(stand_in, broken, caplog):
    b, _, _ = stand_in(fp16_broken=broken)
    with caplog.at_level(logging.WARNING):
        b.prepare(30, 40, 1)
    assert "failed the parity gate" in caplog.text and "using the FP32 engine instead" in caplog.text
    assert ("NaN" if broken == "nan" else "all-black") in caplog.text
    assert b.name == "tensorrt (fp32, Stand-in GPU)"
    assert np.isfinite(b.infer(_frames(1, 30, 40)).astype(float)).all()


def test_backend_raises_when_even_fp32_is_broken(stand_in):
    b, _, _ = stand_in(fp16_broken="nan", fp32_broken="nan")
    with pytest.raises(BackendError, match="FP32 engine for compact is broken"):
        b.prepare(30, 40, 1)


def test_backend_fp32_and_no_parity_load_one_engine(stand_in):
    _b, _n, loaded = stand_in(fp16=False)
    _b.prepare(30, 40, 1)
    assert loaded == ["fp32"]
    loaded.clear()
    b, _n, loaded = stand_in(parity=False)
    b.prepare(30, 40, 1)
    assert loaded == ["fp16"]


def test_backend_tiles_through_the_engine(stand_in):
    b, net, _loaded = stand_in("fast", tile=24)
    frames = _frames(1, 70, 90)  # larger than the profile: only tiles fit
    ref = create_backend("torch", "fast", device="cpu", net=net).infer(frames)
    r = get_spec("fast").receptive_radius * 4  # tiles at the frame's right/bottom edge are padded
    assert np.abs(b.infer(frames).astype(int) - ref)[:, :-r, :-r].max() <= 1


def test_an_engine_tensorrt_cannot_load_is_rebuilt_once(stand_in, monkeypatch, tmp_path, caplog):
    import vsr.backends.tensorrt_backend as tb

    load_engine = tb.TensorRTBackend._runner  # before the stand-in replaces it
    b, _, _ = stand_in()
    built: list[str] = []
    engine = tmp_path / "x.engine"
    engine.write_bytes(b"bad")

    def ensure(trt, spec, onnx, cache):
        built.append(spec.precision)
        return engine

    def runner(trt, data):
        if len(built) < 2:
            raise BackendError("TensorRT could not deserialize the engine")
        return "loaded"

    monkeypatch.setattr(tb, "ensure_engine", ensure)
    monkeypatch.setattr(tb, "TrtRunner", runner)
    with caplog.at_level(logging.WARNING):
        assert load_engine(b, b._profiles["tiny"], "fp16") == "loaded"
    assert built == ["fp16", "fp16"] and "rebuilding it" in caplog.text
    monkeypatch.setattr(tb, "TrtRunner", lambda trt, data: (_ for _ in ()).throw(BackendError("still bad")))
    with pytest.raises(BackendError, match="still bad"):
        load_engine(b, b._profiles["tiny"], "fp32")


def test_backend_refuses_unknown_profile_and_oversized_frames(stand_in):
    from vsr.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown TensorRT profile 'p9'"):
        stand_in(profile="p9")
    b, _n, _l = stand_in()
    with pytest.raises(ConfigError, match="fits no TensorRT profile"):
        b.infer(_frames(1, 100, 100))


# --- CUDA and TensorRT (skip cleanly elsewhere) -----------------------------------------------------


@pytest.mark.gpu
@needs_cuda
def test_frame_pipeline_on_cuda_overlaps_streams_and_matches_cpu():
    net = _net("compact").cuda().half()
    frames = _frames(5, 36, 52)
    pipe = FramePipeline(torch.device("cuda"), scale=4, luma=False, dtype=torch.float16)
    with torch.inference_mode():
        out = pipe(frames, net, (40, 64), 2)
    ref = create_backend("torch", "compact", device="cpu", net=_net("compact")).infer(frames)
    r = get_spec("compact").receptive_radius * 4
    assert np.abs(out.astype(int) - ref)[:, :-r, :-r].max() <= 3  # fp16 vs fp32


@pytest.fixture
def trt_backend_factory(tmp_path):
    from vsr.backends.tensorrt_backend import TensorRTBackend

    def make(model: str = "compact", **kw):
        return TensorRTBackend(get_spec(model), net=_net(get_spec(model).arch), cache_dir=tmp_path, **kw)

    return make


@pytest.mark.gpu
@needs_trt
@pytest.mark.parametrize("model", ["compact", "fast"])
def test_tensorrt_backend_matches_torch_and_reuses_its_engines(trt_backend_factory, model, tmp_path):
    frames = _frames(3, 90, 160)
    b = trt_backend_factory(model, profile="p360")
    out = b.infer(frames)
    ref = create_backend("torch", model, device="cpu", net=_net(get_spec(model).arch)).infer(frames)
    r = get_spec(model).receptive_radius * 4
    assert out.shape == ref.shape and np.abs(out.astype(int) - ref)[:, :-r, :-r].max() <= 3
    b.close()
    b.close()
    engines = sorted(p.name for p in tmp_path.glob("*.engine"))
    assert any("-fp16-" in e for e in engines) and any("-fp32-" in e for e in engines)
    again = trt_backend_factory(model, profile="p360")
    assert np.array_equal(again.infer(frames), out)
    assert sorted(p.name for p in tmp_path.glob("*.engine")) == engines, "no rebuild"


@pytest.mark.gpu
@needs_trt
def test_failed_parity_gate_falls_back_to_fp32_and_says_so(trt_backend_factory, monkeypatch, caplog):
    import vsr.backends.tensorrt_backend as tb
    from vsr.parity import ParityVerdict

    monkeypatch.setattr(tb, "check_parity", lambda *a, **k: ParityVerdict(False, "injected NaN", ()))
    b = trt_backend_factory("compact", profile="p360")
    with caplog.at_level(logging.WARNING):
        b.prepare(90, 160, 1)
    assert "failed the parity gate (injected NaN); using the FP32 engine" in caplog.text
    assert b.name.startswith("tensorrt (fp32")


@pytest.mark.gpu
@needs_trt
def test_corrupt_engine_on_disk_is_rebuilt(trt_backend_factory, tmp_path):
    trt_backend_factory("fast", profile="p360", parity=False).prepare(90, 160, 1)
    engine = next(tmp_path.glob("*-fp16-*.engine"))
    engine.write_bytes(engine.read_bytes()[:1000])
    b = trt_backend_factory("fast", profile="p360", parity=False)
    assert b.infer(_frames(1, 90, 160)).shape == (1, 360, 640, 3)
    assert engine.stat().st_size > 1000
