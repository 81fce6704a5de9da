"""The threaded pipeline end to end on tiny clips: sizes, counts, timestamps, audio, errors, stop."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import packets_of, video_times

from vsr.backends import create_backend
from vsr.config import DecodeConfig, EncodeConfig, ModelConfig, PipelineConfig
from vsr.ladder import Ladder
from vsr.pipeline import END, upscale_file
from vsr.stats import Progress, RunStats

BICUBIC = ModelConfig("bicubic")


def upscale(src: Path, dst: Path, *, batch: int = 1, stop=None, backend=None, **enc) -> RunStats:
    return upscale_file(
        DecodeConfig(str(src)),
        EncodeConfig(str(dst), **enc),
        BICUBIC,
        PipelineConfig(batch=batch),
        stop=stop,
        ladder=None if backend is None else Ladder([("test", backend)], owned=False),
    )


def stream_facts(path: Path) -> tuple[int, int, int, Fraction]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = sum(1 for _ in c.decode(s))
        return s.width, s.height, frames, Fraction(s.duration or 0) * s.time_base


@pytest.mark.parametrize("name", ["cfr_aac.mp4", "vfr_aac.mp4", "cfr_noaudio.mp4"])
@pytest.mark.parametrize("batch", [1, 4])
def test_sizes_counts_pts_audio_duration(clips, tmp_path, name, batch):
    src, dst = clips[name], tmp_path / "out.mp4"
    stats = upscale(src, dst, batch=batch)
    w, h, n, dur = stream_facts(src)
    w2, h2, n2, dur2 = stream_facts(dst)
    assert (w2, h2) == (4 * w, 4 * h)
    assert n2 == n == stats.frames_in == stats.frames_out
    assert video_times(dst) == video_times(src)  # every pts, exactly (VFR included)
    assert dur2 == dur
    if "aac" in name:
        assert packets_of(dst, "audio") == packets_of(src, "audio")
    assert not stats.interrupted and not stats.truncated


def test_mkv_output_keeps_negative_audio_timestamps(clips, tmp_path):
    """AAC priming starts audio below 0; matroska stores it as is, so nothing shifts."""
    src, dst = clips["vfr_aac.mp4"], tmp_path / "out.mkv"
    upscale(src, dst)
    assert all(
        abs(a - b) <= Fraction(1, 2000) for a, b in zip(video_times(dst), video_times(src), strict=True)
    )
    assert video_times(dst)[0] == 0
    assert packets_of(dst, "audio") == packets_of(src, "audio")


def test_vfr_mkv_keeps_opus_and_subtitles(clips, tmp_path):
    src, dst = clips["vfr_opus_srt.mkv"], tmp_path / "out.mkv"
    upscale(src, dst, batch=3)
    assert video_times(dst) == video_times(src)  # both in matroska's 1/1000
    assert packets_of(dst, "audio") == packets_of(src, "audio")
    assert packets_of(dst, "subtitle") == packets_of(src, "subtitle")


def test_mov_text_into_mkv_is_dropped_with_warning(clips, tmp_path, caplog):
    dst = tmp_path / "out.mkv"
    upscale(clips["cfr_aac_movtext.mp4"], dst)
    assert "dropped" in caplog.text
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
    assert packets_of(dst, "audio") == packets_of(clips["cfr_aac_movtext.mp4"], "audio")


def test_mov_text_mp4_to_mp4_is_copied(clips, tmp_path):
    src, dst = clips["cfr_aac_movtext.mp4"], tmp_path / "out.mp4"
    upscale(src, dst)
    text = [p for p in packets_of(dst, "subtitle") if p != b"\x00\x00"]  # the muxer's gap fillers
    assert text == [p for p in packets_of(src, "subtitle") if p != b"\x00\x00"]
    assert len(text) == 2


def test_aac_into_webm_is_reencoded(clips, tmp_path, caplog):
    dst = tmp_path / "out.webm"
    upscale(clips["cfr_aac.mp4"], dst)
    assert "re-encoding it to" in caplog.text
    with av.open(str(dst)) as c:
        assert c.streams.video[0].codec_context.name == "vp9"
        audio = c.streams.audio[0]
        assert audio.codec_context.name == "opus"
        last = max(p.pts + p.duration for p in c.demux(audio) if p.size)
    assert abs(float(last * audio.time_base) - 1.0) < 0.05  # the 1 s of audio, still in place
    got, want = video_times(dst), video_times(clips["cfr_aac.mp4"])
    assert len(got) == len(want)
    assert all(abs(g - w) <= Fraction(1, 2000) for g, w in zip(got, want, strict=True))  # webm: 1 ms ticks


class _Raising:
    """A bicubic backend that fails on its ``after``-th call."""

    def __init__(self, after: int, exc: BaseException) -> None:
        self.inner, self.after, self.exc, self.calls = create_backend("auto", "bicubic"), after, exc, 0
        self.info, self.name = self.inner.info, "raising"

    def prepare(self, h: int, w: int, batch: int) -> None:
        pass

    def infer(self, frames: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls > self.after:
            raise self.exc
        return self.inner.infer(frames)

    def close(self) -> None:
        pass


def test_stage_error_reaches_caller_and_output_stays_playable(clips, tmp_path):
    dst = tmp_path / "out.mp4"
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="boom"):
        upscale(clips["cfr_aac.mp4"], dst, backend=_Raising(5, RuntimeError("boom")))
    assert threading.active_count() == before  # no stage left running
    times = video_times(dst)
    assert 1 <= len(times) <= 5
    assert times == video_times(clips["cfr_aac.mp4"])[: len(times)]
    assert not list(tmp_path.glob(".out.partial*"))


def test_error_before_any_frame_leaves_nothing(clips, tmp_path):
    dst = tmp_path / "out.mp4"
    with pytest.raises(ValueError):
        upscale(clips["cfr_aac.mp4"], dst, backend=_Raising(0, ValueError("bad")))
    assert list(tmp_path.iterdir()) == []


class _Stopper(_Raising):
    """Sets ``stop`` on its 4th call instead of failing."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__(10**9, RuntimeError())
        self.stop = stop

    def infer(self, frames: np.ndarray) -> np.ndarray:
        if self.calls == 3:
            self.stop.set()
        return super().infer(frames)


def test_stop_drains_and_finishes(clips, tmp_path):
    stop = threading.Event()
    dst = tmp_path / "out.mp4"
    stats = upscale(clips["faststart_aac.mp4"], dst, stop=stop, backend=_Stopper(stop))
    assert stats.interrupted
    n = len(video_times(dst))
    assert n == stats.frames_out and 4 <= n < 48


def test_tiling_equals_whole_frame_through_pipeline(clips, tmp_path):
    torch = pytest.importorskip("torch")
    from vsr.models.catalogue import new_network

    torch.manual_seed(0)
    net = new_network("fast").eval()
    outs = []
    for tile in (0, 16):
        backend = create_backend("torch", "fast", tile=tile, threads=1, net=net)
        dst = tmp_path / f"tile{tile}.mkv"
        upscale(clips["cfr_noaudio.mp4"], dst, backend=backend, codec="ffv1", pix_fmt="yuv444p")
        with av.open(str(dst)) as c:
            outs.append(np.stack([f.to_ndarray() for f in c.decode(video=0)]).astype(int))
    assert outs[0].shape == outs[1].shape
    assert np.abs(outs[0] - outs[1]).max() <= 1


def test_stats_document_has_the_promised_keys(clips, tmp_path):
    doc = upscale(clips["cfr_noaudio.mp4"], tmp_path / "o.mp4").to_dict()
    for key in ("frames_in", "frames_out", "fps", "seconds", "peak_rss_mb"):
        assert key in doc
    for stage in ("decode", "infer", "encode"):
        assert {"p50_ms", "p95_ms", "frames", "fps"} <= set(doc["stages"][stage])
    assert doc["frames_out"] == 12 and doc["fps"] > 0 and doc["model"] == "bicubic"


def test_progress_line_and_end_sentinel():
    p = Progress(100, enabled=False)
    assert "50/100 frames" in p.line(50, 2.0) and "ETA" in p.line(50, 2.0)
    assert "frames" in Progress(0, enabled=False).line(5, 1.0)
    assert repr(END) == "END"
