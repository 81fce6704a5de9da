"""`vsr upscale --face` end to end on the shipped face sample: real detector, real video."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "face_320x180.mp4"


def _vsr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vsr", *args], capture_output=True, text=True, timeout=300)


def test_upscale_face_mode_detects_the_face_and_writes_every_frame(tmp_path):
    out, stats = tmp_path / "face.mp4", tmp_path / "stats.json"
    r = _vsr(
        "upscale",
        str(SAMPLE),
        "-o",
        str(out),
        "--face",
        "--face-model",
        "bicubic",
        "--json-stats",
        str(stats),
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(stats.read_text())
    assert data["frames_out"] == data["frames_in"] == 120
    assert data["faces_detected_frames"] >= 110, "the astronaut's face is in every frame"
    assert data["face"]["max_faces"] == 1 and data["face"]["tracks_started"] == 1
    assert data["model"] == "face:bicubic+bicubic"  # face model + background model, not --model
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (1280, 720)
        assert len(c.streams.audio) == 1


@pytest.mark.parametrize(
    ("flags", "phrase"),
    [
        (["--face-detector", "nope"], "unknown face detector 'nope'"),
        (["--face-model", "nope"], "unknown model 'nope'"),
        (["--face-every", "0"], "face detection interval"),
    ],
)
def test_face_flags_are_validated_in_one_line(tmp_path, flags, phrase):
    r = _vsr("upscale", str(SAMPLE), "-o", str(tmp_path / "x.mp4"), "--face", *flags)
    assert r.returncode == 2 and phrase in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.mp4").exists()
