"""`vsr stream` inputs and file outputs: a file played live, a stream joined mid-GOP, the frames
read while probing kept, giving up on reconnects, and outputs named like video files.

Through real files, FIFOs, stdin pipes and loopback sockets; the clips are a few seconds of 96x64
(or the 4 s sample in samples/), so the file stays well under a minute on 2 busy cores.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import REPO, pattern, run_vsr

from vsr.errors import ConfigError
from vsr.stream import StreamConfig, sink_kind
from vsr.stream.sink import LiveSink
from vsr.stream.source import LiveSource

SAMPLE = REPO / "samples" / "face_320x180.mp4"  # 4 s, 30 fps, H.264 with B-frames + AAC
PEERS = str(Path(__file__).with_name("stream_peers.py"))
FPS = 25


def write_ts(path: Path, frames: int, gop: int, audio: bool = True) -> Path:
    """An MPEG-TS of ``frames`` 96x64 frames at 25 fps, a keyframe exactly every ``gop`` frames."""
    with av.open(str(path), "w", format="mpegts") as out:
        v = out.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        v.codec_context.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
        }
        a = out.add_stream("aac", rate=48000, layout="mono") if audio else None
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern(i, 64, 96), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(v.encode(frame))
            if a is not None:
                for k in range(i * 48000 // FPS // 1024, (i + 1) * 48000 // FPS // 1024):
                    tone = (0.2 * np.sin(np.arange(1024) * 0.05 + k)).astype(np.float32)
                    af = av.AudioFrame.from_ndarray(tone[None], format="flt", layout="mono")
                    af.sample_rate, af.pts, af.time_base = 48000, k * 1024, Fraction(1, 48000)
                    out.mux(a.encode(af))
        out.mux(v.encode(None))
    return path


def video_packets(path: Path) -> list[tuple[int, int, bool]]:
    """(byte position, pts, keyframe) of every video packet, in file order."""
    with av.open(str(path)) as c:
        return [(p.pos, p.pts, p.is_keyframe) for p in c.demux(video=0) if p.size]


def decoded_pts(path: Path | str) -> list[int]:
    with av.open(str(path)) as c:
        return [f.pts for f in c.decode(video=0)]


def read_source(cfg: StreamConfig) -> tuple[LiveSource, list[tuple[float, av.VideoFrame]], int]:
    """Everything ``cfg.input`` delivers: (the closed source, (arrival, frame) pairs, audio packets)."""
    frames, audio = [], 0
    with LiveSource(cfg, threading.Event()) as source:
        for arrival, item in source.items():
            if isinstance(item, av.VideoFrame):
                frames.append((arrival, item))
            else:
                audio += 1
    return source, frames, audio


@contextmanager
def fifo_with(tmp_path: Path, data: bytes) -> Iterator[str]:
    """A named pipe that a thread fills with ``data`` (then closes) once a reader opens it."""
    path = tmp_path / "input.fifo"
    os.mkfifo(path)

    def feed() -> None:
        with suppress(BrokenPipeError), open(path, "wb") as f:
            f.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        yield str(path)
    finally:
        if writer.is_alive():  # nobody opened it: unblock the writer's open
            with suppress(OSError):
                os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        writer.join(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def send_over_tcp(port: int, data: bytes) -> threading.Thread:
    """A thread that connects to 127.0.0.1:``port`` (retrying for 10 s), sends ``data``, closes."""

    def send() -> None:
        deadline = time.monotonic() + 10.0
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5.0) as s:
                    s.sendall(data)
                return
            except OSError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.05)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def stream_stats(*args: str, stdin: bytes | None = None, tmp_path: Path) -> tuple[dict, str]:
    """``vsr stream ARGS --model bicubic`` to the end; (its --json-stats, stderr). Asserts exit 0."""
    stats = tmp_path / "stats.json"
    r = run_vsr("stream", *args, "--model", "bicubic", "--json-stats", str(stats), stdin=stdin, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "unexpected" not in r.stderr
    return json.loads(stats.read_text()), r.stderr


# -- a regular file as the live input -----------------------------------------------------------


def test_file_input_plays_every_frame_at_its_own_rate() -> None:
    """Every frame of the file, in order, with the stream's time base (the decoder's flush frames
    have none in this PyAV), released at the file's pace from the first frame."""
    source, frames, audio = read_source(StreamConfig(str(SAMPLE), "-"))
    assert source.is_file and source.ended == "the input ended"
    assert [f.pts for _, f in frames] == decoded_pts(SAMPLE)  # 120: nothing lost to the probe
    assert source.skipped_at_join == source.skipped_packets == 0 and audio > 0
    with av.open(str(SAMPLE)) as c:
        tb = c.streams.video[0].time_base
    assert {f.time_base for _, f in frames} == {tb}
    span = frames[-1][0] - frames[0][0]
    expected = float((frames[-1][1].pts - frames[0][1].pts) * tb)  # 3.97 s
    assert expected - 0.05 <= span <= expected + 0.5, span


def test_file_waits_for_a_late_consumer_instead_of_bursting(tmp_path: Path) -> None:
    """A consumer away for 0.8 s after the first frame (models warming up) gets the rest of the
    file at its pace, not as a burst that a live queue of 4 frames would mostly drop."""
    clip = write_ts(tmp_path / "clip.ts", frames=25, gop=25, audio=False)
    arrivals = []
    with LiveSource(StreamConfig(str(clip), "-"), threading.Event()) as source:
        for arrival, item in source.items():
            if isinstance(item, av.VideoFrame):
                arrivals.append(arrival)
                if len(arrivals) == 1:
                    time.sleep(0.8)
    assert len(arrivals) == 25
    rest = np.diff(arrivals[1:])
    assert rest.sum() >= 0.9 * 23 / FPS and np.median(rest) >= 0.8 / FPS, rest


def test_is_file_only_for_regular_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    for name in ("-", f"tcp://127.0.0.1:{free_port()}", str(tmp_path / "fifo"), str(tmp_path)):
        assert not LiveSource(StreamConfig(name, "-"), threading.Event()).is_file, name
    assert LiveSource(StreamConfig(str(SAMPLE), "-"), threading.Event()).is_file


def test_cli_mp4_file_in_hls_out(tmp_path: Path) -> None:
    """Was: `unexpected TypeError` (decoded frames without a time base), or no frame at all (the
    probe, with fflags=nobuffer, swallowed the whole small file)."""
    stats, _ = stream_stats(str(SAMPLE), str(tmp_path / "hls"), tmp_path=tmp_path)
    assert stats["ended"] == "the input ended"
    assert stats["frames_out"] >= 115 and stats["frames_dropped"] == 0  # of 120, 30 fps: paced
    assert len(decoded_pts(tmp_path / "hls" / "index.m3u8")) == stats["frames_out"]


def test_cli_ts_file_is_paced_not_dropped(tmp_path: Path) -> None:
    """Was: the file read at decode speed, so the frames were skipped while the models warmed up
    and dropped from the full queue (0 frames with a slow model, an empty HLS segment)."""
    clip = tmp_path / "clip.ts"
    with av.open(str(SAMPLE)) as src, av.open(str(clip), "w", format="mpegts") as out:
        streams = {
            s.index: out.add_stream_from_template(s) for s in src.streams if s.type in ("video", "audio")
        }
        for packet in src.demux(*src.streams):
            if packet.dts is not None and packet.stream.index in streams:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    total = len(decoded_pts(clip))
    stats, _ = stream_stats(str(clip), str(tmp_path / "hls"), "--latency-budget", "2000", tmp_path=tmp_path)
    assert stats["frames_dropped"] == 0, stats
    assert stats["frames_out"] >= total - 3, (stats, total)
    assert len(decoded_pts(tmp_path / "hls" / "index.m3u8")) == stats["frames_out"]


# -- joining: at the first keyframe, with the probed packets kept --------------------------------


def test_pipe_delivers_every_frame_from_the_first(tmp_path: Path) -> None:
    """The packets read while probing are kept: the first frame out is the stream's first."""
    clip = write_ts(tmp_path / "clip.ts", frames=50, gop=25)
    with fifo_with(tmp_path, clip.read_bytes()) as fifo:
        source, frames, audio = read_source(StreamConfig(fifo, "-"))
    assert [f.pts for _, f in frames] == decoded_pts(clip)
    assert source.skipped_at_join == 0 and audio > 0 and not source.is_file


def test_mid_gop_pipe_joins_at_the_first_keyframe(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clip = write_ts(tmp_path / "clip.ts", frames=75, gop=50)
    packets = video_packets(clip)
    keyframes = [i for i, (_, _, key) in enumerate(packets) if key]
    assert keyframes == [0, 50]
    cut = packets[20][0] // 188 * 188  # a TS packet boundary inside the first GOP
    caplog.set_level(logging.INFO, logger="vsr.stream")
    with fifo_with(tmp_path, clip.read_bytes()[cut:]) as fifo:
        source, frames, _ = read_source(StreamConfig(fifo, "-"))
    assert frames[0][1].key_frame and frames[0][1].pts == packets[50][1]
    assert len(frames) == 25
    assert 20 <= source.skipped_packets <= 30 and source.skipped_at_join == source.skipped_packets
    messages = [r.getMessage() for r in caplog.records]
    assert sum("waiting for a keyframe" in m for m in messages) == 1
    assert any(f"({source.skipped_packets} video packets skipped)" in m for m in messages)


def test_cli_long_gop_stdin_is_not_lost(tmp_path: Path) -> None:
    """One keyframe, at the start (a GOP longer than the clip), sent at its real pace like `ffmpeg
    -re ... -f mpegts -`: fflags=nobuffer threw the keyframe away with the probed packets and the
    stream ended with 'no video frame arrived'."""
    clip = write_ts(tmp_path / "clip.ts", frames=50, gop=250)
    data, stats_file, hls = clip.read_bytes(), tmp_path / "stats.json", tmp_path / "hls"
    args = [sys.executable, "-m", "vsr", "stream", "-", str(hls), "--model", "bicubic"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    vsr = subprocess.Popen(
        [*args, "--json-stats", str(stats_file)], stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        step = len(data) // 50 + 1
        with suppress(BrokenPipeError):
            for i in range(0, len(data), step):  # 25 chunks a second: the clip's own pace
                vsr.stdin.write(data[i : i + step])  # type: ignore[union-attr]
                vsr.stdin.flush()  # type: ignore[union-attr]
                time.sleep(1 / FPS)
        _, err = vsr.communicate(timeout=30)  # closes stdin: the input ends
    finally:
        if vsr.poll() is None:
            vsr.kill()
        vsr.wait(timeout=10)
    assert vsr.returncode == 0, err
    stats = json.loads(stats_file.read_text())
    assert stats["frames_out"] > 0
    assert len(decoded_pts(hls / "index.m3u8")) == stats["frames_out"]


# -- reconnecting -------------------------------------------------------------------------------


def test_giving_up_reconnecting_is_recorded(tmp_path: Path) -> None:
    clip = write_ts(tmp_path / "clip.ts", frames=25, gop=25)
    port = free_port()
    cfg = StreamConfig(
        f"tcp://127.0.0.1:{port}?listen=1", "-", reconnect=True, reconnect_for_s=1.0, open_timeout_s=10.0
    )
    sender = send_over_tcp(port, clip.read_bytes())
    source, frames, _ = read_source(cfg)
    sender.join(timeout=10)
    assert [f.pts for _, f in frames] == decoded_pts(clip)  # over a socket too: from the first frame
    assert source.gave_up and source.reconnects == 0
    assert source.ended == "the input ended; gave up reconnecting after 1 s"


def test_an_input_that_just_ends_did_not_give_up(tmp_path: Path) -> None:
    clip = write_ts(tmp_path / "clip.ts", frames=10, gop=10)
    with fifo_with(tmp_path, clip.read_bytes()) as fifo:
        source, _, _ = read_source(StreamConfig(fifo, "-"))
    assert not source.gave_up and source.ended == "the input ended"


# -- outputs named like files -------------------------------------------------------------------


def test_sink_kind_by_extension(tmp_path: Path) -> None:
    kinds = {
        "out.ts": "ts-file",
        "out.M2TS": "ts-file",
        "out.mp4": "mp4-file",
        "out.mov": "mp4-file",
        "out.m4v": "mp4-file",
        "out.mkv": "mkv-file",
        "live.m3u8": "hls",
        "hls": "hls",
    }
    for name, kind in kinds.items():
        assert sink_kind(str(tmp_path / name)) == kind, name
    (tmp_path / "old.d").mkdir()
    assert sink_kind(str(tmp_path / "old.d")) == "hls"  # an existing directory
    with pytest.raises(ConfigError, match=r"a file output must end in one of \.ts, \.m2ts, \.mp4"):
        sink_kind(str(tmp_path / "out.avi"))
    (tmp_path / "was.mp4").mkdir()
    with pytest.raises(ConfigError, match=r"is a directory, but a \.mp4 output is a file"):
        sink_kind(str(tmp_path / "was.mp4"))
    (tmp_path / "plain").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        sink_kind(str(tmp_path / "plain"))


@pytest.mark.parametrize(
    ("name", "muxer"),
    [
        ("a.ts", "mpegts"),
        ("a.mp4", "mov,mp4"),
        ("a.mov", "mov,mp4"),
        ("a.mkv", "matroska"),
        ("a.m3u8", "hls"),
    ],
)
def test_live_sink_writes_files(tmp_path: Path, name: str, muxer: str) -> None:
    out = tmp_path / "sub" / name
    with LiveSink(StreamConfig("-", str(out)), 96, 64, Fraction(1, FPS), Fraction(FPS), []) as sink:
        for i in range(30):
            assert sink.write(pattern(i, 64, 96), i)
    assert out.is_file()
    with av.open(str(out)) as c:
        assert c.format.name.startswith(muxer)
        assert sum(1 for _ in c.decode(video=0)) == 30
    if name.endswith(".m3u8"):
        assert sorted(p.name for p in out.parent.glob("a_*.ts")) == ["a_00000.ts", "a_00001.ts"]


def test_killed_stream_leaves_a_playable_mp4(tmp_path: Path) -> None:
    """Fragmented at every keyframe (1 s): SIGKILL mid-stream loses at most the last second."""
    out = tmp_path / "out.mp4"
    send_args = [sys.executable, PEERS, "send", "-", "--seconds", "6", "--fps", str(FPS)]
    vsr_args = [sys.executable, "-m", "vsr", "stream", "-", str(out), "--model", "bicubic"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    send = subprocess.Popen(send_args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    vsr = subprocess.Popen(vsr_args, stdin=send.stdout, stderr=subprocess.DEVNULL, env=env)
    try:
        send.stdout.close()  # type: ignore[union-attr]
        time.sleep(4.0)
        assert vsr.poll() is None
        vsr.send_signal(signal.SIGKILL)
    finally:
        for proc in (vsr, send):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
    assert out.is_file()
    with av.open(str(out)) as c:
        assert c.streams.audio
        frames = [f for f in c.decode(video=0)]
    assert len(frames) >= FPS and (frames[0].width, frames[0].height) == (384, 256)
