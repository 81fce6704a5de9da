"""Formats kept faithfully (issue 13): bit depth, HDR, alpha, interlacing, extra streams, bad
options, truncated files, tiles and the stats file, each found by trying it.

Inputs are tiny synthetic clips made with PyAV once per session; vsr runs in-process with the
bicubic model, so the whole file stays within seconds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import pattern, video_times

from vsr import cli
from vsr.backends.base import min_tile
from vsr.backends.bicubic import BicubicBackend
from vsr.config import DecodeConfig, EncodeConfig, ModelConfig
from vsr.ladder import Ladder
from vsr.models.catalogue import get_spec
from vsr.pipeline import upscale_file
from vsr.video.alpha import alpha_decoder
from vsr.video.hdr import HdrMeta
from vsr.video.reader import VideoReader


@dataclass
class Clip:
    """One synthetic input: ``streams`` is (codec, pix_fmt, width, height) per video stream."""

    streams: list[tuple[str, str, int, int]]
    frames: int = 8
    options: dict[str, str] = field(default_factory=dict)  # encoder options of the first stream
    tags: dict[str, int] = field(default_factory=dict)  # colour enums of the first stream
    interlaced: bool = False
    container: dict[str, str] = field(default_factory=dict)  # muxer options


MASTERING = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
CLIPS = {
    "ten.mkv": Clip([("libx264", "yuv420p10le", 64, 48)]),
    "two.mkv": Clip([("libx264", "yuv420p", 64, 48), ("libx264", "yuv420p", 32, 32)]),
    "hdr.mkv": Clip(
        [("libx265", "yuv420p10le", 64, 48)],
        options={"x265-params": f"log-level=error:master-display={MASTERING}:max-cll=1000,400"},
        tags=dict(color_range=1, color_primaries=9, color_trc=16, colorspace=9),  # PQ, BT.2020
    ),
    "hlg.mp4": Clip(
        [("libx264", "yuv420p10le", 64, 48)],
        tags=dict(color_range=1, color_primaries=9, color_trc=18, colorspace=9),
    ),
    "alpha.webm": Clip(
        [("libvpx-vp9", "yuva420p", 64, 48)], options={"deadline": "realtime", "cpu-used": "8"}
    ),
    "interlaced.mp4": Clip(
        [("libx264", "yuv420p", 64, 48)], options={"x264-params": "tff=1"}, interlaced=True
    ),
    "full.mp4": Clip(
        [("libx264", "yuv420p", 160, 120)], 48, {"preset": "medium"}, container={"movflags": "+faststart"}
    ),
}


def _frame(i: int, pix_fmt: str, width: int, height: int, weave: bool = False) -> av.VideoFrame:
    rgb = pattern(i, height, width)
    if weave:  # fields from two moments: the odd lines 40 frames of motion later (combing)
        rgb[1::2] = pattern(i + 40, height, width)[1::2]
    if "yuva" in pix_fmt:  # alpha: a horizontal ramp
        alpha = np.broadcast_to(
            (np.arange(width) * 255 // max(width - 1, 1)).astype(np.uint8), (height, width)
        )
        frame = av.VideoFrame.from_ndarray(np.dstack([rgb, alpha]), format="rgba")
    else:
        frame = av.VideoFrame.from_ndarray(rgb)
    return frame.reformat(format=pix_fmt)


def make(path: Path, clip: Clip) -> Path:
    """Write ``clip`` to ``path`` (the container from the extension) and return the path."""
    with av.open(str(path), "w", options=clip.container) as out:
        streams = []
        for k, (codec, pix_fmt, width, height) in enumerate(clip.streams):
            s = out.add_stream(codec, rate=24)
            s.width, s.height, s.pix_fmt = width, height, pix_fmt
            options = {"preset": "ultrafast"} if codec == "libx264" else {}
            s.codec_context.options = {**options, **(clip.options if k == 0 else {})}
            if k == 0:
                for attr, value in clip.tags.items():
                    setattr(s.codec_context, attr, value)
            if k == 0 and clip.interlaced:
                flags = av.codec.context.Flags
                s.codec_context.flags |= flags.interlaced_dct | flags.interlaced_me
            streams.append(s)
        for i in range(clip.frames):
            for s in streams:
                frame = _frame(i, s.pix_fmt, s.width, s.height, weave=clip.interlaced)
                frame.pts = i
                out.mux(s.encode(frame))
        for s in streams:
            out.mux(s.encode(None))
    return path


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> path of every clip in :data:`CLIPS`, made once per session."""
    root = tmp_path_factory.mktemp("formats")
    return {name: make(root / name, clip) for name, clip in CLIPS.items()}


def upscale(capsys: pytest.CaptureFixture, src: Path, dst: Path, *flags: str) -> tuple[int, str]:
    """``vsr upscale SRC -o DST --model bicubic FLAGS`` in-process: (exit code, stderr)."""
    code = cli.main(["upscale", str(src), "-o", str(dst), "--model", "bicubic", "--overwrite", *flags])
    return code, capsys.readouterr().err


def test_unknown_format_is_a_usage_error(inputs, tmp_path, capsys):
    code, err = upscale(capsys, inputs["two.mkv"], tmp_path / "o.mkv", "--format", "bogus")
    assert code == 2
    assert err.count("\n") == 1 and "unknown output format 'bogus'" in err
    assert "matroska" in err and "mp4" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("where", ["missing/stats.json", "."])
def test_unwritable_json_stats_is_refused_before_the_run(inputs, tmp_path, capsys, where):
    dst = tmp_path / "o.mkv"
    code, err = upscale(capsys, inputs["two.mkv"], dst, "--json-stats", str(tmp_path / where))
    assert code == 4
    assert err.count("\n") == 1 and err.startswith("vsr: error: cannot write stats to")
    assert not dst.exists()


def test_a_second_video_stream_is_named_when_dropped(inputs, tmp_path, capsys):
    dst = tmp_path / "o.mkv"
    code, err = upscale(capsys, inputs["two.mkv"], dst)
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if "video stream" in ln]
    assert lines == [
        "vsr: warning: upscaling video stream #0 (h264 64x48); "
        "dropping the other video stream(s): #1 (h264 32x32)"
    ]
    with av.open(str(dst)) as c:
        assert [(s.width, s.height) for s in c.streams.video] == [(256, 192)]


def test_tiles_below_the_receptive_field_are_refused(inputs, tmp_path, capsys):
    code, err = upscale(capsys, inputs["two.mkv"], tmp_path / "o.mkv", "--model", "fast", "--tile", "1")
    assert code == 2 and err.count("\n") == 1
    assert "tile 1 is too small for model fast: use 0 (whole frame) or at least 24 px" in err
    assert "receptive radius of 6 px" in err
    spec = get_spec("compact")
    assert min_tile(spec) == 4 * spec.receptive_radius and min_tile(get_spec("bicubic")) == 16
    ModelConfig("fast", tile=24)  # the minimum itself is taken


def test_a_stop_during_the_warm_up_starts_no_frame(inputs, tmp_path):
    """A signal while the model warms up ends the run at once: no frame starts after it."""
    stop = threading.Event()

    class Slow(BicubicBackend):
        def prepare(self, height: int, width: int, batch: int) -> None:
            stop.set()  # as if SIGTERM arrived now

    dst = tmp_path / "o.mkv"
    with Ladder([("bicubic", Slow())]) as ladder:
        stats = upscale_file(
            DecodeConfig(str(inputs["two.mkv"])),
            EncodeConfig(str(dst)),
            ModelConfig(),
            stop=stop,
            ladder=ladder,
        )
    assert stats.interrupted and stats.frames_out == 0 and not dst.exists()


def _single_threaded_count(path: Path) -> int:
    """Frames FFmpeg decodes from ``path`` without frame threads, skipping what does not decode."""
    count = 0
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "NONE"
        packets = c.demux(s)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError:
                packet = None
            try:
                count += len(s.decode(packet if packet is not None and packet.size else None))
            except av.error.EOFError:
                pass
            except av.error.FFmpegError:
                continue
            if packet is None:
                break
    return count


@pytest.mark.parametrize("cut", [2000, 5000, 9000])
def test_a_truncated_mp4_keeps_every_frame_ffmpeg_decodes(inputs, tmp_path, cut):
    data = inputs["full.mp4"].read_bytes()
    src = tmp_path / "trunc.mp4"
    src.write_bytes(data[: len(data) - cut])
    with VideoReader(DecodeConfig(str(src))) as reader:
        frames = [f for f in reader.items() if isinstance(f, av.VideoFrame)]
        assert reader.truncated
    want = _single_threaded_count(src)
    assert 0 < len(frames) == want < 48
    assert [f.pts for f in frames] == sorted(f.pts for f in frames)


def _luma(path: Path) -> tuple[str, float]:
    """The first frame's pixel format and mean luma (in its own bit depth's units)."""
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        return frame.format.name, float(frame.to_ndarray()[: frame.height].mean())


def test_ten_bit_input_is_written_ten_bit(inputs, tmp_path, capsys):
    dst = tmp_path / "o.mkv"
    code, err = upscale(capsys, inputs["ten.mkv"], dst)
    assert code == 0, err
    assert err.count("10-bit input") == 1
    assert "vsr: warning: 10-bit input: upscaled at 8-bit precision, written as yuv420p10le\n" in err
    (fmt_in, y_in), (fmt_out, y_out) = _luma(inputs["ten.mkv"]), _luma(dst)
    assert fmt_in == fmt_out == "yuv420p10le"
    assert abs(y_out - y_in) < 0.02 * y_in  # 10-bit levels, not 8-bit values in a 10-bit frame
    stats = upscale_file(
        DecodeConfig(str(inputs["ten.mkv"])), EncodeConfig(str(tmp_path / "s.mkv")), ModelConfig("bicubic")
    )
    assert stats.to_dict()["pix_fmt"] == "yuv420p10le"
    assert stats.to_dict()["precision"] == "10-bit input: upscaled at 8-bit precision, written as yuv420p10le"


def test_an_asked_pix_fmt_wins_and_eight_bit_stays_eight_bit(inputs, tmp_path, capsys):
    code, err = upscale(capsys, inputs["ten.mkv"], tmp_path / "a.mkv", "--pix-fmt", "yuv420p")
    assert code == 0 and "written as yuv420p\n" in err
    assert _luma(tmp_path / "a.mkv")[0] == "yuv420p"
    code, err = upscale(capsys, inputs["two.mkv"], tmp_path / "b.mkv")
    assert code == 0 and "precision" not in err
    assert _luma(tmp_path / "b.mkv")[0] == "yuv420p"


def _hdr_of(path: Path) -> tuple[tuple[int, int, int, int], HdrMeta | None, str]:
    """(range, primaries, transfer, matrix) of the first frame, its HDR metadata, its codec."""
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        tags = (
            int(frame.color_range),
            int(frame.color_primaries),
            int(frame.color_trc),
            int(frame.colorspace),
        )
        return tags, HdrMeta.of(frame), c.streams.video[0].codec_context.name


@pytest.mark.parametrize("codec", ["libx265", "libx264"])
def test_hdr10_tags_and_metadata_are_carried(inputs, tmp_path, capsys, codec):
    dst = tmp_path / "o.mkv"
    code, err = upscale(capsys, inputs["hdr.mkv"], dst, "--codec", codec)
    assert code == 0, err
    tags, hdr, name = _hdr_of(dst)
    assert name == {"libx265": "hevc", "libx264": "h264"}[codec]
    assert tags == (1, 9, 16, 9)  # limited range, BT.2020, PQ, BT.2020 non-constant
    assert hdr == _hdr_of(inputs["hdr.mkv"])[1]
    assert hdr is not None and hdr.light == (1000, 400) and hdr.luminance == (0.005, 1000.0)
    assert hdr.display(0.00002, 0.0001, ".0f") == MASTERING


def test_hlg_tags_are_carried(inputs, tmp_path, capsys):
    code, err = upscale(capsys, inputs["hlg.mp4"], tmp_path / "o.mp4")
    assert code == 0, err
    assert _hdr_of(tmp_path / "o.mp4")[:2] == ((1, 9, 18, 9), None)


def test_an_encoder_without_hdr_metadata_says_so(inputs, tmp_path, capsys):
    code, err = upscale(capsys, inputs["hdr.mkv"], tmp_path / "o.webm")
    assert code == 0, err
    assert err.count("libvpx-vp9 cannot write the input's HDR mastering display") == 1
    tags, hdr, _ = _hdr_of(tmp_path / "o.webm")
    assert tags[1:] == (9, 16, 9) and hdr is None


def _alpha(path: Path) -> tuple[dict[str, str], np.ndarray | None]:
    """The video stream's tags and its first frame's alpha plane (None: no alpha decoded)."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        decoder = alpha_decoder(stream) or stream.codec_context
        frames = (f for p in c.demux(stream) for f in decoder.decode(p if p.size else None))
        frame = next(frames)
        alpha = frame.to_ndarray(format="rgba")[..., 3] if frame.format.name == "yuva420p" else None
        return dict(stream.metadata), alpha


def test_alpha_is_upscaled_into_vp9(inputs, tmp_path):
    dst = tmp_path / "o.webm"
    upscale_file(DecodeConfig(str(inputs["alpha.webm"])), EncodeConfig(str(dst)), ModelConfig("bicubic"))
    tags, alpha = _alpha(dst)
    assert tags.get("alpha_mode") == "1" and alpha is not None and alpha.shape == (192, 256)
    ramp = np.linspace(0, 255, 256)  # the input's horizontal ramp, 4x wider
    assert np.abs(alpha.mean(axis=0) - ramp).max() < 12


def test_alpha_that_is_not_written_leaves_no_alpha_tag(inputs, tmp_path, capsys):
    dst = tmp_path / "o.mkv"
    code, err = upscale(capsys, inputs["alpha.webm"], dst)
    assert code == 0, err
    assert err.count("the input has an alpha channel; libx264 as yuv420p cannot hold one") == 1
    tags, alpha = _alpha(dst)
    assert "alpha_mode" not in {k.lower() for k in tags} and alpha is None


def _combing(path: Path) -> float:
    """The mean luma step between neighbouring lines that their neighbours do not explain, over
    every frame (high when fields from two moments are woven together)."""
    with av.open(str(path)) as c:
        ys = [f.to_ndarray(format="gray").astype(np.float32) for f in c.decode(video=0)]
    return float(np.mean([np.abs(y[1:-1] - (y[:-2] + y[2:]) / 2).mean() for y in ys]))


def test_interlaced_input_is_deinterlaced_frame_for_frame(inputs, tmp_path, capsys):
    src, done, kept = inputs["interlaced.mp4"], tmp_path / "d.mp4", tmp_path / "k.mp4"
    code, err = upscale(capsys, src, done)
    assert code == 0, err
    line = "input is interlaced (top field first): deinterlacing with bwdif, one frame per frame"
    assert err.count(line) == 1
    code, err = upscale(capsys, src, kept, "--no-deinterlace")
    assert code == 0 and "deinterlacing" not in err and "upscaling the fields as they are" in err
    assert len(video_times(src)) == 8
    assert video_times(done) == video_times(kept) == video_times(src)  # frame count and pts kept
    assert _combing(done) < 0.5 * _combing(kept)
