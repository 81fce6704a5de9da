"""TensorRT engines without TensorRT: profiles, padding/cropping, cache keys, the cache on disk,
and the builder's TensorRT calls driven through a recording stand-in for the ``tensorrt`` module."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from trt_stand_in import stand_in_tensorrt

from vsr.errors import BackendError, ConfigError
from vsr.trt import builder as trt_builder
from vsr.trt import commands
from vsr.trt.cache import BuilderOptions, DeviceInfo, EngineCache, EngineSpec
from vsr.trt.profiles import (
    Profile,
    crop_output,
    load_profiles,
    pad_frames,
    parse_profiles,
    run_shape,
    select_profile,
    split_batches,
)

PROFILES = load_profiles()
GPU = DeviceInfo("NVIDIA H100 80GB HBM3", (9, 0), "10.9.0")
RNG = np.random.default_rng(3)


# --- profiles -------------------------------------------------------------------------------------


def test_shipped_profiles_cover_landscape_and_portrait_counterparts():
    for name, p in PROFILES.items():
        assert p.min <= p.opt <= p.max and 1 <= p.batch[0] <= p.batch[2]
        twin = name.removesuffix("-portrait") if name.endswith("-portrait") else f"{name}-portrait"
        assert PROFILES[twin].max == p.max[::-1], f"{name} has no transposed twin"
    assert {"p360", "p540", "p720", "p1080"} <= set(PROFILES)


@pytest.mark.parametrize(
    ("h", "w", "multiple", "expected"),
    [
        (270, 480, 1, "p360"),  # smallest landscape profile that covers it
        (360, 640, 1, "p360"),  # exactly the max
        (361, 640, 1, "p540"),  # one row more
        (360, 640, 16, "p540"),  # 360 rounds up to 368 with a size multiple of 16
        (720, 1280, 1, "p720"),
        (480, 270, 1, "p360-portrait"),  # portrait goes to a portrait profile
        (1920, 1080, 1, "p1080-portrait"),
        (400, 400, 1, "p540"),  # square counts as landscape
        (700, 500, 1, "p540-portrait"),
        (1000, 500, 1, "p720-portrait"),
    ],
)
def test_select_profile_picks_the_smallest_cover_of_the_right_orientation(h, w, multiple, expected):
    assert select_profile(PROFILES, h, w, multiple).name == expected


def test_select_profile_falls_back_to_the_other_orientation():
    only = {"wide": Profile("wide", (16, 16), (600, 800), (600, 800))}
    assert select_profile(only, 500, 300).name == "wide"  # portrait frame, landscape profile covers it


def test_select_profile_too_large_says_what_to_do():
    with pytest.raises(ConfigError, match=r"3840x2160.*fits no TensorRT profile.*p1080.*--tile"):
        select_profile(PROFILES, 2160, 3840)
    with pytest.raises(ConfigError, match="positive"):
        select_profile(PROFILES, 0, 10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[a]\nmin=[1,1]\nopt=[2,2]\n", r"max must be \[height, width\]"),
        ("[a]\nmin=[4,4]\nopt=[2,2]\nmax=[8,8]\n", "min <= opt <= max"),
        ("[a]\nmin=[1,1]\nopt=[2,2]\nmax=[8,8]\nbatch=[2,1,4]\n", "1 <= min <= opt <= max"),
        ("[a]\nmin=[1,1]\nopt=[2,2]\nmax=[8,8]\nbatches=[1,1,1]\n", "unknown keys"),
        ("[a\n", "not valid TOML"),
        ("", "no profile"),
    ],
)
def test_bad_profiles_are_refused_with_the_reason(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_profiles(text)


def test_missing_profiles_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read TensorRT profiles .*nope\.toml"):
        load_profiles(tmp_path / "nope.toml")


def test_run_shape_pads_to_opt_or_to_the_size_multiple():
    p = Profile("p", (16, 16), (360, 640), (540, 960))
    assert run_shape(p, 270, 480) == (360, 640)  # fits opt -> opt
    assert run_shape(p, 400, 480) == (540, 960)  # beyond opt -> max
    assert run_shape(p, 270, 481, multiple=8, mode="multiple") == (272, 488)
    assert run_shape(p, 8, 8, mode="multiple") == (16, 16)  # never below min
    with pytest.raises(ConfigError, match="exceeds profile"):
        run_shape(p, 541, 10)
    with pytest.raises(ConfigError, match="pad mode"):
        run_shape(p, 10, 10, mode="max")  # type: ignore[arg-type]


def _nearest4(x: np.ndarray) -> np.ndarray:
    return x.repeat(4, axis=1).repeat(4, axis=2)


def test_pad_run_crop_round_trip_is_exact_for_a_pointwise_net():
    frames = RNG.integers(0, 256, (3, 270, 470, 3), dtype=np.uint8)
    shape = run_shape(PROFILES["p360"], 270, 470)
    padded = pad_frames(frames, shape)
    assert padded.shape == (3, 360, 640, 3)
    assert np.array_equal(padded[:, -1, :470], np.repeat(frames[:, -1:], 1, axis=1)[:, 0])  # edge rows
    out = crop_output(_nearest4(padded), 270, 470, 4)
    assert out.shape == (3, 1080, 1880, 3) and np.array_equal(out, _nearest4(frames))
    assert pad_frames(frames, (270, 470)) is frames  # nothing to pad: no copy
    with pytest.raises(ConfigError, match="cannot pad"):
        pad_frames(frames, (100, 470))


def test_pad_run_crop_matches_the_unpadded_network_away_from_the_padded_border(tmp_path):
    """Padding to the profile changes only the outputs within the receptive radius of the pad."""
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from vsr.export import export_onnx
    from vsr.models.arch import fold_batchnorm
    from vsr.models.catalogue import get_spec, new_network

    spec = get_spec("fast")
    torch.manual_seed(0)
    path = export_onnx(fold_batchnorm(new_network("fast").eval()), spec, tmp_path / "fast.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = RNG.random((2, 1, 50, 70), dtype=np.float32)
    direct = sess.run(["output"], {"input": x})[0]
    hw = run_shape(Profile("p", (16, 16), (64, 96), (64, 96)), 50, 70)
    padded = pad_frames(x.transpose(0, 2, 3, 1), hw).transpose(0, 3, 1, 2)
    res = sess.run(["output"], {"input": np.ascontiguousarray(padded)})[0].transpose(0, 2, 3, 1)
    out = crop_output(res, 50, 70, 4).transpose(0, 3, 1, 2)
    r = spec.receptive_radius * 4
    assert out.shape == direct.shape
    assert np.abs(out - direct)[:, :, :-r, :-r].max() < 1e-5


def test_split_batches():
    assert [(s.start, s.stop) for s in split_batches(5, 2)] == [(0, 2), (2, 4), (4, 5)]
    assert list(split_batches(0, 4)) == []
    with pytest.raises(ConfigError, match="max_batch"):
        list(split_batches(3, 0))


# --- cache keys and the cache on disk --------------------------------------------------------------


def _spec(**changes) -> EngineSpec:
    base = EngineSpec("compact", PROFILES["p360"], "fp16", "a" * 64, 3, GPU, BuilderOptions())
    return replace(base, **changes)


KEY_CHANGES = {
    "onnx sha256": {"onnx_sha256": "b" * 64},
    "precision": {"precision": "fp32"},
    "channels": {"channels": 1},
    "profile min": {"profile": replace(PROFILES["p360"], min=(32, 32))},
    "profile opt": {"profile": replace(PROFILES["p360"], opt=(352, 640))},
    "profile max": {"profile": replace(PROFILES["p360"], max=(368, 640))},
    "profile batch": {"profile": replace(PROFILES["p360"], batch=(1, 2, 4))},
    "TensorRT version": {"device": replace(GPU, trt_version="10.10.0")},
    "GPU name": {"device": replace(GPU, gpu_name="NVIDIA L4")},
    "compute capability": {"device": replace(GPU, compute_capability=(8, 9))},
    "workspace": {"options": BuilderOptions(workspace_mib=1024)},
    "optimisation level": {"options": BuilderOptions(optimization_level=5)},
    "tf32": {"options": BuilderOptions(tf32=True)},
    "fp16 I/O": {"options": BuilderOptions(io_half=False)},
}


@pytest.mark.parametrize("what", list(KEY_CHANGES))
def test_cache_key_changes_with_every_engine_input(what):
    base, changed = _spec(), _spec(**KEY_CHANGES[what])
    assert changed.key != base.key, f"changing the {what} must change the key"
    assert changed.file_stem != base.file_stem


def test_cache_key_is_stable_and_ignores_labels():
    assert _spec().key == _spec().key and len(_spec().key) == 64
    assert _spec(model="other").key == _spec().key
    assert _spec(profile=replace(PROFILES["p360"], name="x", description="y")).key == _spec().key
    # an FP32 engine always has float32 I/O, so the fp16-I/O option cannot split its cache
    fp32 = _spec(precision="fp32")
    assert replace(fp32, options=BuilderOptions(io_half=False)).key == fp32.key


def test_store_then_load_round_trips_and_leaves_no_temporary_files(tmp_path):
    cache, spec = EngineCache(tmp_path), _spec()
    assert cache.load(spec) is None and cache.check(spec) == "not built yet"
    path = cache.store(spec, b"engine-bytes" * 100, build_seconds=3.2)
    assert path.name == f"{spec.file_stem}.engine" and cache.check(spec) is None
    assert cache.load(spec) == b"engine-bytes" * 100
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["key"] == spec.key and meta["inputs"]["gpu_name"] == GPU.gpu_name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, path.with_suffix(".json").name])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_flip_byte, "checksum"),
        (lambda p: p.write_bytes(p.read_bytes()[:100]), "truncated"),
        (lambda p: p.with_suffix(".json").unlink(), "sidecar is missing"),
        (lambda p: p.with_suffix(".json").write_text("{not json"), "sidecar is missing or unreadable"),
        (lambda p: p.with_suffix(".json").write_text('{"key": "0"}'), "key mismatch"),
    ],
)
def test_a_damaged_or_mismatched_engine_is_never_trusted(tmp_path, damage, reason, caplog):
    cache, spec = EngineCache(tmp_path), _spec()
    path = cache.store(spec, bytes(range(256)) * 8)
    damage(path)
    assert reason in cache.check(spec)
    assert cache.load(spec) is None
    assert "rebuilding" in caplog.text
    assert not path.exists(), "the bad engine is removed so it is rebuilt"


def test_entries_report_status(tmp_path):
    cache = EngineCache(tmp_path)
    good = cache.store(_spec(), b"x" * 1000)
    bad = cache.store(_spec(precision="fp32"), b"y" * 1000)
    _flip_byte(bad)
    (tmp_path / "stray.engine").write_bytes(b"?")
    rows = {Path(r["path"]).name: r for r in cache.entries()}
    assert rows[good.name]["status"] == "ok" and rows[good.name]["gpu_name"] == GPU.gpu_name
    assert "corrupt" in rows[bad.name]["status"]
    assert "sidecar" in rows["stray.engine"]["status"]
    assert EngineCache(tmp_path / "none").entries() == []


# --- the builder, through a recording stand-in for tensorrt ----------------------------------------


@pytest.fixture(scope="module")
def compact_onnx(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from vsr.export import export_onnx
    from vsr.models.arch import fold_batchnorm
    from vsr.models.catalogue import get_spec, new_network

    torch.manual_seed(0)
    net = fold_batchnorm(new_network("compact").eval())
    return export_onnx(net, get_spec("compact"), tmp_path_factory.mktemp("onnx") / "compact.onnx")


@pytest.fixture
def fake_trt(monkeypatch):
    calls: list = []
    fake = stand_in_tensorrt(calls)
    monkeypatch.setattr(commands, "import_tensorrt", lambda: fake)
    monkeypatch.setattr(commands, "current_device", lambda trt: GPU)
    return calls


def test_build_engine_sets_precision_shapes_and_timing_cache(fake_trt, compact_onnx, tmp_path):
    lines: list[str] = []
    path = commands.build_engine(
        "compact", "p540", onnx_path=compact_onnx, cache_dir=tmp_path, report=lines.append
    )
    assert path.is_file() and path.read_bytes().startswith(b"FAKE-ENGINE")
    assert ("create_network", 0) in fake_trt
    assert ("set_flag", "FP16") in fake_trt and ("clear_flag", "TF32") not in fake_trt
    assert ("dtype", "input", "HALF") in fake_trt and ("dtype", "output", "HALF") in fake_trt
    assert ("shape", "input", (1, 3, 16, 16), (1, 3, 540, 960), (4, 3, 540, 960)) in fake_trt
    assert ("pool", "WORKSPACE", 2048 << 20) in fake_trt and ("timing_cache", b"") in fake_trt
    assert any("Building engine (2 steps)" in line for line in lines)
    assert any(line.startswith("built ") for line in lines)
    assert (tmp_path / f"timing-{GPU.slug}.cache").read_bytes() == b"+"


def test_fp32_engine_clears_tf32_and_keeps_float_io(fake_trt, compact_onnx, tmp_path):
    commands.build_engine("compact", "p360", fp16=False, onnx_path=compact_onnx, cache_dir=tmp_path)
    assert ("clear_flag", "TF32") in fake_trt and ("set_flag", "FP16") not in fake_trt
    assert not [c for c in fake_trt if c[0] == "dtype"]


def test_cached_engine_is_reused_and_a_corrupt_one_rebuilt(fake_trt, compact_onnx, tmp_path):
    first = commands.build_engine("compact", "p360", onnx_path=compact_onnx, cache_dir=tmp_path)
    again = commands.build_engine("compact", "p360", onnx_path=compact_onnx, cache_dir=tmp_path)
    assert first == again and sum(c[0] == "build" for c in fake_trt) == 1
    _flip_byte(first)
    commands.build_engine("compact", "p360", onnx_path=compact_onnx, cache_dir=tmp_path)
    assert sum(c[0] == "build" for c in fake_trt) == 2, "a corrupt engine must be rebuilt"
    assert ("timing_cache", b"+") in fake_trt, "the second build starts from the saved timing cache"
    assert EngineCache(tmp_path).entries()[0]["status"] == "ok"


def test_builder_failures_raise_backend_error(monkeypatch, compact_onnx, tmp_path):
    spec = _spec()
    cache = EngineCache(tmp_path)
    with pytest.raises(BackendError, match=r"cannot parse.*Unsupported op Foo"):
        trt_builder.ensure_engine(stand_in_tensorrt([], parse_ok=False), spec, compact_onnx, cache)
    with pytest.raises(BackendError, match="failed to build an engine for compact / p360"):
        trt_builder.ensure_engine(stand_in_tensorrt([], build_ok=False), spec, compact_onnx, cache)
    assert cache.entries() == []


def test_list_and_format_engines(fake_trt, compact_onnx, tmp_path):
    empty = commands.format_engine_list(cache_dir=tmp_path)
    assert "no TensorRT engines" in empty and "p360-portrait" in empty
    commands.build_engine("compact", "p720-portrait", onnx_path=compact_onnx, cache_dir=tmp_path)
    rows = commands.list_engines(tmp_path)
    assert [(r["model"], r["profile"], r["precision"], r["status"]) for r in rows] == [
        ("compact", "p720-portrait", "fp16", "ok")
    ]
    text = commands.format_engine_list(cache_dir=tmp_path)
    assert "compact" in text and "p720-portrait" in text and "NVIDIA H100" in text and "90" in text


def test_build_engine_refuses_unknown_names_and_bicubic(fake_trt, tmp_path):
    with pytest.raises(ConfigError, match="unknown TensorRT profile 'p999'; choose one of: p360"):
        commands.build_engine("compact", "p999", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown model"):
        commands.build_engine("nope", "p360", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="no network"):
        commands.build_engine("bicubic", "p360", onnx_path=Path(__file__), cache_dir=tmp_path)


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None,
    reason="checks the message shown when TensorRT is absent",
)
def test_without_tensorrt_the_build_says_what_to_install(tmp_path):
    with pytest.raises(BackendError, match=r"TensorRT is not available.*vsr\[trt\]"):
        commands.build_engine("compact", "p360", cache_dir=tmp_path)


def test_exported_onnx_is_valid_and_runs_at_profile_shapes(compact_onnx):
    """What TensorRT will parse: a checker-valid graph with dynamic N/H/W that runs at profile shapes."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = onnx.load(str(compact_onnx))
    onnx.checker.check_model(model, full_check=True)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["n", 3, "h", "w"]
    sess = ort.InferenceSession(str(compact_onnx), providers=["CPUExecutionProvider"])
    lo, _opt, hi = PROFILES["p360"].input_shapes(3)
    for shape in (lo, (2, 3, 24, 40)):
        out = sess.run(["output"], {"input": np.zeros(shape, np.float32)})[0]
        assert out.shape == (shape[0], 3, shape[2] * 4, shape[3] * 4)
    assert hi == (4, 3, 360, 640)


def test_importing_the_engine_modules_loads_neither_torch_nor_tensorrt():
    code = (
        "import sys, vsr.trt, vsr.parity; "
        "heavy = [m for m in ('torch', 'tensorrt', 'onnxruntime') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
