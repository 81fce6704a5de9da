"""A live sender for `vsr stream` tests whose every frame and audio packet is known in advance.

:func:`make_live_ts` writes an MPEG-TS clip once (H.264 frames that carry their own number as a
barcode, see av_compare.py, plus AAC of seeded noise so that no two audio packets are alike);
reading that file back is exactly what the sender sent. :class:`Feeder` then writes the file's
bytes to a pipe or a socket at real-time pace, one video frame's worth of bytes per frame interval,
and :func:`run_stream_pipe` / :func:`run_stream_tcp` run ``vsr stream`` on it, stdout saved to a file.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av_compare import barcode, timed_packets, video_frames

REPO = Path(__file__).resolve().parents[1]
RATE = 48000


def make_live_ts(
    path: Path, seconds: float, fps: int = 25, size: tuple[int, int] = (96, 64), gop: int = 5
) -> Path:
    """Write ``seconds`` of barcoded video (a keyframe every ``gop`` frames) and noise AAC."""
    width, height = size
    rng = np.random.default_rng(12)
    with av.open(str(path), "w", format="mpegts") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(gop), "crf": "18"}
        a = out.add_stream("aac", rate=RATE, layout="mono")
        samples = 0
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(barcode(i, height, width), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(v.encode(frame))
            while samples < (i + 1) * RATE // fps:
                noise = (0.1 * rng.standard_normal(1024)).astype(np.float32)[None]
                af = av.AudioFrame.from_ndarray(noise, format="flt", layout="mono")
                af.sample_rate, af.pts, af.time_base = RATE, samples, Fraction(1, RATE)
                out.mux(a.encode(af))
                samples += 1024
        out.mux(v.encode(None))
        out.mux(a.encode(None))
    return path


def paced_chunks(path: Path) -> list[tuple[float, bytes]]:
    """The file's bytes cut where each video packet starts: (seconds after the first frame, bytes)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        marks = [(p.pos, float((p.dts - v.start_time) * v.time_base)) for p in c.demux(v) if p.size]
    data = path.read_bytes()
    cuts = [0] + [pos for pos, _ in marks[1:]] + [len(data)]
    times = [t for _, t in marks]
    return [(times[i], data[cuts[i] : cuts[i + 1]]) for i in range(len(times))]


def sent_before(path: Path, frame: int) -> int:
    """How many audio packets the file holds before the packet of video frame ``frame`` (the
    order they are sent, read and demuxed in; frames are numbered from 0, one packet each)."""
    audio, video = 0, 0
    with av.open(str(path)) as c:
        for packet in c.demux(*c.streams.video, *c.streams.audio):
            if not packet.size:
                continue
            if packet.stream.type == "video":
                if video == frame:
                    return audio
                video += 1
            else:
                audio += 1
    raise ValueError(f"{path} has no video frame {frame}")


class Feeder(threading.Thread):
    """Writes ``chunks`` at real-time pace with ``write``, then calls ``close``; keeps any error."""

    def __init__(
        self, chunks: list[tuple[float, bytes]], write: Callable[[bytes], object], close: Callable[[], object]
    ) -> None:
        super().__init__(daemon=True, name="live-feeder")
        self.chunks, self.write, self.close = chunks, write, close
        self.error: BaseException | None = None

    def run(self) -> None:
        t0 = time.monotonic()
        try:
            for t, chunk in self.chunks:
                time.sleep(max(0.0, t0 + t - time.monotonic()))
                self.write(chunk)
        except (OSError, ValueError) as exc:  # vsr went away: its exit code tells why
            self.error = exc
        finally:
            with contextlib.suppress(OSError):
                self.close()


@dataclass
class StreamRun:
    """One finished ``vsr stream`` run: its exit code, stderr, and the output file."""

    returncode: int
    stderr: str
    output: Path
    feeder_error: BaseException | None


def _vsr(args: list[str], stdin: int | None, out: Path) -> subprocess.Popen:
    """``vsr stream ARGS`` with stdout saved to ``out`` and stderr to ``out`` + ".stderr" (a file,
    not a pipe: ``communicate`` would close a stdin that the feeder is still writing)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(out, "wb") as sink, open(f"{out}.stderr", "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "vsr", "stream", *args],
            bufsize=0,
            stdin=stdin,
            stdout=sink,
            stderr=err,
            env=env,
        )


def _finish(proc: subprocess.Popen, feeder: Feeder, out: Path, timeout: float) -> StreamRun:
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        feeder.join(timeout=10)
    err = Path(f"{out}.stderr").read_text("utf-8", "replace")
    return StreamRun(proc.returncode, err, out, feeder.error)


def run_stream_pipe(ts: Path, out: Path, *extra: str, timeout: float = 40.0) -> StreamRun:
    """``vsr stream - - EXTRA`` fed ``ts`` on stdin at real-time pace; stdout saved to ``out``."""
    proc = _vsr(["-", "-", *extra], subprocess.PIPE, out)
    assert proc.stdin is not None
    feeder = Feeder(paced_chunks(ts), proc.stdin.write, proc.stdin.close)
    feeder.start()
    return _finish(proc, feeder, out, timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _connect(port: int, within_s: float = 20.0) -> socket.socket:
    """A connection to vsr's listener on ``port`` (retried while vsr starts up)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5.0)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def run_stream_tcp(ts: Path, out: Path, *extra: str, timeout: float = 40.0) -> StreamRun:
    """``vsr stream tcp://127.0.0.1:PORT?listen=1 - EXTRA``; the feeder connects and sends ``ts``."""
    port = free_port()
    proc = _vsr([f"tcp://127.0.0.1:{port}?listen=1", "-", *extra], None, out)
    try:
        conn = _connect(port)
    except OSError:
        proc.kill()
        proc.wait(timeout=10)
        raise

    def close() -> None:
        conn.shutdown(socket.SHUT_WR)
        conn.close()

    feeder = Feeder(paced_chunks(ts), conn.sendall, close)
    feeder.start()
    return _finish(proc, feeder, out, timeout)


def assert_live_audio(sent_ts: Path, output: Path) -> None:
    """The output's audio is the audio that was sent: every packet a sent one (same bytes, in
    order, none missing up to the last), as far from the output's first video frame as it was
    from that frame (found by its barcode) when sent, to one output tick; same durations.

    A live stream is joined late: the audio that arrived before the first frame vsr kept (in the
    order it was sent) may be missing, and only that."""
    sent_frames = {i: t for t, i in video_frames(sent_ts)}
    (v_out, first), *_ = video_frames(output)
    v_sent = sent_frames[first]
    sent, got = timed_packets(sent_ts, "audio"), timed_packets(output, "audio")
    skipped = len(sent) - len(got)
    allowed = sent_before(sent_ts, first)
    assert 0 <= skipped <= allowed, f"{len(got)} of {len(sent)} audio packets out (may skip {allowed})"
    want = sent[skipped:]
    assert [p.data for p in got] == [p.data for p in want], "the audio is not what was sent, in order"
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        moved = (g.pts - v_out) - (w.pts - v_sent)
        assert abs(moved) <= g.tick, f"audio packet {skipped + k} moved {moved} s against the video"
        assert abs(g.duration - w.duration) <= g.tick, f"audio packet {skipped + k}: duration"
