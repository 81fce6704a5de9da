"""The user catalogue (issue 16 C): ``vsr models add / list / show / remove``, and user models by name.

Every test keeps the catalogue in its own ``VSR_MODELS_DIR``. The model files are made here: a
tiny ONNX export (needs torch and onnxruntime, no spandrel) for most tests, and a tiny RealESRGAN
Compact ``.pth`` for the ones marked ``spandrel`` (CI's second environment).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import run_vsr

from vsr.cli import main
from vsr.config import FaceConfig
from vsr.errors import ConfigError, ModelError
from vsr.models.catalogue import get_spec
from vsr.models.user import default_name, user_models_dir

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

SPANDREL_SKIP = "these tests run in CI's second environment, .venv-models, see .ci/run"


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "user-models"
    monkeypatch.setenv("VSR_MODELS_DIR", str(folder))
    return folder


def _export_onnx(path: Path, seed: int = 0) -> Path:
    """A 4x RGB model of 1,344 parameters (a conv and a PixelShuffle) as ONNX, any input size."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 48, 3, padding=1), torch.nn.PixelShuffle(4)).eval()
    axes = {"input": {0: "n", 2: "h", 3: "w"}, "output": {0: "n", 2: "h4", 3: "w4"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter, asked for
        _export(net, path, axes)
    return path


def _export(net: torch.nn.Module, path: Path, axes: dict) -> None:
    torch.onnx.export(
        net,
        (torch.rand(1, 3, 16, 16),),
        str(path),
        input_names=["input"],
        output_names=["output"],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two different tiny ONNX models; the first one's stem needs sanitising."""
    folder = tmp_path_factory.mktemp("onnx")
    return _export_onnx(folder / "Tiny Net_X4.onnx"), _export_onnx(folder / "other.onnx", seed=1)


def _vsr(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> None:
    assert err.startswith("vsr: error: ") and err.count("\n") == 1, err


def _rows(out: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in out.splitlines()[1:]}


def test_the_folder_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VSR_MODELS_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert user_models_dir() == tmp_path / "data" / "vsr" / "models"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert user_models_dir() == Path.home() / ".local" / "share" / "vsr" / "models"
    monkeypatch.setenv("VSR_MODELS_DIR", str(tmp_path / "mine"))
    assert user_models_dir() == tmp_path / "mine"


def test_default_names() -> None:
    assert default_name("/x/4x_Nomos8k-SPAN.pth") == "4x_nomos8k-span"
    assert default_name("Tiny Net_X4.onnx") == "tiny-net_x4"
    assert default_name("__.pth") == "model"


def test_add_list_show_remove_round_trip(models_dir, onnx_files, capsys) -> None:
    code, out, err = _vsr(capsys, "models", "add", str(onnx_files[0]))
    assert code == 0, err
    assert out.startswith("added tiny-net_x4: onnx 4x, 1,344 parameters; ") and "frames/s" in out
    assert sorted(p.name for p in models_dir.iterdir()) == [
        "tiny-net_x4.json",
        "tiny-net_x4.md",
        "tiny-net_x4.onnx",
    ]
    card = json.loads((models_dir / "tiny-net_x4.json").read_text())
    assert card["scale"] == 4 and card["params"] == 1344 and card["format"] == "onnx"
    assert card["source"] == str(onnx_files[0].resolve()) and card["vsr_version"]
    assert card["speed"]["fps"] > 0 and card["speed"]["backend"] == "onnx"
    assert (card["speed"]["width"], card["speed"]["height"]) == (320, 180)

    code, out, _ = _vsr(capsys, "models")
    rows = _rows(out)
    assert code == 0 and "fast" in rows and rows["fast"][5] == "vsr"
    assert rows["tiny-net_x4"][3:8] == ["1,344", "yes", "user", "x4", f"{card['speed']['fps']:.1f}"]

    code, out, _ = _vsr(capsys, "models", "show", "tiny-net_x4")
    assert code == 0 and card["sha256"] in out and "file state: ok" in out
    assert (models_dir / "tiny-net_x4.md").read_text() in out

    code, out, _ = _vsr(capsys, "models", "remove", "tiny-net_x4")
    assert code == 0 and "removed user model tiny-net_x4" in out
    assert list(models_dir.iterdir()) == []
    assert "tiny-net_x4" not in _rows(_vsr(capsys, "models", "list")[1])


def test_the_catalogue_is_listed_in_a_fresh_process(models_dir, onnx_files, capsys) -> None:
    assert _vsr(capsys, "models", "add", str(onnx_files[1]), "--no-measure")[0] == 0
    proc = run_vsr("models")
    assert proc.returncode == 0, proc.stderr
    assert _rows(proc.stdout.decode())["other"][4:8] == ["yes", "user", "x4", "-"]


@pytest.mark.parametrize("name", ["fast", "bicubic-x2"])
def test_a_shipped_name_is_refused(models_dir, onnx_files, capsys, name) -> None:
    code, _, err = _vsr(capsys, "models", "add", str(onnx_files[0]), "--name", name, "--force")
    assert code == 2 and "ships with vsr" in err
    _one_error_line(err)
    assert not models_dir.exists()
    code, _, err = _vsr(capsys, "models", "remove", name)
    assert code == 2 and "ships with vsr" in err


@pytest.mark.parametrize("name", ["Tiny", "-x", "a/b", "../up", "x.onnx", "é"])
def test_a_bad_name_is_refused(models_dir, onnx_files, capsys, name) -> None:
    code, _, err = _vsr(capsys, "models", "add", str(onnx_files[0]), f"--name={name}", "--no-measure")
    assert code == 2 and ("is not allowed" in err or "ends like a model file" in err)
    _one_error_line(err)
    assert not models_dir.exists()


def test_a_user_name_clash_is_refused_and_force_replaces(models_dir, onnx_files, capsys) -> None:
    first, second = onnx_files
    assert _vsr(capsys, "models", "add", str(first), "--name", "mine", "--no-measure")[0] == 0
    sha = json.loads((models_dir / "mine.json").read_text())["sha256"]
    code, _, err = _vsr(capsys, "models", "add", str(second), "--name", "mine", "--no-measure")
    assert code == 2 and "exists already" in err
    _one_error_line(err)
    assert json.loads((models_dir / "mine.json").read_text())["sha256"] == sha
    code, _, err = _vsr(capsys, "models", "add", str(second), "--name", "mine", "--no-measure", "--force")
    assert code == 0, err
    card = json.loads((models_dir / "mine.json").read_text())
    assert card["sha256"] != sha and card["source"] == str(second.resolve()) and card["speed"] is None
    assert sorted(p.name for p in models_dir.iterdir()) == ["mine.json", "mine.md", "mine.onnx"]


@pytest.mark.parametrize(
    ("name", "data"),
    [("bad.onnx", b"not a model at all" * 100), ("bad.pth", b"\x80\x02garbage"), ("bad.txt", b"x")],
)
def test_a_bad_file_is_refused_and_leaves_nothing(models_dir, tmp_path, capsys, name, data) -> None:
    bad = tmp_path / name
    bad.write_bytes(data)
    code, _, err = _vsr(capsys, "models", "add", str(bad))
    assert code == 5, err
    _one_error_line(err)
    assert not models_dir.exists() or list(models_dir.iterdir()) == []
    code, _, err = _vsr(capsys, "models", "add", str(tmp_path / "missing.onnx"))
    assert code == 5 and "does not exist" in err


def test_a_changed_file_is_refused_before_use(models_dir, onnx_files, capsys) -> None:
    assert _vsr(capsys, "models", "add", str(onnx_files[0]), "--name", "mine", "--no-measure")[0] == 0
    assert get_spec("mine").path == models_dir / "mine.onnx"
    with (models_dir / "mine.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="changed since it was added"):
        get_spec("mine")
    assert _rows(_vsr(capsys, "models")[1])["mine"][4] == "corrupt"
    (models_dir / "mine.onnx").unlink()
    with pytest.raises(ModelError, match="is missing"):
        get_spec("mine")
    assert _vsr(capsys, "models", "remove", "mine")[0] == 0 and list(models_dir.iterdir()) == []


def test_a_broken_card_is_skipped_and_can_be_removed(models_dir, capsys) -> None:
    models_dir.mkdir()
    (models_dir / "junk.json").write_text("{")
    (models_dir / "junk.onnx").write_bytes(b"x")
    code, out, err = _vsr(capsys, "models")
    assert code == 0 and "junk" not in _rows(out) and "junk.json cannot be read" in err
    with pytest.raises(ModelError, match="cannot be read"):
        get_spec("junk")
    assert _vsr(capsys, "models", "remove", "junk")[0] == 0 and list(models_dir.iterdir()) == []


def test_a_user_model_works_by_name(models_dir, onnx_files, clips, tmp_path, capsys) -> None:
    assert _vsr(capsys, "models", "add", str(onnx_files[0]), "--name", "mine", "--no-measure")[0] == 0
    out = tmp_path / "up.mkv"
    proc = run_vsr("upscale", str(clips["cfr_noaudio.mp4"]), "-o", str(out), "--model", "mine")
    assert proc.returncode == 0, proc.stderr
    assert "by mine" in proc.stderr and out.stat().st_size > 0
    assert FaceConfig(face_model="mine").face_model == "mine"
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        FaceConfig(face_model="nope")
    code, report, err = _vsr(
        capsys, "bench", "--model", "mine", "--no-e2e", "--frames", "2", "--size", "64x48"
    )
    assert code == 0 and "mine" in report, err


def test_eval_scores_a_user_model(models_dir, onnx_files, tmp_path, capsys) -> None:
    assert _vsr(capsys, "models", "add", str(onnx_files[0]), "--name", "mine", "--no-measure")[0] == 0
    images = tmp_path / "hr"
    images.mkdir()
    rng = np.random.default_rng(0)
    for n in ("a", "b"):
        coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        cv2.imwrite(str(images / f"{n}.png"), cv2.resize(coarse, (64, 48), interpolation=cv2.INTER_CUBIC))
    code, out, err = _vsr(capsys, "eval", "--model", "mine", "--data", str(images))
    assert code == 0, err
    assert out.startswith("mine on ") and "2 images" in out and "mean" in out


def test_eval_video_scores_a_user_model_beside_a_shipped_one(models_dir, onnx_files, clips, capsys) -> None:
    assert _vsr(capsys, "models", "add", str(onnx_files[0]), "--name", "mine", "--no-measure")[0] == 0
    argv = ["eval", "--video", str(clips["cfr_noaudio.mp4"]), "--size", "16x12", "--seconds", "0.3"]
    code, out, err = _vsr(capsys, *argv, "--no-vmaf", "--model", "mine", "fast")
    assert code == 0, err
    models = {line.split()[2] for line in out.splitlines()[3:] if line.startswith("cfr_noaudio")}
    assert {"mine", "fast", "bicubic"} <= models


def _spandrel() -> None:
    try:
        import spandrel  # noqa: F401
    except Exception as exc:  # ImportError, or torchvision's own errors beside a mismatched torch
        pytest.skip(f"spandrel not importable ({type(exc).__name__}: {exc}): {SPANDREL_SKIP}")


@pytest.mark.spandrel
def test_a_pytorch_file_round_trip(models_dir, clips, tmp_path, capsys) -> None:
    _spandrel()
    from spandrel.architectures.Compact import Compact

    pth = tmp_path / "Tiny-Compact.pth"
    torch.save(Compact(num_feat=8, num_conv=2, upscale=4).state_dict(), pth)
    code, out, err = _vsr(capsys, "models", "add", str(pth))
    assert code == 0, err
    assert (
        out.startswith("added tiny-compact: RealESRGAN Compact 4x, 4,920 parameters")
        and "torch on cpu" in out
    )
    assert _rows(_vsr(capsys, "models")[1])["tiny-compact"][3:7] == ["4,920", "yes", "user", "x4"]
    dst = tmp_path / "up.mkv"
    proc = run_vsr("upscale", str(clips["cfr_noaudio.mp4"]), "-o", str(dst), "--model", "tiny-compact")
    assert proc.returncode == 0 and "by tiny-compact" in proc.stderr, proc.stderr
    assert _vsr(capsys, "models", "remove", "tiny-compact")[0] == 0 and list(models_dir.iterdir()) == []
