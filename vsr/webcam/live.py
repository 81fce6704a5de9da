"""``vsr webcam`` as a composition: camera source + live policy + outputs sink, over one ladder.

::

    camera / file -> CameraFrames --engine (Live: budget, degrade, drop oldest)--> OutputsSink
                                                      files, stream outputs, virtual camera, preview

The capture thread never waits for the upscaler (a camera that waits drops frames anyway, and
stale frames would add latency); outputs are written on the calling thread (a preview window must
live on the main thread). Never imports torch.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from ..build_ladder import build_ladder
from ..engine import BudgetController, Frame, Live, LiveStats, NoVideoFrame, run
from ..errors import ReceiverGone
from ..ladder import Ladder
from ..video.remux import copy_packet
from .capture import Captured, open_source
from .config import WebcamConfig
from .outputs import PreviewOutput, open_outputs

__all__ = ["CameraFrames", "OutputsSink", "run_webcam", "side_by_side", "webcam_ladder"]

StatusFn = Callable[[str], None]


def side_by_side(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(H, W, 3) input and its (sH, sW, 3) upscale -> (sH, 2sW, 3): bicubic left, vsr right."""
    h, w = high.shape[:2]
    left = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.concatenate([left, high], axis=1)


class CameraFrames:
    """The engine's source over a capture source: frames with pts in milliseconds of the capture
    clock; ends after ``duration_s`` of frames (saying so in ``ended``)."""

    def __init__(self, capture, duration_s: float | None) -> None:  # capture: webcam.capture source
        self.capture, self.duration_s = capture, duration_s
        self.ended = ""

    def items(self, stop: threading.Event) -> Iterator[Frame | object]:
        for cap in self.capture.items(stop):
            if not isinstance(cap, Captured):  # an audio packet of a file input: passed through
                yield cap
                continue
            yield Frame(cap.image, round(cap.t * 1000.0), arrival=cap.arrival)
            if self.duration_s is not None and cap.t >= self.duration_s:
                self.ended = f"duration {self.duration_s:g} s reached"
                return


class OutputsSink:
    """The engine's sink over every output ``cfg`` asks for (opened at the first frame's size)."""

    def __init__(self, cfg: WebcamConfig, stats_extra: dict, audio: list | None = None) -> None:
        self.cfg, self.extra, self.audio = cfg, stats_extra, audio or []
        self.stack = contextlib.ExitStack()
        self.outs: list = []

    def open(self, width: int, height: int) -> None:
        out_w = width * (2 if self.cfg.side_by_side else 1)
        self.outs = open_outputs(self.cfg, self.stack, out_w, height, self.cfg.fps or 30.0, self.audio)
        self.extra.update(output_size=[out_w, height])

    def write(self, frame: Frame) -> bool:
        image = frame.image
        if self.cfg.side_by_side and frame.low is not None:
            image = side_by_side(frame.low, image)
        for out in self.outs:
            out.write(image, (frame.pts or 0) / 1000.0)
        if any(isinstance(o, PreviewOutput) and o.closed for o in self.outs):
            raise ReceiverGone("the preview window was closed")
        return True

    def mux(self, packet: object) -> None:
        """An audio packet of a file input, to every output (each muxer takes its own copy)."""
        for i, out in enumerate(self.outs):
            out.mux(packet if i == len(self.outs) - 1 else copy_packet(packet))

    def close(self, failed: bool) -> None:
        self.stack.close()


def webcam_ladder(cfg: WebcamConfig) -> Ladder:
    """``cfg.model`` down its catalogue fallbacks, or face mode (:func:`vsr.build_ladder.build_ladder`)."""
    return build_ladder(cfg.models, face=cfg.face, live=True)


def run_webcam(
    cfg: WebcamConfig,
    ladder: Ladder | None = None,
    *,
    stop: threading.Event | None = None,
    on_status: StatusFn | None = None,
    status_every_s: float = 1.0,
) -> LiveStats:
    """Capture, enhance and output until the input ends, ``duration_s`` passes, the preview window
    is closed or ``stop`` is set. ``ladder``: the rungs, best first (default: built from ``cfg``
    and closed here; a given one is not closed). Returns the run's statistics; raises
    :class:`~vsr.errors.VsrError` subclasses for inputs/outputs that cannot be opened."""
    stop = stop or threading.Event()
    own = ladder is None
    ladder = ladder or webcam_ladder(cfg)
    extra: dict = {}
    try:
        with open_source(cfg) as capture:
            frames = CameraFrames(capture, cfg.duration_s)
            extra["source"] = capture.label
            policy = Live(cfg.latency_budget_ms, queue_frames=2)
            try:
                stats = run(
                    frames,
                    ladder,
                    OutputsSink(cfg, extra, capture.audio),
                    policy,
                    stop=stop,
                    on_status=on_status,
                    status_every_s=status_every_s,
                )
            except NoVideoFrame:
                stats = LiveStats(BudgetController(ladder.names, cfg.latency_budget_ms / 1000.0))
                stats.ended = "the input gave no frame"
                return stats
    finally:
        if own:
            ladder.close()
    assert isinstance(stats, LiveStats)
    if "output_size" in extra:
        w, h = extra["output_size"]
        extra["input_size"] = [w // ladder.scale // (2 if cfg.side_by_side else 1), h // ladder.scale]
    stats.extra.update(extra)
    if frames.ended and stats.ended in ("the input ended", "stopped"):
        stats.ended = frames.ended
    stats.seconds = stats.seconds or time.perf_counter() - stats.started
    return stats
