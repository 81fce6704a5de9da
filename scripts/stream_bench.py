"""Live-stream benchmark (issue #5): a real-time 320x180 MPEG-TS stream in, 1280x720 out.

A sender subprocess (tests/stream_peers.py) writes a 320x180 H.264 + AAC stream at real-time pace
over TCP; ``vsr.stream.run_stream`` upscales it 4x within the latency budget and streams MPEG-TS
over UDP to 127.0.0.1 (no receiver: its decoding would compete for the same 2 cores). Reported per
model: frames in/out, share at full model quality, degraded, dropped, added latency p50/p95/p99
(input arrival -> output write), per-stage p95, and the backlog (frame age at the start and end
of the run). Models without shipped weights run with random weights (speed does not depend on
the weights) and are marked so.

    python scripts/stream_bench.py --model fast compact --seconds 60 --json docs/stream_bench.json
    python scripts/stream_bench.py --face --model fast-plus --clip samples/face_320x180.mp4 --seconds 60
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

from vsr.alloc import keep_freed_buffers
from vsr.backends import create_backend
from vsr.backends.base import Backend
from vsr.ladder import Ladder
from vsr.models.catalogue import fallback_chain, get_spec, new_network
from vsr.stream import StreamConfig, run_stream

PEERS = Path(__file__).resolve().parents[1] / "tests" / "stream_peers.py"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(name: str, threads: int | None) -> tuple[tuple[str, Backend], bool]:
    """One tier's backend (shipped weights, else a random-init network) and whether it is random."""
    spec = get_spec(name)
    random = spec.arch != "bicubic" and not spec.has_weights
    net = new_network(spec.arch).eval() if random else None
    return (name, create_backend("auto", spec, threads=threads, net=net)), random


def face_ladder(model: str, threads: int | None) -> Ladder:
    """What ``vsr stream --face --face-model MODEL`` runs: face mode down MODEL's chain, then bicubic."""
    from vsr.build_ladder import build_ladder
    from vsr.config import FaceConfig, ModelConfig

    return build_ladder(ModelConfig(threads=threads), face=FaceConfig(face_model=model), live=True)


def run_one(model: str, args: argparse.Namespace) -> dict[str, object]:
    """Stream ``args.seconds`` through ``model``'s tier chain; the run's statistics."""
    built: list[tuple[tuple[str, Backend], bool]] = []
    if args.face:
        ladder = face_ladder(model, args.threads)
    else:
        built = [build(name, args.threads) for name in fallback_chain(model)]
        ladder = Ladder([t for t, _ in built])
    p_in, p_out = free_port(), free_port(socket.SOCK_DGRAM)
    cfg = StreamConfig(
        f"tcp://127.0.0.1:{p_in}?listen=1",
        f"udp://127.0.0.1:{p_out}",
        latency_budget_ms=args.budget,
        preset=args.preset,
        threads=args.threads,
    )
    result: list[object] = []
    runner = threading.Thread(target=lambda: result.append(run_stream(cfg, ladder)), daemon=True)
    runner.start()
    send = [sys.executable, str(PEERS), "send", f"tcp://127.0.0.1:{p_in}", "--seconds", str(args.seconds)]
    send += ["--fps", str(args.fps), "--size", "320x180"] + (["--clip", args.clip] if args.clip else [])
    subprocess.run(send, check=True, timeout=args.seconds + 60, stderr=subprocess.DEVNULL)
    runner.join(timeout=60)
    ladder.close()
    stats = result[0].to_dict()  # type: ignore[attr-defined]
    stats["random_weights"] = [] if args.face else [name for (name, _), random in built if random]
    return stats


def line(model: str, s: dict) -> str:
    lat, st = s["added_latency"], s["stages"]
    return (
        f"{model:<8} in {s['frames_in']:5d} out {s['frames_out']:5d}  full quality "
        f"{100 * (s['full_quality_ratio'] or 0):5.1f}%  degraded {s['frames_degraded']:4d}  "
        f"dropped {s['frames_dropped']:3d}  added latency p50/p95/p99 {lat['p50_ms']}/{lat['p95_ms']}/"
        f"{lat['p99_ms']} ms (p50 first/last 300 frames {lat['first_p50_ms']}/{lat['last_p50_ms']})  p95 infer {st['infer']['p95_ms']} encode {st['encode']['p95_ms']} ms  "
        f"tiers {s['controller']['frames_per_tier']}  random weights: {s['random_weights'] or 'none'}"
    )


def main() -> int:
    keep_freed_buffers()  # as `vsr` does
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", nargs="+", default=["fast", "compact"])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--budget", type=float, default=150.0, help="latency budget, ms")
    p.add_argument("--preset", default="ultrafast")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--face", action="store_true", help="each --model is the face model of face mode")
    p.add_argument("--clip", default=None, help="the sender loops this clip (default: a moving pattern)")
    args = p.parse_args()
    report = {}
    for model in args.model:
        report[model] = run_one(model, args)
        print(line(model, report[model]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": report}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
