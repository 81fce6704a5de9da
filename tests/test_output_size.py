"""Output size: ``vsr upscale --scale`` / ``--width`` / ``--height``, the arithmetic, the model choice,
the resize after the model, and that model + area resize beats a plain bicubic 2x on real video."""

from __future__ import annotations

import itertools
import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import REPO, SHARED_VIDEO, ClipSpec, make_clip, pattern

from vsr import cli
from vsr.errors import ConfigError
from vsr.metrics import luma, psnr
from vsr.models.catalogue import CATALOGUE, ModelSpec, get_spec
from vsr.models.choose import choose_model_for_scale
from vsr.video.meta import ColourTags, VideoInfo
from vsr.video.size import OutputSize, size_multiple, target_size

# --- the arithmetic ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_wh", "sar", "scale", "width", "height", "pix_fmt", "out"),
    [
        ((480, 270), None, None, None, 1080, "yuv420p", (1920, 1080)),
        ((320, 180), None, 2, None, None, "yuv420p", (640, 360)),
        ((700, 700), None, None, None, 1080, "yuv420p", (1080, 1080)),
        ((1280, 720), None, None, 1920, None, "yuv420p", (1920, 1080)),
        ((320, 180), None, None, 500, None, "yuv420p", (500, 282)),  # 281.25 -> nearest even
        ((480, 270), None, None, 1000, None, "yuv420p", (1000, 562)),  # 562.5 -> 562, not 563
        ((320, 180), None, None, 500, None, "yuv444p", (500, 281)),  # no subsampling: any size
        ((320, 180), None, None, 400, 400, "yuv420p", (400, 400)),  # both: exact, stretched
        ((720, 576), Fraction(16, 15), None, None, 1080, "yuv420p", (1440, 1080)),  # PAL 4:3
        ((63, 47), None, 3, None, None, "yuv420p", (188, 140)),  # the odd pixel cropped
        ((63, 47), None, 3, None, None, "yuv444p", (189, 141)),
        ((64, 48), None, None, None, None, "yuv420p", (256, 192)),  # nothing asked: 4x
    ],
)
def test_target_size(in_wh, sar, scale, width, height, pix_fmt, out):
    assert target_size(*in_wh, sar, scale, width, height, pix_fmt) == out


def test_size_multiple_follows_chroma_subsampling():
    assert size_multiple("yuv420p") == (2, 2)
    assert size_multiple("nv12") == (2, 2)
    assert size_multiple("yuv422p") == (2, 1)
    assert size_multiple("yuv411p") == (4, 1)
    assert size_multiple("yuv444p") == (1, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"width": 1001},
            "output width 1001 (--width) cannot be encoded as yuv420p, which needs a "
            "multiple of 2; try --width 1002",
        ),
        ({"height": 9300}, "--height 9300 makes a 16534x9300 output; sides are limited to 16384 pixels"),
    ],
)
def test_target_size_errors_name_the_flag(kwargs, message):
    args = {"scale": None, "width": None, "height": None, **kwargs}
    with pytest.raises(ConfigError) as info:
        target_size(480, 270, None, pix_fmt="yuv420p", **args)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 2, "height": 1080}, "--scale cannot be combined with --width/--height"),
        ({"scale": 5}, "--scale must be one of 2, 3, 4, got 5"),
        ({"width": 0}, "--width must be in 1..16384 pixels, got 0"),
        ({"height": 20000}, "--height must be in 1..16384 pixels, got 20000"),
    ],
)
def test_output_size_is_validated(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        OutputSize(**kwargs)


def _info(w: int, h: int, sar: Fraction | None = None, rotated: bool = False) -> VideoInfo:
    matrix = (0, -65536, 0, 65536, 0, 0, 0, 0, 1 << 30) if rotated else None  # 90 degrees
    return VideoInfo(w, h, Fraction(1, 30), None, 0, None, "yuv420p", ColourTags(), matrix, sar)


def test_plan_says_how_frames_reach_the_size():
    plan = OutputSize(scale=2).plan(_info(320, 180), 4, "yuv420p")
    assert (plan.source, plan.target, plan.filter, plan.notes) == ((1280, 720), (640, 360), "area", ())
    assert plan.interpolation == "AREA"
    assert OutputSize().plan(_info(63, 47), 4, "yuv420p").report() is None  # 4x: no resize
    assert OutputSize(scale=3).plan(_info(63, 47), 3, "yuv420p").filter is None  # 189x141: cropped
    assert OutputSize(scale=2).plan(_info(64, 48, Fraction(2)), 4, "yuv420p").sar == Fraction(2)
    assert OutputSize(height=96).plan(_info(64, 48, Fraction(2)), 4, "yuv420p").sar == Fraction(1)


def test_plan_notes_a_stretch_and_a_size_past_the_model():
    (stretch,) = OutputSize(width=400, height=400).plan(_info(320, 180), 4, "yuv420p").notes
    assert stretch == "--width/--height stretch the picture: display aspect 1.778 becomes 1.000"
    (past,) = OutputSize(height=1080).plan(_info(320, 180), 4, "yuv420p").notes
    assert past == "1920x1080 is more than the model's 4x: the rest, from 1280x720, is lanczos interpolation"
    assert OutputSize(width=1280, height=720).plan(_info(320, 180), 4, "yuv420p").notes == ()


def test_a_rotated_video_takes_display_sizes():
    """Coded 64x48, shown 48x64: --height is the coded width, and errors name the flag given."""
    assert OutputSize(height=128).target(_info(64, 48, rotated=True), "yuv420p") == (128, 96)
    with pytest.raises(ConfigError, match=r"\(--height\) cannot be encoded as yuv420p"):
        OutputSize(height=127).target(_info(64, 48, rotated=True), "yuv420p")


# --- which model -----------------------------------------------------------------------------------


def _with_2x() -> tuple[ModelSpec, ...]:
    """The catalogue plus a 2x ``fast`` (the shipped weights stand in: only the facts matter)."""
    fast = get_spec("fast")
    x2 = ModelSpec(**{**fast.__dict__, "name": "fast-x2", "scale": 2, "fallback": None})
    other = ModelSpec(**{**fast.__dict__, "name": "other-x2", "scale": 2, "fallback": None})
    return (*CATALOGUE, other, x2)


def test_choose_model_for_scale_picks_the_shipped_2x_tier():
    assert choose_model_for_scale(2, "fast") == "fast-x2"  # native 2x, the same CPU tier
    assert choose_model_for_scale(2, "fast-stream") == "fast-stream-x2"  # and its stream variant
    assert choose_model_for_scale(1.5, "fast") == "fast-x2"
    for scale in (3, 4, 6.0):
        assert choose_model_for_scale(scale, "fast") == "fast"
    assert choose_model_for_scale(2, "compact") == "compact"  # no 2x GPU model: 4x, then shrink


def test_choose_model_for_scale_picks_a_native_model_once_listed():
    cat = _with_2x()
    assert choose_model_for_scale(2, "fast", cat) == "fast-x2"  # its name extends fast: before other-x2
    assert choose_model_for_scale(1.5, "fast", cat) == "fast-x2"  # smallest scale that reaches it
    assert choose_model_for_scale(3, "fast", cat) == "fast"
    assert choose_model_for_scale(4, "fast", cat) == "fast"
    assert choose_model_for_scale(2, "bicubic", cat) == "bicubic-x2"  # the baseline's own 2x entry
    assert choose_model_for_scale(2, "compact", cat) == "compact"  # another family (GPU tier): unchanged


def test_cli_picks_only_when_no_model_is_named(monkeypatch):
    from vsr.cli import commands

    monkeypatch.setattr(commands, "choose_model_for_scale", lambda s, p: "fast-tiny" if s == 2 else p)
    parse = cli.build_parser().parse_args
    _, _, model, _ = commands._configs(parse(["upscale", "in.mp4", "-o", "o.mp4", "--scale", "2"]))
    assert model.model == "fast-tiny"
    args = parse(["upscale", "in.mp4", "-o", "o.mp4", "--scale", "2", "--model", "fast"])
    _, enc, model, _ = commands._configs(args)
    assert model.model == "fast"
    assert enc.size == OutputSize(scale=2)


# --- real encodes ----------------------------------------------------------------------------------


def _cut(src: Path, dst: Path, frames: int) -> Path:
    """The first ``frames`` frames of ``src`` re-encoded (x264 ultrafast) into ``dst``."""
    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        s = o.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = i.streams.video[0].width, i.streams.video[0].height, "yuv420p"
        s.codec_context.options = {"preset": "ultrafast", "crf": "12"}
        for k, frame in enumerate(i.decode(video=0)):
            if k == frames:
                break
            o.mux(s.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"))))
        o.mux(s.encode(None))
    return dst


def _sar_clip(path: Path, sar: Fraction) -> Path:
    with av.open(str(path), "w") as o:
        s = o.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.sample_aspect_ratio = sar
        s.codec_context.options = {"preset": "ultrafast"}
        for i in range(3):
            o.mux(s.encode(av.VideoFrame.from_ndarray(pattern(i, 48, 64))))
        o.mux(s.encode(None))
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("size_inputs")
    return {
        "scene": _cut(REPO / "samples" / "scene_480x270.mp4", root / "scene.mp4", 3),
        "face": _cut(REPO / "samples" / "face_320x180.mp4", root / "face.mp4", 3),
        "sar": _sar_clip(root / "sar.mp4", Fraction(2, 1)),
        "rotated": make_clip(root / "rotated.mp4", ClipSpec("rotated", pts=list(range(3)), rotation=90)),
    }


def _upscale(src: Path, out: Path, *flags: str, preset: str = "ultrafast") -> dict:
    """Run ``vsr upscale`` in process; returns its --json-stats document."""
    stats = out.with_suffix(".json")
    argv = ["upscale", str(src), "-o", str(out), "--json-stats", str(stats)]
    argv += ["--preset", preset] if preset else []
    assert cli.main([*argv, *flags]) == 0
    return json.loads(stats.read_text())


def _probe(path: Path) -> tuple[int, int, Fraction | None, int]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return s.codec_context.width, s.codec_context.height, s.sample_aspect_ratio, s.frames


def test_height_1080_from_480x270(inputs, tmp_path):
    stats = _upscale(inputs["scene"], tmp_path / "o.mp4", "--height", "1080", "--model", "bicubic")
    assert _probe(tmp_path / "o.mp4")[:2] == (1920, 1080)
    assert (stats["size"], stats["resize"], stats["model"]) == ([1920, 1080], None, "bicubic")


def test_scale_2_runs_the_native_2x_model(inputs, tmp_path, capsys):
    stats = _upscale(inputs["face"], tmp_path / "o.mp4", "--scale", "2")  # default fast-stream -> its 2x
    assert "(640x360 by fast-stream-x2): 3 frames" in capsys.readouterr().err
    assert _probe(tmp_path / "o.mp4") == (640, 360, None, 3)
    assert stats["model"] == "fast-stream-x2" and stats["resize"] is None
    _upscale(inputs["face"], tmp_path / "c.mp4", "--scale", "2", "--model", "fast-x2")
    assert "(640x360 by fast-x2): 3 frames" in capsys.readouterr().err


def test_scale_2_of_a_4x_model_is_an_area_resize(inputs, tmp_path, capsys):
    stats = _upscale(inputs["face"], tmp_path / "o.mp4", "--scale", "2", "--model", "fast")
    assert "(640x360 by fast, area-resized from 1280x720): 3 frames" in capsys.readouterr().err
    assert _probe(tmp_path / "o.mp4") == (640, 360, None, 3)
    assert stats["model"] == "fast"
    assert stats["resize"] == {"from": [1280, 720], "to": [640, 360], "filter": "area"}


@pytest.mark.parametrize(
    ("flags", "size", "resize"),
    [
        (("--width", "500"), (500, 282), {"from": [1280, 720], "to": [500, 282], "filter": "area"}),
        (("--width", "400", "--height", "400"), (400, 400), "area"),
        (("--height", "1080"), (1920, 1080), "lanczos"),  # 6x: past the model's 4x
        (("--scale", "3"), (960, 540), "area"),
    ],
)
def test_width_height_and_rounding(inputs, tmp_path, flags, size, resize):
    stats = _upscale(inputs["face"], tmp_path / "o.mp4", *flags, "--model", "bicubic")
    assert _probe(tmp_path / "o.mp4")[:2] == size
    assert stats["resize"] == resize if isinstance(resize, dict) else stats["resize"]["filter"] == resize


def test_non_square_pixels(inputs, tmp_path):
    """64x48 at SAR 2:1 shows as 128x48: --height 96 gives square pixels, --scale keeps the SAR."""
    _upscale(inputs["sar"], tmp_path / "h.mp4", "--height", "96", "--model", "bicubic")
    assert _probe(tmp_path / "h.mp4")[:3] == (256, 96, Fraction(1))
    _upscale(inputs["sar"], tmp_path / "s.mp4", "--scale", "2", "--model", "bicubic")
    assert _probe(tmp_path / "s.mp4")[:3] == (128, 96, Fraction(2))


def test_sizes_of_a_rotated_video_are_display_sizes(inputs, tmp_path):
    """64x48 coded, rotated 90 degrees: shown 48 wide and 64 tall; --height 128 shows 96x128."""
    _upscale(inputs["rotated"], tmp_path / "o.mp4", "--height", "128", "--model", "bicubic")
    assert _probe(tmp_path / "o.mp4")[:2] == (128, 96)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--scale", "2", "--width", "640"), "--scale cannot be combined with --width/--height"),
        (("--scale", "5"), "argument --scale: invalid choice: 5"),
        (("--width", "-4"), "--width must be in 1..16384 pixels, got -4"),
        (("--width", "641"), "output width 641 (--width) cannot be encoded as yuv420p"),
    ],
)
def test_usage_errors_are_one_line(inputs, tmp_path, capsys, flags, message):
    argv = ["upscale", str(inputs["face"]), "-o", str(tmp_path / "o.mp4"), "--model", "bicubic", *flags]
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("vsr: error: ") and message in err
    assert not (tmp_path / "o.mp4").exists()


# --- quality -----------------------------------------------------------------------------------


def _frames(path: Path, n: int) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in itertools.islice(c.decode(video=0), n)]


def _lossless(frames: list[np.ndarray], path: Path) -> Path:
    """``frames`` as lossless yuv444p H.264 (limited range, BT.601: what most video is)."""
    with av.open(str(path), "w") as o:
        s = o.add_stream("libx264", rate=25)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv444p"
        s.codec_context.options = {"preset": "ultrafast", "qp": "0"}
        for f in frames:
            o.mux(s.encode(av.VideoFrame.from_ndarray(f).reformat(format="yuv444p")))
        o.mux(s.encode(None))
    return path


CLIP_720P = SHARED_VIDEO / "meeting_room_720p.mp4"


@pytest.mark.skipif(not CLIP_720P.is_file(), reason=f"real clip {CLIP_720P} is not here")
@pytest.mark.parametrize(
    ("model", "resize"),
    [
        ("fast-x2", None),  # the default of --scale 2: native
        ("fast", {"from": [1280, 720], "to": [640, 360], "filter": "area"}),  # 4x, then shrunk
    ],
)
def test_scale_2_beats_bicubic_against_ground_truth(tmp_path, model, resize):
    """720p frames are the truth at 4x: the input is them shrunk 4x (area, 320x180), the ground
    truth them shrunk 2x (area, 640x360). ``--scale 2`` of the input (the native fast-x2, or fast 4x
    then the area resize into yuv420p) must be nearer the truth in Y than a bicubic 2x of the same
    input. The input is lossless YUV 4:4:4 and the output lossless YUV 4:2:0 (x264 qp/crf 0), so
    only the upscale differs."""
    hr = _frames(CLIP_720P, 3)
    lr = [cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA) for f in hr]
    truth = [luma(cv2.resize(f, (640, 360), interpolation=cv2.INTER_AREA)) for f in hr]
    src, out = _lossless(lr, tmp_path / "lr.mkv"), tmp_path / "sr.mkv"
    lr = _frames(src, 3)  # as vsr reads them
    stats = _upscale(src, out, "--scale", "2", "--crf", "0", "--model", model)
    assert stats["resize"] == resize
    with av.open(str(out)) as c:
        sr_y = [f.to_ndarray()[: f.height].astype(np.float64) for f in c.decode(video=0)]  # Y plane
    sr = np.mean([psnr(t, y, border=4) for t, y in zip(truth, sr_y, strict=True)])
    bicubic_2x = [cv2.resize(x, (640, 360), interpolation=cv2.INTER_CUBIC) for x in lr]
    bicubic = np.mean([psnr(t, luma(b), border=4) for t, b in zip(truth, bicubic_2x, strict=True)])
    assert sr > bicubic + 1.0, f"{model}: {sr:.2f} dB, bicubic 2x: {bicubic:.2f} dB"
