"""Model files outside the package without spandrel: ONNX files run as they are, bad files are
refused in one line (a malicious pickle never runs), and the frame paths model files need
(reflect padding to a minimum size, gray models) agree between the numpy and torch adapters.
The spandrel side (PyTorch architectures) is tests/test_external_models.py."""

from __future__ import annotations

import os
import pickle
import sys
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torch import nn

from vsr.backends import create_backend, resolve_backend
from vsr.backends.base import FrameAdapter
from vsr.errors import ConfigError, ModelError
from vsr.models.catalogue import get_spec
from vsr.models.external import external_spec, inspect_model_file
from vsr.models.spec import ModelSpec

ort = pytest.importorskip("onnxruntime")


class _Up(nn.Module):
    """A tiny SR net: ``unshuffle`` (a size multiple), one conv, pixel shuffle to ``scale``."""

    def __init__(self, scale: int, unshuffle: int = 1, channels: int = 3) -> None:
        super().__init__()
        self.unshuffle = unshuffle
        c_in = channels * unshuffle * unshuffle
        self.conv = nn.Conv2d(c_in, channels * (scale * unshuffle) ** 2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale * unshuffle)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:
            x = nn.functional.pixel_unshuffle(x, self.unshuffle)
        return torch.sigmoid(self.shuffle(self.conv(x)))


def _onnx(
    path: Path, net: nn.Module, *, names=("image", "upscaled"), half: bool = False, c: int = 3, side: int = 16
) -> Path:
    torch.manual_seed(0)
    net = net.eval().half() if half else net.eval()
    dummy = torch.rand(1, c, side, side, dtype=torch.float16 if half else torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (dummy,),
            str(path),
            input_names=[names[0]],
            output_names=[names[1]],
            dynamic_axes={names[0]: {0: "n", 2: "h", 3: "w"}, names[1]: {0: "n", 2: "H", 3: "W"}},
            opset_version=17,
            dynamo=False,
        )
    return path


def _ort(path: Path, frame: np.ndarray, dtype=np.float32) -> np.ndarray:
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = (frame.transpose(2, 0, 1)[None] / 255.0).astype(dtype)
    y = s.run(None, {s.get_inputs()[0].name: x})[0][0].astype(np.float32)
    return np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)


def test_onnx_file_runs_with_its_own_io_names(tmp_path: Path) -> None:
    path = _onnx(tmp_path / "x2.onnx", _Up(2))
    info = inspect_model_file(path)
    assert (info.format, info.arch, info.scale, info.in_channels, info.size_multiple) == (
        "onnx",
        "onnx",
        2,
        3,
        1,
    )
    assert not info.fp16 and info.params == sum(p.numel() for p in _Up(2).parameters())
    spec = get_spec(str(path))
    assert (spec.arch, spec.cpu_backend, spec.fallback) == ("onnx-file", "onnx", "bicubic-x2")
    assert resolve_backend("auto", spec)[0] == "onnx"
    with pytest.raises(ConfigError, match="ONNX file"):
        resolve_backend("torch", spec)
    frames = np.random.default_rng(1).integers(0, 256, (2, 11, 13, 3), dtype=np.uint8)
    with create_backend("auto", spec) as be:
        out = be.infer(frames)
    assert out.shape == (2, 22, 26, 3)
    for f, o in zip(frames, out, strict=True):
        assert np.abs(_ort(path, f).astype(int) - o.astype(int)).max() <= 1


def test_fp16_onnx_and_size_multiples(tmp_path: Path) -> None:
    half = _onnx(tmp_path / "h.onnx", _Up(4), half=True)
    info = inspect_model_file(half)
    assert (info.scale, info.fp16) == (4, True)
    frame = np.random.default_rng(2).integers(0, 256, (1, 9, 7, 3), dtype=np.uint8)
    with create_backend("onnx", get_spec(str(half))) as be:
        out = be.infer(frame)
    assert np.abs(_ort(half, frame[0], np.float16).astype(int) - out[0].astype(int)).max() <= 1
    multi = _onnx(tmp_path / "m.onnx", _Up(2, unshuffle=4))
    info = inspect_model_file(multi)
    assert (info.scale, info.size_multiple) == (2, 4)
    with create_backend("onnx", get_spec(str(multi))) as be:  # 9 x 7: padded to 12 x 8, cropped
        assert be.infer(frame).shape == (1, 18, 14, 3)


class _Needs(nn.Module):
    """A parameter-free 2x model whose sides must be multiples of ``multiple`` (and at least
    ``minimum``): pixel (un)shuffle by ``multiple``, then nearest 2x."""

    def __init__(self, multiple: int, minimum: int = 0) -> None:
        super().__init__()
        self.multiple, self.minimum = multiple, minimum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.pixel_shuffle(nn.functional.pixel_unshuffle(x, self.multiple), self.multiple)
        if self.minimum:  # a crop that fails below the minimum: reshape to a fixed-size window
            y = y + y[:, :, : self.minimum, : self.minimum].reshape(1, -1, self.minimum, self.minimum).mean()
        return nn.functional.interpolate(y, scale_factor=2.0, mode="nearest")


@pytest.mark.parametrize(("multiple", "minimum"), [(12, 0), (3, 0), (24, 0), (32, 0), (64, 0), (1, 100)])
def test_onnx_size_multiples_beyond_powers_of_two(tmp_path: Path, multiple: int, minimum: int) -> None:
    path = _onnx(tmp_path / "m.onnx", _Needs(multiple, minimum), side=max(multiple, minimum))
    info = inspect_model_file(path)
    assert (info.scale, info.size_multiple) == (2, multiple)
    assert info.min_size == (128 if minimum else 0)
    if multiple == 12:
        frame = np.random.default_rng(3).integers(0, 256, (1, 13, 25, 3), dtype=np.uint8)
        with create_backend("onnx", get_spec(str(path))) as be:  # padded to 24 x 36, cropped
            assert be.infer(frame).shape == (1, 26, 50, 3)


def test_an_onnx_model_no_probe_runs_says_so_in_one_line(tmp_path: Path) -> None:
    path = _onnx(tmp_path / "m.onnx", _Needs(5), side=20)
    with pytest.raises(ModelError, match="could not find the model's input-size rule") as err:
        inspect_model_file(path)
    assert "48, 64, 72, 96, 128, 144, 192, 256 px" in str(err.value) and "\n" not in str(err.value)


def test_video_through_an_onnx_file(tmp_path: Path) -> None:
    from vsr.cli import main

    src = tmp_path / "in.mp4"
    with av.open(str(src), "w") as out:
        s = out.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 32, 24, "yuv420p"
        for i in range(3):
            img = np.full((24, 32, 3), 40 * i, np.uint8)
            out.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(s.encode(None))
    path = _onnx(tmp_path / "x2.onnx", _Up(2))
    assert main(["upscale", str(src), "-o", str(tmp_path / "o.mp4"), "--model", str(path), "-q"]) == 0
    with av.open(str(tmp_path / "o.mp4")) as c:
        sizes = [(f.width, f.height) for f in c.decode(video=0)]
    assert sizes == [(64, 48)] * 3


class _Marker:
    """A pickle payload that would create a file if unpickled with code execution."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _truncated(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp_path = tmp_path_factory.mktemp("bad-files")
    rng = np.random.default_rng(3)
    state = {"conv.weight": torch.rand(8, 3, 3, 3), "conv.bias": torch.rand(8)}
    files = {}
    for suffix in (".pth", ".safetensors", ".onnx"):
        files[f"random{suffix}"] = tmp_path / f"random{suffix}"
        files[f"random{suffix}"].write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    torch.save(state, tmp_path / "t.pth")
    files["truncated.pth"] = _truncated(tmp_path / "t.pth")
    from safetensors.torch import save_file

    save_file(state, str(tmp_path / "t.safetensors"))
    files["truncated.safetensors"] = _truncated(tmp_path / "t.safetensors")
    files["truncated.onnx"] = _truncated(_onnx(tmp_path / "t.onnx", _Up(2)))
    files["evil.pth"] = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1), "x": _Marker(tmp_path / "PWNED")}, files["evil.pth"])
    files["evil-plain.pt"] = tmp_path / "evil-plain.pt"
    files["evil-plain.pt"].write_bytes(pickle.dumps(_Marker(tmp_path / "PWNED")))
    files["list.ckpt"] = tmp_path / "list.ckpt"
    torch.save([torch.zeros(2)], files["list.ckpt"])
    files["script.pt"] = tmp_path / "script.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script is deprecated (Deprecation- or FutureWarning)
        torch.jit.script(nn.Conv2d(3, 3, 3)).save(str(files["script.pt"]))
    files["bad suffix.bin"] = tmp_path / "model.bin"
    files["bad suffix.bin"].write_bytes(b"x")
    files["missing.pth"] = tmp_path / "missing.pth"
    return files


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("random.pth", "cannot be read as a PyTorch checkpoint|not a PyTorch checkpoint"),
        ("random.safetensors", "cannot be read as safetensors"),
        ("random.onnx", "cannot be read as ONNX"),
        ("truncated.pth", "cannot be read as a PyTorch checkpoint"),
        ("truncated.safetensors", "cannot be read as safetensors"),
        ("truncated.onnx", "cannot be read as ONNX"),
        ("evil.pth", r"refused: its pickle would run code \(GLOBAL posix.system\)"),
        ("evil-plain.pt", "cannot be read as a PyTorch checkpoint .*pickle of more than tensors"),
        ("list.ckpt", "holds a list, not a state dict"),
        ("script.pt", "is a TorchScript archive .*vsr does not run TorchScript"),
        ("bad suffix.bin", r"suffix '.bin' is not supported; vsr runs .pth, .pt, .ckpt, .safetensors, .onnx"),
        ("missing.pth", "does not exist"),
    ],
)
def test_bad_files_are_refused_in_one_line(bad_files: dict[str, Path], name: str, says: str) -> None:
    with pytest.raises(ModelError, match=says) as caught:
        inspect_model_file(bad_files[name])
    assert "\n" not in str(caught.value)
    assert not (bad_files[name].parent / "PWNED").exists()  # nothing in the pickle ran


def test_cli_refuses_a_malicious_pickle(bad_files: dict[str, Path], tmp_path: Path, capsys) -> None:
    from vsr.cli import main

    clip = tmp_path / "in.mp4"
    with av.open(str(clip), "w") as out:
        s = out.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 16, 16, "yuv420p"
        out.mux(s.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")))
        out.mux(s.encode(None))
    code = main(["upscale", str(clip), "-o", str(tmp_path / "o.mp4"), "--model", str(bad_files["evil.pth"])])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == ModelError.exit_code
    assert err[-1].startswith("vsr: error: model file") and "refused" in err[-1]
    assert not (bad_files["evil.pth"].parent / "PWNED").exists()
    pickle.loads(pickle.dumps(_Marker(tmp_path / "CONTROL")))  # the payload is real: plain pickle runs it
    assert (tmp_path / "CONTROL").exists()


def test_missing_spandrel_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.save({"conv.weight": torch.rand(8, 3, 3, 3)}, tmp_path / "m.pth")
    monkeypatch.setitem(sys.modules, "spandrel", None)  # import spandrel raises ImportError
    with pytest.raises(ModelError, match=r"need spandrel.*pip install 'vsr\[models\]'.*torchvision"):
        inspect_model_file(tmp_path / "m.pth")


def test_unknown_names_mention_model_files() -> None:
    with pytest.raises(ConfigError, match=r"choose one of: .*bicubic.*or a model file \(.pth"):
        get_spec("no-such-model")
    with pytest.raises(ModelError, match=r"model file no/such\.pth does not exist"):
        get_spec("no/such.pth")


def _spec(**kw) -> ModelSpec:
    return ModelSpec(name="t", arch="spandrel", description="t", pad="reflect", **kw)


def test_reflect_padding_to_a_minimum_and_a_multiple() -> None:
    seen = []

    def net(x: np.ndarray) -> np.ndarray:
        seen.append(x.copy())
        return np.repeat(np.repeat(x, 2, axis=2), 2, axis=3)

    frames = np.random.default_rng(4).integers(0, 256, (1, 5, 9, 3), dtype=np.uint8)
    out = FrameAdapter(_spec(scale=2, size_multiple=4, min_size=8), net)(frames)
    assert seen[0].shape == (1, 3, 8, 12) and out.shape == (1, 10, 18, 3)
    x = seen[0][0, 0] * 255
    assert np.allclose(x[5:, :9], x[[3, 2, 1], :9], atol=1e-3)  # rows mirrored (edge not repeated)
    assert np.allclose(x[:5, 9:], x[:5, [7, 6, 5]], atol=1e-3)
    big = FrameAdapter(_spec(scale=1, min_size=12), lambda x: seen.append(x) or x)(frames)  # > 2x: edge after
    assert seen[-1].shape == (1, 3, 12, 12) and big.shape == frames.shape


def test_gray_models_see_luma_and_the_torch_pipeline_agrees() -> None:
    from vsr.backends.cuda_torch import FramePipeline

    frames = np.random.default_rng(5).integers(0, 256, (2, 6, 7, 3), dtype=np.uint8)
    gray = np.repeat(frames[..., :1], 3, axis=3)
    out = FrameAdapter(_spec(scale=1, channels=1), lambda x: 1.0 - x)(gray)
    assert np.abs(out.astype(int) - (255 - gray.astype(int))).max() <= 1  # gray in, the model's gray out
    spec = _spec(scale=2, size_multiple=4)
    net = _Up(2).eval()
    with torch.inference_mode():
        numpy_out = FrameAdapter(spec, lambda x: net(torch.from_numpy(x)).numpy())(frames)
        pipe = FramePipeline(torch.device("cpu"), scale=2, luma=False, dtype=torch.float32, pad="reflect")
        torch_out = pipe(frames, net, (8, 8), 2)
    assert np.abs(numpy_out.astype(int) - torch_out.astype(int)).max() <= 1


def test_external_spec_fallbacks_by_scale(tmp_path: Path) -> None:
    info = inspect_model_file(_onnx(tmp_path / "x1.onnx", _Up(1)))
    assert external_spec(info).fallback is None  # no bicubic-x1 entry: a one-rung ladder
    assert external_spec(info, "mine").name == "mine"
    from vsr.build_ladder import build_ladder
    from vsr.config import ModelConfig

    with build_ladder(ModelConfig(model=str(info.path)), live=True) as ladder:
        assert [name for name, _ in ladder.rungs] == [str(info.path)] and ladder.scale == 1
    x2 = str(_onnx(tmp_path / "x2.onnx", _Up(2)))
    with build_ladder(ModelConfig(model=x2), live=True) as ladder:
        assert [name for name, _ in ladder.rungs] == [x2, "bicubic-x2"] and ladder.scale == 2


def test_tiles_of_a_model_file_meet_its_size_needs() -> None:
    def net(x: np.ndarray) -> np.ndarray:
        assert x.shape[2] % 4 == 0 and x.shape[3] % 4 == 0 and min(x.shape[2:]) >= 8
        return np.repeat(np.repeat(x, 2, axis=2), 2, axis=3)

    frames = np.random.default_rng(6).integers(0, 256, (1, 21, 30, 3), dtype=np.uint8)
    whole = FrameAdapter(_spec(scale=2, size_multiple=4, min_size=8), net)(frames)
    tiles = FrameAdapter(_spec(scale=2, size_multiple=4, min_size=8, receptive_radius=2), net, tile=10)(
        frames
    )
    assert whole.shape == tiles.shape == (1, 42, 60, 3)
    assert np.array_equal(whole, tiles)  # nearest-neighbour: no context, no seams


def test_backend_choice_and_precision_for_model_files(monkeypatch: pytest.MonkeyPatch) -> None:
    from vsr.backends.torch_backend import network_dtype

    spec = _spec(fp16_safe=False, bf16_safe=True)
    assert resolve_backend("auto", spec)[0] == "torch"
    assert resolve_backend("onnx", spec)[0] == "onnx"
    with pytest.raises(ConfigError, match="PyTorch model file: use --backend torch or onnx"):
        resolve_backend("tensorrt", spec)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert network_dtype(torch, cpu, spec, None) == torch.float32
    assert network_dtype(torch, cuda, spec, None) == torch.bfloat16  # not fp16-safe: bf16
    assert network_dtype(torch, cuda, _spec(), None) == torch.float16
    assert network_dtype(torch, cuda, spec, False) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert network_dtype(torch, cuda, spec, None) == torch.float32


def test_model_files_run_in_bf16_or_fp32_on_cuda_unless_fp16_is_asked_for(monkeypatch) -> None:
    """Community weights (ESRGAN's family) overflow FP16 into NaN: black frames, no error."""
    from vsr.backends.precision import network_dtype

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    both = _spec(fp16_safe=True, bf16_safe=True, path=Path("4x.pth"))
    half_only = _spec(fp16_safe=True, bf16_safe=False, path=Path("4x.pth"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert network_dtype(torch, cuda, both, None) == torch.bfloat16
    assert network_dtype(torch, cuda, half_only, None) == torch.float32
    assert (
        network_dtype(torch, cuda, both, True) == network_dtype(torch, cuda, half_only, True) == torch.float16
    )
    assert network_dtype(torch, cuda, both, False) == network_dtype(torch, cpu, both, True) == torch.float32
    assert network_dtype(torch, cuda, _spec(fp16_safe=True), None) == torch.float16  # catalogue: as before
    assert network_dtype(torch, cuda, _spec(fp16_safe=False, path=Path("x.pth")), True) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert network_dtype(torch, cuda, both, None) == torch.float32


def test_a_model_file_changed_after_inspection_is_refused(tmp_path: Path) -> None:
    path = _onnx(tmp_path / "x2.onnx", _Up(2))
    spec = get_spec(str(path))
    _onnx(path, _Up(2, unshuffle=2))  # replaced under the same name
    with pytest.raises(ModelError, match="changed since vsr inspected it"):
        create_backend("onnx", spec)


def test_engine_build_refuses_model_files_like_the_backend_chooser(tmp_path, capsys, monkeypatch) -> None:
    from vsr.cli import main
    from vsr.trt import commands

    path = _onnx(tmp_path / "x2.onnx", _Up(2))
    with pytest.raises(ConfigError) as chooser:
        resolve_backend("tensorrt", get_spec(str(path)))
    assert main(["engine", "build", "--model", str(path), "--profile", "p720"]) == 2
    assert capsys.readouterr().err == f"vsr: error: {chooser.value}\n"
    with pytest.raises(ConfigError) as chooser:
        resolve_backend("tensorrt", _spec())
    monkeypatch.setattr(commands, "get_spec", lambda name: _spec())  # a .pth without spandrel
    with pytest.raises(ConfigError) as build:
        commands.build_engine("t.pth", "p720")
    assert str(build.value) == str(chooser.value)
