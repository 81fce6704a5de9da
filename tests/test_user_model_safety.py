"""The user catalogue against planted cards and failed adds (issue 16 review).

A card is a file anyone can drop into the catalogue folder: its ``file`` must be ``NAME.suffix``
(never ``../x`` nor an absolute path) and its fields must have their types, else it is skipped with
one warning like a broken card. ``remove`` only deletes the files the name owns. A ``--force`` add
that fails leaves the model it was replacing as it was.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from vsr.cli import main
from vsr.errors import ModelError
from vsr.models import install
from vsr.models.card import ModelCard
from vsr.models.catalogue import get_spec
from vsr.models.install import add_user_model, remove_user_model
from vsr.models.user import find_user_model, user_models

SHA = "0" * 64


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "user-models"
    folder.mkdir()
    monkeypatch.setenv("VSR_MODELS_DIR", str(folder))
    return folder


def _card(name: str = "evil", **changes: object) -> dict:
    card = ModelCard(
        name=name,
        file=f"{name}.onnx",
        format="onnx",
        arch="onnx",
        scale=4,
        in_channels=3,
        out_channels=3,
        size_multiple=1,
        min_size=0,
        fp16=False,
        bf16=False,
        params=10,
        sha256=SHA,
        source="/somewhere/evil.onnx",
        added_at="2026-01-01T00:00:00+00:00",
        vsr_version="0",
    )
    doc = json.loads(card.to_json())
    doc.update(changes)
    return doc


def _plant(folder: Path, doc: dict) -> None:
    (folder / f"{doc['name']}.json").write_text(json.dumps(doc))


def test_a_valid_planted_card_is_read(models_dir: Path) -> None:
    _plant(models_dir, _card())
    assert find_user_model("evil").path == models_dir / "evil.onnx"


@pytest.mark.parametrize(
    "changes",
    [
        {"file": "../victim.txt"},
        {"file": "/etc/passwd"},
        {"file": "evil.txt"},
        {"file": "other.onnx"},
        {"file": "evil.pth"},  # an .onnx format with a PyTorch suffix
        {"params": "x"},
        {"scale": "4"},
        {"scale": True},
        {"fp16": "no"},
        {"in_channels": 2},
        {"speed": {"fps": "fast", "backend": "onnx", "device": "cpu", "width": 1, "height": 1, "frames": 1}},
        {"speed": [1, 2]},
    ],
    ids=lambda changes: next(iter(changes)) + "=" + str(next(iter(changes.values())))[:12],
)
def test_a_bad_card_is_skipped_with_one_warning(models_dir: Path, capsys, caplog, changes: dict) -> None:
    _plant(models_dir, _card(**changes))
    with pytest.raises(ModelError, match=r"evil\.json cannot be read"):
        find_user_model("evil")
    caplog.clear()
    assert user_models() == []
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert main(["models"]) == 0
    out, _ = capsys.readouterr()
    assert "evil" not in out


def test_a_gray_model_is_listed_as_gray(models_dir: Path, capsys) -> None:
    _plant(models_dir, _card(in_channels=1, out_channels=1))
    _plant(models_dir, _card("colourful"))
    assert find_user_model("evil").spec.channels == 1
    assert main(["models"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr()[0].splitlines()[1:]}
    assert rows["evil"][2] == "gray" and rows["colourful"][2] == "rgb"
    assert find_user_model("evil").spec.colour == "rgb"  # how it runs: unchanged (1-channel path)


def test_remove_deletes_only_the_files_the_name_owns(models_dir: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    _plant(models_dir, _card(file="../victim.txt"))
    (models_dir / "evil.pth").write_bytes(b"x")
    (models_dir / "evil.md").write_text("card")
    assert "evil.pth" in remove_user_model("evil")
    assert victim.read_text() == "keep me" and list(models_dir.iterdir()) == []


def test_an_absolute_file_cannot_be_loaded_by_name(models_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "any.onnx"
    elsewhere.write_bytes(b"x")
    _plant(models_dir, _card(file=str(elsewhere)))
    with pytest.raises(ModelError, match="cannot be read"):
        get_spec("evil")


# --- a failed --force add ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from test_user_models import _export_onnx

    folder = tmp_path_factory.mktemp("onnx")
    return _export_onnx(folder / "one.onnx"), _export_onnx(folder / "two.onnx", seed=1)


_write = install._write_atomic


def _fail_on_json(monkeypatch: pytest.MonkeyPatch) -> None:
    write = _write

    def failing(path: Path, text: str) -> None:
        if path.suffix == ".json":
            raise OSError(28, "No space left on device")
        write(path, text)

    monkeypatch.setattr(install, "_write_atomic", failing)


def _state(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("second", [0, 1], ids=["same-suffix-same-file", "same-suffix-other-file"])
def test_a_failed_force_add_keeps_the_old_model(models_dir, onnx_files, monkeypatch, second) -> None:
    add_user_model(onnx_files[0], "mine", measure=False)
    before = _state(models_dir)
    _fail_on_json(monkeypatch)
    with pytest.raises(OSError, match="No space"):
        add_user_model(onnx_files[second], "mine", measure=False, force=True)
    assert _state(models_dir) == before
    assert get_spec("mine").path == models_dir / "mine.onnx"  # its sha256 still matches the card


def test_a_failed_force_add_of_another_suffix_keeps_the_old_model(
    models_dir, onnx_files, monkeypatch
) -> None:
    add_user_model(onnx_files[0], "mine", measure=False)
    (models_dir / "mine.onnx").rename(models_dir / "mine.pth")  # as if the old one was a .pth
    doc = json.loads((models_dir / "mine.json").read_text())
    (models_dir / "mine.json").write_text(json.dumps({**doc, "file": "mine.pth", "format": "torch"}))
    before = _state(models_dir)
    _fail_on_json(monkeypatch)
    with pytest.raises(OSError):
        add_user_model(onnx_files[1], "mine", measure=False, force=True)
    assert _state(models_dir) == before
    monkeypatch.setattr(install, "_write_atomic", _write)
    add_user_model(onnx_files[1], "mine", measure=False, force=True)
    assert sorted(p.name for p in models_dir.iterdir()) == ["mine.json", "mine.md", "mine.onnx"]


def test_add_sweeps_stale_temporary_files(models_dir, onnx_files) -> None:
    old, young = models_dir / ".mine.abc123.part.onnx", models_dir / ".mine.md.xyz.part"
    other = models_dir / ".other.abc.part.onnx"
    for p in (old, young, other):
        p.write_bytes(b"x")
    hours_ago = time.time() - 7200
    os.utime(old, (hours_ago, hours_ago))
    os.utime(other, (hours_ago, hours_ago))
    add_user_model(onnx_files[0], "mine", measure=False)
    assert not old.exists() and young.exists() and other.exists()
