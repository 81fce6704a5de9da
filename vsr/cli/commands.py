"""The ``vsr`` sub-commands: parsed arguments -> config objects -> one library call -> printed result."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from ..config import ClusterConfig, DecodeConfig, EncodeConfig, FaceConfig, ModelConfig, PipelineConfig
from ..errors import ConfigError, InputError
from ..jobs.batch import template_path
from ..models.catalogue import get_spec
from ..models.choose import choose_model_for_scale
from ..pipeline import upscale_file
from ..signals import stop_on_signals
from ..stats import Progress, RunStats
from ..video.size import OutputSize
from .batch import is_batch, run_batch

log = logging.getLogger("vsr")


def _configs(args: argparse.Namespace) -> tuple[DecodeConfig, EncodeConfig, ModelConfig, PipelineConfig]:
    dec = DecodeConfig(args.input, format=args.input_format, deinterlace=not args.no_deinterlace)
    enc = EncodeConfig(
        args.output,
        format=args.format,
        codec=args.codec,
        crf=args.crf,
        preset=args.preset,
        pix_fmt=args.pix_fmt,
        overwrite=args.overwrite,
        size=OutputSize(args.scale, args.width, args.height),
    )
    # no --model: the default, or the catalogue's model of that native scale when one is listed
    name = args.model or choose_model_for_scale(args.scale or 4, ModelConfig.model)
    model = ModelConfig(name, args.backend, args.device, args.tile, args.threads, args.compile)
    pipe = PipelineConfig(
        batch=args.batch,
        progress=not args.quiet,
        segment_s=args.segment_seconds,  # off a TTY: a line per 5 s
    )
    return dec, enc, model, pipe


def upscale(args: argparse.Namespace) -> int:
    if is_batch(args.input, args.output):
        template = {"input": args.input[0], "output": template_path(args.format)}
        _, enc, model, pipe = _configs(argparse.Namespace(**{**vars(args), **template}))
        code, result = run_batch(args, enc, model, pipe, _face_config(args), _cluster_config(args))
        if args.json_stats:
            _write_json(result.to_dict(), args.json_stats)
        return code
    args = argparse.Namespace(**{**vars(args), "input": args.input[0]})
    dec, enc, model, pipe = _configs(args)
    if enc.is_pipe and sys.stdout.isatty():
        raise ConfigError(
            "refusing to write video to a terminal; redirect stdout (-o - > FILE) or use -o FILE"
        )
    progress = Progress(0, enabled=pipe.progress)
    with stop_on_signals() as stop:
        try:
            stats = upscale_file(
                dec,
                enc,
                model,
                pipe,
                stop=stop,
                face=_face_config(args),
                on_status=progress.draw,
                resume=not args.no_resume,
                cluster=_cluster_config(args),
            )
        finally:
            progress.close()
    _report(stats, enc.path, args.json_stats)
    if stats.interrupted:
        _say_interrupted(stats, enc.path)
        return 128 + (stop.signum or signal.SIGINT)
    return 0


def _cluster_config(args: argparse.Namespace) -> ClusterConfig | None:
    """``--workers`` / ``--cluster`` as a :class:`ClusterConfig` (None: one process)."""
    if args.workers is None and args.cluster is None:
        return None
    if args.face:
        raise ConfigError("--face does not run on --workers or --cluster yet; run it in one process")
    return ClusterConfig(args.workers, args.cluster)


def _say_interrupted(stats: RunStats, output: str) -> None:
    job = stats.extra.get("job")
    if job is not None:
        log.warning(
            "interrupted: %d of %d segments done (%s); run the same command again to resume",
            job["segments_done"],
            job["segments"],
            job["work_dir"],
        )
    elif stats.frames_out:
        log.warning("interrupted after %d frames; %s holds them and is playable", stats.frames_out, output)
    else:
        log.warning("interrupted before any frame was encoded; nothing written")


def _report(stats: RunStats, output: str, json_path: str | None) -> None:
    where = "stdout" if output == "-" else output
    log.info(
        "wrote %s (%s): %d frames in %.2f s (%.2f fps) with %s%s",
        where,
        _made_by(stats.extra),
        stats.frames_out,
        stats.seconds,
        stats.fps,
        stats.extra.get("backend", "?"),
        _faces_found(stats) + _on_workers(stats),
    )
    if json_path:
        _write_json(stats.to_dict(), json_path)


def _faces_found(stats: RunStats) -> str:
    """``; faces in 118 of 120 frames`` in face mode, else nothing."""
    found = stats.extra.get("faces_detected_frames")
    return "" if found is None else f"; faces in {found} of {stats.frames_out} frames"


def _on_workers(stats: RunStats) -> str:
    """``; on 2 workers (ready in 5.1 s)`` for a run on workers, else nothing."""
    cluster = stats.extra.get("cluster")
    if cluster is None:
        return ""
    n = cluster["workers"]
    return f"; on {n} worker{'s' if n != 1 else ''} (ready in {cluster['start_s']:.1f} s)"


def _made_by(extra: dict[str, Any]) -> str:
    """``640x360 by fast, area-resized from 1280x720`` (or ``1280x720 by fast``): the size and
    what produced it, for the summary line."""
    text = f"{'x'.join(map(str, extra.get('size') or ['?']))} by {extra.get('model', '?')}"
    resize = extra.get("resize")
    if resize:
        text += f", {resize['filter']}-resized from {resize['from'][0]}x{resize['from'][1]}"
    return text


def stream(args: argparse.Namespace) -> int:
    from ..stream import StreamConfig, run_stream

    cfg = StreamConfig(
        args.input,
        args.output,
        model=args.model,
        backend=args.backend,
        format=args.format,
        input_format=args.input_format,
        latency_budget_ms=args.latency_budget,
        reconnect=args.reconnect,
        reconnect_for_s=args.reconnect_for,
        stall_timeout_s=args.stall_timeout,
        preset=args.preset,
        crf=args.crf,
        threads=args.threads,
    )
    if cfg.sink == "pipe" and sys.stdout.isatty():
        raise ConfigError("refusing to write video to a terminal; redirect stdout or stream to a URL")
    live = not args.quiet and sys.stderr.isatty()
    status = (lambda line: sys.stderr.write("\r" + line + " ")) if live else None
    with stop_on_signals() as stop:
        stats = run_stream(cfg, stop=stop, on_status=status, face=_face_config(args))
    _end_live("stream", stats, live, args.json_stats)
    if stats.failed:
        raise InputError(f"stream input lost: {stats.ended}")
    return 128 + stop.signum if stop.signum else 0


def _face_config(args: argparse.Namespace) -> FaceConfig | None:
    if not args.face:
        return None
    return FaceConfig(
        args.face_model, args.background_model, args.face_detector, args.face_every, args.face_margin
    )


def webcam(args: argparse.Namespace) -> int:
    from ..webcam import WebcamConfig, parse_size, run_webcam

    cfg = WebcamConfig(
        device=args.device,
        input=args.input,
        size=parse_size(args.size) if args.size else None,
        fps=args.fps,
        model=args.model,
        backend=args.backend,
        threads=args.threads,
        face=_face_config(args),
        outputs=tuple(args.output),
        preview=args.preview,
        side_by_side=args.side_by_side,
        latency_budget_ms=args.latency_budget,
        duration_s=args.duration,
        overwrite=args.overwrite,
    )
    live = not args.quiet and sys.stderr.isatty()
    status = (lambda line: sys.stderr.write("\r" + line + " ")) if live else None
    with stop_on_signals() as stop:
        stats = run_webcam(cfg, stop=stop, on_status=status)
    _end_live("webcam", stats, live, args.json_stats)
    return 128 + stop.signum if stop.signum else 0


def webrtc(args: argparse.Namespace) -> int:
    from ..webrtc import WebrtcConfig, serve

    cfg = WebrtcConfig(
        host=args.host,
        port=args.port,
        allow_remote=args.allow_remote,
        model=args.model,
        backend=args.backend,
        threads=args.threads,
        face=_face_config(args),
        latency_budget_ms=args.latency_budget,
        max_bitrate_kbps=args.max_bitrate,
        max_peers=args.max_peers,
    )
    serve(cfg, on_ready=lambda url: log.info("open %s in a browser (Ctrl-C stops)", url))
    return 0


def _end_live(what: str, stats: Any, live: bool, json_path: str | None) -> None:
    """The closing line of a live run (stats: its LiveStats) and its --json-stats file."""
    if live:
        sys.stderr.write("\n")
    log.info(
        "%s ended (%s): %d frames in, %d out, %d degraded, %d dropped; added latency p95 %s ms",
        what,
        stats.ended,
        stats.frames_in,
        stats.frames_out,
        stats.controller.degraded,
        stats.dropped,
        stats.latency.percentiles()["p95_ms"],
    )
    if json_path:
        _write_json(stats.to_dict(), json_path)


def _write_json(data: dict, path: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
    except OSError as exc:
        log.warning("cannot write stats to %s: %s", path, exc.strerror or exc)


def eval(args: argparse.Namespace) -> int:
    if args.video:
        return _eval_video(args)
    from ..evaluate import evaluate, format_table

    if not args.model or len(args.model) != 1:
        raise ConfigError("eval --data scores one model: give --model M")
    ModelConfig(args.model[0], args.backend)  # validates the names
    result = evaluate(args.model[0], Path(args.data), args.backend)
    print(format_table(result))
    _dump_result(result, args.json)
    return 0


def _eval_video(args: argparse.Namespace) -> int:
    from ..bench import parse_size
    from ..quality import VideoEvalConfig, evaluate_video, format_video_table

    scale = args.scale or (get_spec(args.model[0]).scale if args.model else 4)
    models = tuple(args.model or (("fast", "fast-stream") if scale == 4 else ("fast-x2",)))
    cfg = VideoEvalConfig(
        tuple(Path(c) for c in args.video),
        size=parse_size(args.size),
        kbps=tuple(args.kbps),
        models=models,
        scale=scale,
        seconds=args.seconds,
        backend=args.backend,
        images=Path(args.images) if args.images else None,
        vmaf=not args.no_vmaf,
    )
    result = evaluate_video(cfg)
    print(format_video_table(result))
    _dump_result(result, args.json)
    return 0


def _dump_result(result: dict[str, Any], path: str | None) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, default=str)


def bench(args: argparse.Namespace) -> int:
    from ..bench import BenchConfig, format_report, parse_size, plot_report, run_bench, write_json

    for name in args.model:
        ModelConfig(name)  # validates the names before anything runs
    for name in args.backend:
        ModelConfig(backend=name)
    cfg = BenchConfig(
        models=tuple(args.model),
        backends=tuple(args.backend),
        sizes=tuple(parse_size(s) for s in args.size),
        frames=args.frames,
        warmup=args.warmup,
        batch=args.batch,
        end_to_end=not args.no_e2e,
        input=Path(args.input) if args.input else None,
        preset=args.preset,
        random_weights=args.random_weights,
        compile=args.compile,
    )
    report = run_bench(cfg)
    print(format_report(report))
    if args.json:
        write_json(report, Path(args.json))
    if args.plot:
        plot_report(report, Path(args.plot))
    return 0


def engine_build(args: argparse.Namespace) -> int:
    from ..trt import build_engine

    path = build_engine(args.model, args.profile, fp16=not args.fp32, report=log.info)
    print(path)
    return 0


def engine_list(args: argparse.Namespace) -> int:
    from ..trt import format_engine_list

    print(format_engine_list())
    return 0
