"""`vsr stream --face`: face-region mode on a live MPEG-TS stream (stdin -> stdout)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import av

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "face_320x180.mp4"


def _to_mpegts(src: Path, dst: Path) -> None:
    """Re-encode the sample as a live sender would (x264 zerolatency, a keyframe every second,
    MPEG-TS); audio packets are carried as they are."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mpegts") as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        opts = {"preset": "ultrafast", "tune": "zerolatency", "g": "30", "bf": "0"}
        vout = out.add_stream("libx264", rate=30, options=opts)
        vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
        aout = out.add_stream_from_template(ain)
        for packet in inp.demux(vin, ain):
            if packet.dts is None:
                continue
            if packet.stream is ain:
                packet.stream = aout
                out.mux(packet)
                continue
            for frame in packet.decode():
                out.mux(vout.encode(frame))
        out.mux(vout.encode(None))


def _feed_live(proc: subprocess.Popen, data: bytes, seconds: float) -> None:
    """Write ``data`` to the process's stdin at the pace of a live sender (``seconds`` in all)."""
    chunks = 40
    step = -(-len(data) // chunks)
    for i in range(chunks):
        proc.stdin.write(data[i * step : (i + 1) * step])  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        time.sleep(seconds / chunks)
    proc.stdin.close()  # type: ignore[union-attr]


def test_stream_face_mode_detects_faces_and_outputs_4x(tmp_path):
    ts, got, stats = tmp_path / "in.ts", tmp_path / "out.ts", tmp_path / "stats.json"
    _to_mpegts(SAMPLE, ts)
    cmd = [
        sys.executable,
        "-m",
        "vsr",
        "stream",
        "-",
        "-",
        "--face",
        "--face-model",
        "bicubic",
        "--json-stats",
        str(stats),
    ]
    data = ts.read_bytes()
    with open(got, "wb") as fout:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=fout, stderr=subprocess.PIPE)
        try:
            _feed_live(proc, data, seconds=4.0)
            proc.wait(timeout=60)
            err = proc.stderr.read()  # type: ignore[union-attr]
        finally:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
    data = json.loads(stats.read_text())
    assert data["frames_out"] >= 20
    face = data["face"]  # frames the face tier upscaled (the budget may send others to bicubic)
    assert face["frames"] >= 20 and data["faces_detected_frames"] >= 0.9 * face["frames"], face
    assert face["max_faces"] == 1
    with av.open(str(got)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(v))
    assert (frames[0].width, frames[0].height) == (1280, 720)
    assert len(frames) == data["frames_out"]


def test_face_tiers_share_tracks_and_counts_across_a_tier_switch():
    import numpy as np

    from vsr.build_ladder import build_ladder
    from vsr.config import FaceConfig, ModelConfig
    from vsr.engine import BudgetController

    with build_ladder(ModelConfig(), face=FaceConfig(face_model="fast-plus"), live=True) as ladder:
        tiers = ladder.rungs
        assert [name for name, _ in tiers] == [
            "face:fast-plus+bicubic",
            "face:fast+bicubic",
            "face:fast-lite+bicubic",
            "face:fast-tiny+bicubic",
            "bicubic",
        ]
        with av.open(str(SAMPLE)) as c:
            frames = [
                f.to_ndarray(format="rgb24") for _, f in zip(range(12), c.decode(video=0), strict=False)
            ]
        ups = [up for _, up in tiers[:-1]]
        # the live runs' warm-up probes every tier, then forgets the probes without unsharing
        controller = BudgetController([name for name, _ in tiers], budget_s=0.150)
        ladder.warm_up(180, 320, controller.observe_infer)
        assert all(up.stats is ups[0].stats for up in ups) and ups[0].stats.frames == 0
        assert ladder.face_stats is ups[0].stats
        ids, detected = [], []
        for i, frame in enumerate(frames):  # the controller switching tiers every other frame
            up = ups[(i // 2) % len(ups)]
            out = up(frame)
            assert out.shape == (720, 1280, 3) and out.dtype == np.uint8
            ids.append(up.last.ids)
            detected.append(up.last.detected)
        assert all(i == ids[0] and len(i) == 1 for i in ids), ids  # one face, one identity throughout
        # one detection cadence for the chain (every 3rd frame), whichever tier runs the frame
        assert detected == [i % 3 == 0 for i in range(len(frames))], detected
        summary = tiers[0][1].stats.summary()  # type: ignore[attr-defined]
        assert summary["frames"] == len(frames) and summary["tracks_started"] == 1
        assert summary["faces_detected_frames"] == len(frames)
        with build_ladder(ModelConfig(), face=FaceConfig(face_model="bicubic"), live=True) as only:
            assert only.names == ["face:bicubic+bicubic", "bicubic"]
