"""Audio and subtitles keep their timing through every command, packet for packet (A/V sync).

Comparing payload bytes alone let a 200 ms shift of every copied packet through. Here each audio
and subtitle packet of the output must have the input's pts and duration (in seconds: exact where
both streams share a time base, within one output tick otherwise), and the first audio packet must
sit as far from the first video frame as it did in the input. Only the public command line runs and
only output files are read (PyAV), so these tests hold across rewrites of the frame loops.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from av_compare import Timed, assert_same_timing, first_video_time, timed_packets
from conftest import ClipSpec, make_clip, video_times
from live_feed import assert_live_audio, make_live_ts, run_stream_pipe

from vsr.cli import main

MOV_TEXT_GAP = b"\x00\x00"  # the mp4 muxer fills gaps between mov_text cues with empty cues


@pytest.fixture(scope="module")
def aac_srt_mkv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 s of 64x48 video with AAC and SubRip in matroska (made once for this module)."""
    path = tmp_path_factory.mktemp("av_sync") / "cfr_aac_srt.mkv"
    return make_clip(path, ClipSpec("cfr_aac_srt", audio="aac", subtitle="subrip"))


def _cues(path: Path) -> list[Timed]:
    return [p for p in timed_packets(path, "subtitle") if p.data != MOV_TEXT_GAP]


def assert_av_offset(src: Path, dst: Path) -> None:
    """The first audio packet is as far from the first video frame in ``dst`` as in ``src``."""
    (v_in, v_in_tick), (v_out, v_out_tick) = first_video_time(src), first_video_time(dst)
    a_in, a_out = timed_packets(src, "audio")[0], timed_packets(dst, "audio")[0]
    same_ticks = (v_in_tick, a_in.tick) == (v_out_tick, a_out.tick)
    tolerance = Fraction(0) if same_ticks else max(v_out_tick, a_out.tick)
    assert v_out == v_in, f"first video frame at {v_out} s, input {v_in} s"
    offset_in, offset_out = a_in.pts - v_in, a_out.pts - v_out
    assert abs(offset_out - offset_in) <= tolerance, f"audio - video: {offset_out} s out, {offset_in} s in"


@pytest.mark.parametrize(
    ("name", "ext"),
    [
        ("cfr_aac.mp4", ".mp4"),  # same time bases: exact
        ("vfr_aac.mp4", ".mp4"),
        ("cfr_aac.mp4", ".mkv"),  # 1/48000 -> matroska's 1/1000: within one ms
        ("vfr_opus_srt.mkv", ".mkv"),  # with SubRip subtitles
        ("cfr_aac_srt.mkv", ".mkv"),  # AAC + SubRip
        ("cfr_aac_movtext.mp4", ".mp4"),  # mov_text subtitles in mp4
    ],
)
def test_upscale_keeps_audio_and_subtitle_timing(
    clips: dict[str, Path], aac_srt_mkv: Path, tmp_path: Path, name: str, ext: str
) -> None:
    src = aac_srt_mkv if name == "cfr_aac_srt.mkv" else clips[name]
    dst = tmp_path / f"out{ext}"
    assert main(["upscale", str(src), "-o", str(dst), "--model", "bicubic", "-q"]) == 0
    # from mp4 into matroska the short last AAC packet reads back full-length (see assert_same_timing)
    last_duration = not (ext == ".mkv" and src.suffix == ".mp4")
    assert_same_timing(timed_packets(dst, "audio"), timed_packets(src, "audio"), "audio", last_duration)
    cues = _cues(src)
    if "srt" in name or "movtext" in name:
        assert cues, "the input has subtitles"
    assert_same_timing(_cues(dst), cues, "subtitle")
    assert_av_offset(src, dst)


# -- vsr stream: a live sender on a stdin pipe --------------------------------------------------


def test_stream_pipe_keeps_audio_where_it_was_against_video(tmp_path: Path) -> None:
    """2 s sent at real-time pace into ``vsr stream - -``: each audio packet of the output sits as
    far from the first video frame as it did when sent (see live_feed.assert_live_audio)."""
    ts = make_live_ts(tmp_path / "sent.ts", seconds=2.0)
    run = run_stream_pipe(ts, tmp_path / "out.ts", "--model", "bicubic", "--latency-budget", "1000")
    assert run.returncode == 0, run.stderr
    assert_live_audio(ts, run.output)


# -- vsr webcam --input FILE -------------------------------------------------------------------


@pytest.fixture(scope="module")
def webcam_run(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(input, output) of ``vsr webcam --input cfr_aac.mp4 -o out.mkv`` (1 s played in real time)."""
    src, out = clips["cfr_aac.mp4"], tmp_path_factory.mktemp("webcam") / "out.mkv"
    args = ["webcam", "--input", str(src), "--size", "64x48", "--model", "bicubic", "-o", str(out), "-q"]
    assert main(args) == 0
    return src, out


def test_webcam_file_input_keeps_video_times(webcam_run: tuple[Path, Path]) -> None:
    """Every frame of the file comes out at its own time (to matroska's 1 ms) - so the audio test
    below fails for its audio alone."""
    src, out = webcam_run
    got, want = video_times(out), video_times(src)
    assert len(got) == len(want)
    assert all(abs(g - w) <= Fraction(1, 1000) for g, w in zip(got, want, strict=True))


def test_webcam_file_input_keeps_audio_timing(webcam_run: tuple[Path, Path]) -> None:
    src, out = webcam_run
    assert_same_timing(timed_packets(out, "audio"), timed_packets(src, "audio"), "audio", last_duration=False)
    assert_av_offset(src, out)
