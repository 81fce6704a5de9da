"""The ``vsr`` command: argparse -> config objects -> library calls. No logic of its own.

Sub-commands: ``upscale`` (a video, a file or a pipe), ``models`` (the catalogue), ``eval``
(Y-PSNR/SSIM on an image set), ``bench`` (frames/s), ``engine build|list`` (TensorRT engines),
``stream`` (a live stream in, an HD stream out), ``webcam`` (a camera or a clip played live) and
``webrtc`` (the browser plugin's server). Every failure is one line ``vsr: error: ...`` on stderr and a
non-zero exit (the :class:`~vsr.errors.VsrError` subclass's ``exit_code``; 130/143 after
SIGINT/SIGTERM). Logs and the progress bar go to stderr, so stdout can carry video (``-o -``).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import av

from . import __version__
from .alloc import keep_freed_buffers
from .backends import BACKEND_NAMES
from .config import DecodeConfig, EncodeConfig, FaceConfig, ModelConfig, PipelineConfig
from .errors import ConfigError, VsrError
from .models.catalogue import CATALOGUE
from .pipeline import upscale_file
from .signals import stop_on_signals
from .stats import Progress, RunStats

__all__ = ["build_parser", "main"]

log = logging.getLogger("vsr")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line, like every other vsr error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"vsr: error: {message} (see `{self.prog} --help`)\n")


def _add_upscale(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("upscale", help="upscale a video 4x", description="Upscale a video 4x.")
    p.add_argument("input", metavar="INPUT", help="input video file, or - for stdin")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="output file, or - for stdout")
    p.add_argument("--model", default="fast", help="catalogue model (see `vsr models`; default: fast)")
    p.add_argument("--backend", default="auto", help=f"one of {', '.join(BACKEND_NAMES)} (default: auto)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument(
        "--tile",
        type=int,
        default=0,
        metavar="N",
        help="infer in N-pixel tiles with overlap (0: whole frame)",
    )
    p.add_argument("--batch", type=int, default=1, metavar="N", help="frames per inference call (default: 1)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for inference")
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch on CUDA: compile the network (torch.compile, max-autotune): ~2x faster, slower start",
    )
    p.add_argument("--codec", default=None, help="video encoder (default: libx264; libvpx-vp9 for webm)")
    p.add_argument("--crf", type=int, default=None, help="constant-quality level (codec default if omitted)")
    p.add_argument("--preset", default=None, help="encoder speed preset (codec default if omitted)")
    p.add_argument("--pix-fmt", default="yuv420p", help="output pixel format (default: yuv420p)")
    p.add_argument("--format", default=None, help="output container, e.g. mp4, matroska, nut, mpegts")
    p.add_argument("--input-format", default=None, help="force the input demuxer (e.g. for stdin)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--json-stats", default=None, metavar="FILE", help="write run statistics as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings and errors only")
    _add_face_flags(p)
    p.set_defaults(func=_cmd_upscale)


def _add_face_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("face-region mode")
    g.add_argument(
        "--face", action="store_true", help="spend the face model on faces, a cheap model elsewhere"
    )
    g.add_argument("--face-model", default=None, help="model for faces (default: the best that fits)")
    g.add_argument("--background-model", default="bicubic", help="model for the rest (default: bicubic)")
    g.add_argument(
        "--face-detector", default="blazeface", help="blazeface, blazeface-full (small faces), haar"
    )
    g.add_argument(
        "--face-every", type=int, default=3, metavar="N", help="detect every N frames (default: 3)"
    )
    g.add_argument("--face-margin", type=float, default=0.3, help="crop margin x face size (default: 0.3)")


def build_parser() -> argparse.ArgumentParser:
    """The ``vsr`` argument parser with its sub-commands."""
    parser = _Parser(prog="vsr", description="Real-time 4x video super-resolution.")
    parser.add_argument("--version", action="version", version=f"vsr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_upscale(sub)
    m = sub.add_parser("models", help="list the models", description="List the model catalogue.")
    m.set_defaults(func=_cmd_models)
    e = sub.add_parser("eval", help="score a model on an image set", description="Y-PSNR / SSIM of a model.")
    e.add_argument("--model", required=True, help="catalogue model")
    e.add_argument("--backend", default="auto", help=f"one of {', '.join(BACKEND_NAMES)} (default: auto)")
    e.add_argument("--data", required=True, metavar="DIR", help="folder of HR images (or of image sets)")
    e.add_argument("--json", default=None, metavar="FILE", help="also write the result as JSON")
    e.set_defaults(func=_cmd_eval)
    _add_bench(sub)
    _add_engine(sub)
    _add_stream(sub)
    _add_webcam(sub)
    _add_webrtc(sub)
    return parser


def _add_bench(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser(
        "bench",
        help="measure frames/s",
        description="Model-only and end-to-end frames/s for each model x backend x size, with the "
        "bicubic and ffmpeg baselines measured in the same run.",
    )
    b.add_argument("--model", nargs="+", default=["bicubic", "fast"], help="models (default: bicubic fast)")
    b.add_argument("--backend", nargs="+", default=["auto"], help="backends (default: auto)")
    b.add_argument(
        "--size", nargs="+", default=["320x180"], metavar="WxH", help="input sizes (default: 320x180)"
    )
    b.add_argument("--frames", type=int, default=100, help="timed frames per case (default: 100)")
    b.add_argument("--warmup", type=int, default=5, help="untimed frames first (default: 5)")
    b.add_argument("--batch", type=int, default=1, help="frames per inference call (default: 1)")
    b.add_argument(
        "--input", default=None, metavar="CLIP", help="clip to scale to each size (default: a sample)"
    )
    b.add_argument("--no-e2e", action="store_true", help="model-only: skip decode -> upscale -> encode runs")
    b.add_argument(
        "--random-weights",
        action="store_true",
        help="time models shipped without trained weights with random ones (speed does not depend on them)",
    )
    b.add_argument(
        "--compile",
        action="store_true",
        help="torch on CUDA: compile the networks (torch.compile, max-autotune; compile time not timed)",
    )
    b.add_argument(
        "--preset", default="veryfast", help="x264 preset of the end-to-end runs (default: veryfast)"
    )
    b.add_argument("--json", default=None, metavar="FILE", help="write the full report as JSON")
    b.add_argument("--plot", default=None, metavar="FILE.png", help="write a bar chart")
    b.set_defaults(func=_cmd_bench)


def _add_engine(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("engine", help="build or list TensorRT engines", description="TensorRT engines.")
    esub = e.add_subparsers(dest="engine_command", required=True, metavar="ACTION")
    b = esub.add_parser("build", help="build (or reuse) an engine", description="Build a TensorRT engine.")
    b.add_argument("--model", required=True, help="catalogue model")
    b.add_argument("--profile", required=True, help="shape profile from engines/profiles.toml (e.g. p720)")
    b.add_argument("--fp32", action="store_true", help="build an FP32 engine (default: FP16)")
    b.set_defaults(func=_cmd_engine_build)
    ls = esub.add_parser("list", help="list cached engines and profiles", description="List engines.")
    ls.set_defaults(func=_cmd_engine_list)


def _add_stream(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "stream",
        help="upscale a live stream in real time",
        description="Upscale a live stream 4x in real time within a latency budget: when inference "
        "cannot keep up, frames are degraded to cheaper models, then bicubic, and dropped only as a "
        "last resort.",
    )
    s.add_argument("input", metavar="INPUT", help="- (stdin) or a tcp/udp/srt/rtmp/rtsp/HLS URL")
    s.add_argument(
        "output",
        metavar="OUTPUT",
        help="- (stdout, MPEG-TS), tcp/udp/srt URL (MPEG-TS), rtmp URL, or a directory (HLS)",
    )
    _add_live_model_flags(s, "fast-tiny-stream", "fast-tiny-stream, trained for compressed input")
    s.add_argument("--format", default=None, choices=("mpegts", "flv", "hls"), help="force the output muxer")
    s.add_argument("--input-format", default=None, help="force the input demuxer")
    s.add_argument("--reconnect", action="store_true", help="reconnect to a stalled or closed input")
    s.add_argument(
        "--reconnect-for", type=float, default=60.0, metavar="S", help="give up after S s (default: 60)"
    )
    s.add_argument("--stall-timeout", type=float, default=5.0, metavar="S", help="no data for S s = stalled")
    s.add_argument("--preset", default="ultrafast", help="x264 preset (default: ultrafast)")
    s.add_argument("--crf", type=int, default=23, help="x264 quality (default: 23)")
    s.add_argument("--json-stats", default=None, metavar="FILE", help="write run statistics as JSON")
    s.add_argument("-q", "--quiet", action="store_true", help="no status line, warnings and errors only")
    _add_face_flags(s)
    s.set_defaults(func=_cmd_stream)


def _add_live_model_flags(p: argparse.ArgumentParser, model: str, why: str = "") -> None:
    """--model, --backend, --threads and --latency-budget, as every live command takes them."""
    p.add_argument(
        "--model", default=model, help=f"best model tier (see `vsr models`; default: {why or model})"
    )
    p.add_argument("--backend", default="auto", help=f"one of {', '.join(BACKEND_NAMES)} (default: auto)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for inference")
    p.add_argument(
        "--latency-budget",
        type=float,
        default=150.0,
        metavar="MS",
        help="added latency allowed (default: 150)",
    )


def _add_webcam(sub: argparse._SubParsersAction) -> None:
    w = sub.add_parser(
        "webcam",
        help="enhance a webcam live",
        description="Upscale a camera (or a file/URL played in real time) 4x live, within a latency "
        "budget, to a preview window, a virtual camera, a file or a stream.",
    )
    src = w.add_mutually_exclusive_group()
    src.add_argument(
        "--device", default=None, help="camera: /dev/video0, 0 (macOS), video=NAME, cv:N (OpenCV)"
    )
    src.add_argument("--input", default=None, metavar="FILE_OR_URL", help="play a file or URL instead")
    w.add_argument("--size", default=None, metavar="WxH", help="capture size (files are resized to it)")
    w.add_argument("--fps", type=float, default=None, help="capture frame rate (files are sampled to it)")
    w.add_argument(
        "-o",
        "--output",
        action="append",
        default=[],
        metavar="OUT",
        help="a video file, a `vsr stream` output (-, URL, HLS dir) or vcam (virtual camera); repeatable",
    )
    w.add_argument("--preview", action="store_true", help="show a window (needs a display and GUI OpenCV)")
    w.add_argument("--side-by-side", action="store_true", help="bicubic left, enhanced right")
    _add_live_model_flags(w, "fast")
    w.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    w.add_argument("--overwrite", action="store_true", help="replace output files that exist")
    w.add_argument("--json-stats", default=None, metavar="FILE", help="write run statistics as JSON")
    w.add_argument("-q", "--quiet", action="store_true", help="no status line, warnings and errors only")
    _add_face_flags(w)
    w.set_defaults(func=_cmd_webcam)


def _add_webrtc(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser(
        "webrtc",
        help="serve the WebRTC page: your browser camera, enhanced",
        description="A WebRTC server (aiortc): the page sends the browser's camera, gets it back "
        "enhanced and shows both side by side with live fps and latency.",
    )
    r.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    r.add_argument("--allow-remote", action="store_true", help="needed to bind anything but loopback")
    r.add_argument("--port", type=int, default=8080, help="TCP port (default: 8080)")
    _add_live_model_flags(r, "fast")
    r.add_argument(
        "--max-bitrate",
        type=int,
        default=6000,
        metavar="KBPS",
        help="returned video's ceiling (default: 6000)",
    )
    r.add_argument("--max-peers", type=int, default=4, metavar="N", help="connections at once (default: 4)")
    _add_face_flags(r)
    r.set_defaults(func=_cmd_webrtc)


def _configs(args: argparse.Namespace) -> tuple[DecodeConfig, EncodeConfig, ModelConfig, PipelineConfig]:
    dec = DecodeConfig(args.input, format=args.input_format)
    enc = EncodeConfig(
        args.output,
        format=args.format,
        codec=args.codec,
        crf=args.crf,
        preset=args.preset,
        pix_fmt=args.pix_fmt,
        overwrite=args.overwrite,
    )
    model = ModelConfig(args.model, args.backend, args.device, args.tile, args.threads, args.compile)
    pipe = PipelineConfig(batch=args.batch, progress=not args.quiet and sys.stderr.isatty())
    return dec, enc, model, pipe


def _cmd_upscale(args: argparse.Namespace) -> int:
    dec, enc, model, pipe = _configs(args)
    if enc.is_pipe and sys.stdout.isatty():
        raise ConfigError(
            "refusing to write video to a terminal; redirect stdout (-o - > FILE) or use -o FILE"
        )
    progress = Progress(0, enabled=pipe.progress)
    with stop_on_signals() as stop:
        try:
            stats = upscale_file(
                dec, enc, model, pipe, stop=stop, face=_face_config(args), on_status=progress.draw
            )
        finally:
            progress.close()
    _report(stats, enc.path, args.json_stats)
    if stats.interrupted:
        if stats.frames_out:
            log.warning(
                "interrupted after %d frames; %s holds them and is playable", stats.frames_out, enc.path
            )
        else:
            log.warning("interrupted before any frame was encoded; nothing written")
        return 128 + (stop.signum or signal.SIGINT)
    return 0


def _report(stats: RunStats, output: str, json_path: str | None) -> None:
    where = "stdout" if output == "-" else output
    log.info(
        "wrote %s: %d frames in %.2f s (%.2f fps) with %s",
        where,
        stats.frames_out,
        stats.seconds,
        stats.fps,
        stats.extra.get("backend", "?"),
    )
    if json_path:
        _write_json(stats.to_dict(), json_path)


def _cmd_stream(args: argparse.Namespace) -> int:
    from .stream import StreamConfig, run_stream

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
        return _fail(f"stream input lost: {stats.ended}", 3)
    return 128 + stop.signum if stop.signum else 0


def _face_config(args: argparse.Namespace) -> FaceConfig | None:
    if not args.face:
        return None
    return FaceConfig(
        args.face_model, args.background_model, args.face_detector, args.face_every, args.face_margin
    )


def _cmd_webcam(args: argparse.Namespace) -> int:
    from .webcam import WebcamConfig, parse_size, run_webcam

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


def _cmd_webrtc(args: argparse.Namespace) -> int:
    from .webrtc import WebrtcConfig, serve

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


def _cmd_models(args: argparse.Namespace) -> int:
    print(f"{'name':<10} {'tier':<9} {'colour':<6} {'params':>10}  {'weights':<8} description")
    for s in CATALOGUE:
        weights = "yes" if s.has_weights else "missing"
        print(f"{s.name:<10} {s.tier:<9} {s.colour:<6} {s.params:>10,}  {weights:<8} {s.description}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate, format_table

    ModelConfig(args.model, args.backend)  # validates the names
    result = evaluate(args.model, Path(args.data), args.backend)
    print(format_table(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, default=str)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import BenchConfig, format_report, parse_size, plot_report, run_bench, write_json

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


def _cmd_engine_build(args: argparse.Namespace) -> int:
    from .trt import build_engine

    path = build_engine(args.model, args.profile, fp16=not args.fp32, report=log.info)
    print(path)
    return 0


def _cmd_engine_list(args: argparse.Namespace) -> int:
    from .trt import format_engine_list

    print(format_engine_list())
    return 0


class _Formatter(logging.Formatter):
    """``vsr: warning: message`` (lower-case level names, like the error line)."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)
        record.levelname = record.levelname.lower()
        return super().format(record)


def _setup_logging(verbose: bool, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter("vsr: %(levelname)s: %(message)s"))
    root = logging.getLogger("vsr")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``vsr`` command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose, getattr(args, "quiet", False))
    keep_freed_buffers()  # frame-sized buffers stay on the heap: no page faults per frame (vsr.alloc)
    try:
        return _dispatch(args)
    finally:  # an in-process caller (tests, embedding) keeps no handler on a stream it may close
        logging.getLogger("vsr").handlers[:] = []


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except VsrError as exc:
        return _fail(str(exc), exc.exit_code)
    except BrokenPipeError:  # PyAV's own BrokenPipeError is one of these too
        return _fail("the output pipe was closed before the video was finished", 1)
    except av.error.FFmpegError as exc:
        return _fail(f"FFmpeg: {exc}", 1)
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:  # one line for the user; the traceback with -v
        log.debug("unexpected error", exc_info=True)
        return _fail(f"unexpected {type(exc).__name__}: {exc}", 1)


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"vsr: error: {message}\n")
    return code
