"""`vsr stream`: real sockets on 127.0.0.1, a PyAV sender at real-time pace, a PyAV receiver.

Every subprocess has a timeout and is killed in a ``finally``; streams are 2-3 s of 96x64 video
with AAC audio (tests/stream_peers.py), so the file stays well under a minute on 2 busy cores.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import pytest

from vsr.backends.base import ModelInfo
from vsr.backends.bicubic import BicubicBackend
from vsr.errors import ConfigError
from vsr.ladder import Ladder
from vsr.models.catalogue import fallback_chain
from vsr.stream import DROP, BudgetController, StreamConfig, run_stream, sink_kind

PEERS = str(Path(__file__).with_name("stream_peers.py"))
FPS = 25


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def spawn(args: list[str], **kw: object) -> Iterator[subprocess.Popen]:
    """A subprocess that is always killed (and reaped) at the end of the block."""
    proc = subprocess.Popen(args, **kw)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def sender(url: str, seconds: float = 2.0, **kw: object) -> list[str]:
    return [sys.executable, PEERS, "send", url, "--seconds", str(seconds), "--fps", str(FPS)]


def receiver(url: str, out: Path, read_timeout: float = 3.0) -> list[str]:
    return [sys.executable, PEERS, "recv", url, "--json", str(out), "--read-timeout", str(read_timeout)]


def vsr_stream(inp: str, out: str, stats: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vsr",
        "stream",
        inp,
        out,
        "--model",
        "bicubic",
        "--json-stats",
        str(stats),
        *extra,
    ]


def wait(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    return proc.wait(timeout=timeout)


def check_received(got: dict, stats: dict, sent: int, exact: bool = True) -> None:
    """Resolution x4, frames = sent minus what vsr counted, increasing pts, audio present."""
    assert got["size"] == [96 * 4, 64 * 4]
    assert got["monotonic"]
    assert got["audio_packets"] > 0
    expected = sent - stats["frames_dropped"] - stats["skipped_at_join"]
    assert stats["frames_out"] == stats["frames_in"] - stats["frames_dropped"]
    if exact:
        assert got["frames"] == expected, (got, stats)
    else:  # udp may lose datagrams on a busy machine
        assert 0.8 * expected <= got["frames"] <= expected, (got, stats)


# -- the budget controller (pure logic) ---------------------------------------------------------


def _controller(**kw: object) -> BudgetController:
    c = BudgetController(["fast", "bicubic"], 0.150, upgrade_after=5, **kw)  # type: ignore[arg-type]
    c.observe_infer(0, 0.030)
    c.observe_infer(1, 0.001)
    c.observe_encode(0.005)
    return c


def test_controller_keeps_best_tier_within_budget() -> None:
    c = _controller()
    assert [c.choose(0.010, 0) for _ in range(10)] == [0] * 10
    assert c.degraded == 0 and c.dropped == 0


def test_controller_degrades_then_drops_oldest_only_when_bicubic_cannot_fit() -> None:
    c = _controller()
    assert c.choose(0.130, 2) == 1  # fast would end at 165 ms: bicubic
    assert c.choose(0.200, 2) == DROP  # even bicubic is late and frames wait behind it
    assert c.choose(0.200, 0) == 1  # nothing behind it: dropping would not help
    assert (c.degraded, c.dropped) == (2, 1)


def test_controller_hysteresis_upgrades_only_after_a_run_of_good_frames() -> None:
    c = _controller()
    for t in np.arange(0.0, 1.0, 0.04):
        c.observe_arrival(float(t))
    assert c.choose(0.130, 0) == 1
    picks = [c.choose(0.010, 0) for _ in range(8)]
    assert picks[:4] == [1, 1, 1, 1]  # stays degraded although fast would fit
    assert picks[-1] == 0  # back up after upgrade_after good frames
    c.infer[0].value = 0.5  # fast got slow: degrade at once
    assert c.choose(0.010, 0) == 1
    c.infer[0].value = 0.05  # fits the budget but is slower than the 40 ms frame interval
    assert [c.choose(0.0, 0) for _ in range(10)] == [1] * 10  # not sustainable: no upgrade


def test_controller_probes_in_warm_bursts_and_upgrades_to_a_tier_that_keeps_up() -> None:
    """A tier that is slow only when cold (first frame after a pause) still gets back in."""
    c = BudgetController(["fast", "bicubic"], budget_s=0.150, probe_every=5, probe_frames=3)
    for t in np.arange(0.0, 1.0, 1 / 30):
        c.observe_arrival(float(t))  # a 33 ms frame interval
    c.infer[0].value, c.infer[1].value = 0.041, 0.001  # fast as first measured: cold, too slow to keep up
    c.level = 1
    picks = []
    for _ in range(60):
        tier = c.choose(0.005, 0)
        picks.append(tier)
        # the first frame of each probe burst is cold (45 ms), the next ones warm (25 ms)
        c.observe_infer(tier, 0.001 if tier == 1 else (0.045 if picks[-2:-1] != [0] else 0.025))
    assert picks[4:7] == [0, 0, 0]  # one probe: a burst of three frames
    assert c.infer[0].get() < 0.033  # the cold frames were not folded in
    assert picks[-10:] == [0] * 10  # upgraded: fast keeps up with the input when warm
    assert c.choose(0.005, 2) == 0  # at level 0 nothing probes


# -- configuration ------------------------------------------------------------------------------


def test_config_sink_kinds_and_fallback_chain(tmp_path: Path) -> None:
    assert sink_kind("-") == "pipe"
    assert sink_kind("udp://127.0.0.1:5000") == "mpegts"
    assert sink_kind("rtmp://host/live/key") == "flv"
    assert sink_kind(str(tmp_path / "hls")) == "hls"
    assert fallback_chain("compact") == ("compact", "fast-plus", "fast", "fast-lite", "fast-tiny", "bicubic")
    assert fallback_chain("fast-stream") == ("fast-stream", "fast-lite-stream", "fast-tiny-stream", "bicubic")
    assert fallback_chain("fast-lite-stream") == ("fast-lite-stream", "fast-tiny-stream", "bicubic")
    assert fallback_chain("bicubic") == ("bicubic",)
    with pytest.raises(ConfigError, match="latency budget"):
        StreamConfig("-", "-", latency_budget_ms=0)
    with pytest.raises(ConfigError, match="cannot stream to 'http://x'"):
        StreamConfig("-", "http://x")


def test_cli_bad_output_is_one_line() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "vsr", "stream", "-", "ftp://x/y"], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "vsr: error: cannot stream to 'ftp://x/y': use -, tcp://, udp://, srt://, rtmp:// or a directory (HLS)"
    ]


# -- real streams -------------------------------------------------------------------------------


def test_stdin_to_stdout(tmp_path: Path) -> None:
    stats_file, got_file = tmp_path / "stats.json", tmp_path / "got.json"
    with (
        spawn(sender("-", 2.0), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as send,
        spawn(vsr_stream("-", "-", stats_file), stdin=send.stdout, stdout=subprocess.PIPE) as vsr,
        spawn(receiver("-", got_file), stdin=vsr.stdout) as recv,
    ):
        send.stdout.close()  # type: ignore[union-attr]
        vsr.stdout.close()  # type: ignore[union-attr]
        assert wait(vsr) == 0
        assert wait(recv) == 0
    stats = json.loads(stats_file.read_text())
    check_received(json.loads(got_file.read_text()), stats, 2 * FPS)
    assert stats["ended"] == "the input ended"
    assert stats["added_latency"]["p95_ms"] < 150


def test_tcp_in_tcp_out(tmp_path: Path) -> None:
    p_in, p_out = free_port(), free_port()
    stats_file, got_file = tmp_path / "stats.json", tmp_path / "got.json"
    with (
        spawn(receiver(f"tcp://127.0.0.1:{p_out}?listen=1", got_file)) as recv,
        spawn(vsr_stream(f"tcp://127.0.0.1:{p_in}?listen=1", f"tcp://127.0.0.1:{p_out}", stats_file)) as vsr,
        spawn(sender(f"tcp://127.0.0.1:{p_in}", 2.0), stderr=subprocess.DEVNULL) as send,
    ):
        assert wait(send) == 0
        assert wait(vsr) == 0
        assert wait(recv) == 0
    check_received(json.loads(got_file.read_text()), json.loads(stats_file.read_text()), 2 * FPS)


def test_udp_in_udp_out(tmp_path: Path) -> None:
    p_in, p_out = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    stats_file, got_file = tmp_path / "stats.json", tmp_path / "got.json"
    recv_url = f"udp://127.0.0.1:{p_out}?fifo_size=1000000&overrun_nonfatal=1"
    vsr_args = vsr_stream(
        f"udp://127.0.0.1:{p_in}", f"udp://127.0.0.1:{p_out}", stats_file, "--stall-timeout", "1.5"
    )
    with spawn(receiver(recv_url, got_file, read_timeout=2.5)) as recv, spawn(vsr_args) as vsr:
        time.sleep(1.0)  # both are listening (udp has no handshake)
        with spawn(sender(f"udp://127.0.0.1:{p_in}?pkt_size=1316", 2.5), stderr=subprocess.DEVNULL) as send:
            assert wait(send) == 0
        assert wait(vsr) == 0  # the input stalls: vsr finishes cleanly
        assert wait(recv) == 0
    stats = json.loads(stats_file.read_text())
    assert "stalled" in stats["ended"]
    got = json.loads(got_file.read_text())
    check_received(got, stats, int(2.5 * FPS), exact=False)


def test_hls_directory_reads_back(tmp_path: Path) -> None:
    stats_file, hls = tmp_path / "stats.json", tmp_path / "hls"
    with (
        spawn(sender("-", 2.0), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as send,
        spawn(vsr_stream("-", str(hls), stats_file), stdin=send.stdout) as vsr,
    ):
        send.stdout.close()  # type: ignore[union-attr]
        assert wait(vsr) == 0
    playlist = (hls / "index.m3u8").read_text()
    assert "#EXT-X-ENDLIST" in playlist and ".ts" in playlist
    with av.open(str(hls / "index.m3u8")) as c:
        assert c.streams.audio
        frames = [f for f in c.decode(video=0)]
    stats = json.loads(stats_file.read_text())
    assert (frames[0].width, frames[0].height) == (384, 256)
    assert len(frames) == stats["frames_out"] > 0
    pts = [f.pts for f in frames]
    assert pts == sorted(set(pts))


def test_sender_killed_without_reconnect_finishes_cleanly(tmp_path: Path) -> None:
    p_in, p_out = free_port(), free_port()
    stats_file, got_file = tmp_path / "stats.json", tmp_path / "got.json"
    args = vsr_stream(f"tcp://127.0.0.1:{p_in}?listen=1", f"tcp://127.0.0.1:{p_out}", stats_file)
    with (
        spawn(receiver(f"tcp://127.0.0.1:{p_out}?listen=1", got_file)) as recv,
        spawn(args, stderr=subprocess.PIPE, text=True) as vsr,
        spawn(sender(f"tcp://127.0.0.1:{p_in}", 4.0), stderr=subprocess.DEVNULL) as send,
    ):
        time.sleep(2.5)
        send.kill()
        _, err = vsr.communicate(timeout=30)
        assert vsr.returncode == 0, err
        assert wait(recv) == 0
    assert "Traceback" not in err and "stream ended" in err
    stats, got = json.loads(stats_file.read_text()), json.loads(got_file.read_text())
    assert got["frames"] == stats["frames_out"] > 0 and got["monotonic"]


def test_sender_killed_then_back_reconnects(tmp_path: Path) -> None:
    p_in, p_out = free_port(), free_port()
    stats_file, got_file = tmp_path / "stats.json", tmp_path / "got.json"
    args = vsr_stream(
        f"tcp://127.0.0.1:{p_in}?listen=1",
        f"tcp://127.0.0.1:{p_out}",
        stats_file,
        "--reconnect",
        "--reconnect-for",
        "2",
    )
    with spawn(receiver(f"tcp://127.0.0.1:{p_out}?listen=1", got_file)) as recv, spawn(args) as vsr:
        with spawn(sender(f"tcp://127.0.0.1:{p_in}", 4.0), stderr=subprocess.DEVNULL) as first:
            time.sleep(2.5)
            first.kill()
        with spawn(sender(f"tcp://127.0.0.1:{p_in}", 2.0), stderr=subprocess.DEVNULL) as second:
            assert wait(second) == 0
        assert wait(vsr) == 3  # gave up reconnecting: the input was lost for good (an error exit)
        assert wait(recv) == 0
    stats, got = json.loads(stats_file.read_text()), json.loads(got_file.read_text())
    assert stats["reconnects"] == 1
    assert "gave up reconnecting" in stats["ended"]
    assert got["monotonic"] and got["audio_packets"] > 0
    assert got["frames"] == stats["frames_out"]
    assert stats["frames_in"] + stats["skipped_at_join"] >= 3 * FPS  # frames from both connections


def test_receiver_killed_exits_cleanly(tmp_path: Path) -> None:
    p_out = free_port()
    stats_file, got_file = tmp_path / "stats.json", tmp_path / "got.json"
    with (
        spawn(receiver(f"tcp://127.0.0.1:{p_out}?listen=1", got_file)) as recv,
        spawn(sender("-", 4.0), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as send,
        spawn(
            vsr_stream("-", f"tcp://127.0.0.1:{p_out}", stats_file),
            stdin=send.stdout,
            stderr=subprocess.PIPE,
            text=True,
        ) as vsr,
    ):
        send.stdout.close()  # type: ignore[union-attr]
        time.sleep(2.5)
        recv.kill()
        _, err = vsr.communicate(timeout=30)
    assert vsr.returncode == 0, err
    assert "Traceback" not in err
    assert "went away after" in err
    assert "went away" in json.loads(stats_file.read_text())["ended"]


def test_sigint_closes_both_ends(tmp_path: Path) -> None:
    stats_file, got_file = tmp_path / "stats.json", tmp_path / "got.json"
    with (
        spawn(sender("-", 4.0), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as send,
        spawn(
            vsr_stream("-", "-", stats_file),
            stdin=send.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ) as vsr,
        spawn(receiver("-", got_file), stdin=vsr.stdout) as recv,
    ):
        send.stdout.close()  # type: ignore[union-attr]
        vsr.stdout.close()  # type: ignore[union-attr]
        time.sleep(2.5)
        vsr.send_signal(signal.SIGINT)
        _, err = vsr.communicate(timeout=30)
        assert vsr.returncode == 130, err
        assert wait(recv) == 0
    assert b"Traceback" not in err
    stats, got = json.loads(stats_file.read_text()), json.loads(got_file.read_text())
    assert 0 < got["frames"] == stats["frames_out"] and got["monotonic"]


class SlowModel:
    """A deliberately slow 'model': bicubic plus ``seconds`` of sleep per call."""

    name = "slow (test)"

    def __init__(self, seconds: float) -> None:
        self.info = ModelInfo("slow", 4)
        self.seconds = seconds
        self._bicubic = BicubicBackend()

    def prepare(self, height: int, width: int, batch: int) -> None:
        return None

    def infer(self, frames: np.ndarray) -> np.ndarray:
        time.sleep(self.seconds)
        return self._bicubic.infer(frames)

    def close(self) -> None:
        return None


def test_overloaded_model_degrades_instead_of_lagging(tmp_path: Path) -> None:
    """A 60 ms model on a 25 fps input (40 ms per frame) cannot keep up: the controller must move
    to bicubic and keep the added latency within the budget, not build a backlog."""
    p_in, hls = free_port(), tmp_path / "hls"
    cfg = StreamConfig(f"tcp://127.0.0.1:{p_in}?listen=1", str(hls), latency_budget_ms=120.0)
    tiers = [("slow", SlowModel(0.06)), ("bicubic", BicubicBackend())]
    result: list[object] = []
    runner = threading.Thread(
        target=lambda: result.append(run_stream(cfg, Ladder(tiers, owned=False))), daemon=True
    )
    runner.start()
    with spawn(sender(f"tcp://127.0.0.1:{p_in}", 3.0), stderr=subprocess.DEVNULL) as send:
        assert wait(send) == 0
    runner.join(timeout=30)
    stats = result[0].to_dict()  # type: ignore[attr-defined]
    assert stats["frames_degraded"] > 0.5 * stats["frames_in"]
    assert stats["frames_out"] == stats["frames_in"] - stats["frames_dropped"]
    assert stats["frames_dropped"] <= 0.1 * stats["frames_in"]
    assert stats["added_latency"]["p95_ms"] <= 120.0 + 30.0  # within the budget, no growing backlog
    with av.open(str(hls / "index.m3u8")) as c:
        assert sum(1 for _ in c.decode(video=0)) == stats["frames_out"]


def test_cli_receiver_not_listening_is_one_line() -> None:
    sender_args = sender("-", 2.5)
    with spawn(sender_args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as send:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "vsr",
                "stream",
                "-",
                f"tcp://127.0.0.1:{free_port()}",
                "--model",
                "bicubic",
            ],
            stdin=send.stdout,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert r.returncode == 4, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("vsr: error: cannot open tcp://127.0.0.1:")
    assert "Traceback" not in r.stderr


_RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
_NGINX_CONF = """load_module {module};
daemon off; master_process off; worker_processes 1;
pid {dir}/nginx.pid; error_log {dir}/error.log info;
events {{ worker_connections 64; }}
rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; record off; }} }} }}
"""


@pytest.mark.skipif(
    shutil.which("nginx") is None or not _RTMP_MODULE.is_file(),
    reason="needs Debian's nginx and libnginx-mod-rtmp (apt-get install nginx libnginx-mod-rtmp)",
)
def test_rtmp_through_nginx(tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(module=_RTMP_MODULE, dir=tmp_path, port=port))
    url = f"rtmp://127.0.0.1:{port}/live/test"
    stats_file, got_file = tmp_path / "stats.json", tmp_path / "got.json"
    nginx = ["nginx", "-c", str(conf), "-p", str(tmp_path), "-e", str(tmp_path / "error.log")]
    with spawn(nginx, stderr=subprocess.DEVNULL):
        time.sleep(0.5)
        with (
            spawn(sender("-", 3.0), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as send,
            spawn(vsr_stream("-", url, stats_file), stdin=send.stdout) as vsr,
        ):
            send.stdout.close()  # type: ignore[union-attr]
            time.sleep(1.0)  # publishing
            with spawn(receiver(url, got_file, read_timeout=3.0)) as recv:
                assert wait(vsr) == 0
                assert wait(recv) == 0
    got = json.loads(got_file.read_text())
    assert got["size"] == [384, 256] and got["monotonic"] and got["audio_packets"] > 0
    assert 0 < got["frames"] <= json.loads(stats_file.read_text())["frames_out"]
