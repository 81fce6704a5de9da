"""A user's first runs: face mode's default model and summary, progress off a terminal, and
`vsr models` telling a damaged weights file from a whole one. Real runs on the shipped sample."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest

import vsr.stats
from vsr.cli import main
from vsr.models import catalogue
from vsr.models import spec as spec_module
from vsr.stats import Progress

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "face_320x180.mp4"


def _vsr(*args: str) -> subprocess.CompletedProcess[str]:
    """The command line in a child process: stderr is a pipe (not a terminal), as in CI or a log."""
    return subprocess.run([sys.executable, "-m", "vsr", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def short_face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's first 24 frames (the face in each), so a real face run stays short."""
    out = tmp_path_factory.mktemp("first_run") / "face_24.mp4"
    with av.open(str(SAMPLE)) as src, av.open(str(out), "w") as dst:
        s = dst.add_stream("libx264", rate=30, options={"preset": "ultrafast", "crf": "18"})
        s.width, s.height, s.pix_fmt = 320, 180, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i == 24:
                break
            frame.pts = None
            dst.mux(s.encode(frame))
        dst.mux(s.encode(None))
    return out


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


# --- 2. face mode: the default face model and the summary line --------------------------------


def test_best_face_model_on_a_cpu_is_fast_plus_for_files_and_live_runs():
    from vsr.face import best_face_model

    assert best_face_model(cuda=False) == "fast-plus"  # compact made a file run ~3x slower
    assert best_face_model(cuda=False, live=True) == "fast-plus"
    assert best_face_model(cuda=True) == "compact"  # a GPU has the headroom


def test_face_run_uses_the_default_face_model_and_says_how_many_frames_had_faces(short_face_clip, tmp_path):
    out, stats = tmp_path / "face.mp4", tmp_path / "stats.json"
    r = _vsr("upscale", str(short_face_clip), "-o", str(out), "--face", "--json-stats", str(stats))
    assert r.returncode == 0, r.stderr
    data = json.loads(stats.read_text())
    assert data["model"] == ("face:compact+bicubic" if _cuda() else "face:fast-plus+bicubic")
    found = re.search(r"faces in (\d+) of (\d+) frames", r.stderr)
    assert found, r.stderr
    assert int(found[1]) == data["faces_detected_frames"] >= 20 and int(found[2]) == 24


def test_upscale_lets_idle_openmp_threads_sleep(tmp_path):
    code = (
        "import os, sys; from vsr.cli import main; "
        f"rc = main(['upscale', {str(SAMPLE)!r}, '-o', {str(tmp_path / 'o.mp4')!r}, '--model', 'bicubic', '-q', '--overwrite']); "
        "print(rc, os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert r.stdout.split()[:2] == ["0", "PASSIVE"], r.stderr
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # a user's own setting stays
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert r.stdout.split()[:2] == ["0", "ACTIVE"], r.stderr


def test_summary_line_says_nothing_of_faces_without_face_mode(short_face_clip, tmp_path):
    r = _vsr("upscale", str(short_face_clip), "-o", str(tmp_path / "o.mp4"), "--model", "bicubic")
    assert r.returncode == 0, r.stderr
    assert "wrote " in r.stderr and "faces in" not in r.stderr


# --- 3. progress off a terminal -------------------------------------------------------------------


def test_progress_off_a_terminal_writes_plain_lines_at_most_every_interval(monkeypatch):
    stream = io.StringIO()
    p = Progress(120, enabled=True, stream=stream)
    assert not p.tty
    line = p.line(60, 2.0)
    p.draw(line)
    assert stream.getvalue() == "", "nothing before the first interval has passed"
    monkeypatch.setattr(vsr.stats, "PLAIN_EVERY_S", 0.0)
    p.draw(line)
    p.close()
    assert stream.getvalue() == "vsr: progress: 60/120 frames 30.0 fps ETA 2s\n"


def test_progress_on_a_terminal_redraws_the_bar_in_place():
    stream = io.StringIO()
    p = Progress(120, enabled=True, stream=stream, tty=True)
    p.draw(p.line(60, 2.0))
    p.close()
    text = stream.getvalue()
    assert text.startswith("\r[############            ] 60/120 frames") and text.endswith("\n")


def test_upscale_off_a_terminal_prints_progress_lines_and_quiet_prints_none(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(vsr.stats, "PLAIN_EVERY_S", 0.0)  # every status call (4/s), not every 5 s
    out = tmp_path / "o.mp4"
    assert main(["upscale", str(SAMPLE), "-o", str(out), "--model", "bicubic"]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("vsr: progress: ")]
    assert lines, err
    assert "\r" not in err and "#" not in err
    assert all(re.fullmatch(r"vsr: progress: \d+/120 frames \d+\.\d fps ETA (\d+s|-)", ln) for ln in lines)
    assert main(["upscale", str(SAMPLE), "-o", str(out), "--model", "bicubic", "--overwrite", "-q"]) == 0
    assert capsys.readouterr().err == ""


# --- 5. weights: missing, truncated, altered ------------------------------------------------------


@pytest.fixture
def weights_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty weights folder standing in for vsr/weights."""
    d = tmp_path / "weights"
    d.mkdir()
    monkeypatch.setattr(spec_module, "WEIGHTS_DIR", d)
    return d


def _shipped(name: str) -> Path:
    path = Path(catalogue.__file__).resolve().parent.parent / "weights" / f"{name}.safetensors"
    if not path.is_file():
        pytest.skip(f"{path.name} is not in this build")
    return path


def test_truncated_or_altered_weights_are_corrupt_not_present(weights_dir):
    good = _shipped("fast").read_bytes()
    spec = catalogue.get_spec("fast")
    target = weights_dir / "fast.safetensors"
    assert spec.weights_state == "missing" and not spec.has_weights
    target.write_bytes(good[: len(good) // 2])  # a cut-off download
    assert spec.weights_state == "corrupt" and not spec.has_weights
    altered = bytearray(good)
    altered[-1] ^= 0xFF  # same size, one weight byte changed: only the checksum can tell
    target.write_bytes(bytes(altered))
    assert spec.weights_state == "corrupt"
    target.write_bytes(good)
    assert spec.weights_state == "ok" and spec.has_weights


def test_vsr_models_says_missing_and_corrupt(weights_dir, capsys):
    shutil.copy(_shipped("fast"), weights_dir / "fast.safetensors")
    good = _shipped("fast-lite").read_bytes()
    (weights_dir / "fast-lite.safetensors").write_bytes(good[:-100])
    assert main(["models"]) == 0
    rows = {ln.split()[0]: ln.split()[4] for ln in capsys.readouterr().out.splitlines()[1:]}
    assert rows["bicubic"] == "yes" and rows["fast"] == "yes"
    assert rows["fast-lite"] == "corrupt" and rows["compact"] == "missing"


def test_a_corrupt_face_model_is_passed_over(weights_dir):
    from vsr.face import best_face_model

    shutil.copy(_shipped("fast"), weights_dir / "fast.safetensors")
    (weights_dir / "fast-plus.safetensors").write_bytes(_shipped("fast-plus").read_bytes()[:1000])
    assert best_face_model(cuda=False) == "fast"


def test_the_checksum_is_computed_once_per_file_version(weights_dir, monkeypatch):
    from vsr.models import integrity

    shutil.copy(_shipped("fast"), weights_dir / "fast.safetensors")
    spec = catalogue.get_spec("fast")
    assert spec.has_weights
    monkeypatch.setattr(integrity.hashlib, "sha256", None)  # any new hash would raise
    assert all(spec.has_weights for _ in range(100))
