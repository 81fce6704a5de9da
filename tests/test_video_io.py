"""Video I/O pieces: reader facts, writer checks, codecs, remux routes, colour, rotation, real clips."""

from __future__ import annotations

import itertools
import os
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import SHARED_VIDEO, StopAfter, video_times

from vsr.config import DecodeConfig, EncodeConfig, ModelConfig, container_for
from vsr.errors import ConfigError, InputError, OutputError
from vsr.pipeline import upscale_file
from vsr.video import ColourTags, VideoReader, VideoWriter, check_output_path, partial_path
from vsr.video.codecs import encoder_options
from vsr.video.convert import RgbToYuv
from vsr.video.remux import plan_route
from vsr.video.timing import Timeline


def run(src: Path, dst: Path, stop: threading.Event | None = None, **enc) -> None:
    upscale_file(DecodeConfig(str(src)), EncodeConfig(str(dst), **enc), ModelConfig("bicubic"), stop=stop)


def test_reader_facts(clips):
    with VideoReader(DecodeConfig(str(clips["vfr_aac.mp4"]))) as r:
        info = r.info
        assert (info.width, info.height, info.pix_fmt) == (64, 48, "yuv420p")
        assert info.frames == 18 and info.matrix is None and info.rotation == 0
        assert [s.type for s in r.passthrough] == ["audio"]
        items = list(r.items())
    frames = [i for i in items if isinstance(i, av.VideoFrame)]
    assert len(frames) == 18 and len(items) > 18  # audio packets travel too
    assert [Fraction(f.pts) * info.time_base for f in frames] == video_times(clips["vfr_aac.mp4"])


@pytest.mark.parametrize(
    ("path", "phrase"), [("nope.mp4", "not found"), (".", "directory"), ("audio_only.m4a", "no video stream")]
)
def test_reader_refuses(clips, path, phrase):
    with pytest.raises(InputError, match=phrase), VideoReader(DecodeConfig(str(clips.get(path, path)))):
        pass


def test_container_and_codec_options():
    assert container_for("a.MKV", None) == "matroska" and container_for("-", None) == "matroska"
    assert container_for("a.bin", "nut") == "nut"
    with pytest.raises(ConfigError, match="cannot tell"):
        container_for("a.bin", None)
    assert encoder_options("libx264", None, None) == {"crf": "18", "preset": "veryfast"}
    assert encoder_options("libsvtav1", 35, "8") == {"crf": "35", "preset": "8"}
    assert encoder_options("libvpx-vp9", 40, None)["deadline"] == "realtime"
    assert encoder_options("h264_nvenc", 23, "p5")["cq"] == "23"
    assert encoder_options("ffv1", None, None) == {}
    with pytest.raises(ConfigError, match="not supported for codec"):
        encoder_options("ffv1", 10, None)
    with pytest.raises(ConfigError, match=r"0\.\.51"):
        encoder_options("libx264", 60, None)


def test_output_path_checks(tmp_path):
    assert partial_path(str(tmp_path / "a.mp4")) == tmp_path / f".a.partial-{os.getpid()}.mp4"
    (tmp_path / "x.mp4").write_bytes(b"1")
    with pytest.raises(OutputError, match="exists"):
        check_output_path(str(tmp_path / "x.mp4"), overwrite=False)
    check_output_path(str(tmp_path / "x.mp4"), overwrite=True)
    with pytest.raises(OutputError, match="is the input"):
        check_output_path(str(tmp_path / "x.mp4"), overwrite=True, input_path=str(tmp_path / "x.mp4"))
    with pytest.raises(OutputError, match="is a directory"):
        check_output_path(str(tmp_path), overwrite=True)


def test_remux_routes(clips):
    with av.open(str(clips["vfr_opus_srt.mkv"])) as c:
        opus, srt = c.streams.audio[0], c.streams.subtitles[0]
        assert plan_route("matroska", opus).kind == "copy"
        assert plan_route("mp4", opus).kind == "copy"
        assert plan_route("mp4", srt).kind == "drop"
    with av.open(str(clips["cfr_aac.mp4"])) as c:
        route = plan_route("webm", c.streams.audio[0])
        assert (route.kind, route.codec) == ("transcode", "opus")


@pytest.mark.parametrize(
    "tags", [ColourTags(), ColourTags(1, 1, 1, 1), ColourTags(2, 1, 1, 1), ColourTags(1, 6, 6, 6)]
)
def test_rgb_to_yuv(tags):
    y, x = np.mgrid[0:48, 0:64]
    rgb = np.stack([x * 3 + 20, y * 4 + 10, 200 - x - y], axis=-1).astype(np.uint8)  # smooth: 4:2:0 is benign
    convert = RgbToYuv(64, 48, "yuv420p", tags)
    frame = convert(rgb)
    assert frame.format.name == "yuv420p" and int(frame.colorspace) == tags.colorspace
    back = frame.to_ndarray(format="rgb24")  # decoded with the frame's own tags
    assert np.abs(back.astype(int) - rgb).mean() < 2.5  # swscale's own round trip is ~1.7 off
    if convert.fast:  # the OpenCV path equals swscale's up to rounding and chroma siting
        convert.fast = False
        diff = np.abs(frame.to_ndarray().astype(int) - convert(rgb).to_ndarray())
        assert diff.max() <= 3 and diff.mean() < 0.5


def test_colour_tags_and_values_survive(clips, tmp_path):
    dst = tmp_path / "o.mp4"
    run(clips["bt709_flat.mp4"], dst)
    with av.open(str(dst)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.color_range, cc.color_primaries, cc.color_trc, cc.colorspace) == (1, 1, 1, 1)
        frame = next(c.decode(video=0))
    with av.open(str(clips["bt709_flat.mp4"])) as c:
        ref = next(c.decode(video=0)).to_ndarray(format="rgb24").reshape(-1, 3).mean(0)
    got = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(0)
    assert (
        np.abs(got - ref).max() <= 3.0
    )  # decoded with the tags: the same colour (a BT.601 mix-up is ~10 off)


def test_rotation_is_carried(clips, tmp_path):
    dst = tmp_path / "o.mkv"
    run(clips["rotated.mp4"], dst)
    with av.open(str(dst)) as c:
        frame = next(c.decode(video=0))
        assert frame.rotation == 90 and (frame.width, frame.height) == (256, 192)


def test_odd_size_input(clips, tmp_path):
    dst = tmp_path / "o.mp4"
    run(clips["odd_444.mp4"], dst)
    with av.open(str(dst)) as c:
        v = c.streams.video[0]
        assert (v.width, v.height, v.codec_context.pix_fmt) == (252, 188, "yuv420p")
    assert video_times(dst) == video_times(clips["odd_444.mp4"])


def test_writer_validates_before_touching_disk(clips, tmp_path):
    with VideoReader(DecodeConfig(str(clips["cfr_noaudio.mp4"]))) as r:
        with pytest.raises(ConfigError, match="cannot encode pix_fmt"):
            VideoWriter(EncodeConfig(str(tmp_path / "o.mp4"), pix_fmt="rgb48le"), r.info)
        with pytest.raises(OutputError, match="cannot hold"):
            VideoWriter(EncodeConfig(str(tmp_path / "o.webm"), codec="libx264"), r.info)
    assert list(tmp_path.iterdir()) == []


REAL = sorted(SHARED_VIDEO.glob("*.*")) if SHARED_VIDEO.is_dir() else []


@pytest.mark.skipif(not REAL, reason=f"no real clips in {SHARED_VIDEO}")
@pytest.mark.parametrize("clip", REAL, ids=lambda p: p.name)
def test_real_clip_prefix(clip, tmp_path):
    """The first few frames of each real clip: 4x size, exact pts, colour tags, audio kept."""
    dst = tmp_path / "o.mp4"  # mp4 keeps negative (AAC priming) timestamps, so every pts stays exact
    run(clip, dst, stop=StopAfter(6), preset="ultrafast")
    with av.open(str(clip)) as c:
        src_v = c.streams.video[0]
        src_cc = src_v.codec_context
        src_tags = (src_cc.color_range, src_cc.color_primaries, src_cc.color_trc, src_cc.colorspace)
        has_audio = bool(c.streams.audio)
    with av.open(str(dst)) as c:
        v = c.streams.video[0]
        assert (v.width, v.height) == (4 * src_v.width, 4 * src_v.height)
        cc = v.codec_context
        assert (cc.color_range, cc.color_primaries, cc.color_trc, cc.colorspace) == src_tags
        assert bool(c.streams.audio) == has_audio
    got = video_times(dst)
    with av.open(str(clip)) as c:
        s = c.streams.video[0]
        want = [Fraction(f.pts) * s.time_base for _, f in zip(got, c.decode(s), strict=False)]
    assert 1 <= len(got) <= 8
    assert got == want


def test_raw_stream_without_timestamps(clips, tmp_path):
    """Raw H.264 has no pts: frames are placed one duration (else one frame at the rate) apart."""
    raw = tmp_path / "in.h264"
    with av.open(str(clips["cfr_noaudio.mp4"])) as i, av.open(str(raw), "w", format="h264") as o:
        out = o.add_stream_from_template(i.streams.video[0])
        for packet in i.demux(video=0):
            if packet.dts is not None:
                packet.stream = out
                o.mux(packet)
    dst = tmp_path / "o.mp4"
    run(raw, dst)
    times = video_times(dst)
    assert len(times) == 12
    steps = {round(float(b - a), 3) for a, b in itertools.pairwise(times)}
    assert steps == {round(1 / 24, 3)}


def test_title_language_and_chapters_are_carried(clips, tmp_path):
    src = tmp_path / "in.mkv"
    chapters = [
        {"id": 1, "start": 0, "end": 250, "time_base": Fraction(1, 1000), "metadata": {"title": "Intro"}},
        {"id": 2, "start": 250, "end": 500, "time_base": Fraction(1, 1000), "metadata": {"title": "Rest"}},
    ]
    with av.open(str(clips["cfr_noaudio.mp4"])) as i, av.open(str(src), "w") as o:
        out = o.add_stream_from_template(i.streams.video[0])
        out.metadata["language"] = "fra"
        o.metadata["title"] = "A film"
        o.set_chapters(chapters)
        for packet in i.demux(video=0):
            if packet.dts is not None:
                packet.stream = out
                o.mux(packet)
    dst = tmp_path / "o.mp4"
    run(src, dst)
    with av.open(str(dst)) as c:
        assert c.metadata["title"] == "A film"
        assert c.streams.video[0].metadata["language"] == "fra"
        assert [ch["metadata"]["title"] for ch in c.chapters()] == ["Intro", "Rest"]


def test_timeline_keeps_pts_and_durations():
    tl = Timeline(Fraction(1, 1000), Fraction(25), sums_decode_order=True)
    assert [tl.frame(p, d) for p, d in [(0, 40), (40, 20), (60, 70)]] == [0, 40, 60]
    assert tl.frame(60, 0) == 100  # repeated pts: moved one frame (40 ms at 25 fps) later
    assert tl.frame(None, 10) == 110  # missing pts: last + its own duration

    def packet(pts: int, dts: int) -> av.Packet:
        p = av.Packet(b"x")
        p.pts, p.dts, p.duration = pts, dts, 5  # the encoder's durations, in decode order
        return p

    out = tl.packets([packet(0, -40), packet(60, -20), packet(40, 0)])
    assert [p.duration for p in out] == [40, 70, 20]
    last = tl.packets([packet(110, 40), packet(100, 60)], final=True)[-1]
    assert last.dts + last.duration - (-40) == 130  # track length = presentation span (60 + 70)
