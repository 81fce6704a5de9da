"""``vsr eval --video`` (vsr.quality): the table, the metrics' anchors, the baselines, the crops.

A synthetic 1 s clip (a moving grating and disc) runs through the whole command once per module;
a real clip (cut to 1 s) runs when ../shared/data is present. VMAF checks skip with a reason where
no FFmpeg with libvmaf is installed (pip install 'vsr[eval]').
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from vsr import cli
from vsr.errors import ConfigError
from vsr.metrics import psnr_y
from vsr.quality import (
    VideoEvalConfig,
    evaluate_video,
    find_vmaf_ffmpeg,
    format_video_table,
    iter_frames,
    plan_clip,
    run_vmaf,
    tof,
    unsharp,
)
from vsr.quality.codec import h264_roundtrip
from vsr.quality.scores import RefFrame, SequenceScore

SHARED_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
METHODS = ("bicubic", "lanczos", "bicubic+unsharp", "fast", "fast-stream")
VMAF_EXE, VMAF_WHY = find_vmaf_ffmpeg()
needs_vmaf = pytest.mark.skipif(VMAF_EXE is None, reason=f"VMAF cannot run here: {VMAF_WHY}")


def _scene(i: int, h: int = 144, w: int = 256) -> np.ndarray:
    """(h, w, 3) uint8 frame i: a drifting grating with a disc moving across it."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 128 + 60 * np.sin((x + 2 * i) / 5.0) * np.cos(y / 7.0)
    img = np.stack([base, 255 - base, 0.5 * base + 40], axis=-1)
    cv2.circle(img, (30 + 12 * i, h // 2), 22, (240, 200, 30), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("evalvideo") / "scene.mp4"
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=Fraction(12))
        st.width, st.height, st.pix_fmt = 256, 144, "yuv420p"
        st.options = {"preset": "ultrafast", "crf": "12"}
        for i in range(14):
            out.mux(st.encode(av.VideoFrame.from_ndarray(_scene(i), format="rgb24")))
        out.mux(st.encode(None))
    return path


@pytest.fixture(scope="module")
def run(synthetic, tmp_path_factory) -> dict:
    """The whole command once: ``vsr eval --video scene.mp4 --size 64x36 ...`` with JSON and crops."""
    folder = tmp_path_factory.mktemp("evalrun")
    argv = ["eval", "--video", str(synthetic), "--size", "64x36", "--kbps", "40", "--seconds", "1"]
    argv += ["--model", "fast", "fast-stream", "--json", str(folder / "r.json"), "--images", str(folder)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(argv) == 0
    return {"json": json.loads((folder / "r.json").read_text()), "stdout": out.getvalue(), "dir": folder}


def test_table_has_every_model_and_baseline(run) -> None:
    rows = run["json"]["rows"]
    assert [r["model"] for r in rows] == list(METHODS)
    lines = run["stdout"].splitlines()
    assert all(col in lines[1] for col in ("VMAF", "VMAF-NEG", "Y-PSNR", "SSIM", "tOF"))
    for m in METHODS:
        assert any(line.split()[2:3] == [m] for line in lines[3:]), m
    assert run["json"]["clips"][0]["frames"] == 12  # the first second at 12 fps
    assert run["json"]["clips"][0]["ref"] == "256x144"


def test_values_are_in_sane_ranges(run) -> None:
    for r in run["json"]["rows"]:
        assert 15.0 < r["psnr_y"] < 60.0, r
        assert 0.3 < r["ssim_y"] <= 1.0, r
        assert 0.0 <= r["tof"] < 5.0, r
        if VMAF_EXE is not None:
            assert 0.0 <= r["vmaf"] <= 100.0 and 0.0 <= r["vmaf_neg"] <= 100.0, r
            assert r["vmaf_neg"] <= r["vmaf"] + 1.0, r  # NEG never rewards enhancement
        else:
            assert r["vmaf"] is None


def test_bicubic_psnr_equals_a_direct_computation(run, synthetic) -> None:
    plan = plan_clip(256, 144, (64, 36))
    src = list(iter_frames(synthetic, seconds=1))
    coded = h264_roundtrip([plan.low_res(f) for f in src], bitrate=40_000, fps=12.0)
    direct = np.mean(
        [
            psnr_y(plan.reference(f), cv2.resize(c, (256, 144), interpolation=cv2.INTER_CUBIC), 4)
            for f, c in zip(src, coded, strict=True)
        ]
    )
    row = next(r for r in run["json"]["rows"] if r["model"] == "bicubic")
    assert row["psnr_y"] == pytest.approx(direct, abs=1e-9)


def test_side_by_side_crops_are_written(run) -> None:
    names = sorted(p.name for p in run["dir"].glob("*.png"))
    assert "scene_40k_all.png" in names and "scene_40k_fast.png" in names
    img = cv2.imread(str(run["dir"] / "scene_40k_fast.png"))
    assert img.shape[0] == 24 + 72 and img.shape[1] == 3 * 72 + 2 * 4  # 3 labelled square panels


def test_identical_output_scores_perfect_and_a_worse_one_lower(synthetic, tmp_path) -> None:
    ref = [_scene(i) for i in range(6)]
    assert tof(ref, ref) == 0.0
    rng = np.random.default_rng(0)
    worse = [cv2.GaussianBlur(f, (0, 0), 2.0) for f in ref]
    worse = [np.clip(f + rng.normal(0, 12, f.shape), 0, 255).astype(np.uint8) for f in worse]
    same, bad = SequenceScore(tmp_path / "same.y4m", 12), SequenceScore(tmp_path / "bad.y4m", 12)
    prev = None
    with _writer(tmp_path / "ref.y4m") as ref_out:
        for f, w in zip(ref, worse, strict=True):
            prev = RefFrame.next(f, prev)
            ref_out.write(f)
            same.add(f.copy(), prev)
            bad.add(w, prev)
    same.close()
    bad.close()
    s, b = same.result(), bad.result()
    assert math.isinf(s["psnr_y"]) and s["ssim_y"] == pytest.approx(1.0) and s["tof"] == 0.0
    assert b["psnr_y"] < 35 and b["ssim_y"] < 0.9 and b["tof"] > 0.01
    if VMAF_EXE is None:
        pytest.skip(f"VMAF cannot run here: {VMAF_WHY}")
    v_same = run_vmaf(VMAF_EXE, tmp_path / "same.y4m", tmp_path / "ref.y4m")
    v_bad = run_vmaf(VMAF_EXE, tmp_path / "bad.y4m", tmp_path / "ref.y4m")
    assert v_same["vmaf"] > 95 and v_same["vmaf_neg"] > 95
    assert v_bad["vmaf"] < v_same["vmaf"] - 20 and v_bad["vmaf_neg"] < v_same["vmaf_neg"] - 20


def _writer(path: Path):
    from vsr.quality import Y4mWriter

    return Y4mWriter(path, 256, 144, 12)


def test_missing_libvmaf_is_one_line_and_empty_columns(synthetic, monkeypatch, caplog) -> None:
    monkeypatch.setattr("vsr.quality.run.find_vmaf_ffmpeg", lambda: (None, "no FFmpeg with libvmaf (test)"))
    cfg = VideoEvalConfig((synthetic,), size=(64, 36), models=(), baselines=("bicubic",), seconds=0.5)
    with caplog.at_level(logging.WARNING, logger="vsr"):
        result = evaluate_video(cfg)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["VMAF skipped: no FFmpeg with libvmaf (test)"]
    assert result["rows"][0]["vmaf"] is None and result["rows"][0]["psnr_y"] > 15
    assert "—" in format_video_table(result)


def test_reference_size_rule() -> None:
    wide = plan_clip(1920, 1080, (320, 180))
    assert wide.crop == (0, 0, 1920, 1080) and wide.ref == (1280, 720) and wide.ref_scale < 1
    square = plan_clip(700, 700, (320, 180))
    assert square.crop == (0, 153, 700, 394) and square.ref == (1280, 720)
    assert square.ref_scale == pytest.approx(720 / 394)
    portrait = plan_clip(720, 1280, (320, 180))
    assert portrait.crop == (0, 0, 720, 1280) and portrait.lr == (180, 320) and portrait.ref == (720, 1280)


def test_unsharp_sharpens_edges_and_keeps_flat_areas() -> None:
    flat = np.full((20, 20, 3), 90, np.uint8)
    assert np.abs(unsharp(flat).astype(int) - 90).max() <= 1
    edge = np.zeros((20, 20, 3), np.uint8)
    edge[:, 10:] = 200
    blurred = cv2.GaussianBlur(edge, (0, 0), 1.0)
    sharp = unsharp(blurred)
    assert sharp[:, 11].mean() > blurred[:, 11].mean() and sharp[:, 8].mean() < blurred[:, 8].mean()
    with pytest.raises(ValueError, match="odd"):
        unsharp(flat, size=4)


def test_bad_arguments_are_named(synthetic, tmp_path) -> None:
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        VideoEvalConfig((synthetic,), models=("nope",))
    with pytest.raises(ConfigError, match="--kbps"):
        VideoEvalConfig((synthetic,), kbps=(0.0,))
    with pytest.raises(ValueError, match="no such file"):
        VideoEvalConfig((tmp_path / "missing.mp4",))
    assert cli.main(["eval", "--data", str(tmp_path)]) == 2  # --data needs one --model


@pytest.mark.slow
def test_real_clip_one_second(tmp_path) -> None:
    clip = SHARED_VIDEO / "talking_head_retalk3.mp4"
    if not clip.exists():
        pytest.skip(f"real clips are missing ({SHARED_VIDEO})")
    cfg = VideoEvalConfig((clip,), size=(96, 54), seconds=1.0, models=("fast-stream",), images=tmp_path)
    result = evaluate_video(cfg)
    rows = {r["model"]: r for r in result["rows"]}
    assert set(rows) == {"bicubic", "lanczos", "bicubic+unsharp", "fast-stream"}
    assert result["clips"][0]["frames"] == 25 and result["clips"][0]["ref"] == "384x216"
    assert (tmp_path / "talking_head_retalk3_150k_all.png").exists()
    if VMAF_EXE is not None:  # the model must beat plain bicubic on a real face
        assert rows["fast-stream"]["vmaf"] > rows["bicubic"]["vmaf"]


def test_scale_two_scores_a_2x_model_against_a_2x_reference(synthetic, tmp_path) -> None:
    """--scale 2: the reference is twice the input; baselines and models all upscale 2x."""
    from vsr.models.catalogue import get_spec

    model = "fast-x2" if get_spec("fast-x2").has_weights else "bicubic-x2"
    out = tmp_path / "r.json"
    argv = ["eval", "--video", str(synthetic), "--size", "128x72", "--kbps", "60", "--seconds", "1"]
    assert cli.main([*argv, "--model", model, "--no-vmaf", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["clips"][0]["ref"] == "256x144" and res["clips"][0]["ref_scale"] == 1.0
    rows = {r["model"]: r for r in res["rows"]}
    assert set(rows) == {"bicubic", "lanczos", "bicubic+unsharp", model}
    assert all(r["frames"] == 12 and r["psnr_y"] > 20 for r in rows.values())
    with pytest.raises(ConfigError, match="x4; this run scores x2"):
        VideoEvalConfig((synthetic,), models=("fast",), scale=2)


def test_a_scale_without_a_bicubic_baseline_is_one_line(synthetic, tmp_path, capsys) -> None:
    """A 3x model file: one line naming the scales eval scores (was: unexpected StopIteration)."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from tiny_onnx import tiny_onnx

    path = tiny_onnx(tmp_path / "x3.onnx", scale=3)
    argv = ["eval", "--video", str(synthetic), "--size", "64x36", "--seconds", "1", "--no-vmaf"]
    assert cli.main([*argv, "--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vsr: error: eval --video scores x2 and x4 models only") and err.count("\n") == 1
    assert err.endswith("this run is x3\n")
    with pytest.raises(ConfigError, match="this run is x8"):
        VideoEvalConfig((synthetic,), models=(), scale=8)
