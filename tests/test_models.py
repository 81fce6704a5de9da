"""Catalogue facts, architectures, BatchNorm folding and ONNX export of every model."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsr.errors import ConfigError, ModelError  # noqa: E402
from vsr.models.arch import SRResNet, fold_batchnorm  # noqa: E402
from vsr.models.catalogue import CATALOGUE, build_model, get_spec, model_names, new_network  # noqa: E402

NETS = [s for s in CATALOGUE if s.arch != "bicubic"]


def _macs_per_pixel(net: torch.nn.Module, channels: int, size: int = 16) -> float:
    total = [0]

    def hook(m, _inp, out):
        total[0] += out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net.eval()(torch.zeros(1, channels, size, size))
    for h in handles:
        h.remove()
    return total[0] / (size * size)


def _randomise_bn(net: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)


def test_catalogue_names_unique_and_lookup():
    names = model_names()
    assert len(names) == len(set(names))
    assert {"bicubic", "fast", "compact", "srresnet", "srgan"} <= set(names)
    assert {s.scale for s in CATALOGUE} == {2, 4}  # native 4x models, and the 2x tier (fast-x2)
    with pytest.raises(ConfigError, match=r"unknown model 'nope'.*fast"):
        get_spec("nope")


@pytest.mark.parametrize("spec", NETS, ids=lambda s: s.name)
def test_catalogue_params_and_macs_match_the_network(spec):
    net = fold_batchnorm(new_network(spec.arch, spec.scale).eval())
    assert sum(p.numel() for p in net.parameters()) == spec.params
    channels = 1 if spec.colour == "y" else 3
    assert _macs_per_pixel(net, channels) == spec.macs_per_pixel


def test_fast_tier_is_within_its_compute_budget():
    assert get_spec("fast").macs_per_pixel <= 40_000


@pytest.mark.parametrize("spec", NETS, ids=lambda s: s.name)
def test_output_shape_is_four_times_input(spec):
    net = new_network(spec.arch).eval()
    c = 1 if spec.colour == "y" else 3
    with torch.no_grad():
        y = net(torch.rand(2, c, 13, 22))
    assert tuple(y.shape) == (2, c, 52, 88)


def test_batchnorm_folding_preserves_the_function():
    torch.manual_seed(0)
    net = SRResNet(features=16, blocks=3).eval()
    _randomise_bn(net)
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        ref = net(x)
        folded = fold_batchnorm(net)
        out = folded(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


def test_model_without_weights_is_refused_with_a_clear_message():
    spec = replace(get_spec("compact"), weights="not-shipped.safetensors")
    with pytest.raises(ModelError, match="has no trained weights"):
        build_model(spec)


def test_weights_load_from_safetensors_and_checksum_is_enforced(tmp_path):
    from safetensors.torch import save_file

    spec = get_spec("fast")
    net = new_network("fast")
    path = tmp_path / "w.safetensors"
    save_file(net.state_dict(), str(path))
    loaded = build_model(spec, weights=path)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    bad = replace(spec, weights="w.safetensors", sha256="0" * 64)
    import vsr.models.spec as cat  # where weights_path finds WEIGHTS_DIR

    orig = cat.WEIGHTS_DIR
    try:
        cat.WEIGHTS_DIR = tmp_path
        with pytest.raises(ModelError, match="checksum"):
            build_model(bad)
    finally:
        cat.WEIGHTS_DIR = orig


@pytest.mark.parametrize("spec", NETS, ids=lambda s: s.name)
def test_onnx_export_is_valid_and_has_dynamic_height_width(spec, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from vsr.export import export_onnx

    torch.manual_seed(0)
    net = fold_batchnorm(new_network(spec.arch, spec.scale).eval())
    path = export_onnx(net, spec, tmp_path / f"{spec.name}.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version >= 17
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    c = 1 if spec.colour == "y" else 3
    for h, w in [(12, 20), (17, 9)]:
        x = np.random.default_rng(h).random((1, c, h, w), dtype=np.float32)
        out = sess.run(None, {"input": x})[0]
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()
        assert out.shape == (1, c, spec.scale * h, spec.scale * w)
        assert np.abs(out - ref).max() * 255 < 1e-3


def test_import_vsr_does_not_import_torch():
    code = "import sys, vsr; assert 'torch' not in sys.modules and 'onnxruntime' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
