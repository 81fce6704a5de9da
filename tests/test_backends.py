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
    tb = create_backend("torch", model, net=net)
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
    whole = create_backend("torch", model, net=net)
    tiled = create_backend("torch", model, net=net, tile=tile)
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
    fn = create_backend("torch", "compact", net=net)._net
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
