"""`vsr bench`: a tiny run produces a well-formed report, a readable table and a PNG chart."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vsr.bench import BenchConfig, format_report, parse_size, plot_report, run_bench, write_json
from vsr.errors import ConfigError


def test_parse_size_accepts_w_x_h_and_rejects_nonsense():
    assert parse_size("320x180") == (320, 180)
    assert parse_size("64X48") == (64, 48)
    for bad in ("320", "axb", "0x10", "320x180x3"):
        with pytest.raises(ConfigError, match="size"):
            parse_size(bad)


def test_bench_report_json_table_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    cfg = BenchConfig(models=("bicubic",), sizes=((64, 48),), frames=6, warmup=1)
    report = run_bench(cfg)
    path = tmp_path / "bench.json"
    write_json(report, path)
    data = json.loads(path.read_text())
    assert data["machine"]["cores"] >= 1 and data["machine"]["cpu"]
    row = next(r for r in data["results"] if r["model"] == "bicubic")
    assert row["size"] == "64x48" and row["out_size"] == "256x192"
    assert row["model_fps"] > 0 and 0 < row["model_p50_ms"] <= row["model_p95_ms"]
    assert row["e2e_frames"] == 7 and row["e2e_fps"] > 0
    assert set(row["e2e_stages"]) == {"decode", "infer", "encode"}
    assert row["peak_rss_mb"] > 10
    assert row["net_fps"] is None and row["net_ms"] is None, "no network-only figure without a GPU"
    enc = next(r for r in data["results"] if r["backend"] == "encoder")
    assert enc["model"] == "encoder alone (libx264 veryfast crf 23)"
    assert enc["size"] == "64x48" and enc["out_size"] == "256x192"
    assert enc["e2e_frames"] == 7 and enc["e2e_fps"] > 0
    table = format_report(report)
    assert "bicubic" in table and "64x48" in table and "machine:" in table.splitlines()[0]
    assert "encoder alone (libx264 veryfast crf 23)" in table and "net fps" in table.splitlines()[1]
    png = tmp_path / "bench.png"
    plot_report(report, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import cv2

    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] > 100 and img.shape[1] > 300 and np.std(img) > 5


@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    """A build shipped without weights files: every network model lacks its weights."""
    from vsr.models import catalogue
    from vsr.models import spec as spec_module

    monkeypatch.setattr(spec_module, "WEIGHTS_DIR", tmp_path / "no-weights")
    missing = [s.name for s in catalogue.CATALOGUE if s.arch != "bicubic" and not s.has_weights]
    assert "compact" in missing
    return missing


def test_bench_reports_a_model_without_weights_as_an_error_row(no_weights):
    missing = no_weights
    cfg = BenchConfig(models=(missing[0],), sizes=((32, 32),), frames=2, warmup=0, end_to_end=False)
    report = run_bench(cfg)
    assert "no trained weights" in report["results"][0]["error"]


def test_bench_times_models_without_weights_with_random_ones_when_asked(no_weights):
    missing = no_weights
    cfg = BenchConfig(models=(missing[0],), sizes=((32, 24),), frames=2, warmup=0, random_weights=True)
    report = run_bench(cfg)
    row = next(r for r in report["results"] if r["model"] == missing[0])
    assert "error" not in row, row.get("error")
    assert row["random_weights"] is True and row["model_fps"] > 0 and row["e2e_fps"] > 0
    assert f"{missing[0]} (random weights)" in format_report(report)


def test_report_and_plot_show_network_only_fps_where_present(tmp_path):
    pytest.importorskip("matplotlib")
    machine = {"cpu": "test cpu", "cores": 16, "gpu": "test gpu", "torch": "2", "onnxruntime": None}
    gpu_row = {
        "model": "compact",
        "backend": "torch",
        "backend_used": "torch (cuda, fp16, channels_last, cuda graphs)",
        "size": "480x270",
        "model_fps": 410.0,
        "net_fps": 1234.5,
        "net_ms": 1000 / 1234.5,
        "e2e_fps": 95.0,
    }
    enc_row = {
        "model": "encoder alone (libx264 veryfast crf 23)",
        "backend": "encoder",
        "size": "480x270",
        "e2e_fps": 120.0,
    }
    report = {"machine": machine, "results": [gpu_row, enc_row]}
    table = format_report(report)
    line = next(x for x in table.splitlines() if x.startswith("compact"))
    assert "1234.5" in line and "410.0" in line and "95.0" in line
    assert "120.0" in next(x for x in table.splitlines() if x.startswith("encoder alone"))
    png = tmp_path / "gpu.png"
    plot_report(report, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _vsr(*args: str, timeout: float = 240):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "vsr", *args], capture_output=True, text=True, timeout=timeout
    )


def test_vsr_bench_command_writes_json_and_png(tmp_path):
    pytest.importorskip("matplotlib")
    js, png = tmp_path / "b.json", tmp_path / "b.png"
    r = _vsr(
        "bench",
        "--model",
        "bicubic",
        "--size",
        "48x32",
        "--frames",
        "4",
        "--json",
        str(js),
        "--plot",
        str(png),
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    data = json.loads(js.read_text())
    assert [row["size"] for row in data["results"] if row["model"] == "bicubic"] == ["48x32"]
    enc = [row for row in data["results"] if row["model"].startswith("encoder alone (libx264")]
    assert len(enc) == 1 and enc[0]["e2e_fps"] > 0 and enc[0]["out_size"] == "192x128"
    assert png.stat().st_size > 5000
    assert "bicubic" in r.stdout and "machine:" in r.stdout


def test_vsr_bench_and_engine_refuse_bad_input_in_one_line():
    r = _vsr("bench", "--size", "huge")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "WIDTHxHEIGHT" in r.stderr
    r = _vsr("bench", "--model", "nope")
    assert r.returncode == 2 and "unknown model 'nope'" in r.stderr
    r = _vsr("engine", "build", "--model", "compact", "--profile", "p720")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert r.returncode == 6 and "TensorRT" in r.stderr and "Traceback" not in r.stderr
    r = _vsr("engine", "list")
    assert r.returncode == 0 and "p720" in r.stdout
