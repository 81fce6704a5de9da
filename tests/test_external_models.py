"""Community PyTorch model files through spandrel: ``vsr upscale --model FILE.pth`` end to end.

Random-weight models are built with spandrel's own architecture classes (Real-ESRGAN's compact
SRVGG, ESRGAN's RRDBNet, SPAN, SwinIR; tiny widths), saved as ``.pth`` / ``.safetensors``, and
vsr's output frames are compared with spandrel's own forward pass on the same decoded frames. The
clips are lossless RGB (rawvideo in, FFV1 bgr0 out), so any difference is vsr's. Files that are
not models are refused with one line. Needs spandrel (CI's second environment, ``.venv-models``).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import warnings
from pathlib import Path

import av
import numpy as np
import pytest

try:
    import spandrel
    import torch
    from safetensors.torch import save_file
except Exception as exc:  # ImportError, or torchvision's RuntimeError beside a CPU torch
    pytest.skip(
        f"spandrel not importable ({type(exc).__name__}: {str(exc)[:80]}): these tests run in CI's "
        "second environment, .venv-models, see .ci/run",
        allow_module_level=True,
    )

from vsr.cli import main
from vsr.errors import ModelError
from vsr.models import external
from vsr.models.catalogue import fallback_chain, get_spec
from vsr.models.external import external_spec, inspect_model_file

pytestmark = pytest.mark.spandrel

REPO = Path(__file__).resolve().parents[1]
LOSSLESS_RGB = ("--codec", "ffv1", "--pix-fmt", "bgr0", "--overwrite", "-q", "--no-resume")


def _nets() -> dict[str, torch.nn.Module]:
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.SPAN import SPAN
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(0)
    warnings.filterwarnings("ignore", "torch.meshgrid", UserWarning)  # SwinIR's own construction
    return {
        "compact4.pth": Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4),
        "span4.safetensors": SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=4),
        "rrdb2.pth": ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=2),
        "gray1.pth": Compact(num_in_ch=1, num_out_ch=1, num_feat=8, num_conv=2, upscale=1),
        "swin2.pth": SwinIR(  # min size 16: the 10 x 14 clip is padded (reflect) and cropped
            upscale=2,
            upsampler="pixelshuffledirect",
            embed_dim=12,
            depths=[1],
            num_heads=[1],
            window_size=8,
            img_size=16,
            mlp_ratio=1.0,
        ),
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> a model file of random weights (spandrel's classes), and a few non-models."""
    root = tmp_path_factory.mktemp("model-files")
    out = {}
    for name, net in _nets().items():
        path = root / name
        state = {k: v.contiguous() for k, v in net.state_dict().items()}
        save_file(state, str(path)) if name.endswith(".safetensors") else torch.save(state, path)
        out[name] = path
    classifier = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 10),
    )
    torch.save(classifier.state_dict(), root / "classifier.pth")
    torch.save({"encoder.foo.weight": torch.zeros(4, 4), "decoder.bar": torch.ones(3)}, root / "unknown.pth")
    out["classifier.pth"], out["unknown.pth"] = root / "classifier.pth", root / "unknown.pth"
    return out


def _pattern(n: int, h: int, w: int, gray: bool = False) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]
    return [np.repeat(f[..., :1], 3, axis=2) for f in frames] if gray else frames


def _write(path: Path, frames: list[np.ndarray]) -> Path:
    """Lossless RGB (rawvideo rgb24 in NUT): vsr decodes exactly these frames."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("rawvideo", rate=24)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "rgb24"
        for f in frames:
            out.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(s.encode(None))
    return path


def _read(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _upscale(src: Path, dst: Path, model: Path, backend: str = "torch") -> list[np.ndarray]:
    code = main(
        ["upscale", str(src), "-o", str(dst), "--model", str(model), "--backend", backend, *LOSSLESS_RGB]
    )
    assert code == 0
    return _read(dst)


def _spandrel_forward(model: Path, frame: np.ndarray) -> np.ndarray:
    """spandrel's own result for one RGB frame (its loader, its padding, its call), as uint8 RGB."""
    desc = spandrel.ModelLoader().load_from_file(model).eval()
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0
    if desc.input_channels == 1:
        x = x[:, :1]
    y = desc(x)[0].permute(1, 2, 0).numpy()
    y = np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(y, 3, axis=2) if y.shape[2] == 1 else y


def _assert_close(got: list[np.ndarray], src: list[np.ndarray], model: Path) -> None:
    assert len(got) == len(src)
    for g, s in zip(got, src, strict=True):
        want = _spandrel_forward(model, s)
        assert g.shape == want.shape
        assert int(np.abs(g.astype(int) - want.astype(int)).max()) <= 1


def test_inspect_reports_what_spandrel_says(files: dict[str, Path]) -> None:
    path = files["compact4.pth"]
    info = inspect_model_file(path)
    desc = spandrel.ModelLoader().load_from_file(path)
    assert (info.format, info.arch, info.scale) == ("torch", "RealESRGAN Compact", 4)
    assert (info.in_channels, info.out_channels, info.size_multiple, info.min_size) == (3, 3, 1, 0)
    assert (info.fp16, info.bf16) == (desc.supports_half, desc.supports_bfloat16)
    assert info.params == sum(p.numel() for p in desc.model.parameters())
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    swin = inspect_model_file(files["swin2.pth"])
    assert (swin.arch, swin.scale, swin.min_size, swin.fp16, swin.bf16) == ("SwinIR", 2, 16, False, True)
    spec = external_spec(info)
    assert (spec.arch, spec.name, spec.weights_path, spec.fallback) == (
        "spandrel",
        str(path),
        path,
        "bicubic",
    )
    assert spec.has_weights


@pytest.mark.parametrize("name", ["compact4.pth", "span4.safetensors", "swin2.pth"])
def test_upscale_equals_spandrels_forward(files: dict[str, Path], tmp_path: Path, name: str) -> None:
    h, w = (10, 14) if name == "swin2.pth" else (18, 26)
    src = _pattern(2, h, w)
    got = _upscale(_write(tmp_path / "in.nut", src), tmp_path / "out.mkv", files[name])
    _assert_close(got, src, files[name])


def test_onnx_backend_agrees_with_torch(files: dict[str, Path], tmp_path: Path) -> None:
    src = _pattern(2, 18, 26)
    got = _upscale(_write(tmp_path / "in.nut", src), tmp_path / "out.mkv", files["compact4.pth"], "onnx")
    _assert_close(got, src, files["compact4.pth"])


def test_2x_and_1x_gray_models_keep_sizes(files: dict[str, Path], tmp_path: Path) -> None:
    src = _pattern(3, 18, 26)
    got = _upscale(_write(tmp_path / "in.nut", src), tmp_path / "x2.mkv", files["rrdb2.pth"])
    assert [g.shape for g in got] == [(36, 52, 3)] * 3
    _assert_close(got, src, files["rrdb2.pth"])
    gray = _pattern(3, 18, 26, gray=True)
    got = _upscale(_write(tmp_path / "gray.nut", gray), tmp_path / "x1.mkv", files["gray1.pth"])
    assert [g.shape for g in got] == [(18, 26, 3)] * 3
    _assert_close(got, gray, files["gray1.pth"])  # a gray video comes out as the model draws it


def test_gray_model_keeps_a_colour_videos_colour(files: dict[str, Path]) -> None:
    from vsr.backends import create_backend

    spec = get_spec(str(files["gray1.pth"]))
    frame = np.empty((1, 8, 8, 3), np.uint8)
    frame[...] = (150, 100, 80)
    with create_backend("torch", spec, device="cpu") as be:
        out = be.infer(frame).astype(int)
    unclipped = ((out > 0) & (out < 255)).all(axis=-1)
    assert unclipped.any()
    r, g, b = (out[..., c][unclipped] for c in range(3))
    assert np.abs(r - g - 50).max() <= 1 and np.abs(g - b - 20).max() <= 1  # only the luma changed


def test_ladder_and_fallbacks_of_model_files(files: dict[str, Path]) -> None:
    assert fallback_chain(str(files["compact4.pth"])) == (str(files["compact4.pth"]), "bicubic")
    assert fallback_chain(str(files["rrdb2.pth"])) == (str(files["rrdb2.pth"]), "bicubic-x2")
    assert fallback_chain(str(files["gray1.pth"])) == (str(files["gray1.pth"]),)  # no 1x bicubic


def test_a_run_inspects_a_file_once(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = external.inspect_model_file
    monkeypatch.setattr(external, "_cache", {})
    monkeypatch.setattr(external, "inspect_model_file", lambda p: calls.append(p) or real(p))
    for _ in range(3):
        get_spec(str(files["span4.safetensors"]))
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("classifier.pth", "does not recognise its architecture"),
        ("unknown.pth", "does not recognise its architecture"),
    ],
)
def test_non_sr_checkpoints_are_refused_in_one_line(files: dict[str, Path], name: str, says: str) -> None:
    with pytest.raises(ModelError, match=says) as caught:
        inspect_model_file(files[name])
    assert "\n" not in str(caught.value) and "ESRGAN" in str(caught.value)


def test_inpainting_models_are_refused(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from spandrel.architectures.LaMa import LaMaArch

    conv = torch.nn.Conv2d(4, 3, 1)
    masked = spandrel.MaskedImageModelDescriptor(
        conv, conv.state_dict(), LaMaArch(), purpose="Inpainting", tags=[], supports_half=False,
        supports_bfloat16=False, input_channels=3, output_channels=3,
    )  # fmt: skip
    monkeypatch.setattr(spandrel.ModelLoader, "load_from_state_dict", lambda self, sd: masked)
    with pytest.raises(ModelError, match=r"LaMa Inpainting model .*image-to-image"):
        inspect_model_file(files["compact4.pth"])


def test_cli_refuses_a_classifier_with_one_line(files: dict[str, Path], tmp_path: Path) -> None:
    src = _write(tmp_path / "in.nut", _pattern(1, 8, 8))
    args = ["upscale", str(src), "-o", str(tmp_path / "o.mkv"), "--model", str(files["classifier.pth"])]
    proc = subprocess.run(
        [sys.executable, "-m", "vsr", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == ModelError.exit_code
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vsr: error: model file"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_export_fixed_to_its_traced_size_is_refused(
    files: dict[str, Path], tmp_path: Path, capsys
) -> None:
    src = _write(tmp_path / "in.nut", _pattern(1, 10, 14))
    args = ["upscale", str(src), "-o", str(tmp_path / "o.mkv"), "--model", str(files["swin2.pth"])]
    assert main([*args, "--backend", "onnx"]) == 6  # SwinIR's trace bakes its window reshapes
    assert "runs only at the size it was traced at" in capsys.readouterr().err


def test_vsrs_own_compact_weights_are_a_real_esrgan_compact_file(tmp_path: Path) -> None:
    """Trained weights, not random ones: vsr's `compact` is Real-ESRGAN's SRVGGNetCompact layout, so
    its shipped .safetensors read through spandrel as a community file give the catalogue model's
    frames (within rounding)."""
    weights = REPO / "vsr" / "weights" / "compact.safetensors"
    info = inspect_model_file(weights)
    assert (info.arch, info.scale, info.params) == ("RealESRGAN Compact", 4, get_spec("compact").params)
    src = _write(tmp_path / "in.nut", _pattern(3, 12, 20))
    as_file = _upscale(src, tmp_path / "file.mkv", weights)
    assert main(["upscale", str(src), "-o", str(tmp_path / "cat.mkv"), "--model", "compact",
                 "--backend", "torch", *LOSSLESS_RGB]) == 0  # fmt: skip
    shipped = _read(tmp_path / "cat.mkv")
    assert [f.shape for f in as_file] == [(48, 80, 3)] * 3
    for a, b in zip(as_file, shipped, strict=True):
        assert int(np.abs(a.astype(int) - b.astype(int)).max()) <= 1
