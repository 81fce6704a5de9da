"""Derived files (ONNX exports, TensorRT engines) are checked against vsr's ledger before use.

Replacing a cached file (even with its sidecar rewritten to match) makes vsr rebuild it with one
warning instead of running another network; a corrupt or missing ledger means "unknown": rebuilt,
no crash. The ledger lives in ``$VSR_STATE_DIR``, outside ``$VSR_CACHE``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
from conftest import REPO, run_vsr
from trt_stand_in import stand_in_tensorrt

from vsr import derived
from vsr.models import integrity
from vsr.trt import commands
from vsr.trt.cache import DeviceInfo, EngineCache

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from vsr.backends.onnx_backend import OnnxBackend  # noqa: E402
from vsr.export import export_onnx, onnx_for  # noqa: E402
from vsr.models.arch import fold_batchnorm  # noqa: E402
from vsr.models.catalogue import get_spec, new_network  # noqa: E402

SPEC = get_spec("fast-tiny")
GPU = DeviceInfo("NVIDIA H100 80GB HBM3", (9, 0), "10.9.0")
FRAMES = np.random.default_rng(5).integers(0, 256, (1, 20, 28, 3), dtype=np.uint8)


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("VSR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VSR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("VSR_ENGINE_CACHE", str(tmp_path / "engines"))


def _impostor(seed: int = 1) -> torch.nn.Module:
    """A network of the same architecture with other (random) weights: same shapes, other output."""
    torch.manual_seed(seed)
    return fold_batchnorm(new_network(SPEC.arch).eval())


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the ledger itself ------------------------------------------------------------------------------


def test_state_dir_is_vsr_state_dir_else_xdg_state_home_else_local_state(monkeypatch, tmp_path):
    assert derived.state_dir() == tmp_path / "state"
    monkeypatch.delenv("VSR_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert derived.state_dir() == tmp_path / "xdg" / "vsr"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert derived.state_dir() == tmp_path / "home" / ".local" / "state" / "vsr"


def test_record_verify_forget(tmp_path):
    source, path = "ab" * 32, tmp_path / "cache" / "x.bin"
    path.parent.mkdir()
    path.write_bytes(b"derived" * 100)
    assert derived.verify(source, path) == "unknown"
    entry = derived.record(source, path, "onnx")
    assert entry["sha256"] == _sha(path) and entry["size"] == 700 and entry["kind"] == "onnx"
    assert derived.verify(source, path) == "ok"
    assert derived.verify("cd" * 32, path) == "unknown", "records are per source"
    ledger = derived.ledger_path(source)
    assert ledger.parent == tmp_path / "state" / "derived" and ledger.name == f"{source}.json"
    assert json.loads(ledger.read_text())["files"][str(path.resolve())]["sha256"] == entry["sha256"]
    path.write_bytes(b"derived" * 99 + b"Derived")  # same size, other bytes
    assert derived.verify(source, path) == "mismatch"
    derived.forget(source, path)
    assert derived.verify(source, path) == "unknown"
    assert not [p for p in ledger.parent.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(ValueError, match="not a sha256"):
        derived.ledger_path("../../etc/passwd")


@pytest.mark.parametrize("garbage", ["{not json", "[]", '{"format": 1, "files": 3}', '{"format": 99}'])
def test_a_corrupt_ledger_counts_as_unknown_and_is_rewritten(tmp_path, garbage):
    source, path = "ef" * 32, tmp_path / "x.bin"
    path.write_bytes(b"x")
    ledger = derived.ledger_path(source)
    ledger.parent.mkdir(parents=True)
    ledger.write_text(garbage)
    assert derived.verify(source, path) == "unknown"
    derived.record(source, path, "engine")
    assert derived.verify(source, path) == "ok"


def test_concurrent_writers_keep_every_record(tmp_path):
    """Four processes record 15 files each under one source at once: all 60 records survive."""
    source = "12" * 32
    files = tmp_path / "files"
    files.mkdir()
    code = (
        "import sys; from pathlib import Path; from vsr import derived\n"
        "for i in range(15):\n"
        "    p = Path(sys.argv[1]) / f'{sys.argv[2]}-{i}.bin'; p.write_bytes(p.name.encode())\n"
        "    derived.record(sys.argv[3], p, 'onnx')\n"
    )
    env = {"VSR_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(files), f"w{w}", source], env=env) for w in range(4)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0] * 4
    assert len(json.loads(derived.ledger_path(source).read_text())["files"]) == 60
    assert all(derived.verify(source, p) == "ok" for p in files.iterdir())


# --- ONNX exports ------------------------------------------------------------------------------------


@pytest.fixture
def genuine() -> tuple[Path, bytes, np.ndarray]:
    """The catalogue export of fast-tiny (path, bytes) and what OnnxBackend makes of FRAMES."""
    path = onnx_for(SPEC)
    return path, path.read_bytes(), OnnxBackend(SPEC, threads=1).infer(FRAMES)


def test_a_replaced_onnx_export_is_rebuilt_with_one_warning(genuine, tmp_path, caplog):
    path, good, want = genuine
    export_onnx(_impostor(), SPEC, path)  # another network's export under the genuine name
    tampered = OnnxBackend(SPEC, threads=1, onnx_path=path).infer(FRAMES)
    assert not np.array_equal(tampered, want), "the impostor must produce other pixels"
    with caplog.at_level(logging.INFO):
        got = OnnxBackend(SPEC, threads=1).infer(FRAMES)
    assert np.array_equal(got, want) and path.read_bytes() == good, "rebuilt from the real weights"
    warned = _warnings(caplog)
    assert len(warned) == 1, warned
    assert "does not match what vsr wrote (sha256" in warned[0] and warned[0].endswith("rebuilding")
    caplog.clear()
    OnnxBackend(SPEC, threads=1).infer(FRAMES)
    assert _warnings(caplog) == [], "once rebuilt, it is trusted again"


@pytest.mark.parametrize("damage", ["corrupt ledger", "no ledger"])
def test_an_onnx_export_the_ledger_cannot_vouch_for_is_rebuilt(genuine, caplog, damage):
    path, good, want = genuine
    from vsr.models.integrity import file_sha256

    ledger = derived.ledger_path(file_sha256(SPEC.weights_path))
    if damage == "no ledger":
        ledger.unlink()
    else:
        ledger.write_bytes(b"\x00garbage{")
    mtime = path.stat().st_mtime_ns
    assert np.array_equal(OnnxBackend(SPEC, threads=1).infer(FRAMES), want)
    assert path.stat().st_mtime_ns != mtime and path.read_bytes() == good, "exported again"
    warned = _warnings(caplog)
    assert len(warned) == 1 and "was not written by vsr" in warned[0], warned
    assert derived.verify(file_sha256(SPEC.weights_path), path) == "ok", "the ledger is rewritten"


def test_a_replaced_custom_export_is_rebuilt(caplog):
    net = _impostor(seed=2)
    path = onnx_for(SPEC, net=net)
    assert "custom-" in path.name
    good = path.read_bytes()
    export_onnx(_impostor(seed=3), SPEC, path)
    assert onnx_for(SPEC, net=net) == path and path.read_bytes() == good
    assert len(_warnings(caplog)) == 1


@pytest.fixture
def hashed(monkeypatch) -> list[int]:
    """One item per file vsr hashes from now on, starting from an empty hash cache (a new process)."""
    calls: list[int] = []

    def counting_sha256(*args):
        calls.append(1)
        return hashlib.sha256(*args)

    monkeypatch.setattr(integrity, "_hashes", {})
    monkeypatch.setattr(integrity, "hashlib", SimpleNamespace(sha256=counting_sha256))
    return calls


def test_a_second_open_does_not_hash_again(genuine, hashed):
    """A new process hashes the weights and the cached export once each; later opens only stat."""
    path, _good, _want = genuine
    hashed.clear()
    assert onnx_for(SPEC) == path
    assert len(hashed) == 2, "the weights and the cached export, once each"
    for _ in range(3):
        OnnxBackend(SPEC, threads=1)
    assert len(hashed) == 2, "a second open re-hashes nothing"


# --- TensorRT engines (the builder through the recording stand-in, as in test_engines.py) ------------


@pytest.fixture
def builds(monkeypatch) -> list:
    calls: list = []
    monkeypatch.setattr(commands, "import_tensorrt", lambda: stand_in_tensorrt(calls))
    monkeypatch.setattr(commands, "current_device", lambda trt: GPU)
    return calls


def _build(onnx: Path) -> Path:
    return commands.build_engine("fast-tiny", "p360", onnx_path=onnx, cache_dir=EngineCache().root)


def test_an_engine_with_a_rewritten_sidecar_is_rejected_by_the_ledger(builds, genuine, caplog):
    onnx = genuine[0]
    engine = _build(onnx)
    evil = b"ANOTHER-NETWORK" * 40
    engine.write_bytes(evil)
    sidecar = engine.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    meta.update(engine_sha256=hashlib.sha256(evil).hexdigest(), engine_bytes=len(evil))
    sidecar.write_text(json.dumps(meta))  # the sidecar now vouches for the impostor
    rows = EngineCache().entries()
    assert "does not match what vsr built" in rows[0]["status"] and "rebuilt" in rows[0]["status"]
    caplog.clear()
    assert _build(onnx) == engine and engine.read_bytes().startswith(b"FAKE-ENGINE:")
    assert sum(c[0] == "build" for c in builds) == 2, "rebuilt"
    warned = _warnings(caplog)
    assert len(warned) == 1 and "ledger" in warned[0] and "rebuilding" in warned[0], warned
    assert EngineCache().entries()[0]["status"] == "ok"


def test_an_engine_the_ledger_never_saw_is_rebuilt_once(builds, genuine, caplog):
    onnx = genuine[0]
    engine = _build(onnx)
    derived.forget(integrity.file_sha256(onnx), engine)  # as if built before the ledger existed
    assert "no record" in EngineCache().entries()[0]["status"]
    _build(onnx)
    _build(onnx)
    assert sum(c[0] == "build" for c in builds) == 2
    assert len(_warnings(caplog)) == 1


def test_a_cached_engine_is_hashed_once_per_process(builds, genuine, hashed, monkeypatch):
    engine = _build(genuine[0])
    monkeypatch.setattr(integrity, "_hashes", {})  # a new process
    hashed.clear()
    for _ in range(3):
        assert _build(genuine[0]) == engine
    assert len(hashed) == 2, "the ONNX file and the engine, once each (sidecar and ledger share it)"
    assert sum(c[0] == "build" for c in builds) == 1


# --- the CLI, end to end --------------------------------------------------------------------------


def _decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_upscale_after_tampering_warns_once_and_writes_the_clean_output(clips, tmp_path, monkeypatch):
    args = ("--model", "fast-tiny", "--backend", "onnx", "-q")
    clip = str(clips["cfr_noaudio.mp4"])
    clean = run_vsr("upscale", clip, "-o", str(tmp_path / "clean.mp4"), *args)
    assert clean.returncode == 0, clean.stderr
    [cached] = (tmp_path / "cache" / "onnx").glob("fast-tiny-*.onnx")
    export_onnx(_impostor(), SPEC, cached)
    after = run_vsr("upscale", clip, "-o", str(tmp_path / "after.mp4"), *args)
    assert after.returncode == 0, after.stderr
    lines = after.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not match what vsr wrote" in lines[0], after.stderr
    clean_frames, after_frames = _decoded(tmp_path / "clean.mp4"), _decoded(tmp_path / "after.mp4")
    assert len(after_frames) == len(clean_frames) > 0
    assert all(np.array_equal(a, b) for a, b in zip(after_frames, clean_frames, strict=True))
