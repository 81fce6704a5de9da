"""The FP16 parity gate, with ONNX Runtime sessions standing in for TensorRT engines."""

from __future__ import annotations

import numpy as np
import pytest

from vsr.parity import ParityThresholds, check_parity, compare, probe_frames

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """ONNX Runtime running a random-init ``compact`` export: the 'FP32 engine'."""
    from vsr.export import export_onnx
    from vsr.models.arch import fold_batchnorm
    from vsr.models.catalogue import get_spec, new_network

    torch.manual_seed(1)
    net = fold_batchnorm(new_network("compact").eval())
    path = export_onnx(net, get_spec("compact"), tmp_path_factory.mktemp("parity") / "compact.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: sess.run(["output"], {"input": x})[0]


@pytest.fixture(scope="module")
def probes():
    return probe_frames(3, 24, 32, batch=2)


def fp16_like(run):
    """What an FP16 engine does to I/O and activations, roughly: rounds to float16."""
    return lambda x: run(x.astype(np.float16).astype(np.float32)).astype(np.float16).astype(np.float32)


def test_probe_frames_are_deterministic_float32_in_range():
    a, b = probe_frames(3, 20, 30, batch=2, seed=5), probe_frames(3, 20, 30, batch=2, seed=5)
    assert list(a) == ["noise", "gradient", "edges", "scene"]
    for name, x in a.items():
        assert x.shape == (2, 3, 20, 30) and x.dtype == np.float32
        assert x.min() >= 0.0 and x.max() <= 1.0 and x.std() > 0.01, name
        assert np.array_equal(x, b[name])
    assert probe_frames(1, 8, 8)["scene"].shape == (1, 1, 8, 8)


def test_same_runner_passes_with_zero_error(session, probes):
    verdict = check_parity(session, session, probes)
    assert verdict.passed and verdict.reason == "" and verdict.max_abs == 0.0
    assert len(verdict.probes) == 4 and "parity passed" in verdict.summary()


def test_fp16_rounding_passes(session, probes):
    verdict = check_parity(fp16_like(session), session, probes)
    assert verdict.passed, verdict.summary()
    assert 0.0 < verdict.max_abs < 0.01


def test_injected_nan_is_caught(session, probes):
    def nan_engine(x):
        y = session(x)
        y[0, 1, 5, 7] = np.nan
        return y

    verdict = check_parity(nan_engine, session, probes)
    assert not verdict.passed and verdict.reference_ok
    assert "1 NaN/Inf values on the 'noise' probe" in verdict.reason
    assert "parity FAILED" in verdict.summary()


def test_injected_inf_is_caught(session, probes):
    verdict = check_parity(lambda x: session(x) * np.float32(np.inf), session, probes)
    assert not verdict.passed and "NaN/Inf" in verdict.reason


def test_injected_black_frame_is_caught(session, probes):
    verdict = check_parity(lambda x: np.zeros_like(session(x)), session, probes)
    assert not verdict.passed and "all-black output" in verdict.reason


def test_constant_output_is_caught(session, probes):
    verdict = check_parity(lambda x: np.full_like(session(x), 0.5), session, probes)
    assert not verdict.passed and "constant output" in verdict.reason


def test_large_error_is_caught_but_small_error_passes(session, probes):
    def spot(x, amount):
        y = session(x)
        y[:, :, :4, :4] += amount
        return y

    assert not check_parity(lambda x: spot(x, 0.1), session, probes).passed
    assert "max abs error 25.5/255" in check_parity(lambda x: spot(x, 0.1), session, probes).reason
    assert check_parity(lambda x: spot(x, 0.01), session, probes).passed


def test_mean_error_limit(session, probes):
    verdict = check_parity(lambda x: session(x) + 0.01, session, probes)
    assert not verdict.passed and "mean abs error" in verdict.reason
    assert check_parity(lambda x: session(x) + 0.01, session, probes, ParityThresholds(mean_abs=0.02)).passed


def test_broken_reference_is_reported_as_such(session, probes):
    verdict = check_parity(session, lambda x: session(x) * np.nan, probes)
    assert not verdict.passed and not verdict.reference_ok
    assert "reference produced NaN/Inf" in verdict.reason


def test_runners_get_copies_of_the_probes(session, probes):
    before = {k: v.copy() for k, v in probes.items()}

    def clobber(x):
        x[...] = 0.0
        return session(x)

    check_parity(clobber, session, probes)
    assert all(np.array_equal(before[k], probes[k]) for k in probes)


def test_black_and_flat_are_relative_to_the_reference():
    """A luma model's residual can legitimately be ~0 everywhere: that is not 'black' if the
    reference is ~0 too."""
    limits = ParityThresholds()
    zeros = np.zeros((1, 1, 8, 8), np.float32)
    assert compare("x", zeros, zeros, limits).failure == ""
    bad = compare("x", zeros[:, :, :4], zeros, limits)
    assert "shape" in bad.failure
