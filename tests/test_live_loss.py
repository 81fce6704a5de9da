"""Live loss measured against what the sender sent, never against vsr's own counters.

A tcp://127.0.0.1 loopback sender writes 4 s of 96x64 video at real-time pace, every frame
carrying its number as a barcode (live_feed.py), with AAC audio; ``vsr stream`` with the cheapest
model and a generous latency budget upscales it to stdout, saved to a file. Under normal load the
output must hold nearly every frame that was sent, each once, in order, at its own time, and all
of the audio. Counting what vsr says it dropped would let a loop that drops every other frame (and
counts it) pass; reading the frames' own numbers back does not.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import av
import pytest
from av_compare import video_frames, video_tick
from live_feed import StreamRun, assert_live_audio, make_live_ts, run_stream_tcp

SECONDS, FPS, GOP, SIZE = 4.0, 25, 5, (96, 64)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, StreamRun]:
    """(the MPEG-TS that was sent, the finished ``vsr stream`` run), once for this module."""
    root = tmp_path_factory.mktemp("live_loss")
    ts = make_live_ts(root / "sent.ts", SECONDS, fps=FPS, size=SIZE, gop=GOP)
    run = run_stream_tcp(ts, root / "out.ts", "--model", "bicubic", "--latency-budget", "1000")
    assert run.returncode == 0, run.stderr
    assert run.feeder_error is None, f"the sender failed: {run.feeder_error}"
    return ts, run


def test_output_holds_nearly_every_frame_sent(live: tuple[Path, StreamRun]) -> None:
    """At least 90% of the frames sent come out. A live stream is joined at a keyframe after the
    probe (frames before it are not kept): with a keyframe every GOP frames that costs at most
    about two GOPs; after that, nothing should be lost with a bicubic model and a 1 s budget."""
    ts, run = live
    sent, got = video_frames(ts), video_frames(run.output)
    assert [i for _, i in sent] == list(range(round(SECONDS * FPS)))  # the sender's own check
    numbers = [i for _, i in got]
    assert len(got) >= 0.9 * len(sent), f"{len(got)} of {len(sent)} frames out; missing {_missing(sent, got)}"
    assert numbers[0] <= 2 * GOP, f"joined at frame {numbers[0]}"
    after_join = len(sent) - numbers[0]
    assert len(got) >= 0.95 * after_join, f"lost after the join: {_missing(sent, got)}"


def test_output_frames_are_sent_frames_once_in_order_at_their_time(live: tuple[Path, StreamRun]) -> None:
    """Frame numbers strictly increase (no duplicate, none out of order); pts strictly increase;
    every frame keeps its sent time (one constant shift for all, to one output tick); 4x size."""
    ts, run = live
    sent = {i: t for t, i in video_frames(ts)}
    got = video_frames(run.output)
    numbers, times = [i for _, i in got], [t for t, _ in got]
    assert all(a < b for a, b in itertools.pairwise(numbers)), f"duplicated or reordered: {numbers}"
    assert all(a < b for a, b in itertools.pairwise(times)), "output pts do not strictly increase"
    tick = video_tick(run.output)
    shift = times[0] - sent[numbers[0]]
    moved = {i: t - sent[i] - shift for t, i in got if abs(t - sent[i] - shift) > tick}
    assert not moved, f"frames moved against the first one (s): {moved}"
    with av.open(str(run.output)) as c:
        ctx = c.streams.video[0].codec_context
        assert (ctx.width, ctx.height) == (4 * SIZE[0], 4 * SIZE[1])


def test_output_audio_is_all_the_audio_sent(live: tuple[Path, StreamRun]) -> None:
    """Same packets, same bytes, in order, at the same distance from the video (live_feed)."""
    ts, run = live
    assert_live_audio(ts, run.output)


def _missing(sent: list[tuple[Fraction, int]], got: list[tuple[Fraction, int]]) -> list[int]:
    return sorted({i for _, i in sent} - {i for _, i in got})
