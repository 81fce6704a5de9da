"""The torch backend's CUDA path: GPU frame conversion, CUDA graphs, network-only timing.

Every test here needs a CUDA GPU and skips without one; the same code's CPU-runnable parts are
checked in tests/test_backends.py with CPU stand-ins for the streams and graphs.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsr.backends import create_backend  # noqa: E402
from vsr.backends.torch_backend import TorchBackend  # noqa: E402
from vsr.models.arch import fold_batchnorm  # noqa: E402
from vsr.models.catalogue import get_spec, new_network  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

RNG = np.random.default_rng(23)


def _net(arch: str, seed: int = 0) -> torch.nn.Module:
    """A seeded random-init network: two calls give two modules with equal weights."""
    torch.manual_seed(seed)
    return fold_batchnorm(new_network(arch).eval())


def _frames(n: int, h: int, w: int) -> np.ndarray:
    return RNG.integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _cpu_reference(model: str, frames: np.ndarray) -> np.ndarray:
    return create_backend("torch", model, device="cpu", net=_net(get_spec(model).arch)).infer(frames)


def _cuda(model: str, **kw) -> TorchBackend:
    return TorchBackend(get_spec(model), device="cuda", net=_net(get_spec(model).arch), **kw)


def _assert_fp16_close(out: np.ndarray, ref: np.ndarray) -> None:
    """FP16 on the GPU vs FP32 on the CPU: nearly every pixel within 3 levels, tiny mean error."""
    assert out.shape == ref.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(np.int16) - ref)
    assert (diff <= 3).mean() >= 0.999, f"{(diff > 3).mean():.2%} of values differ by more than 3"
    assert diff.mean() < 0.5, f"mean abs diff {diff.mean():.3f}"


@pytest.mark.parametrize("model", ["fast", "compact"])
def test_cuda_backend_matches_the_cpu_backend(model):
    """fast: luma net + bicubic chroma on the GPU; compact: RGB net. Random-init weights."""
    frames = _frames(4, 36, 52)
    b = _cuda(model)
    out = b.infer(frames)
    _assert_fp16_close(out, _cpu_reference(model, frames))
    assert b.name == "torch (cuda, fp16, channels_last, cuda graphs)"
    assert b._graphed is not None and b._graphed.captures == 1
    b.close()
    b.close()


@pytest.mark.parametrize("model", ["fast", "compact"])
def test_cuda_graph_replay_gives_the_eager_output(model):
    graphed, eager = _cuda(model), _cuda(model, cuda_graphs=False)
    assert "cuda graphs" not in eager.name
    f1, f2 = _frames(2, 40, 48), _frames(2, 40, 48)
    a1 = graphed.infer(f1)
    a2 = graphed.infer(f2)  # replay: the static input must take the new frames
    assert graphed._graphed.captures == 1, "the second call replays the first call's graph"
    assert np.abs(a1.astype(int) - eager.infer(f1)).max() <= 1
    assert np.abs(a2.astype(int) - eager.infer(f2)).max() <= 1
    assert not np.array_equal(a1, a2)
    assert np.array_equal(graphed.infer(f1), a1), "replaying again gives the same frames"


def test_two_frame_sizes_in_sequence_each_get_their_own_graph():
    b = _cuda("compact")
    small, large = _frames(2, 36, 52), _frames(1, 50, 70)
    for frames in (small, large, small):
        _assert_fp16_close(b.infer(frames), _cpu_reference("compact", frames))
    assert b._graphed.captures == 2 and len(b._graphed) == 2


def test_batches_are_split_and_double_buffered_with_graphs():
    """5 frames in batches of at most 2: shapes (2, ...) and (1, ...), the two slots alternating."""
    b = _cuda("fast", max_batch=2)
    frames = _frames(5, 30, 40)
    _assert_fp16_close(b.infer(frames), _cpu_reference("fast", frames))
    assert b._graphed.captures == 2


def test_prepare_captures_and_time_network_reports_ms_per_frame():
    b = _cuda("compact")
    b.prepare(48, 64, 2)
    assert b._graphed.captures == 1
    ms = b.time_network(48, 64, batch=2, iters=20)
    assert isinstance(ms, float) and 0 < ms < 1000
    assert b._graphed.captures == 1, "timing reuses the graph infer captured for that shape"
    eager = _cuda("compact", cuda_graphs=False)
    ms_eager = eager.time_network(48, 64, batch=2, iters=20)
    assert isinstance(ms_eager, float) and ms_eager > 0


def test_fp32_on_cuda_when_asked():
    b = _cuda("compact", fp16=False)
    assert b.name == "torch (cuda, fp32, channels_last, cuda graphs)"
    frames = _frames(1, 24, 32)
    # cuDNN may run FP32 convs as TF32: close, not bit-equal
    assert np.abs(b.infer(frames).astype(int) - _cpu_reference("compact", frames)).mean() < 0.5


def test_tiles_on_cuda_use_the_frame_adapter():
    b = _cuda("compact", tile=24)
    assert b._pipeline is None and "cuda graphs" not in b.name
    frames = _frames(1, 50, 70)
    _assert_fp16_close(b.infer(frames), _cpu_reference("compact", frames))


def test_a_model_that_cannot_be_captured_runs_eagerly_after_one_warning():
    """A forward that syncs the host (``.item()``) breaks stream capture; the backend must say so
    once and keep producing correct frames on the right stream. Run in a fresh process, so a
    half-finished capture cannot affect the other tests."""
    script = textwrap.dedent(
        """
        import logging, numpy as np, torch
        from vsr.backends.torch_backend import TorchBackend
        from vsr.models.arch import fold_batchnorm
        from vsr.models.catalogue import get_spec, new_network

        logging.basicConfig(level=logging.WARNING)

        class Syncing(torch.nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, x):
                y = self.net(x)
                if float(y.float().abs().sum().item()) < 0:  # a host sync: illegal while capturing
                    raise AssertionError
                return y

        torch.manual_seed(0)
        net = fold_batchnorm(new_network("compact").eval())
        torch.manual_seed(0)
        ref_net = fold_batchnorm(new_network("compact").eval())
        frames = np.random.default_rng(1).integers(0, 256, (3, 64, 80, 3), dtype=np.uint8)
        b = TorchBackend(get_spec("compact"), device="cuda", net=Syncing(net), max_batch=2)
        ref = TorchBackend(get_spec("compact"), device="cuda", net=ref_net, cuda_graphs=False)
        out, again = b.infer(frames), b.infer(frames)
        expected = ref.infer(frames)
        assert "cuda graphs" not in b.name, b.name
        assert not b._graphed.enabled
        assert np.abs(out.astype(int) - expected).max() <= 1
        assert np.array_equal(out, again)
        assert torch.cuda.current_stream() == torch.cuda.default_stream()
        # the allocator must not think a capture is still underway (it would stop freeing blocks
        # used on two streams, as every output batch is): memory stays flat over many calls
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        for _ in range(20):
            b.infer(frames)
        torch.cuda.synchronize()
        growth = torch.cuda.memory_allocated() - before
        assert growth < 4 * 2**20, f"device memory grew by {growth} bytes over 20 calls"
        print("OK")
        """
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
    assert r.stderr.count("CUDA graph capture failed") == 1, r.stderr


def test_bench_reports_network_only_fps_on_cuda():
    from vsr.bench import BenchConfig, bench_model, format_report

    cfg = BenchConfig(models=("fast",), backends=("torch",), frames=8, warmup=1, batch=2, end_to_end=False)
    row = bench_model("fast", "torch", (64, 48), cfg)
    assert "cuda graphs" in str(row["backend_used"])
    assert row["net_fps"] > 0 and row["net_ms"] > 0 and row["model_fps"] > 0
    assert row["net_fps"] == pytest.approx(1000.0 / row["net_ms"])
    report = {"machine": {"cpu": "x", "cores": 1, "gpu": "g", "torch": "t", "onnxruntime": None}}
    assert f"{row['net_fps']:.1f}" in format_report({**report, "results": [row]})


def test_compiled_network_matches_eager_on_cuda() -> None:
    frames = np.random.default_rng(2).integers(0, 256, (2, 36, 52, 3), dtype=np.uint8)
    eager = TorchBackend(get_spec("fast"), device="cuda")
    compiled = TorchBackend(get_spec("fast"), device="cuda", compile=True)
    try:
        assert compiled.compiled and "compiled" in compiled.name
        a, b = eager.infer(frames).astype(int), compiled.infer(frames).astype(int)
        assert a.shape == b.shape == (2, 144, 208, 3)
        assert np.abs(a - b).max() <= 3 and np.abs(a - b).mean() < 0.5
    finally:
        eager.close()
        compiled.close()
