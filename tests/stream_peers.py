"""The two ends of a live stream for tests/test_stream.py, run as subprocesses.

``python tests/stream_peers.py send URL --seconds S`` writes a small moving-pattern MPEG-TS (H.264
+ AAC; ``--clip FILE``: that clip's frames, looped) to URL at real-time pace (retrying the
connection for a few seconds); ``python
tests/stream_peers.py recv URL --json FILE`` reads a stream until it ends (or stalls), then writes
what it saw as JSON: video size, frames, whether pts increased, audio packets.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from fractions import Fraction

import av
import numpy as np


def pattern(i: int, h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8 RGB frame i: moving gradients."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 4 + i * 9) % 256, (y * 5 + i * 3) % 256, ((x + y) * 3 + i * 17) % 256], -1).astype(
        np.uint8
    )


def _open_out(
    url: str, fps: int, width: int, height: int, audio: bool, retry_s: float
) -> tuple[av.container.OutputContainer, av.video.stream.VideoStream, av.audio.stream.AudioStream | None]:
    """The sender's container with its streams, header written (retrying the connection)."""
    deadline = time.monotonic() + retry_s
    while True:
        out = av.open(url, "w", format="mpegts", options={"flush_packets": "1"})
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(fps)}
        a = out.add_stream("aac", rate=48000, layout="mono") if audio else None
        try:
            out.start_encoding()
            return out, v, a
        except (av.error.FFmpegError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def clip_frames(path: str, width: int, height: int) -> list[np.ndarray]:
    """Every frame of the clip at ``path`` as (height, width, 3) uint8 RGB (played in a loop)."""
    import cv2

    with av.open(path) as c:
        return [
            cv2.resize(f.to_ndarray(format="rgb24"), (width, height), interpolation=cv2.INTER_AREA)
            for f in c.decode(video=0)
        ]


def send(
    url: str, seconds: float, fps: int, width: int, height: int, audio: bool, clip: str | None = None
) -> int:
    """Write ``seconds`` of video (and audio) to ``url`` at real-time pace; returns frames sent.

    The video is a moving pattern, or the frames of ``clip`` (scaled, looped) when given.
    """
    frames = clip_frames(clip, width, height) if clip else None
    out, v, a = _open_out("pipe:1" if url == "-" else url, fps, width, height, audio, retry_s=10.0)
    sent, samples, t0 = 0, 0, time.monotonic()
    for i in range(int(seconds * fps)):
        time.sleep(max(0.0, t0 + i / fps - time.monotonic()))
        img = frames[i % len(frames)] if frames else pattern(i, height, width)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = i, Fraction(1, fps)
        out.mux(v.encode(frame))
        sent += 1
        while a is not None and samples < (i + 1) * 48000 // fps:
            tone = (0.2 * np.sin(2 * np.pi * 440 * (np.arange(1024) + samples) / 48000)).astype(np.float32)
            af = av.AudioFrame.from_ndarray(tone[None], format="flt", layout="mono")
            af.sample_rate, af.pts, af.time_base = 48000, samples, Fraction(1, 48000)
            out.mux(a.encode(af))
            samples += 1024
    out.mux(v.encode(None))
    out.close()
    return sent


def recv(url: str, open_s: float, read_s: float) -> dict[str, object]:
    """Read ``url`` until it ends or stalls for ``read_s``; what the stream held."""
    src = "pipe:0" if url == "-" else url
    pts: list[int] = []
    result: dict[str, object] = {"frames": 0, "audio_packets": 0, "monotonic": True, "size": None, "pts": pts}
    audio = 0
    with av.open(src, format="mpegts" if url == "-" else None, timeout=(open_s, read_s)) as c:
        video = c.streams.video[0]
        try:
            for packet in c.demux(video, *c.streams.audio):
                if packet.stream.type == "audio":
                    audio += packet.size > 0
                    continue
                for frame in packet.decode():
                    result["size"] = [frame.width, frame.height]
                    pts.append(frame.pts)
        except (av.error.FFmpegError, OSError) as exc:
            result["ended"] = str(exc)
            pts.extend(f.pts for f in video.decode(None))  # a stall ends the demux without a flush
    result["frames"], result["audio_packets"] = len(pts), audio
    result["monotonic"] = all(a < b for a, b in itertools.pairwise(pts))
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=("send", "recv"))
    p.add_argument("url")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--size", default="96x64")
    p.add_argument("--no-audio", action="store_true")
    p.add_argument("--clip", default=None, help="send: loop this clip's frames instead of the pattern")
    p.add_argument("--json", default=None)
    p.add_argument("--open-timeout", type=float, default=20.0)
    p.add_argument("--read-timeout", type=float, default=3.0)
    args = p.parse_args(argv)
    if args.role == "send":
        w, h = (int(s) for s in args.size.split("x"))
        try:
            sent = send(args.url, args.seconds, args.fps, w, h, not args.no_audio, args.clip)
        except (BrokenPipeError, av.error.FFmpegError, OSError) as exc:
            print(f"sender: {exc}", file=sys.stderr)
            return 1
        print(f"sent {sent}", file=sys.stderr)
        return 0
    result = recv(args.url, args.open_timeout, args.read_timeout)
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
